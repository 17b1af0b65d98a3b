"""Decision extraction: the answer a prompt asks for, when the prompt makes it checkable.

`decision_spec(pair)` reads what kind of decision the prompt (or the agent's contract) asks for: an option
letter among listed options, yes/no (also "[Yes]"/"[No]" labels and true/false), a label from a set the
prompt states, a number (or a `\\boxed{}` value), the tool an agent calls, or a JSON field named like a
decision. `extract(spec, text, tool_calls)` returns that decision from one response, normalised so that two
responses' decisions compare with `==`, or None when the response gives none. A prompt without a
checkable decision has no spec: the decision dimensions then say "not applicable", never "no change".
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, Literal

from drift_pipeline.detection.dimensions._tools import normalise_calls
from drift_pipeline.detection.dimensions.base import PairContext, parse_json_text

DecisionKind = Literal["option", "yes_no", "label", "number", "tool", "json_field"]
_I = re.IGNORECASE
# JSON fields that carry an agent's decision when its response schema declares one of them.
DECISION_FIELDS = ("decision", "label", "answer", "choice", "verdict", "category", "classification", "action")


@dataclass(frozen=True)
class DecisionSpec:
    """What decision a prompt asks for; `choices` are the option letters, the labels, or empty."""

    kind: DecisionKind
    choices: tuple[str, ...] = ()
    option_texts: tuple[str, ...] = ()
    field: str = ""


# --- reading the prompt -----------------------------------------------------------------------------------

# "(A) text", "A. text", "A) text", "A: text" at the start of a line or after whitespace/punctuation.
_OPTION = re.compile(r"(?:^|(?<=[\s:;,]))\(?([A-J])[.):]\)?\s+([^\n]*?)(?=\s+\(?[A-J][.):]\)?\s|\n|$)", re.MULTILINE)
_OPTION_PAREN = re.compile(r"\(([A-J])\)\s*([^\n(]*?)(?=\s*\([A-J]\)|\n|$)", re.MULTILINE)
_YES_NO_ASK = re.compile(
    r"\[yes\]\W+or\W+\[no\]|\byes or no\b|\byes/no\b|\b(?:answer|respond|reply)\w*[^.?!\n]{0,20}\b(?:yes|no)\b"
    r"[^.?!\n]{0,6}\bor\b[^.?!\n]{0,6}\b(?:no|yes)\b|\btrue or false\b|\btrue/false\b",
    _I,
)
_TRUE_FALSE = re.compile(r"\btrue or false\b|\btrue/false\b", _I)
_LABEL_ASK = re.compile(
    r"\b(?:one of(?: the following)?(?: labels| categories| words)?|choose (?:from|between|among)|"
    r"(?:classify|label|categori[sz]e|rate)\b[^.?!\n]{0,60}?\b(?:as|into)(?: either| one of)?|"
    r"(?:answer|respond|reply) with(?: either| only| exactly)?(?: one of)?)\s*:?\s*"
    r"((?:[\"'“]?[\w][\w -]{0,24}[\"'”]?\s*(?:,|/|\bor\b|,\s*or\b)\s*)+[\"'“]?[\w][\w -]{0,24}[\"'”]?)",
    _I,
)
_NUMBER_ASK = re.compile(
    r"\\boxed|\bhow (?:many|much)\b|\b(?:numeric(?:al)?|integer) (?:answer|value)\b|\banswer (?:with|as) a number\b|"
    r"\bwhat is (?:the )?(?:value|sum|product|result|total)\b|\bwhat is -?\d[\d\s+*/^().-]*[+*/^-]\s*\d",
    _I,
)


def decision_spec(pair: PairContext) -> DecisionSpec | None:
    """The checkable decision of this pair's prompt and contract, or None when there is none."""
    if pair.tools or pair.baseline_tool_calls or pair.candidate_tool_calls:
        return DecisionSpec("tool")
    field = _schema_field(pair.response_schema) or _schema_field(_format_schema(pair.response_format))
    if field:
        return DecisionSpec("json_field", field=field)
    return prompt_spec(pair.prompt)


@functools.lru_cache(maxsize=4096)
def prompt_spec(prompt: str) -> DecisionSpec | None:
    """The decision a prompt's text asks for (cached: a workload repeats its templates)."""
    options = _options(prompt)
    if options:
        return DecisionSpec("option", tuple(options), tuple(options.values()))
    if _YES_NO_ASK.search(prompt):
        return DecisionSpec("yes_no", ("true", "false") if _TRUE_FALSE.search(prompt) else ("yes", "no"))
    labels = _labels(prompt)
    if labels:
        return DecisionSpec("label", labels)
    if _NUMBER_ASK.search(prompt):
        return DecisionSpec("number")
    return None


def _options(prompt: str) -> dict[str, str]:
    """Letter -> option text, when the prompt lists at least two options lettered A, B, ... in order."""
    for pattern in (_OPTION_PAREN, _OPTION):
        found: dict[str, str] = {}
        for letter, text in pattern.findall(prompt):
            letter = letter.upper()
            if letter not in found and letter == chr(ord("A") + len(found)):
                found[letter] = text.strip().rstrip(",;").strip()
        if len(found) >= 2:
            return found
    return {}


def _labels(prompt: str) -> tuple[str, ...]:
    match = _LABEL_ASK.search(prompt)
    if not match:
        return ()
    parts = re.split(r"\s*(?:,\s*or\b|,|/|\bor\b)\s*", match.group(1), flags=_I)
    labels = tuple(dict.fromkeys(p.strip(" \"'“”").lower() for p in parts if p.strip(" \"'“”")))
    return labels if 2 <= len(labels) <= 12 else ()


def _schema_field(schema: Any) -> str:
    props = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(props, dict):
        return ""
    return next((name for name in props if str(name).lower() in DECISION_FIELDS), "")


def _format_schema(response_format: Any) -> Any:
    if isinstance(response_format, dict):
        inner = response_format.get("json_schema")
        return inner.get("schema") if isinstance(inner, dict) else response_format.get("schema")
    return None


# --- reading a response -----------------------------------------------------------------------------------


def extract(spec: DecisionSpec, text: str, tool_calls: list[dict[str, Any]] | None = None) -> str | None:
    """The normalised decision one response gives, or None when it gives none (or an ambiguous one)."""
    if spec.kind == "tool":
        names = sorted(n for n, _ in normalise_calls(tool_calls))
        return ",".join(names) if names else None
    if spec.kind == "json_field":
        ok, value = parse_json_text(text)
        if not ok or not isinstance(value, dict) or value.get(spec.field) in (None, ""):
            return None
        return str(value[spec.field]).strip().lower()
    text = text.replace("\u2019", "'").strip()
    if spec.kind == "option":
        return _option(spec, text)
    if spec.kind == "yes_no":
        return _yes_no(spec, text)
    if spec.kind == "label":
        return _label(spec, text)
    return _number(text)


def _option(spec: DecisionSpec, text: str) -> str | None:
    letters = "".join(spec.choices)
    # Case-sensitive letters (so the article "a" is no option A); the words around them in any case.
    strong = [
        rf"^\W{{0,3}}\(?([{letters}])\)?(?:[.):,]|\s*$|\s+[-–—]|\s*\n)",
        rf"\b(?i:answer|choice|option|pick|selection)\s*(?i:is|would be|:)\s*(?i:option\s*)?\(?([{letters}])\b\)?",
        rf"\bI(?:'d| would)? (?i:choose|pick|select|go with|say|lean towards)\s*(?i:option\s*)?\(?([{letters}])\b\)?",
        rf"^\W{{0,3}}(?i:option|answer)\s*:?\s*\(?([{letters}])\b",
        rf"\*\*\(?([{letters}])\)?[.):]?\*\*",
    ]
    for pattern in strong:
        found = {m.upper() for m in re.findall(pattern, text, re.MULTILINE)}
        if len(found) == 1:
            return found.pop()
    parens = set(re.findall(rf"\(([{letters}])\)", text))
    if len(parens) == 1:
        return parens.pop()
    # The option's own words, when exactly one option's text appears (e.g. "Somewhat agree.").
    named = {
        letter
        for letter, option in zip(spec.choices, spec.option_texts, strict=True)
        if len(option) >= 2 and re.search(rf"(?<!\w){re.escape(option.rstrip('.'))}(?!\w)", text, _I)
    }
    if len(named) == 1:
        return named.pop()
    return None


def _yes_no(spec: DecisionSpec, text: str) -> str | None:
    yes, no = spec.choices
    brackets = re.findall(rf"\[({yes}|{no})\]", text, _I)
    if brackets:
        return brackets[-1].lower()  # after step-by-step reasoning the verdict comes last
    start = re.match(rf"\W{{0,3}}({yes}|{no})\b", text, _I)
    if start:
        return start.group(1).lower()
    stated = {m.lower() for m in re.findall(rf"\b(?:answer|verdict) is:?\s*\W?({yes}|{no})\b", text, _I)}
    if len(stated) == 1:
        return stated.pop()
    return None


def _label(spec: DecisionSpec, text: str) -> str | None:
    head = re.match(r"\W*([\w -]{1,40}?)\W*(?:$|[.\n:,])", text)
    if head and head.group(1).strip().lower() in spec.choices:
        return head.group(1).strip().lower()
    found = {lab for lab in spec.choices if re.search(rf"(?<!\w){re.escape(lab)}(?!\w)", text, _I)}
    return found.pop() if len(found) == 1 else None


_NUMBER = r"-?\d[\d,]*(?:\.\d+)?"


def _number(text: str) -> str | None:
    for pattern in (r"\\boxed\{\s*([^{}]*?)\s*\}", rf"\banswer is:?\s*\$?({_NUMBER})", rf"({_NUMBER})"):
        found = re.findall(pattern, text, _I)
        if found:
            return normalise_number(found[-1])
    return None


def normalise_number(raw: str) -> str | None:
    """'1,000.0' -> '1000'; a non-number (a boxed expression) is kept as lower-case text."""
    cleaned = raw.replace(",", "").replace("$", "").strip()
    try:
        value = float(cleaned)
    except ValueError:
        return cleaned.lower() or None
    return str(int(value)) if value.is_integer() else repr(value)
