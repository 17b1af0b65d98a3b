"""Langfuse observations (public API `GET /api/public/observations` pages, or the UI's JSON/CSV export).

Only observations of type `GENERATION` are model calls; spans and events are skipped. Tenant and agent
come from the observation's `metadata` (keys configurable), then the run's `--tenant` / `--agent`.
Source: Langfuse API reference, ObservationsView (v3, 2025): id, traceId, type, startTime, endTime,
completionStartTime, model, input, output, usageDetails / usage, metadata, level, statusMessage.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drift_pipeline.traffic.ingest.exports import Skip, as_object, duration_ms
from drift_pipeline.traffic.ingest.fields import RecordError
from drift_pipeline.traffic.ingest.mapping import AttributeMapping
from drift_pipeline.traffic.ingest.messages import chat_message, chat_messages, parse_json, text_of


def langfuse_record(row: Mapping[str, Any], mapping: AttributeMapping) -> dict[str, Any]:
    """One Langfuse observation as a raw record."""
    kind = str(row.get("type") or "").upper()
    if kind != "GENERATION":
        raise Skip("not_a_generation")
    if not row.get("model"):
        raise RecordError("missing_model", "the generation names no model")
    messages = chat_messages(row.get("input"))
    if not messages:
        raise RecordError("content_not_captured", "the generation has no input (masked or not captured)")
    output = parse_json(row.get("output"))
    if isinstance(output, list) and output:
        output = output[0]  # a list of choices or messages: the first is the one the agent used
    message = chat_message(output) if isinstance(output, Mapping) else None
    if isinstance(output, Mapping) and output.get("role") is None and "content" in output:
        message = {"role": "assistant", "content": output.get("content")}
    usage = as_object(row.get("usageDetails")) or as_object(row.get("usage"))
    metadata = as_object(row.get("metadata"))
    error = str(row.get("statusMessage") or "") if str(row.get("level") or "").upper() == "ERROR" else ""
    return {
        **mapping.scope(metadata),
        "timestamp": row.get("startTime"),
        "prompt_id": f"{row.get('traceId') or ''}:{row.get('id') or ''}",
        "messages": messages,
        "response_text": text_of(message["content"]) if message else (output if isinstance(output, str) else ""),
        "tool_calls": (message or {}).get("tool_calls"),
        "requested_model": row.get("model"),
        "served_model": row.get("model"),
        "prompt_tokens": _first(usage, "input", "promptTokens", "prompt_tokens") or row.get("promptTokens"),
        "completion_tokens": _first(usage, "output", "completionTokens", "completion_tokens")
        or row.get("completionTokens"),
        "latency_ms": duration_ms(row.get("startTime"), row.get("endTime")),
        "error": error,
    }


def _first(values: Mapping[str, Any], *keys: str) -> Any:
    return next((values[k] for k in keys if values.get(k) is not None), None)
