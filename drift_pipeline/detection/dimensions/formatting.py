"""Formatting: code fences and markdown structure (headings, lists, tables, emphasis, quotes)."""

from __future__ import annotations

import functools
import re
from typing import Any

from drift_pipeline.detection.dimensions.base import Dimension, PairContext, Value

_ELEMENTS = [
    re.compile(r"^\s*```", re.MULTILINE),  # each fence line counts
    re.compile(r"^\s{0,3}#{1,6}\s+\S", re.MULTILINE),
    re.compile(r"^\s*[-*+]\s+\S", re.MULTILINE),
    re.compile(r"^\s*\d+[.)]\s+\S", re.MULTILINE),
    re.compile(r"^\s*\|.*\|\s*$", re.MULTILINE),
    re.compile(r"^\s*>\s", re.MULTILINE),
    re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__"),
    re.compile(r"(?<!`)`[^`\n]+`(?!`)"),
]


@functools.lru_cache(maxsize=65536)
def markdown_elements(text: str) -> int:
    """Markdown elements in `text` (cached per text: baselines and replays repeat responses)."""
    return sum(len(p.findall(text)) for p in _ELEMENTS)


class Formatting(Dimension):
    name = "formatting"
    kind = "continuous"
    order = 60
    description = "markdown elements: code fences, headings, list items, table rows, emphasis, inline code"

    def value(self, text: str, tool_calls: list[dict[str, Any]] | None, pair: PairContext) -> Value:
        return float(markdown_elements(text))


DIMENSION = Formatting()
