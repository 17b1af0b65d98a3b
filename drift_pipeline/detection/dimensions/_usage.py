"""Latency and usage dimensions: one field of the replay outcome / captured record on both sides."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

from drift_pipeline.detection.dimensions.base import Dimension, PairContext, ScoringEnv, Value

USAGE_FIELDS = ("latency_ms", "ttft_ms", "prompt_tokens", "completion_tokens", "cost_usd")


def usage_value(usage: dict[str, float] | None, field: str) -> Value:
    """The field as a float, or None when missing, not a number, negative or infinite (never a zero)."""
    raw = (usage or {}).get(field)
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value >= 0 else None


class UsageDimension(Dimension):
    """A paired, unbounded continuous dimension (relative change) on one usage field; both sides needed."""

    kind = "continuous"
    field: ClassVar[str]

    def score(self, pairs: Sequence[PairContext], env: ScoringEnv) -> list[tuple[Value, Value]]:
        out: list[tuple[Value, Value]] = []
        for pair in pairs:
            b, c = usage_value(pair.baseline_usage, self.field), usage_value(pair.candidate_usage, self.field)
            out.append((b, c) if b is not None and c is not None else (None, None))
        return out
