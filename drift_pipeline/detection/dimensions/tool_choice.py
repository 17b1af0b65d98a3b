"""Tool choice: the candidate calls the same tools as the baseline (the baseline is the reference)."""

from __future__ import annotations

from collections.abc import Sequence

from drift_pipeline.detection.dimensions._tools import normalise_calls, uses_tools
from drift_pipeline.detection.dimensions.base import Dimension, PairContext, ScoringEnv, Value


class ToolChoice(Dimension):
    name = "tool_choice"
    kind = "binary"
    order = 40
    applies_when = "tools declared or called"
    description = "the candidate calls the same tools (as a multiset) as the baseline; baseline = 1"

    def score(self, pairs: Sequence[PairContext], env: ScoringEnv) -> list[tuple[Value, Value]]:
        out: list[tuple[Value, Value]] = []
        for pair in pairs:
            if not uses_tools(pair):
                out.append((None, None))
                continue
            base = sorted(n for n, _ in normalise_calls(pair.baseline_tool_calls))
            cand = sorted(n for n, _ in normalise_calls(pair.candidate_tool_calls))
            out.append((1.0, float(base == cand)))
        return out


DIMENSION = ToolChoice()
