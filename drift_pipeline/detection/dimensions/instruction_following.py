"""Instruction-following fidelity: explicit constraints stated in the prompt are kept.

The prompt is parsed for constraints a machine can check (one-word answer, word/sentence/character
limits, JSON output, a fixed set of quoted answers, yes/no, bullet points, letter case, step-by-step).
A prompt without such a constraint does not count (None).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from drift_pipeline.detection.dimensions.base import Dimension, PairContext, Value, parse_json_text, word_count

Check = Callable[[str], bool]
_NUM = r"(\d+|one|two|three|four|five|six|seven|eight|nine|ten)"
_NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9}
_NUMBERS["ten"] = 10
_FLAGS = re.IGNORECASE


def _n(token: str) -> int:
    return int(token) if token.isdigit() else _NUMBERS[token.lower()]


def _sentences(text: str) -> int:
    return len([s for s in re.split(r"(?<=[.!?])\s+|\n+", text.strip()) if re.search(r"\w", s)])


def _one_word(text: str) -> bool:
    return word_count(text) <= 1


def _max_words(limit: int) -> Check:
    return lambda text: word_count(text) <= limit


def _max_sentences(limit: int) -> Check:
    return lambda text: _sentences(text) <= limit


def _max_chars(limit: int) -> Check:
    return lambda text: len(text.strip()) <= limit


def _is_json(text: str) -> bool:
    return parse_json_text(text)[0]


def _one_of(options: list[str]) -> Check:
    lowered = [o.lower() for o in options]
    return lambda text: any(o in text.lower() for o in lowered)


def _yes_no(text: str) -> bool:
    return bool(re.match(r"\W*(yes|no)\b", text, _FLAGS))


def _bullets(text: str) -> bool:
    return bool(re.search(r"^\s*(?:[-*+•]|\d+[.)])\s+\S", text, re.MULTILINE))


def _steps(text: str) -> bool:
    return _sentences(text) >= 2


_RULES: list[tuple[re.Pattern[str], Callable[[re.Match[str]], Check]]] = [
    (
        re.compile(r"\b(?:in|with|using) (?:a single|one|1|only one) word\b|\bone[- ]word (?:answer|response)", _FLAGS),
        lambda m: _one_word,
    ),
    (
        re.compile(
            rf"\b(?:in|under|within|at most|no more than|fewer than|less than|maximum(?: of)?) {_NUM} words?\b", _FLAGS
        ),
        lambda m: _max_words(_n(m.group(1))),
    ),
    (re.compile(rf"\b{_NUM} words? or (?:less|fewer)\b", _FLAGS), lambda m: _max_words(_n(m.group(1)))),
    (
        re.compile(
            rf"\b(?:in|at most|no more than|within|maximum(?: of)?) {_NUM} sentences?\b|\bin a single sentence\b",
            _FLAGS,
        ),
        lambda m: _max_sentences(_n(m.group(1)) if m.group(1) else 1),
    ),
    (
        re.compile(r"\b(?:under|at most|no more than|within|maximum(?: of)?) (\d+) characters\b", _FLAGS),
        lambda m: _max_chars(int(m.group(1))),
    ),
    (
        re.compile(
            r"\b(?:respond|answer|reply|output|return|format|give)\w*\b[^.?!\n]{0,40}?\bJSON\b|\bvalid JSON\b", _FLAGS
        ),
        lambda m: _is_json,
    ),
    (
        re.compile(r"\banswer\w*[^.?!\n]{0,30}?[\"“']([^\"”'\n]{1,30})[\"”'] or [\"“']([^\"”'\n]{1,30})[\"”']", _FLAGS),
        lambda m: _one_of([m.group(1), m.group(2)]),
    ),
    (
        re.compile(
            r"\b(?:answer|respond|reply)\w* (?:with )?(?:only )?(?:a )?yes or no\b|\byes/no (?:answer|question)", _FLAGS
        ),
        lambda m: _yes_no,
    ),
    (
        re.compile(r"\b(?:in|as|use|using) (?:a )?(?:bullet(?:ed)? (?:points?|list)|numbered list)\b", _FLAGS),
        lambda m: _bullets,
    ),
    (re.compile(r"\b(?:in )?all (?:caps|capital letters|uppercase)\b", _FLAGS), lambda m: lambda t: t == t.upper()),
    (re.compile(r"\b(?:in )?all lower ?case\b", _FLAGS), lambda m: lambda t: t == t.lower()),
    (
        re.compile(
            r"\b(?:think|reason|explain|work|go) (?:it )?(?:through )?step[- ]by[- ]step\b|\bshow your work\b", _FLAGS
        ),
        lambda m: _steps,
    ),
]


@functools.lru_cache(maxsize=4096)
def constraints(prompt: str) -> tuple[Check, ...]:
    """The checkable constraints stated in a prompt (cached: a workload repeats its templates)."""
    found: list[Check] = []
    for pattern, make in _RULES:
        match = pattern.search(prompt)
        if match:
            found.append(make(match))
    return tuple(found)


class InstructionFollowing(Dimension):
    name = "instruction_following"
    kind = "binary"
    order = 80
    applies_when = "the prompt states a checkable constraint"
    description = "all explicit, checkable constraints of the prompt are kept (only prompts that state one)"

    def value(self, text: str, tool_calls: list[dict[str, Any]] | None, pair: PairContext) -> Value:
        checks = constraints(pair.prompt)
        if not checks:
            return None
        return float(all(check(text) for check in checks))


DIMENSION = InstructionFollowing()
