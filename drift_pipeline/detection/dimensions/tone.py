"""Tone: sentiment of the response with the VADER lexicon (shipped in the vaderSentiment package)."""

from __future__ import annotations

import functools
from typing import Any

from drift_pipeline.detection.dimensions.base import Dimension, PairContext, Value


@functools.cache
def _analyzer() -> Any:
    from drift_pipeline.detection.dimensions._vader import FastSentimentIntensityAnalyzer

    return FastSentimentIntensityAnalyzer()


@functools.lru_cache(maxsize=65536)
def compound(text: str) -> float:
    """VADER compound score in [-1, 1]; cached because identical responses are frequent."""
    # VADER's cost grows with length and its score saturates on long texts: the opening carries the tone.
    return float(_analyzer().polarity_scores(text[:2000])["compound"])


class Tone(Dimension):
    name = "tone"
    kind = "continuous"
    span = 2.0
    order = 70
    applies_when = "non-empty responses"
    description = "sentiment (VADER compound, -1 negative .. +1 positive)"

    def value(self, text: str, tool_calls: list[dict[str, Any]] | None, pair: PairContext) -> Value:
        if not text.strip():
            return None
        return compound(text)


DIMENSION = Tone()
