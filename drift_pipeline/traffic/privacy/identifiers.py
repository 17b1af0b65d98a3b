"""Numbers that identify a person or an account: cards, IBANs, national ids, IP addresses.

Regexes only find candidates; `python-stdnum` decides (Luhn for cards, mod-97 for IBANs, each national
id's own checksum and allocation rules), stdlib `ipaddress` for IPs. Ids that are bare digit runs (a US
SSN without dashes, a CPF without punctuation, a Canadian SIN, a Dutch BSN) are taken only after a
keyword naming them: nine random digits pass the SSN rules most of the time.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator

from drift_pipeline.traffic.privacy.finding import Finding

_IBAN = re.compile(r"\b[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]{4}){2,7}(?: ?[A-Za-z0-9]{1,3})?\b")
_CARD = re.compile(r"(?<![\d.,-])\d(?:[ .-]?\d){12,18}(?![\d-]|[.,]\d)")
_CARD_GROUPS = {(4, 4, 4, 4), (4, 6, 5), (4, 6, 4), (4, 4, 4, 4, 3), (4, 4, 4, 1), (4, 4, 4, 2), (4, 4, 4, 3)}
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.]|\.\d)")
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![\w:])")
_SSN = re.compile(r"(?<![\w-])\d{3}-\d{2}-\d{4}(?![\w-])")
_NINO = re.compile(r"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b")
_NINO_BAD_PREFIX = {"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"}
_DNI = re.compile(r"\b[XYZ]?\d{7,8}-?[A-Z]\b")
_CODICE_FISCALE = re.compile(r"\b[A-Z]{6}\d{2}[A-Z]\d{2}[A-Z]\d{3}[A-Z]\b")
_NIR = re.compile(r"\b[12] ?\d{2} ?\d{2} ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}\b")
_AADHAAR = re.compile(r"(?<![\w-])[2-9]\d{3} ?\d{4} ?\d{4}(?![\w-])")
_CPF = re.compile(r"(?<![\w.-])\d{3}\.\d{3}\.\d{3}-\d{2}(?![\w-])")
# Keyword-gated ids: (keyword, value pattern); the keyword must end at most 25 characters before the value.
_SSN_WORDS = re.compile(r"(?i:\b(?:ssn|ss#|social security(?: number| no\.?| #)?)\b)")
_NINE_DIGITS = re.compile(r"(?<![\w.-])\d{3}[ -]?\d{2}[ -]?\d{4}(?![\w-])")
_SIN_WORDS = re.compile(r"(?i:\b(?:sin|social insurance(?: number)?)\b)")
_SIN = re.compile(r"(?<![\w.-])\d{3}[ -]?\d{3}[ -]?\d{3}(?![\w-])")
_CPF_WORDS = re.compile(r"(?i:\bcpf\b)")
_CPF_BARE = re.compile(r"(?<![\w.-])\d{11}(?![\w-])")
_BSN_WORDS = re.compile(r"(?i:\b(?:bsn|burgerservicenummer)\b)")
_BSN = re.compile(r"(?<![\w.-])\d{9}(?![\w-])")
_KEYWORD_WINDOW = 25
# Every id here but the codice fiscale holds a run of 6+ digits: texts without one skip their regexes.
_DIGIT_RUN = re.compile(r"\d(?:[ .\-]?\d){5,}")


def find_ibans(text: str) -> Iterator[Finding]:
    from stdnum import iban

    if not _DIGIT_RUN.search(text):
        return
    for m in _IBAN.finditer(text):
        candidate = m.group()
        # The regex may swallow a following word; drop trailing groups until the checksum holds.
        while candidate:
            if iban.is_valid(candidate):
                yield Finding("IBAN", m.start(), m.start() + len(candidate), candidate)
                break
            cut = candidate.rfind(" ")
            candidate = candidate[:cut] if cut > 0 else ""


def find_cards(text: str) -> Iterator[Finding]:
    from stdnum import luhn

    if not _DIGIT_RUN.search(text):
        return
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if 13 <= len(digits) <= 19 and len(set(digits)) > 1 and _card_layout(m.group()) and luhn.is_valid(digits):
            yield Finding("CARD", m.start(), m.end(), m.group())


def _card_layout(value: str) -> bool:
    """Printed like a card: no separators, or one separator kind between the usual groups.

    This keeps `3.14159265358979` and `1.234.567.890.123` (a decimal, a number with thousands dots) out."""
    separators = set(re.findall(r"\D", value))
    if not separators:
        return True
    return len(separators) == 1 and tuple(len(g) for g in re.split(r"\D", value)) in _CARD_GROUPS


def find_national_ids(text: str) -> Iterator[Finding]:
    from stdnum.br import cpf
    from stdnum.ca import sin
    from stdnum.es import dni, nie
    from stdnum.fr import nir
    from stdnum.in_ import aadhaar
    from stdnum.it import codicefiscale
    from stdnum.nl import bsn
    from stdnum.us import ssn

    yield from (
        Finding("NATIONAL_ID", m.start(), m.end(), m.group())
        for m in _CODICE_FISCALE.finditer(text)
        if codicefiscale.is_valid(m.group())
    )
    if not _DIGIT_RUN.search(text):
        return
    checks: list[tuple[re.Pattern[str], Callable[[str], bool]]] = [
        (_SSN, ssn.is_valid),
        (_NINO, _is_nino),
        (_DNI, lambda s: dni.is_valid(s) or nie.is_valid(s)),
        (_NIR, nir.is_valid),
        (_AADHAAR, aadhaar.is_valid),
        (_CPF, cpf.is_valid),
    ]
    for rx, valid in checks:
        yield from (
            Finding("NATIONAL_ID", m.start(), m.end(), m.group()) for m in rx.finditer(text) if valid(m.group())
        )
    keyed: list[tuple[re.Pattern[str], re.Pattern[str], Callable[[str], bool]]] = [
        (_SSN_WORDS, _NINE_DIGITS, lambda s: ssn.is_valid(s.replace(" ", ""))),
        (_SIN_WORDS, _SIN, sin.is_valid),
        (_CPF_WORDS, _CPF_BARE, cpf.is_valid),
        (_BSN_WORDS, _BSN, bsn.is_valid),
    ]
    for words, rx, valid in keyed:
        yield from _after_keyword(text, words, rx, valid)


def _after_keyword(
    text: str, words: re.Pattern[str], rx: re.Pattern[str], valid: Callable[[str], bool]
) -> Iterable[Finding]:
    for keyword in words.finditer(text):
        m = rx.search(text, keyword.end())
        if m and m.start() <= keyword.end() + _KEYWORD_WINDOW and valid(m.group()):
            yield Finding("NATIONAL_ID", m.start(), m.end(), m.group())


def _is_nino(value: str) -> bool:
    # HMRC rules: D, F, I, Q, U, V never appear; O never second; some prefixes are never allocated.
    compact = value.replace(" ", "")
    return compact[:2] not in _NINO_BAD_PREFIX


def _is_slice(text: str, start: int) -> bool:
    return start >= 2 and text[start - 1] == "[" and (text[start - 2].isalnum() or text[start - 2] in "_)]")


def find_ips(text: str) -> Iterator[Finding]:
    for rx in (_IPV4, _IPV6):
        for m in rx.finditer(text):
            if not any(ch.isdigit() for ch in m.group()) or _is_slice(text, m.start()):
                continue  # `a::b` (C++ scopes) and `p[1::2]` (slices) are valid IPv6 in theory only
            try:
                ipaddress.ip_address(m.group())
            except ValueError:
                continue
            yield Finding("IP", m.start(), m.end(), m.group())
