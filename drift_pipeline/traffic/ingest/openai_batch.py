"""OpenAI Batch API files: the input JSONL (requests) and the output JSONL (responses), paired by `custom_id`.

Items are the output lines: each is paired with its request. A response whose request is missing is
quarantined (`unpaired`); requests never answered are counted in the report's notes, not as records.
Embedding and other non-chat batch lines are skipped. Source: OpenAI Batch API guide and reference
(request line: custom_id, method, url, body; output line: id, custom_id, response{status_code, body}, error).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from drift_pipeline.errors import InvalidInputError
from drift_pipeline.traffic.ingest.exports import Skip, as_object
from drift_pipeline.traffic.ingest.fields import RecordError
from drift_pipeline.traffic.ingest.mapping import AttributeMapping
from drift_pipeline.traffic.ingest.messages import chat_message, chat_messages, text_of

CHAT_URLS = ("/v1/chat/completions", "/chat/completions")
MAX_INPUT_BYTES = 256 * 1024 * 1024  # the Batch API accepts input files up to 200 MB


def load_requests(fs: Any, path: str) -> dict[str, dict[str, Any]]:
    """custom_id -> request line of a batch input file (bad lines are left out: their outputs quarantine)."""
    if fs.info(path).get("size", 0) > MAX_INPUT_BYTES:
        raise InvalidInputError(f"batch input {path} is over {MAX_INPUT_BYTES} bytes")
    requests: dict[str, dict[str, Any]] = {}
    with fs.open(path, "rb") as fh:
        for line in fh:
            try:
                value = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if isinstance(value, dict) and isinstance(value.get("custom_id"), str):
                requests[value["custom_id"]] = value
    return requests


def batch_record(
    line: Mapping[str, Any], requests: Mapping[str, Mapping[str, Any]], mapping: AttributeMapping
) -> dict[str, Any]:
    """One output line, with its request, as a raw record."""
    custom_id = line.get("custom_id")
    request = requests.get(custom_id) if isinstance(custom_id, str) else None
    if request is None:
        raise RecordError("unpaired", f"no request with custom_id {custom_id!r} in the batch input")
    if str(request.get("url") or "") not in CHAT_URLS:
        raise Skip("not_chat_completion")
    body = as_object(request.get("body"))
    response = as_object(line.get("response"))
    answer = as_object(response.get("body"))
    messages = chat_messages(body.get("messages"))
    if not messages:
        raise RecordError("missing_messages", "the batch request has no messages")
    choice = (answer.get("choices") or [{}])[0] if isinstance(answer.get("choices"), list) else {}
    message = chat_message(as_object(choice).get("message")) or {}
    usage = as_object(answer.get("usage"))
    return {
        **mapping.scope(as_object(body.get("metadata"))),
        "timestamp": answer.get("created"),
        "prompt_id": custom_id,
        "messages": messages,
        "tools": body.get("tools"),
        "response_format": body.get("response_format"),
        "response_text": text_of(message.get("content")),
        "tool_calls": message.get("tool_calls"),
        "finish_reason": as_object(choice).get("finish_reason") or "",
        "requested_model": body.get("model"),
        "served_model": answer.get("model") or body.get("model"),
        "system_fingerprint": answer.get("system_fingerprint") or "",
        "prompt_tokens": usage.get("prompt_tokens"),
        "completion_tokens": usage.get("completion_tokens"),
        "error": _error(line, response, answer),
    }


def _error(line: Mapping[str, Any], response: Mapping[str, Any], answer: Mapping[str, Any]) -> str:
    error = as_object(line.get("error")) or as_object(answer.get("error"))
    if error:
        return str(error.get("message") or error.get("code") or "error")
    status = response.get("status_code")
    return f"HTTP {status}" if isinstance(status, int) and status >= 400 else ""
