"""The scrubber: every detector's findings, overlaps resolved, typed placeholders in place of the PII.

`Finding.kind` order in `finding.PRIORITY` settles overlaps (then the longer finding wins), so the
result is deterministic: the same text and patterns give the same output, whatever the detectors' order.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from drift_pipeline.errors import InvalidInputError
from drift_pipeline.traffic.privacy.contacts import DEFAULT_PHONE_REGIONS, find_emails, find_phones
from drift_pipeline.traffic.privacy.credentials import find_credentials
from drift_pipeline.traffic.privacy.finding import PLACEHOLDERS, PRIORITY, Finding
from drift_pipeline.traffic.privacy.identifiers import find_cards, find_ibans, find_ips, find_national_ids
from drift_pipeline.traffic.privacy.personal import find_addresses, find_dates_of_birth, find_names

_MAX_PASSES = 3
_JSON_TOKEN = re.compile(r'\\.|"', re.DOTALL)  # an escape pair, or a quote that delimits a string
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.DOTALL)
_ESCAPED = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "\\": "\\", "/": "/"}
# A JSON value under one of these keys (tool-call arguments, structured content) is PII whatever it looks
# like: `{"full_name": "Ann Lee"}` has no cue for the name heuristic. Keys are compared lower-case without
# `_`/`-`. Bare `name` is not here: it is the function's name in a tool call.
_KEYED = {
    **dict.fromkeys(
        ("fullname", "firstname", "lastname", "surname", "givenname", "familyname", "middlename", "customername"),
        "NAME",
    ),
    **dict.fromkeys(
        ("address", "streetaddress", "street", "addressline1", "addressline2", "homeaddress", "shippingaddress"),
        "ADDRESS",
    ),
    **dict.fromkeys(("dob", "dateofbirth", "birthdate", "birthday"), "DOB"),
    **dict.fromkeys(
        ("password", "passwd", "secret", "apikey", "accesstoken", "refreshtoken", "token", "clientsecret"),
        "SECRET",
    ),
    **dict.fromkeys(("ssn", "socialsecuritynumber", "nationalid", "taxid", "passportnumber"), "NATIONAL_ID"),
}


class Scrubber:
    """Finds and replaces PII; build one per tenant (its custom patterns) and reuse it."""

    def __init__(
        self,
        custom_patterns: Mapping[str, str] | None = None,
        phone_regions: Iterable[str] = DEFAULT_PHONE_REGIONS,
    ) -> None:
        self.custom: list[tuple[str, re.Pattern[str]]] = []
        for name, pattern in (custom_patterns or {}).items():
            if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
                raise InvalidInputError(f"invalid PII pattern name {name!r}: use letters, digits, '_', '.', '-'")
            try:
                self.custom.append((name, re.compile(pattern)))
            except re.error as exc:
                raise InvalidInputError(f"PII pattern {name!r} is not a valid regex: {exc}") from exc
        self.phone_regions = tuple(phone_regions)

    def _find(self, text: str) -> tuple[list[Finding], bool]:
        if not text:
            return [], False
        json_like = text.lstrip()[:1] in ("{", "[")
        unescaped = _unescaped_view(text) if json_like else None
        view = unescaped[0] if unescaped else text
        found = [
            *find_credentials(view),
            *find_emails(view),
            *find_ibans(view),
            *find_cards(view),
            *find_national_ids(view),
            *find_ips(view),
            *find_phones(view, self.phone_regions),
            *find_dates_of_birth(view),
            *find_addresses(view),
            *find_names(view),
        ]
        found = [f for f in found if f.end > f.start]
        if unescaped:
            found = _on_original(found, text, *unescaped[1:])
        custom = (
            Finding("CUSTOM", m.start(), m.end(), m.group(), n) for n, rx in self.custom for m in rx.finditer(text)
        )
        found = [*custom, *found]
        if json_like:
            found = _inside_json_strings(found, text)
        return _resolve_overlaps(f for f in found if f.end > f.start)

    def find(self, text: str) -> list[Finding]:
        """Non-overlapping findings in `text`, in order of position."""
        return self._find(text)[0]

    def scrub(self, text: str) -> str:
        """`text` with every finding replaced by its typed placeholder.

        When a dropped finding stuck out of the one that won the overlap (`my name is Bearer <token>`:
        the token wins, `Bearer` was half of the name), the result is scrubbed again, so that the output
        is a fixed point: scrubbing it once more changes nothing."""
        if not isinstance(text, str) or not text:
            return text
        for _ in range(_MAX_PASSES):
            kept, sticks_out = self._find(text)
            out, pos = [], 0
            for f in kept:
                out.append(text[pos : f.start])
                out.append(f.placeholder)
                pos = f.end
            out.append(text[pos:])
            text = "".join(out)
            if not sticks_out:
                break
        return text

    def scrub_value(self, value: Any, key: str = "") -> Any:
        """Scrub every string inside a JSON-like value (dicts, lists); keys are kept, and a string under a
        PII key (`password`, `full_name`, `dob`, ...) is replaced whole."""
        if isinstance(value, str):
            kind = _KEYED.get(re.sub(r"[_\-\s]", "", key.lower()))
            if kind and value.strip():
                return PLACEHOLDERS[kind]
            return self._scrub_json_string(value)
        if isinstance(value, list):
            return [self.scrub_value(v) for v in value]
        if isinstance(value, dict):
            return {k: self.scrub_value(v, str(k)) for k, v in value.items()}
        return value

    def _scrub_json_string(self, value: str) -> str:
        # Tool-call arguments are JSON inside a string: scrub the values, keep it parseable.
        stripped = value.strip()
        if stripped[:1] in "{[" and stripped:
            try:
                parsed = json.loads(stripped)
            except ValueError:
                return self.scrub(value)
            return json.dumps(self.scrub_value(parsed), ensure_ascii=False)
        return self.scrub(value)

    def scrub_json(self, raw: Any) -> Any:
        """Scrub a JSON-encoded field (messages, tool_calls); a non-JSON string is scrubbed as text."""
        if not isinstance(raw, str):
            return raw
        try:
            parsed = json.loads(raw)
        except ValueError:
            return self.scrub(raw)
        from drift_pipeline.traffic.records import dumps

        return dumps(self.scrub_value(parsed))

    def scrub_row(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """A traffic row with messages (all roles), response text, tool calls and error scrubbed."""
        out = dict(row)
        for key in ("messages", "tool_calls"):
            if key in out:
                out[key] = self.scrub_json(out[key])
        for key in ("response_text", "error"):
            if isinstance(out.get(key), str):
                out[key] = self.scrub(out[key])
        return out

    def scrub_frame(self, frame: Any) -> Any:
        """A copy of a traffic DataFrame with `scrub_row` applied to the text columns."""
        frame = frame.copy()
        for key in ("messages", "tool_calls"):
            if key in frame.columns:
                frame[key] = [self.scrub_json(v) for v in frame[key]]
        for key in ("response_text", "error"):
            if key in frame.columns:
                frame[key] = [self.scrub(v) if isinstance(v, str) else v for v in frame[key]]
        return frame


def _unescaped_view(text: str) -> tuple[str, list[int], list[int]] | None:
    """A raw JSON text with its escapes decoded, and for each view character the span it came from.

    A raw JSON line (a quarantined record's excerpt) holds `Thanks,\\nAnn Lee`, `\\"john doe\\"@x.com` and
    `Jo\\u00e3o`: read as they are, the cue rules see the word `nAnn` and the names are cut. Only texts
    that start like JSON are read so (prose keeps its backslashes: `"odd\\"name"@x.com` is RFC 5321);
    None when there is no backslash (the usual case)."""
    if "\\" not in text:
        return None
    parts: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    pos = 0
    for m in _ESCAPE.finditer(text):
        parts.append(text[pos : m.start()])
        starts.extend(range(pos, m.start()))
        ends.extend(range(pos + 1, m.start() + 1))
        code = m.group(1)
        char = _ESCAPED.get(code) or (chr(int(code[1:], 16)) if len(code) == 5 else None)
        if char is None:  # not a JSON escape: the backslash is just a character
            parts.append(m.group())
            starts.extend(range(m.start(), m.end()))
            ends.extend(range(m.start() + 1, m.end() + 1))
        else:
            parts.append(char)
            starts.append(m.start())
            ends.append(m.end())
        pos = m.end()
    parts.append(text[pos:])
    starts.extend(range(pos, len(text)))
    ends.extend(range(pos + 1, len(text) + 1))
    return "".join(parts), starts, ends


def _on_original(found: list[Finding], text: str, starts: list[int], ends: list[int]) -> list[Finding]:
    """View findings as spans of the original text: an escape is always replaced whole, so the JSON
    stays valid."""
    return [
        Finding(f.kind, starts[f.start], ends[f.end - 1], text[starts[f.start] : ends[f.end - 1]], f.name)
        for f in found
    ]


def _inside_json_strings(found: list[Finding], text: str) -> list[Finding]:
    """In a raw JSON line, each finding is cut at the first string delimiter (an unescaped `"`) inside
    it: a replacement never swallows JSON syntax, so the line stays parseable."""
    quotes = [m.start() for m in _JSON_TOKEN.finditer(text) if m.group() == '"']
    out = []
    for f in found:
        i = bisect.bisect_left(quotes, f.start)
        end = min(f.end, quotes[i]) if i < len(quotes) else f.end
        out.append(f if end == f.end else Finding(f.kind, f.start, end, text[f.start : end], f.name))
    return out


def _resolve_overlaps(found: Iterable[Finding]) -> tuple[list[Finding], bool]:
    """Highest priority first, then the longest; a finding overlapping a kept one is dropped. Also says
    whether a dropped finding stuck out of the kept one it met (its rest may still be PII).

    Kept findings never overlap, so their starts and ends sort alike and one bisection finds the
    neighbours to check: O(n log n) where hostile input (`password: ` x 10,000) yields many findings."""
    starts: list[int] = []
    kept: list[Finding] = []
    sticks_out = False
    for f in sorted(found, key=lambda f: (PRIORITY[f.kind], -(f.end - f.start), f.start)):
        i = bisect.bisect_right(starts, f.start)
        before, after = (kept[i - 1] if i else None), (kept[i] if i < len(kept) else None)
        if (before and before.end > f.start) or (after and after.start < f.end):
            sticks_out = sticks_out or not (before and before.start <= f.start and f.end <= before.end)
            continue
        starts.insert(i, f.start)
        kept.insert(i, f)
    return kept, sticks_out


def scrub_text(text: str, custom_patterns: Mapping[str, str] | None = None) -> str:
    """Convenience: scrub one text with the default settings plus `custom_patterns`."""
    return (Scrubber(custom_patterns) if custom_patterns else _default_scrubber()).scrub(text)


@cache
def _default_scrubber() -> Scrubber:
    return Scrubber()
