"""Report and baseline object keys: built from validated ids only, one tenant prefix, no ambiguity."""

from __future__ import annotations

import pytest

from drift_pipeline.detection.shadow import report_key
from drift_pipeline.errors import InvalidInputError
from drift_pipeline.migration.staging import staging_prefix


def test_report_keys_put_model_ids_in_one_segment_under_the_tenant() -> None:
    key = report_key("acme", "2024-05-01", "support", "meta-llama/Llama-3.1-8B-Instruct")
    assert key.startswith("reports/tenant=acme/day=2024-05-01/agent=support/_meta-llama-llama-3.1-8b-instruct-")
    assert key.count("/") == 4
    assert report_key("acme", "2024-05-01", "support", "gpt-4o-2024-08-06").endswith("/gpt-4o-2024-08-06")


def test_agent_and_model_can_no_longer_collide() -> None:
    """'<agent>--<model>' gave agent 'a--b' on 'c' and agent 'a' on 'b--c' the same report file."""
    assert report_key("acme", "2024-05-01", "a--b", "c") != report_key("acme", "2024-05-01", "a", "b--c")


@pytest.mark.parametrize(
    ("tenant", "agent", "model"),
    [("acme\n", "support", "m-1"), ("acme", "../support", "m-1"), ("acme", "support", "../../m-1")],
)
def test_hostile_ids_never_become_report_keys(tenant: str, agent: str, model: str) -> None:
    with pytest.raises(InvalidInputError, match="invalid"):
        report_key(tenant, "2024-05-01", agent, model)
    if model == "m-1":
        with pytest.raises(InvalidInputError, match="invalid"):
            staging_prefix(tenant, agent)
