"""What one captured traffic record tells a canary: which slice it is in, and its binary outcomes.

Decided from the record alone (the monitor in `canary_feed` keeps only the migration's tenant and agent,
timestamped at or after the canary started):

- **canary** when its requested, pinned or served model names the candidate (`to_model_id`, also as
  ``provider/model_id`` or any ``.../model_id``);
- otherwise **pinned** when one of them names the pinned version (`from_model_id`);
- otherwise it is *unattributed* (another model served it): counted in the state, never observed.

Outcomes: `error` = the record's error field is set; `refusal` = `dimensions.refusal.is_refusal` on the
response text (unknown for a failed call; never for a tool call); `schema_failure` = the manifest has a
`response_schema` and the text is not JSON valid against it (unknown for a failed call or a tool call).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from drift_pipeline.detection.dimensions.base import parse_json_text
from drift_pipeline.detection.dimensions.refusal import is_refusal
from drift_pipeline.detection.dimensions.schema_compliance import validator_for
from drift_pipeline.migration.states import MigrationInfo


def route_of(record: Mapping[str, Any], migration: MigrationInfo) -> str | None:
    """'canary' / 'pinned' / None (the record names neither the candidate nor the pin): see the module doc."""
    names = [str(record.get(k) or "") for k in ("requested_model", "pinned_model_id", "served_model")]
    if any(_names_model(n, migration.to_model_id) for n in names):
        return "canary"
    if any(_names_model(n, migration.from_model_id) for n in names):
        return "pinned"
    return None


def outcomes(record: Mapping[str, Any], response_schema: dict[str, Any] | None) -> dict[str, bool | None]:
    """The binary outcomes of one record (None: unknown, not counted for that dimension)."""
    failed = bool(_text(record.get("error")))
    if failed:
        return {"error": True, "refusal": None, "schema_failure": None}
    text = _text(record.get("response_text"))
    tool_call = _has_tool_calls(record.get("tool_calls"))
    result: dict[str, bool | None] = {"error": False, "refusal": False if tool_call else is_refusal(text)}
    if response_schema is not None:
        result["schema_failure"] = None if tool_call else not _valid(text, response_schema)
    return result


def _names_model(name: str, model_id: str) -> bool:
    return bool(name) and (name == model_id or name.endswith(f"/{model_id}"))


def _text(value: Any) -> str:
    # A column missing from a batch reads back as NaN: no value, not the text "nan".
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _has_tool_calls(value: Any) -> bool:
    text = _text(value)
    if not text or text == "null":
        return False
    try:
        return bool(json.loads(text))
    except ValueError:
        return True


def _valid(text: str, schema: dict[str, Any]) -> bool:
    ok, data = parse_json_text(text)
    return ok and validator_for(schema).is_valid(data)
