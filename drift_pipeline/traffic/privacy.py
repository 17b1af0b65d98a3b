"""PII scrubbing: typed placeholders so that a replayed prompt still reads naturally.

Regexes only *find candidates*; kept libraries decide what is real PII:

- phone numbers: ``phonenumbers.PhoneNumberMatcher`` (leniency VALID; international ``+`` numbers in any
  region, national numbers for ``phone_regions``),
- card numbers: Luhn check from ``stdnum.luhn`` (13-19 digits),
- IBANs: ``stdnum.iban`` (country length + mod-97),
- national ids: ``stdnum`` validators (US SSN, ES DNI/NIE, IT codice fiscale, FR NIR, IN Aadhaar) and
  the UK NINO prefix rules (``stdnum`` has no NINO module),
- IP addresses: stdlib ``ipaddress`` (v4 and v6),
- e-mail addresses: a regex (no kept library finds them in free text without a spaCy model),
- tenant patterns: the tenant's own regexes, replaced by ``<CUSTOM:name>``.

Overlapping findings are resolved by priority (custom > e-mail > IBAN > card > national id > IP > phone),
then by length, so that a card number is never half-replaced as a phone number.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from drift_pipeline.errors import InvalidInputError

PLACEHOLDERS = {
    "EMAIL": "<EMAIL>",
    "PHONE": "<PHONE>",
    "CARD": "<CARD>",
    "IBAN": "<IBAN>",
    "NATIONAL_ID": "<NATIONAL_ID>",
    "IP": "<IP>",
}
_PRIORITY = {"CUSTOM": 0, "EMAIL": 1, "IBAN": 2, "CARD": 3, "NATIONAL_ID": 4, "IP": 5, "PHONE": 6}
DEFAULT_PHONE_REGIONS = ("US", "GB", "DE", "FR")

_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.]|\.\d)")
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![\w:])")
_SSN = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")
_NINO = re.compile(r"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b")
_NINO_BAD_PREFIX = {"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"}
_DNI = re.compile(r"\b[XYZ]?\d{7,8}-?[A-Z]\b")
_CODICE_FISCALE = re.compile(r"\b[A-Z]{6}\d{2}[A-Z]\d{2}[A-Z]\d{3}[A-Z]\b")
_NIR = re.compile(r"\b[12] ?\d{2} ?\d{2} ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}\b")
_AADHAAR = re.compile(r"\b[2-9]\d{3} ?\d{4} ?\d{4}\b")


@dataclass(frozen=True)
class Finding:
    """One piece of PII found in a text."""

    kind: str  # EMAIL, PHONE, CARD, IBAN, NATIONAL_ID, IP or CUSTOM
    start: int
    end: int
    text: str
    name: str = ""  # the tenant pattern's name for CUSTOM

    @property
    def placeholder(self) -> str:
        return f"<CUSTOM:{self.name}>" if self.kind == "CUSTOM" else PLACEHOLDERS[self.kind]


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

    def find(self, text: str) -> list[Finding]:
        """Non-overlapping findings in `text`, in order of position."""
        if not text:
            return []
        found = [
            *(
                Finding("CUSTOM", m.start(), m.end(), m.group(), name)
                for name, rx in self.custom
                for m in rx.finditer(text)
            ),
            *_find_emails(text),
            *_find_ibans(text),
            *_find_cards(text),
            *_find_national_ids(text),
            *_find_ips(text),
            *_find_phones(text, self.phone_regions),
        ]
        found = [f for f in found if f.end > f.start]
        found.sort(key=lambda f: (_PRIORITY[f.kind], -(f.end - f.start), f.start))
        kept: list[Finding] = []
        for f in found:
            if all(f.end <= k.start or f.start >= k.end for k in kept):
                kept.append(f)
        return sorted(kept, key=lambda f: f.start)

    def scrub(self, text: str) -> str:
        """`text` with every finding replaced by its typed placeholder."""
        if not isinstance(text, str) or not text:
            return text
        out, pos = [], 0
        for f in self.find(text):
            out.append(text[pos : f.start])
            out.append(f.placeholder)
            pos = f.end
        out.append(text[pos:])
        return "".join(out)

    def scrub_value(self, value: Any) -> Any:
        """Scrub every string inside a JSON-like value (dicts, lists); keys are kept."""
        if isinstance(value, str):
            return self._scrub_json_string(value)
        if isinstance(value, list):
            return [self.scrub_value(v) for v in value]
        if isinstance(value, dict):
            return {k: self.scrub_value(v) for k, v in value.items()}
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


def scrub_text(text: str, custom_patterns: Mapping[str, str] | None = None) -> str:
    """Convenience: scrub one text with the default settings plus `custom_patterns`."""
    return (Scrubber(custom_patterns) if custom_patterns else _default_scrubber()).scrub(text)


@cache
def _default_scrubber() -> Scrubber:
    return Scrubber()


# -- detectors: regex candidates, library validation ---------------------------------------------------


def _find_emails(text: str) -> Iterable[Finding]:
    return (Finding("EMAIL", m.start(), m.end(), m.group()) for m in _EMAIL.finditer(text))


def _find_ibans(text: str) -> Iterable[Finding]:
    from stdnum import iban

    for m in _IBAN.finditer(text):
        candidate = m.group()
        # The regex may swallow a following word; drop trailing groups until the checksum holds.
        while candidate:
            if iban.is_valid(candidate):
                yield Finding("IBAN", m.start(), m.start() + len(candidate), candidate)
                break
            cut = candidate.rfind(" ")
            candidate = candidate[:cut] if cut > 0 else ""


def _find_cards(text: str) -> Iterable[Finding]:
    from stdnum import luhn

    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if 13 <= len(digits) <= 19 and len(set(digits)) > 1 and luhn.is_valid(digits):
            yield Finding("CARD", m.start(), m.end(), m.group())


def _find_national_ids(text: str) -> Iterable[Finding]:
    from stdnum.es import dni, nie
    from stdnum.fr import nir
    from stdnum.in_ import aadhaar
    from stdnum.it import codicefiscale
    from stdnum.us import ssn

    checks: list[tuple[re.Pattern[str], Callable[[str], bool]]] = [
        (_SSN, ssn.is_valid),
        (_NINO, _is_nino),
        (_DNI, lambda s: dni.is_valid(s) or nie.is_valid(s)),
        (_CODICE_FISCALE, codicefiscale.is_valid),
        (_NIR, nir.is_valid),
        (_AADHAAR, aadhaar.is_valid),
    ]
    for rx, valid in checks:
        for m in rx.finditer(text):
            if valid(m.group()):
                yield Finding("NATIONAL_ID", m.start(), m.end(), m.group())


def _is_nino(value: str) -> bool:
    # HMRC rules: D, F, I, Q, U, V never appear; O never second; some prefixes are never allocated.
    compact = value.replace(" ", "")
    return compact[:2] not in _NINO_BAD_PREFIX


def _find_ips(text: str) -> Iterable[Finding]:
    for rx in (_IPV4, _IPV6):
        for m in rx.finditer(text):
            if not any(ch.isdigit() for ch in m.group()):
                continue  # 'a::b' (C++ scopes) is a valid IPv6 address in theory, never in practice
            try:
                ipaddress.ip_address(m.group())
            except ValueError:
                continue
            yield Finding("IP", m.start(), m.end(), m.group())


def _find_phones(text: str, regions: Iterable[str]) -> Iterable[Finding]:
    import phonenumbers

    seen: set[tuple[int, int]] = set()
    for region in regions:
        for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
            if (match.start, match.end) not in seen:
                seen.add((match.start, match.end))
                yield Finding("PHONE", match.start, match.end, match.raw_string)
