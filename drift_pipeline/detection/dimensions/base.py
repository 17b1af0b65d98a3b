"""What a behavioural dimension is: per-pair values for the baseline and the candidate response."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    from drift_pipeline.detection.embeddings import Embedder

Kind = Literal["binary", "continuous", "similarity"]
Value = float | None


@dataclass(frozen=True)
class PairContext:
    """One prompt answered by the baseline and by the candidate, with the agent's contract."""

    pair_id: str
    prompt: str
    baseline_text: str
    candidate_text: str
    baseline_tool_calls: list[dict[str, Any]] | None = None
    candidate_tool_calls: list[dict[str, Any]] | None = None
    response_schema: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    response_format: dict[str, Any] | None = None
    reference: str | None = None  # the expected answer (LLMDrift ref_answer, a tenant's golden label)
    baseline_usage: dict[str, float] | None = None  # latency_ms, ttft_ms, prompt/completion tokens, cost_usd
    candidate_usage: dict[str, float] | None = None


@dataclass
class ScoringEnv:
    """Shared, expensive helpers the dimensions may use (the embedder), created lazily by the caller."""

    embedder: Embedder | None = None
    progress: bool = False
    extras: dict[str, Any] = field(default_factory=dict)


class Dimension:
    """Base class. Subclasses set the class attributes and implement `score` (or `value`, per response).

    `kind` decides the test: binary values (0/1) get McNemar, continuous ones Wilcoxon, similarity a
    comparison against the noise floor. `span` is the range of a bounded continuous value (its effect is
    judged in absolute terms, divided by the span); `None` means unbounded (judged as a relative change).
    A value of None means "does not apply to this pair": the pair is left out of that dimension's test.
    """

    name: ClassVar[str]
    kind: ClassVar[Kind]
    description: ClassVar[str]
    span: ClassVar[float | None] = None
    order: ClassVar[int] = 100
    # What a value of 1 (binary) or the value (continuous) means, in words for the report's summary
    # ("gives a decision: 98% -> 23%"); the name is used when empty.
    phrase: ClassVar[str] = ""
    # When the dimension applies: the report says so for a dimension that applied to no pair.
    applies_when: ClassVar[str] = "always"
    # Whether `score` embeds texts: those run last, while the other dimensions overlap the embedding.
    embeds: ClassVar[bool] = False

    def score(self, pairs: Sequence[PairContext], env: ScoringEnv) -> list[tuple[Value, Value]]:
        """(baseline value, candidate value) per pair."""
        out: list[tuple[Value, Value]] = []
        for pair in pairs:
            b = self.value(pair.baseline_text, pair.baseline_tool_calls, pair)
            c = self.value(pair.candidate_text, pair.candidate_tool_calls, pair)
            out.append((b, c) if b is not None and c is not None else (None, None))
        return out

    def value(self, text: str, tool_calls: list[dict[str, Any]] | None, pair: PairContext) -> Value:
        """The value of one response; override this for dimensions that look at one response at a time."""
        raise NotImplementedError


FENCE = re.compile(r"^\s*```[\w-]*\s*\n(.*?)\n?\s*```\s*$", re.DOTALL)
WORD = re.compile(r"[\w'’-]+")


def parse_json_text(text: str) -> tuple[bool, Any]:
    """Parse a response as JSON, accepting one surrounding code fence (```json ... ```)."""
    match = FENCE.match(text)
    body = match.group(1) if match else text
    try:
        return True, json.loads(body)
    except (TypeError, ValueError):
        return False, None


@functools.lru_cache(maxsize=65536)
def word_count(text: str) -> int:
    """Words in `text` (cached per text: length and instruction following both count them)."""
    return len(WORD.findall(text))
