"""The traffic record: the one schema every source (capture, log files, LLMDrift) is normalised to."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

# JSON-valued fields are stored as JSON strings so that Parquet schemas stay stable across batches.
JSON_FIELDS = ("messages", "tools", "response_format", "tool_calls")


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
            self.record_id = compute_record_id(self.tenant_id, self.agent_id, self.timestamp, self.messages)

    def to_row(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def prompt(self) -> str:
        """The last user message: what sampling stratifies and deduplicates on."""
        return last_user_message(self.messages)


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(TrafficRecord))


def compute_record_id(tenant_id: str, agent_id: str, timestamp: str, messages: str) -> str:
    """Deterministic id: ingesting or capturing the same execution twice yields the same id."""
    h = hashlib.sha256("\x1f".join((tenant_id, agent_id, timestamp, messages)).encode("utf-8"))
    return h.hexdigest()[:32]


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


def dumps(value: Any) -> str:
    """Canonical JSON (sorted keys) so that equal values hash equal."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
