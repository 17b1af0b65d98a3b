"""Normalise OpenAI-style tool calls and tool specs (nested `function` or flat) to plain tuples."""

from __future__ import annotations

import contextlib
import json
from typing import Any


def normalise_calls(calls: list[dict[str, Any]] | None) -> list[tuple[str, Any]]:
    """[(tool name, parsed arguments)]; arguments that are not valid JSON stay a raw string."""
    out: list[tuple[str, Any]] = []
    for call in calls or []:
        fn = call.get("function", call) if isinstance(call, dict) else {}
        args = fn.get("arguments", fn.get("args", {}))
        if isinstance(args, str):
            with contextlib.suppress(ValueError):
                args = json.loads(args) if args.strip() else {}
        out.append((str(fn.get("name", "")), args))
    return out


def tool_schemas(tools: list[dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """Tool name -> JSON schema of its parameters."""
    out: dict[str, dict[str, Any]] = {}
    for tool in tools or []:
        fn = tool.get("function", tool) if isinstance(tool, dict) else {}
        if fn.get("name"):
            out[str(fn["name"])] = fn.get("parameters") or {"type": "object"}
    return out


def uses_tools(pair: Any) -> bool:
    return bool(pair.tools) or bool(pair.baseline_tool_calls) or bool(pair.candidate_tool_calls)
