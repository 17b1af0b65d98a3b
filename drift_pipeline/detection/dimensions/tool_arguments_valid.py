"""Tool-argument validity: every tool call names a declared tool and its arguments fit its JSON schema."""

from __future__ import annotations

from typing import Any

from drift_pipeline.detection.dimensions._tools import normalise_calls, tool_schemas
from drift_pipeline.detection.dimensions.base import Dimension, PairContext, Value
from drift_pipeline.detection.dimensions.schema_compliance import validator_for


class ToolArgumentsValid(Dimension):
    name = "tool_args_valid"
    kind = "binary"
    order = 41
    applies_when = "tools declared and the responses call some"
    description = "all tool calls of the response name a declared tool with schema-valid arguments"

    def value(self, text: str, tool_calls: list[dict[str, Any]] | None, pair: PairContext) -> Value:
        schemas = tool_schemas(pair.tools)
        calls = normalise_calls(tool_calls)
        if not schemas or not calls:
            return None  # no declared tools, or no call to judge on this side
        for name, args in calls:
            if name not in schemas or not isinstance(args, dict):
                return 0.0
            if not validator_for(schemas[name]).is_valid(args):
                return 0.0
        return 1.0


DIMENSION = ToolArgumentsValid()
