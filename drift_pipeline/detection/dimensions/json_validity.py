"""JSON validity: the response parses as JSON, where the agent's contract expects JSON."""

from __future__ import annotations

from typing import Any

from drift_pipeline.detection.dimensions.base import Dimension, PairContext, Value, parse_json_text


def expects_json(pair: PairContext) -> bool:
    """The agent has a response schema or asked for a JSON response format."""
    if pair.response_schema is not None:
        return True
    fmt = pair.response_format or {}
    return str(fmt.get("type", "")).startswith("json")


class JsonValidity(Dimension):
    name = "json_valid"
    kind = "binary"
    order = 30
    applies_when = "a response schema or a JSON response_format"
    description = "the response parses as JSON (only where a schema or JSON response format is set)"

    def value(self, text: str, tool_calls: list[dict[str, Any]] | None, pair: PairContext) -> Value:
        if not expects_json(pair):
            return None
        return float(parse_json_text(text)[0])


DIMENSION = JsonValidity()
