"""Ways to reach a person: e-mail addresses and phone numbers.

- e-mail: a regex finds `local@domain` candidates, including quoted local parts (`"john doe"@x.com`,
  RFC 5321) and internationalised names (`josé@bücher.de`, `用户@例子.广告`); the domain must pass
  IDNA 2008 (`idna`, UTS 46 mapping), which rejects `a@b..c`, labels over 63 characters and the like;
- phone: `phonenumbers.PhoneNumberMatcher` (leniency VALID) for `+` numbers in any region and national
  numbers of the given regions. It only runs around digit runs long enough to be a phone number; a match
  needs 8+ digits, is not a decimal or a division, and is not glued to an id (`#4582219031`,
  `ORD-2023-000451`, `...-426614174000`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import lru_cache

from drift_pipeline.traffic.privacy.finding import Finding

DEFAULT_PHONE_REGIONS = ("US", "GB", "DE", "FR", "BR")

_LOCAL = r"(?:(?<![\w.%+-])[\w%+-]+(?:\.[\w%+-]+)*|(?<![\w\"])\"(?![\s:,])(?:[^\"\\\r\n]|\\.){1,64}\")"
_DOMAIN = r"(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+(?:[^\W\d_]{2,63}|xn--[a-z0-9-]{1,59})"
_EMAIL = re.compile(rf"{_LOCAL}@{_DOMAIN}(?![\w-])")
_PHONE_HINT = re.compile(r"\d(?:[ ().\-/]{0,3}\d){6,}")
_NOT_PHONE = re.compile(r"\d+\.\d+|\d{5}-\d{4}")  # a decimal; a US ZIP+4 (`MA 02110-1301`)
_LAST_GROUP_ONE_DIGIT = re.compile(r"[-. ]\d\Z")  # ISBN-10 `1-85798-218-5`; phones end in 2+ digits
_MIN_PHONE_DIGITS = 8
_PHONE_CONTEXT = 24  # characters kept around a digit run: room for `+55 (` and an extension
_MAX_WINDOW = 400


def find_emails(text: str) -> Iterator[Finding]:
    if "@" not in text:
        return
    for m in _EMAIL.finditer(text):
        if _valid_domain(m.group().rpartition("@")[2]):
            yield Finding("EMAIL", m.start(), m.end(), m.group())


@lru_cache(maxsize=4096)
def _valid_domain(domain: str) -> bool:
    import idna

    try:
        idna.encode(domain, uts46=True)
    except (idna.IDNAError, UnicodeError, ValueError):
        return False
    return True


def find_phones(text: str, regions: Iterable[str]) -> Iterator[Finding]:
    import phonenumbers

    regions = tuple(regions)
    seen: set[tuple[int, int]] = set()
    for lo, hi in _phone_windows(text):
        window = text[lo:hi]
        for region in regions:
            for match in phonenumbers.PhoneNumberMatcher(window, region, leniency=phonenumbers.Leniency.VALID):
                start, end = lo + match.start, lo + match.end
                if (start, end) not in seen and _phone_shaped(match.raw_string) and not _glued(text, start, end):
                    seen.add((start, end))
                    yield Finding("PHONE", start, end, match.raw_string)


def _phone_shaped(raw: str) -> bool:
    """Enough digits for a number someone dials (short codes and extensions identify nobody), and not
    arithmetic (`168.9320` and `(16447 / 3` are valid numbers somewhere, and common in answers), nor a
    ZIP+4 code or an ISBN."""
    return (
        sum(c.isdigit() for c in raw) >= _MIN_PHONE_DIGITS
        and "/" not in raw
        and not _NOT_PHONE.fullmatch(raw.strip("[]() "))
        and not _LAST_GROUP_ONE_DIGIT.search(raw)
    )


def _phone_windows(text: str) -> list[tuple[int, int]]:
    """Spans around each run of 7+ digits, the only places a phone number can be; neighbours are merged
    while the span stays short, so a text full of numbers is not one huge window for the matcher."""
    windows: list[tuple[int, int]] = []
    for m in _PHONE_HINT.finditer(text):
        lo, hi = max(0, m.start() - _PHONE_CONTEXT), min(len(text), m.end() + _PHONE_CONTEXT)
        if windows and lo <= windows[-1][1] and hi - windows[-1][0] <= _MAX_WINDOW:
            windows[-1] = (windows[-1][0], hi)
        else:
            windows.append((lo, hi))
    return windows


def _glued(text: str, start: int, end: int) -> bool:
    """The number is part of a longer token: an order or ticket id, a UUID, a path, a decimal's digits."""
    before = text[start - 1] if start else " "
    before2 = text[start - 2] if start > 1 else " "
    after = text[end] if end < len(text) else " "
    after2 = text[end + 1] if end + 1 < len(text) else " "
    return (
        before.isalnum()
        or before in "#/_-"
        or (before in ".," and before2.isdigit())
        or after.isalnum()
        or after in "/_"
        or (after in "-.," and after2.isalnum())
    )
