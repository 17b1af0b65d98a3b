"""One raw log record (a parsed mapping) to a `TrafficRecord`, or a `RecordError` saying why not.

Every field is coerced strictly: a wrong type is a reason to quarantine the record, never a silent guess.
Every value is bounded, so that whatever a record holds it either becomes a row every writer can store
or a `RecordError` with a reason: JSON depth (checked *before* parsing, so deep nesting never reaches the
recursive parser), token counts, latencies (finite, non-negative), timestamps (years 1970-2099), lone
UTF-16 surrogates (not storable as UTF-8), message and content-part shapes.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from drift_pipeline.errors import InvalidInputError
from drift_pipeline.identifiers import check_identifier
from drift_pipeline.traffic.records import TrafficRecord, dumps, is_silent_reroute

_STR_FIELDS = (
    "workflow_type",
    "agent_step",
    "prompt_id",
    "requested_model",
    "pinned_model_id",
    "served_model",
    "system_fingerprint",
    "response_text",
    "finish_reason",
    "error",
)
_INT_FIELDS = ("prompt_tokens", "completion_tokens")
_JSON_FIELDS = {"tools": list, "response_format": dict, "tool_calls": list}  # field -> the JSON type it must have
MAX_JSON_DEPTH = 64  # message parts and tool schemas nest a handful of levels; 64 leaves room, 100k does not
MAX_TOKENS = 2**31 - 1
MAX_LATENCY_MS = 86_400_000.0  # one day: a longer "latency" is a broken clock, not a model call
EARLIEST, LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
_JSON_TOKENS = re.compile(r'["\\\[\]{}]')
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class RecordError(Exception):
    """A record that cannot be accepted: `reason` is a short code, `detail` says what was wrong."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


def loads(text: str, what: str = "record") -> Any:
    """Parse JSON text with its depth bounded before parsing; NaN/Infinity and lone surrogates refused."""
    if json_too_deep(text, MAX_JSON_DEPTH):
        raise RecordError("too_deep", f"{what} nests JSON deeper than {MAX_JSON_DEPTH} levels")
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except ValueError as exc:  # JSONDecodeError, and the int-digits limit of huge literals
        raise RecordError("not_json", f"{what}: {str(exc)[:200]}") from exc
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise RecordError("bad_encoding", f"{what} holds a lone UTF-16 surrogate") from exc
    return value


def json_too_deep(text: str, limit: int) -> bool:
    """True when brackets nest deeper than `limit` (outside strings); linear, no recursion."""
    if text.count("[") + text.count("{") <= limit:
        return False  # fewer openers than the limit: cannot be deeper (the usual case, no scan)
    depth, in_string, skip_to = 0, False, -1
    for m in _JSON_TOKENS.finditer(text):
        pos, ch = m.start(), m.group()
        if pos < skip_to:
            continue  # the character after a backslash inside a string
        if in_string:
            if ch == "\\":
                skip_to = pos + 2
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return True
        elif ch in "]}":
            depth -= 1
    return False


def _refuse_constant(name: str) -> Any:
    raise RecordError("not_json", f"{name} is not a JSON number")


def normalise(
    value: Mapping[str, Any],
    *,
    tenant: str | None = None,
    agent: str | None = None,
    known_agents: Mapping[str, set[str]] | None = None,
    source: str = "",
) -> TrafficRecord:
    """A `TrafficRecord` from one log record, or `RecordError` with the reason it is rejected."""
    tenant_id = tenant_of(value, tenant)
    agent_id = coerce_text(value.get("agent_id") or value.get("agent") or agent, "agent_id")
    if not agent_id:
        raise RecordError("missing_agent", "no agent_id and no --agent")
    try:  # the one identifier rule, with or without --no-check-agents
        check_identifier(agent_id, "agent id")
    except InvalidInputError as exc:
        raise RecordError("invalid_agent", str(exc)) from exc
    check_known(tenant_id, agent_id, known_agents)
    fields: dict[str, Any] = {name: coerce_text(value.get(name), name) for name in _STR_FIELDS}
    if not fields["response_text"] and value.get("response") is not None:
        fields["response_text"] = coerce_text(value.get("response"), "response")
    for name in _INT_FIELDS:
        fields[name] = _bounded(coerce_int(value.get(name), name), name, 0, MAX_TOKENS)
    fields["latency_ms"] = _bounded(
        coerce_float(value.get("latency_ms"), "latency_ms"), "latency_ms", 0, MAX_LATENCY_MS
    )
    for name, kind in _JSON_FIELDS.items():
        parsed = _json_value(value.get(name), name)
        if parsed is not None and not isinstance(parsed, kind):
            raise RecordError("wrong_type", f"{name} must be a JSON {'list' if kind is list else 'object'}")
        fields[name] = dumps(parsed)
    fields["workflow_type"] = fields["workflow_type"] or "default"
    fields["agent_step"] = fields["agent_step"] or "default"
    reroute = value.get("silent_reroute")
    if reroute is not None and not isinstance(reroute, bool):
        raise RecordError("wrong_type", f"silent_reroute must be a boolean, got {type(reroute).__name__}")
    fields["silent_reroute"] = bool(reroute) or is_silent_reroute(fields["pinned_model_id"], fields["served_model"])
    return TrafficRecord(
        tenant_id=tenant_id,
        agent_id=agent_id,
        timestamp=_timestamp(value.get("timestamp")),
        messages=dumps(_messages(value)),
        source=coerce_text(value.get("source"), "source") or source,
        **fields,
    )


def check_known(tenant_id: str, agent_id: str, known_agents: Mapping[str, set[str]] | None) -> None:
    """Raise `RecordError` unless the agent has a manifest (no check when `known_agents` is None)."""
    if known_agents is None:
        return
    if tenant_id not in known_agents:
        raise RecordError("unknown_tenant", f"tenant {tenant_id!r} has no manifest")
    if agent_id not in known_agents[tenant_id]:
        raise RecordError("unknown_agent", f"agent {agent_id!r} of tenant {tenant_id!r} has no manifest")


def tenant_of(value: Mapping[str, Any], default: str | None) -> str:
    """The record's tenant (or the run's `default`); a record naming another tenant than the run's is refused."""
    tenant_id = coerce_text(value.get("tenant_id") or value.get("tenant"), "tenant_id")
    if default and tenant_id and tenant_id != default:
        raise RecordError("tenant_mismatch", f"record names tenant {tenant_id!r}, the run is for {default!r}")
    tenant_id = tenant_id or (default or "")
    if not tenant_id:
        raise RecordError("missing_tenant", "no tenant_id and no --tenant")
    try:
        return check_identifier(tenant_id, "tenant id")
    except InvalidInputError as exc:
        raise RecordError("invalid_tenant", str(exc)) from exc


def coerce_text(value: Any, name: str) -> str:
    """A string field ('' when missing)."""
    if _missing(value):
        return ""
    if not isinstance(value, str):
        raise RecordError("wrong_type", f"{name} must be a string, got {type(value).__name__}")
    return value


def coerce_int(value: Any, name: str) -> int | None:
    """An integer field: an int, an integral float or a numeric string (None when missing)."""
    if _missing(value):
        return None
    if isinstance(value, bool):
        raise RecordError("wrong_type", f"{name} must be an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise RecordError("wrong_type", f"{name} must be an integer, got {value!r}"[:200])


def coerce_float(value: Any, name: str) -> float | None:
    """A number field: an int, a float or a numeric string (None when missing)."""
    if _missing(value):
        return None
    if isinstance(value, bool):
        raise RecordError("wrong_type", f"{name} must be a number, got a boolean")
    try:
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            return float(value.strip())
    except OverflowError as exc:  # an integer beyond any float
        raise RecordError("out_of_range", f"{name} is too large") from exc
    except ValueError:
        pass
    raise RecordError("wrong_type", f"{name} must be a number, got {value!r}"[:200])


def _bounded(value: Any, name: str, lo: float, hi: float) -> Any:
    """`value` unless it is a number outside [lo, hi] (NaN and infinities included)."""
    if value is None:
        return None
    if (isinstance(value, float) and not math.isfinite(value)) or not lo <= value <= hi:
        raise RecordError("out_of_range", f"{name} must be between {lo:g} and {hi:g}")
    return value


def _missing(value: Any) -> bool:
    # CSV and Parquet readers give NaN for an empty numeric cell: that is a missing value, not a number.
    return value is None or (isinstance(value, float) and math.isnan(value))


def _json_value(value: Any, name: str) -> Any:
    if _missing(value):
        return None
    if isinstance(value, str):
        try:
            return loads(value, name)
        except RecordError as exc:
            reason = "wrong_type" if exc.reason == "not_json" else exc.reason
            raise RecordError(reason, f"{name} is a string but not JSON ({exc.detail})"[:300]) from exc
    if isinstance(value, dict | list):
        return value
    raise RecordError("wrong_type", f"{name} must be JSON, got {type(value).__name__}")


def _messages(value: Mapping[str, Any]) -> list[dict[str, Any]]:
    messages = _json_value(value.get("messages"), "messages")
    if messages is None:
        prompt = value.get("prompt")
        if _missing(prompt):
            raise RecordError("missing_messages", "no messages and no prompt")
        return [{"role": "user", "content": coerce_text(prompt, "prompt")}]
    if not isinstance(messages, list) or not messages:
        raise RecordError("wrong_type", "messages must be a non-empty list")
    for message in messages:
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise RecordError("wrong_type", "each message must be an object with a string role")
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise RecordError("wrong_type", "message content must be a string or a list of parts")
        if isinstance(content, list) and not all(_is_part(p) for p in content):
            raise RecordError("wrong_type", "each content part must be an object with a string type")
    return messages


def _is_part(part: Any) -> bool:
    # OpenAI-style parts: {"type": "text", "text": "..."}, {"type": "image_url", ...}.
    if not isinstance(part, dict) or not isinstance(part.get("type"), str):
        return False
    return part["type"] != "text" or isinstance(part.get("text"), str)


def _timestamp(value: Any) -> str:
    if _missing(value):
        raise RecordError("missing_timestamp", "no timestamp")
    if isinstance(value, bool):
        raise RecordError("wrong_type", "timestamp must be ISO 8601 or epoch seconds, got a boolean")
    try:
        if isinstance(value, datetime):
            stamp = value
        elif isinstance(value, int | float):
            stamp = datetime.fromtimestamp(float(value), UTC)
        elif isinstance(value, str):
            stamp = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        else:
            raise RecordError("wrong_type", f"timestamp must be ISO 8601 or epoch seconds, got {type(value).__name__}")
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)  # logs without an offset are taken as UTC
        stamp = stamp.astimezone(UTC)  # year 9999 at -01:00 overflows here
    except (ValueError, OverflowError, OSError, TypeError) as exc:
        raise RecordError("bad_timestamp", f"{value!r} is not ISO 8601"[:200]) from exc
    if not EARLIEST <= stamp < LATEST:
        raise RecordError("bad_timestamp", f"{stamp.isoformat()} is outside {EARLIEST.year}-{LATEST.year - 1}")
    return stamp.isoformat()
