"""The traffic record: the one schema every source (capture, log files, LLMDrift) is normalised to."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from datetime import date
from typing import Any

import pandas as pd

from drift_pipeline.identifiers import check_identifier
from drift_pipeline.persistence.objects import TRAFFIC_DATASET, ObjectStore
from drift_pipeline.traffic.privacy import Scrubber

# JSON-valued fields are stored as JSON strings so that Parquet schemas stay stable across batches.
JSON_FIELDS = ("messages", "tools", "response_format", "tool_calls")
# Not part of a record's identity: where it was read from (a capture and a log of the same call are one
# record), what is derived from other fields, and the id itself.
_NOT_CONTENT = frozenset({"source", "silent_reroute", "record_id"})
# Free-text fields a hostile or careless client controls: all scrubbed before a row is first written.
TEXT_FIELDS = (
    "response_text",
    "workflow_type",
    "agent_step",
    "prompt_id",
    "requested_model",
    "pinned_model_id",
    "served_model",
    "system_fingerprint",
    "finish_reason",
    "error",
    "source",
)


@dataclass
class TrafficRecord:
    """One model execution as the platform saw it."""

    tenant_id: str
    agent_id: str
    timestamp: str  # UTC ISO 8601
    messages: str  # JSON list of {"role", "content"}
    response_text: str = ""
    workflow_type: str = "default"
    agent_step: str = "default"
    prompt_id: str = ""
    requested_model: str = ""
    pinned_model_id: str = ""
    served_model: str = ""
    system_fingerprint: str = ""
    tools: str = "null"
    response_format: str = "null"
    tool_calls: str = "null"
    finish_reason: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: float | None = None
    error: str = ""
    silent_reroute: bool = False
    source: str = ""
    record_id: str = field(default="")

    def __post_init__(self) -> None:
        if not self.record_id:
            self.record_id = compute_record_id(self.content())

    def to_row(self) -> dict[str, Any]:
        return asdict(self)

    def content(self) -> dict[str, Any]:
        """Every field that says what happened (prompt, response, models, tokens, time, ...): the identity."""
        return {k: v for k, v in asdict(self).items() if k not in _NOT_CONTENT}

    @property
    def prompt(self) -> str:
        """The last user message: what sampling stratifies and deduplicates on."""
        return last_user_message(self.messages)


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(TrafficRecord))


def read_traffic(
    objects: ObjectStore, tenant_id: str, start: str | date | None = None, end: str | date | None = None
) -> pd.DataFrame:
    """A tenant's committed traffic (captured and ingested) for a day range, one row per record_id."""
    frame = objects.read_batches(TRAFFIC_DATASET, check_identifier(tenant_id, "tenant id"), start, end)
    if frame.empty:
        return pd.DataFrame(columns=list(COLUMNS))
    # A record captured and later ingested (or ingested twice by different runs) is one record.
    return frame.drop_duplicates("record_id", keep="first").reset_index(drop=True)


def compute_record_id(content: dict[str, Any]) -> str:
    """Deterministic id of a record's full content (`TrafficRecord.content`).

    Ingesting or capturing the same execution twice yields the same id (an exact duplicate is stored
    once); the same prompt and time with a different response, model or token count is another record.
    """
    return hashlib.sha256(dumps(content).encode("utf-8")).hexdigest()[:32]


def scrubbed_row(scrubber: Scrubber, row: dict[str, Any], memo: dict[str, str] | None = None) -> dict[str, Any]:
    """A traffic row with every text value scrubbed (JSON fields value by value): what may be stored.

    `memo` (one per scrubber) remembers short label-like values (workflow, step, models, source), which
    repeat on almost every row: detectors are the cost of ingestion, so each distinct label is scrubbed once.
    """
    out = dict(row)
    for key in JSON_FIELDS:
        if key in out:
            out[key] = scrubber.scrub_json(out[key])
    for key in TEXT_FIELDS:
        value = out.get(key)
        if not isinstance(value, str) or not value:
            continue
        if memo is None or key in ("response_text", "error") or len(value) > 200:
            out[key] = scrubber.scrub(value)
            continue
        if value not in memo:
            if len(memo) >= 10_000:
                memo.clear()  # bounded: a hostile file of unique labels cannot grow it without limit
            memo[value] = scrubber.scrub(value)
        out[key] = memo[value]
    return out


def last_user_message(messages_json: str) -> str:
    try:
        messages = json.loads(messages_json)
    except (TypeError, ValueError):
        return ""
    for message in reversed(messages or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else json.dumps(content)
    return ""


def normalise_model(name: str | None) -> str:
    """Compare model names without provider prefixes or case: 'openai/GPT-4o' == 'gpt-4o'."""
    return (name or "").strip().rsplit("/", 1)[-1].lower()


def is_silent_reroute(pinned: str | None, served: str | None) -> bool:
    """True when the provider served a model other than the pinned one (both known)."""
    return bool(pinned and served) and normalise_model(pinned) != normalise_model(served)


def dumps(value: Any) -> str:
    """Canonical JSON (sorted keys) so that equal values hash equal."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
