"""Output length in words."""

from __future__ import annotations

from typing import Any

from drift_pipeline.detection.dimensions.base import Dimension, PairContext, Value, word_count


class Length(Dimension):
    name = "length"
    kind = "continuous"
    order = 20
    description = "response length in words"

    def value(self, text: str, tool_calls: list[dict[str, Any]] | None, pair: PairContext) -> Value:
        return float(word_count(text))


DIMENSION = Length()
