"""Reasoning structure: visible steps and chain-of-thought markers."""

from __future__ import annotations

import functools
import re
from typing import Any

from drift_pipeline.detection.dimensions.base import Dimension, PairContext, Value

_STEP_LINE = re.compile(r"^\s*(?:\d+[.)]|step\s+\d+\b|[-*+]\s)", re.IGNORECASE | re.MULTILINE)
_MARKERS = re.compile(
    r"\b(?:step\s+\d+|first(?:ly)?|second(?:ly)?|third(?:ly)?|next|then|finally|therefore|thus|hence|"
    r"consequently|because|since|so that|it follows|let's think|let me think|we (?:can|need to|know)|"
    r"in conclusion|to summari[sz]e)\b",
    re.IGNORECASE,
)


@functools.lru_cache(maxsize=65536)
def reasoning_score(text: str) -> int:
    """Number of step lines plus chain-of-thought markers."""
    return len(_STEP_LINE.findall(text)) + len(_MARKERS.findall(text))


class Reasoning(Dimension):
    name = "reasoning"
    kind = "continuous"
    order = 50
    description = "reasoning structure: step lines plus chain-of-thought markers (therefore, first, ...)"

    def value(self, text: str, tool_calls: list[dict[str, Any]] | None, pair: PairContext) -> Value:
        return float(reasoning_score(text))


DIMENSION = Reasoning()
