"""Non-answer: the response gives no usable answer (deflects, holds no view, only disclaims) without declining.

Distinct from refusal: a decline ("I can't help with that") is a refusal; "as an AI I have no personal
views", "it depends on your values", "consult a professional" are non-answers. A response that gives the
decision its prompt asks for (decisions.py) is an answer, whatever it adds; an empty one is a non-answer;
the rest goes to the embedding classifier of `detection/non_answer.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from drift_pipeline.detection.decisions import DecisionSpec, decision_spec, extract
from drift_pipeline.detection.dimensions.base import Dimension, PairContext, ScoringEnv, Value
from drift_pipeline.detection.dimensions.refusal import is_refusal

if TYPE_CHECKING:
    from drift_pipeline.detection.embeddings import Embedder

Response = tuple[str, list[dict[str, Any]] | None, DecisionSpec | None]  # text, tool calls, the prompt's decision


def non_answers(responses: Sequence[Response], embedder: Embedder | None) -> list[float]:
    """1.0 for each response that gives no usable answer (and is not a refusal), else 0.0."""
    values: list[float | None] = []
    pending: dict[str, list[int]] = {}  # text -> the positions it fills (each distinct text embedded once)
    for text, calls, spec in responses:
        if calls or (spec is not None and extract(spec, text, calls) is not None) or is_refusal(text):
            values.append(0.0)  # acted, decided, or declined (the refusal dimension counts declines)
        elif not text.strip():
            values.append(1.0)
        else:
            pending.setdefault(text, []).append(len(values))
            values.append(None)
    if pending:
        from drift_pipeline.detection.non_answer import THRESHOLD, non_answer_probability

        if embedder is None:
            from drift_pipeline.detection.embeddings import shared

            embedder = shared()
        texts = list(pending)
        for text, p in zip(texts, non_answer_probability(texts, embedder), strict=True):
            for position in pending[text]:
                values[position] = float(p >= THRESHOLD)
    return [float(v) for v in values]  # type: ignore[arg-type]


class NonAnswer(Dimension):
    name = "non_answer"
    kind = "binary"
    order = 12
    embeds = True
    phrase = "gives no usable answer"
    description = "no usable answer without a decline: deflection, no personal view, disclaimer only (classifier)"

    def score(self, pairs: Sequence[PairContext], env: ScoringEnv) -> list[tuple[Value, Value]]:
        responses: list[Response] = []
        for pair in pairs:
            spec = decision_spec(pair)
            responses.append((pair.baseline_text, pair.baseline_tool_calls, spec))
            responses.append((pair.candidate_text, pair.candidate_tool_calls, spec))
        if env.embedder is None:
            from drift_pipeline.detection.embeddings import shared

            env.embedder = shared()
        values = non_answers(responses, env.embedder)
        return [(values[2 * i], values[2 * i + 1]) for i in range(len(pairs))]


DIMENSION = NonAnswer()
