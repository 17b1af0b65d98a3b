"""LangSmith run exports (JSON lines of runs, as `client.list_runs` or the bulk export writes them).

Only runs with `run_type == "llm"` are model calls; chains, tools, retrievers and prompts are skipped.
Inputs are LangChain messages (serialised `lc` constructors, `{"type", "data"}` or role dicts) or
completion `prompts`; outputs are `generations` (chat or text). Tenant and agent come from
`extra.metadata` (keys configurable). Source: LangSmith Run schema (langsmith SDK `schemas.Run`, 0.3).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drift_pipeline.traffic.ingest.exports import Skip, as_object, duration_ms
from drift_pipeline.traffic.ingest.fields import RecordError
from drift_pipeline.traffic.ingest.mapping import AttributeMapping
from drift_pipeline.traffic.ingest.messages import chat_message, chat_messages, text_of


def langsmith_record(run: Mapping[str, Any], mapping: AttributeMapping) -> dict[str, Any]:
    """One LangSmith run as a raw record."""
    if str(run.get("run_type") or "") != "llm":
        raise Skip("not_an_llm_run")
    extra = as_object(run.get("extra"))
    params = as_object(extra.get("invocation_params"))
    metadata = as_object(extra.get("metadata")) or as_object(run.get("metadata"))
    outputs = as_object(run.get("outputs"))
    llm_output = as_object(outputs.get("llm_output"))
    model = (
        params.get("model") or params.get("model_name") or metadata.get("ls_model_name") or llm_output.get("model_name")
    )
    if not model:
        raise RecordError("missing_model", "the run names no model (invocation_params.model / ls_model_name)")
    messages = _inputs(as_object(run.get("inputs")))
    if not messages:
        raise RecordError("content_not_captured", "the run has no inputs (hidden or not captured)")
    text, calls, finish = _first_generation(outputs)
    usage = as_object(llm_output.get("token_usage")) or as_object(llm_output.get("usage"))
    return {
        **mapping.scope(metadata),
        "timestamp": run.get("start_time"),
        "prompt_id": f"{run.get('trace_id') or ''}:{run.get('id') or ''}",
        "messages": messages,
        "response_text": text,
        "tool_calls": calls or None,
        "finish_reason": finish,
        "requested_model": model,
        "served_model": llm_output.get("model_name") or model,
        "prompt_tokens": run.get("prompt_tokens") or usage.get("prompt_tokens"),
        "completion_tokens": run.get("completion_tokens") or usage.get("completion_tokens"),
        "latency_ms": duration_ms(run.get("start_time"), run.get("end_time")),
        "error": str(run.get("error") or ""),
    }


def _inputs(inputs: Mapping[str, Any]) -> list[dict[str, Any]]:
    if inputs.get("messages") is not None:
        return chat_messages(inputs["messages"])
    prompts = inputs.get("prompts") or inputs.get("prompt") or inputs.get("input")
    if isinstance(prompts, list):
        prompts = prompts[0] if prompts else None
    return [{"role": "user", "content": prompts}] if isinstance(prompts, str) and prompts else []


def _first_generation(outputs: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]], str]:
    generations = outputs.get("generations")
    while isinstance(generations, list) and generations and isinstance(generations[0], list):
        generations = generations[0]  # [[generation, ...]] per prompt
    if not (isinstance(generations, list) and generations and isinstance(generations[0], Mapping)):
        return "", [], ""
    first = generations[0]
    info = as_object(first.get("generation_info"))
    message = chat_message(first["message"]) if isinstance(first.get("message"), Mapping) else None
    text = first.get("text") if isinstance(first.get("text"), str) and first.get("text") else ""
    if message is not None:
        text = text or text_of(message.get("content"))
    return text, (message or {}).get("tool_calls", []), str(info.get("finish_reason") or "")
