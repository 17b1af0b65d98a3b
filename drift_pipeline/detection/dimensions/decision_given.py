"""Decision given: the response gives the decision its prompt asks for (an option, yes/no, a label, ...)."""

from __future__ import annotations

from collections.abc import Sequence

from drift_pipeline.detection.decisions import decision_spec, extract
from drift_pipeline.detection.dimensions.base import Dimension, PairContext, ScoringEnv, Value


class DecisionGiven(Dimension):
    name = "decision_given"
    kind = "binary"
    order = 14
    phrase = "gives the decision asked for"
    applies_when = "the prompt asks for a checkable decision (options, yes/no, a stated label set, a number, a tool)"
    description = "the response gives the decision the prompt asks for (decisions.py); prompts with one only"

    def score(self, pairs: Sequence[PairContext], env: ScoringEnv) -> list[tuple[Value, Value]]:
        out: list[tuple[Value, Value]] = []
        for pair in pairs:
            spec = decision_spec(pair)
            if spec is None:
                out.append((None, None))
                continue
            base = extract(spec, pair.baseline_text, pair.baseline_tool_calls)
            cand = extract(spec, pair.candidate_text, pair.candidate_tool_calls)
            out.append((float(base is not None), float(cand is not None)))
        return out


DIMENSION = DecisionGiven()
