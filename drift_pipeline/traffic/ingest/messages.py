"""Chat messages in the shapes other tools record them, to our `{"role", "content"}` list.

Shapes handled: OpenAI chat (`content` a string or a list of parts), OpenTelemetry GenAI (`parts` of type
text / tool_call / tool_call_response), LangChain's serialised messages (`lc` constructors, `type`/`data`).
Text parts are joined; other parts (images, files) are kept as parts so nothing is silently dropped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

_LANGCHAIN_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool", "function": "tool"}
_LANGCHAIN_CLASSES = {
    "HumanMessage": "user",
    "AIMessage": "assistant",
    "AIMessageChunk": "assistant",
    "SystemMessage": "system",
    "ToolMessage": "tool",
    "FunctionMessage": "tool",
    "ChatMessage": "user",
}


def parse_json(value: Any) -> Any:
    """A JSON string decoded; anything else as it is (attributes hold JSON as strings or structured values)."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def chat_message(message: Any) -> dict[str, Any] | None:
    """One message in any known shape as {"role", "content"[, "tool_calls"]}; None when not a message."""
    if isinstance(message, str):
        return {"role": "user", "content": message}
    if not isinstance(message, Mapping):
        return None
    if message.get("lc") is not None or ("kwargs" in message and "id" in message):
        return _langchain_constructor(message)
    if "data" in message and isinstance(message.get("type"), str) and "role" not in message:
        data = message["data"] if isinstance(message["data"], Mapping) else {}
        return _with_content(_LANGCHAIN_ROLES.get(message["type"], message["type"]), data)
    role = message.get("role") or _LANGCHAIN_ROLES.get(str(message.get("type", "")))
    if not isinstance(role, str):
        return None
    if "parts" in message:
        content, calls = parts_content(message.get("parts"))
        out: dict[str, Any] = {"role": role, "content": content}
        if calls:
            out["tool_calls"] = calls
        return out
    return _with_content(role, message)


def chat_messages(value: Any) -> list[dict[str, Any]]:
    """A list of messages (or one message, or a bare prompt string) as our message list."""
    value = parse_json(value)
    if isinstance(value, Mapping) and isinstance(value.get("messages"), list):
        value = value["messages"]
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], list):
        value = value[0]  # LangChain batches: [[message, ...]]
    items = value if isinstance(value, list) else [value]
    return [m for m in (chat_message(item) for item in items) if m is not None]


def parts_content(parts: Any) -> tuple[str | list[Any], list[dict[str, Any]]]:
    """OpenTelemetry GenAI parts: (text or remaining parts, tool calls in OpenAI's shape)."""
    texts: list[str] = []
    others: list[Any] = []
    calls: list[dict[str, Any]] = []
    for part in parts if isinstance(parts, list) else []:
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind == "text" and isinstance(part.get("content"), str):
            texts.append(part["content"])
        elif kind == "tool_call":
            calls.append(tool_call(part.get("name"), part.get("arguments"), part.get("id")))
        elif kind is not None:
            others.append(dict(part))
    if others:
        return [{"type": "text", "text": t} for t in texts] + others, calls
    return "".join(texts), calls


def tool_call(name: Any, arguments: Any, call_id: Any = None) -> dict[str, Any]:
    """A tool call in OpenAI's shape (arguments as a JSON string, as the tool dimensions expect)."""
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments if arguments is not None else {}, sort_keys=True)
    call: dict[str, Any] = {"type": "function", "function": {"name": str(name or ""), "arguments": arguments}}
    if call_id:
        call["id"] = str(call_id)
    return call


def text_of(content: Any) -> str:
    """The text of message content: a string, or the text parts of a list joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(p.get("text") or p.get("content") or "")
            for p in content
            if isinstance(p, Mapping) and p.get("type") in ("text", "output_text", None)
        )
    return ""


def _langchain_constructor(message: Mapping[str, Any]) -> dict[str, Any] | None:
    ident = message.get("id")
    cls = ident[-1] if isinstance(ident, list) and ident else ""
    kwargs = message.get("kwargs") if isinstance(message.get("kwargs"), Mapping) else {}
    role = _LANGCHAIN_CLASSES.get(str(cls)) or _LANGCHAIN_ROLES.get(str(kwargs.get("type", "")))
    return _with_content(role, kwargs) if role else None


def _with_content(role: str, source: Mapping[str, Any]) -> dict[str, Any]:
    content = source.get("content")
    if content is None and "text" in source:
        content = source.get("text")
    out: dict[str, Any] = {"role": role, "content": content if isinstance(content, str | list) else ""}
    calls = source.get("tool_calls") or (source.get("additional_kwargs") or {}).get("tool_calls")
    if isinstance(calls, list) and calls:
        out["tool_calls"] = [_openai_call(c) for c in calls if isinstance(c, Mapping)]
    return out


def _openai_call(call: Mapping[str, Any]) -> dict[str, Any]:
    fn = call.get("function") if isinstance(call.get("function"), Mapping) else call
    return tool_call(fn.get("name"), fn.get("arguments", fn.get("args")), call.get("id"))
