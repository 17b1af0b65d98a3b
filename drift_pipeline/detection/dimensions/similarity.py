"""Semantic similarity of the candidate response to the paired baseline response (embedding cosine)."""

from __future__ import annotations

from collections.abc import Sequence

from drift_pipeline.detection.dimensions.base import Dimension, PairContext, ScoringEnv, Value


class Similarity(Dimension):
    name = "similarity"
    kind = "similarity"
    span = 1.0
    order = 0
    embeds = True
    description = "cosine similarity of the two responses (the embedding backend); 1.0 when identical"

    def score(self, pairs: Sequence[PairContext], env: ScoringEnv) -> list[tuple[Value, Value]]:
        if env.embedder is None:
            from drift_pipeline.detection.embeddings import from_settings

            env.embedder = from_settings()
        sims = env.embedder.pair_similarity(
            [p.baseline_text for p in pairs], [p.candidate_text for p in pairs], progress=env.progress
        )
        # The baseline compared with itself is 1.0: the per-pair table keeps the same two-sided shape.
        return [(1.0, float(s)) for s in sims]


DIMENSION = Similarity()
