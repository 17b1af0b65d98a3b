"""LiteLLM proxy spend logs (the `LiteLLM_SpendLogs` table exported as JSON, JSON lines or CSV).

Prompts and responses are in the rows only when the proxy stores them
(`general_settings: store_prompts_in_spend_logs: true`); rows without them are quarantined as
`content_not_captured` with that hint. Non-completion calls (embeddings, images) are skipped. Tenant and
agent come from `metadata` (keys configurable, e.g. the proxy's team or end-user fields).
Source: LiteLLM proxy docs, "Spend Logs" schema (request_id, call_type, model, model_group,
startTime, endTime, prompt_tokens, completion_tokens, spend, metadata, messages, response).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drift_pipeline.traffic.ingest.exports import Skip, as_object, duration_ms
from drift_pipeline.traffic.ingest.fields import RecordError
from drift_pipeline.traffic.ingest.mapping import AttributeMapping
from drift_pipeline.traffic.ingest.messages import chat_message, chat_messages, parse_json, text_of

COMPLETION_CALLS = {"completion", "acompletion", "text_completion", "atext_completion", "responses", "aresponses"}
HINT = "no stored prompt/response: set general_settings.store_prompts_in_spend_logs: true on the proxy"


def litellm_record(row: Mapping[str, Any], mapping: AttributeMapping) -> dict[str, Any]:
    """One spend-log row as a raw record."""
    call_type = str(row.get("call_type") or "acompletion")
    if call_type not in COMPLETION_CALLS:
        raise Skip("not_a_completion")
    metadata = as_object(row.get("metadata"))
    messages = chat_messages(parse_json(row.get("messages")) or None)
    response = as_object(row.get("response"))
    if not messages or not response:
        raise RecordError("content_not_captured", HINT)
    requested = row.get("model_group") or row.get("model")
    if not requested:
        raise RecordError("missing_model", "the row names no model")
    choice = (response.get("choices") or [{}])[0] if isinstance(response.get("choices"), list) else {}
    message = chat_message(as_object(choice).get("message")) or {}
    return {
        **mapping.scope(metadata, as_object(metadata.get("requester_metadata"))),
        "timestamp": row.get("startTime"),
        "prompt_id": row.get("request_id") or "",
        "messages": messages,
        "response_text": text_of(message.get("content")),
        "tool_calls": message.get("tool_calls"),
        "finish_reason": as_object(choice).get("finish_reason") or "",
        "requested_model": requested,
        "served_model": response.get("model") or row.get("model") or requested,
        "system_fingerprint": response.get("system_fingerprint") or "",
        "prompt_tokens": row.get("prompt_tokens"),
        "completion_tokens": row.get("completion_tokens"),
        "latency_ms": duration_ms(row.get("startTime"), row.get("endTime")),
        "error": str(row.get("status") or "") if str(row.get("status") or "") == "failure" else "",
    }
