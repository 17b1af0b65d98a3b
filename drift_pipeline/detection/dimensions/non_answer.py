"""Non-answer: the response gives no usable answer (deflects, holds no view, only disclaims) without declining.

Distinct from refusal: a decline ("I can't help with that") is a refusal; "as an AI I have no personal
views", "it depends on your values", "consult a professional" are non-answers. A response that gives the
decision its prompt asks for (decisions.py) is an answer, whatever it adds; an empty one is a non-answer;
the rest goes to the embedding classifier of `detection/non_answer.py`.
"""

from __future__ import annotations

from collections.abc import Sequence

from drift_pipeline.detection.decisions import decision_spec, extract
from drift_pipeline.detection.dimensions.base import Dimension, PairContext, ScoringEnv, Value
from drift_pipeline.detection.dimensions.refusal import is_refusal


class NonAnswer(Dimension):
    name = "non_answer"
    kind = "binary"
    order = 12
    phrase = "gives no usable answer"
    description = "no usable answer without a decline: deflection, no personal view, disclaimer only (classifier)"

    def score(self, pairs: Sequence[PairContext], env: ScoringEnv) -> list[tuple[Value, Value]]:
        values: dict[tuple[str, int], float] = {}
        pending: dict[str, list[tuple[str, int]]] = {}  # text -> the (pair, side) slots it fills
        for pair in pairs:
            spec = decision_spec(pair)
            sides = ((pair.baseline_text, pair.baseline_tool_calls), (pair.candidate_text, pair.candidate_tool_calls))
            for side, (text, calls) in enumerate(sides):
                slot = (pair.pair_id, side)
                if calls or (spec is not None and extract(spec, text, calls) is not None) or is_refusal(text):
                    values[slot] = 0.0  # acted, decided, or declined (the refusal dimension counts declines)
                elif not text.strip():
                    values[slot] = 1.0
                else:
                    pending.setdefault(text, []).append(slot)
        if pending:
            from drift_pipeline.detection.non_answer import THRESHOLD, non_answer_probability

            if env.embedder is None:
                from drift_pipeline.detection.embeddings import shared

                env.embedder = shared()
            texts = list(pending)
            for text, p in zip(texts, non_answer_probability(texts, env.embedder), strict=True):
                for slot in pending[text]:
                    values[slot] = float(p >= THRESHOLD)
        return [(values[(p.pair_id, 0)], values[(p.pair_id, 1)]) for p in pairs]


DIMENSION = NonAnswer()
