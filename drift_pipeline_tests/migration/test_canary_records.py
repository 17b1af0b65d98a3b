"""Which slice a captured record is in, and its binary outcomes (decided from the record alone)."""

from __future__ import annotations

from datetime import UTC, datetime

from drift_pipeline.migration.canary_records import outcomes, route_of
from drift_pipeline.migration.states import MigrationInfo

REFUSAL = "I'm sorry, but I can't help with that request."


def test_record_classification() -> None:
    m = MigrationInfo(1, "acme", "support", "m-1", "m-2", 1, "canary", 0.1, 1, {}, datetime.now(UTC), datetime.now(UTC))
    assert route_of({"requested_model": "offline/m-2", "pinned_model_id": "m-1"}, m) == "canary"
    assert route_of({"pinned_model_id": "m-1", "served_model": "m-2"}, m) == "canary"
    assert route_of({"requested_model": "openai/m-1", "served_model": "m-1"}, m) == "pinned"
    assert route_of({"requested_model": "m-10", "served_model": "xm-2"}, m) is None
    assert outcomes({"error": "Timeout: 30s"}, None) == {
        "error": True,
        "refusal": None,
        "schema_failure": None,
    }
    schema = {"type": "object", "required": ["a"]}
    assert outcomes({"response_text": REFUSAL}, schema) == {
        "error": False,
        "refusal": True,
        "schema_failure": True,
    }
    assert outcomes({"response_text": '```json\n{"a": 1}\n```'}, schema)["schema_failure"] is False
    tool = outcomes({"response_text": "", "tool_calls": '[{"id": "1"}]'}, schema)
    assert tool == {"error": False, "refusal": False, "schema_failure": None}
