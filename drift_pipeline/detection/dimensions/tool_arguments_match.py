"""Tool-argument agreement: where both call the same tools, the candidate passes the baseline's arguments."""

from __future__ import annotations

from collections.abc import Sequence

from drift_pipeline.detection.dimensions._tools import normalise_calls
from drift_pipeline.detection.dimensions.base import Dimension, PairContext, ScoringEnv, Value


class ToolArgumentsMatch(Dimension):
    name = "tool_args_match"
    kind = "binary"
    order = 42
    applies_when = "both responses call the same tools"
    description = "same tools called with equal (parsed) arguments as the baseline; baseline = 1"

    def score(self, pairs: Sequence[PairContext], env: ScoringEnv) -> list[tuple[Value, Value]]:
        out: list[tuple[Value, Value]] = []
        for pair in pairs:
            base = normalise_calls(pair.baseline_tool_calls)
            cand = normalise_calls(pair.candidate_tool_calls)
            if not base or [n for n, _ in base] != [n for n, _ in cand]:
                out.append((None, None))  # a different tool choice is tool_choice's business
                continue
            out.append((1.0, float(all(a == b for (_, a), (_, b) in zip(base, cand, strict=True)))))
        return out


DIMENSION = ToolArgumentsMatch()
