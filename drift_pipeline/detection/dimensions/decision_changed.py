"""Decision changed: the candidate's decision differs from the baseline's (the LLMDrift "mismatch").

In agent workloads a flipped decision is the incident, whatever the prose around it. The baseline is the
reference (value 0); the candidate scores 1 when its decision differs, including when it gives none.
"""

from __future__ import annotations

from collections.abc import Sequence

from drift_pipeline.detection.decisions import decision_spec, extract
from drift_pipeline.detection.dimensions.base import Dimension, PairContext, ScoringEnv, Value


class DecisionChanged(Dimension):
    name = "decision_changed"
    kind = "binary"
    order = 16
    phrase = "decision differs from the baseline's"
    applies_when = "the prompt asks for a checkable decision and the baseline response gives one"
    description = "the candidate's extracted decision differs from the baseline's (none counts as different)"

    def score(self, pairs: Sequence[PairContext], env: ScoringEnv) -> list[tuple[Value, Value]]:
        out: list[tuple[Value, Value]] = []
        for pair in pairs:
            spec = decision_spec(pair)
            base = extract(spec, pair.baseline_text, pair.baseline_tool_calls) if spec else None
            if spec is None or base is None:
                out.append((None, None))  # nothing to compare the candidate's decision with
                continue
            cand = extract(spec, pair.candidate_text, pair.candidate_tool_calls)
            out.append((0.0, float(cand != base)))
        return out


DIMENSION = DecisionChanged()
