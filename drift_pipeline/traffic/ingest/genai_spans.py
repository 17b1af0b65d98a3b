"""One LLM span, in any of the attribute styles instrumentations write, to a raw traffic record.

Styles recognised (each written from its published specification):

- **OpenTelemetry GenAI, current** (semantic-conventions 1.37+): `gen_ai.input.messages` /
  `gen_ai.output.messages` / `gen_ai.system_instructions` as JSON message parts, `gen_ai.provider.name`.
- **OpenTelemetry GenAI, event-based** (1.28-1.36): span events `gen_ai.system.message`,
  `gen_ai.user.message`, `gen_ai.assistant.message`, `gen_ai.tool.message`, `gen_ai.choice`; and the
  earlier `gen_ai.content.prompt` / `gen_ai.content.completion` events.
- **OpenInference** (Arize/Phoenix): `llm.input_messages.N.message.*`, `llm.output_messages.N.message.*`,
  `llm.model_name`, `llm.token_count.*`, `openinference.span.kind`.
- **OpenLLMetry** (Traceloop): `gen_ai.prompt.N.*`, `gen_ai.completion.N.*`, `gen_ai.usage.prompt_tokens`.

A span that is not an LLM call (HTTP, database, agent or tool spans, embeddings) is *skipped*, not
quarantined: traces mix instrumentations. An LLM span without message content (instrumentations drop
content unless told otherwise) is quarantined as `content_not_captured`, with how to turn capture on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from drift_pipeline.traffic.ingest.fields import RecordError
from drift_pipeline.traffic.ingest.mapping import AttributeMapping
from drift_pipeline.traffic.ingest.messages import chat_message, chat_messages, parse_json, text_of, tool_call
from drift_pipeline.traffic.records import normalise_model

NOT_MODEL_CALLS = {"embeddings", "execute_tool", "invoke_agent", "create_agent", "retrieval"}
CAPTURE_HINT = (
    "the span has no message content: enable content capture in the instrumentation "
    "(OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true, TRACELOOP_TRACE_CONTENT=true, "
    "or OpenInference's hide_inputs/hide_outputs off)"
)


@dataclass
class SpanView:
    """What a span carries, as plain Python values (from OTLP JSON or protobuf alike)."""

    name: str
    trace_id: str
    span_id: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    resource: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    status_code: int = 0  # 0 unset, 1 ok, 2 error
    status_message: str = ""


def span_style(span: SpanView) -> str | None:
    """The attribute style of an LLM span, or None when the span is not a model call."""
    attrs = span.attributes
    kind = attrs.get("openinference.span.kind")
    if kind is not None:
        return "openinference" if str(kind).upper() == "LLM" else None
    if str(attrs.get("gen_ai.operation.name", "")).lower() in NOT_MODEL_CALLS:
        return None
    if str(attrs.get("llm.request.type", "")).lower() in ("embedding", "rerank"):
        return None
    if any(k.startswith(("gen_ai.prompt.", "gen_ai.completion.")) for k in attrs):
        return "openllmetry"
    if any(k.startswith("llm.input_messages.") or k == "llm.model_name" for k in attrs):
        return "openinference"
    if any(k.startswith("gen_ai.") for k in attrs) or any(n.startswith("gen_ai.") for n, _ in span.events):
        return "genai"
    return None


def span_record(span: SpanView, style: str, mapping: AttributeMapping) -> dict[str, Any]:
    """A raw record (our JSONL schema) from one LLM span; `RecordError` when it cannot be one."""
    attrs = span.attributes
    if style == "openinference":
        messages, output, calls, finish = _openinference(attrs)
        requested = attrs.get("llm.model_name")
        served = attrs.get("llm.model_name")
    else:
        if style == "openllmetry":
            messages, output, calls, finish = _openllmetry(attrs)
        else:
            messages, output, calls, finish = _genai(span)
        requested = attrs.get("gen_ai.request.model")
        served = attrs.get("gen_ai.response.model") or requested
    if not (requested or served):
        raise RecordError("missing_model", "the span names no model (gen_ai.request.model / llm.model_name)")
    error = _error(span)
    if not messages:
        raise RecordError("content_not_captured", CAPTURE_HINT)
    if output is None and not calls and not error:
        raise RecordError("content_not_captured", CAPTURE_HINT.replace("message content", "response content"))
    record: dict[str, Any] = {
        **mapping.scope(attrs, span.resource),
        "timestamp": _iso(span.start_ns),
        "prompt_id": f"{span.trace_id}:{span.span_id}",
        "messages": messages,
        "response_text": output or "",
        "tool_calls": calls or None,
        "tools": _tools(attrs),
        "finish_reason": finish or "",
        "requested_model": str(requested or served),
        "served_model": str(served or requested),
        "silent_reroute": _rerouted(str(requested or ""), str(served or "")),
        "prompt_tokens": _first(
            attrs, "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt"
        ),
        "completion_tokens": _first(
            attrs, "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens", "llm.token_count.completion"
        ),
        "latency_ms": (span.end_ns - span.start_ns) / 1e6 if span.end_ns >= span.start_ns > 0 else None,
        "system_fingerprint": attrs.get("gen_ai.openai.response.system_fingerprint") or "",
        "error": error,
    }
    return record


def _genai(span: SpanView) -> tuple[list[dict[str, Any]], str | None, list[dict[str, Any]], str]:
    attrs = span.attributes
    messages = [m for m in _system_instructions(attrs.get("gen_ai.system_instructions"))]
    messages += chat_messages(attrs.get("gen_ai.input.messages")) if "gen_ai.input.messages" in attrs else []
    outputs = parse_json(attrs.get("gen_ai.output.messages"))
    if isinstance(outputs, list) and outputs:
        first = chat_message(outputs[0]) or {}
        finish = outputs[0].get("finish_reason", "") if isinstance(outputs[0], Mapping) else ""
        return messages, text_of(first.get("content")), first.get("tool_calls", []), str(finish or "")
    event_messages, output, calls, finish = _genai_events(span.events)
    return messages + event_messages, output, calls, finish


def _genai_events(events: list[tuple[str, dict[str, Any]]]) -> tuple[list[dict[str, Any]], str | None, list, str]:
    """The event-based form; a streamed choice split over several events is joined in order."""
    messages: list[dict[str, Any]] = []
    chunks: list[str] = []
    calls: list[dict[str, Any]] = []
    finish = ""
    roles = {
        "gen_ai.system.message": "system",
        "gen_ai.user.message": "user",
        "gen_ai.assistant.message": "assistant",
        "gen_ai.tool.message": "tool",
    }
    for name, attrs in events:
        body = _event_body(attrs)
        if name in roles:
            message = chat_message({"role": roles[name], **body}) if isinstance(body, Mapping) else None
            messages.append(message or {"role": roles[name], "content": str(body or "")})
        elif name == "gen_ai.choice" and int(attrs.get("index", body.get("index", 0)) or 0) == 0:
            message = body.get("message", body)
            chunks.append(text_of(message.get("content")) if isinstance(message, Mapping) else "")
            for call in (message.get("tool_calls") or []) if isinstance(message, Mapping) else []:
                fn = call.get("function", call) if isinstance(call, Mapping) else {}
                calls.append(tool_call(fn.get("name"), fn.get("arguments"), call.get("id")))
            finish = str(body.get("finish_reason") or attrs.get("finish_reason") or finish)
        elif name == "gen_ai.content.prompt":
            messages += chat_messages(attrs.get("gen_ai.prompt"))
        elif name == "gen_ai.content.completion":
            completion = chat_messages(attrs.get("gen_ai.completion"))
            chunks.extend(text_of(m.get("content")) for m in completion[:1])
    return messages, ("".join(chunks) if chunks else None), calls, finish


def _event_body(attrs: dict[str, Any]) -> dict[str, Any]:
    body = parse_json(attrs.get("gen_ai.event.content") or attrs.get("body"))
    if isinstance(body, Mapping):
        return dict(body)
    return {k: parse_json(v) for k, v in attrs.items() if k not in ("gen_ai.system", "gen_ai.provider.name")}


def _openinference(attrs: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None, list, str]:
    inputs = _indexed(attrs, "llm.input_messages")
    outputs = _indexed(attrs, "llm.output_messages")
    messages = [_oi_message(m) for _, m in sorted(inputs.items())]
    if not outputs:
        return messages, None, [], ""
    first = _oi_message(outputs[min(outputs)])
    return messages, text_of(first["content"]), first.get("tool_calls", []), ""


def _oi_message(fields: dict[str, Any]) -> dict[str, Any]:
    content: Any = fields.get("message.content")
    if content is None:
        parts = _indexed(fields, "message.contents")
        content = "".join(str(p.get("message_content.text", "")) for _, p in sorted(parts.items()))
    message: dict[str, Any] = {"role": str(fields.get("message.role", "user")), "content": content or ""}
    calls = _indexed(fields, "message.tool_calls")
    if calls:
        message["tool_calls"] = [
            tool_call(c.get("tool_call.function.name"), c.get("tool_call.function.arguments"), c.get("tool_call.id"))
            for _, c in sorted(calls.items())
        ]
    return message


def _openllmetry(attrs: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None, list, str]:
    prompts = _indexed(attrs, "gen_ai.prompt")
    completions = _indexed(attrs, "gen_ai.completion")
    messages = [
        {"role": str(p.get("role", "user")), "content": p.get("content", "")} for _, p in sorted(prompts.items())
    ]
    if not completions:
        return messages, None, [], ""
    first = completions[min(completions)]
    calls = [
        tool_call(c.get("name"), c.get("arguments"), c.get("id"))
        for _, c in sorted(_indexed(first, "tool_calls").items())
    ]
    content = first.get("content")
    return messages, (content if isinstance(content, str) else None), calls, str(first.get("finish_reason", ""))


def _indexed(attrs: Mapping[str, Any], prefix: str) -> dict[int, dict[str, Any]]:
    """Flattened `prefix.N.rest` attributes grouped by N: {N: {rest: value}}."""
    out: dict[int, dict[str, Any]] = {}
    for key, value in attrs.items():
        if not key.startswith(prefix + "."):
            continue
        index, _, rest = key[len(prefix) + 1 :].partition(".")
        if index.isdigit() and rest:
            out.setdefault(int(index), {})[rest] = value
    return out


def _system_instructions(value: Any) -> list[dict[str, Any]]:
    value = parse_json(value)
    if not value:
        return []
    if isinstance(value, str):
        return [{"role": "system", "content": value}]
    message = chat_message({"role": "system", "parts": value}) if isinstance(value, list) else None
    return [message] if message else []


def _tools(attrs: Mapping[str, Any]) -> Any:
    tools = parse_json(attrs.get("gen_ai.tool.definitions"))
    if tools:
        return tools
    schemas = _indexed(attrs, "llm.tools")
    return [parse_json(t.get("tool.json_schema")) for _, t in sorted(schemas.items())] or None


def _error(span: SpanView) -> str:
    if span.status_code == 2:
        return span.status_message or str(span.attributes.get("error.type") or "error")
    return ""


def _rerouted(requested: str, served: str) -> bool:
    """Served another model than requested; an alias resolved to its dated version is not a re-route."""
    req, got = normalise_model(requested), normalise_model(served)
    return bool(req and got) and req != got and not got.startswith(req + "-")


def _first(attrs: Mapping[str, Any], *keys: str) -> Any:
    return next((attrs[k] for k in keys if attrs.get(k) is not None), None)


def _iso(ns: int) -> str | None:
    if ns <= 0:
        return None
    try:
        return datetime.fromtimestamp(ns / 1e9, UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return str(ns)  # left to the record's timestamp check to quarantine with its reason
