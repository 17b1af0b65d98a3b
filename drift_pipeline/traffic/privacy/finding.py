"""One piece of PII or one credential found in a text, and the placeholder that replaces it."""

from __future__ import annotations

from dataclasses import dataclass

PLACEHOLDERS = {
    "SECRET": "<SECRET>",
    "EMAIL": "<EMAIL>",
    "PHONE": "<PHONE>",
    "CARD": "<CARD>",
    "IBAN": "<IBAN>",
    "NATIONAL_ID": "<NATIONAL_ID>",
    "IP": "<IP>",
    "DOB": "<DOB>",
    "ADDRESS": "<ADDRESS>",
    "NAME": "<NAME>",
}
# Overlaps are resolved by this order, then by length: a token inside a URL is a SECRET before the URL's
# `user@host` is an e-mail, a card number is never half-replaced as a phone, and the weakest evidence
# (the name/address/date heuristics) yields to any validated finding.
_ORDER = ["CUSTOM", "SECRET", "EMAIL", "IBAN", "CARD", "NATIONAL_ID", "IP", "PHONE", "DOB", "ADDRESS", "NAME"]
PRIORITY = {kind: rank for rank, kind in enumerate(_ORDER)}


@dataclass(frozen=True)
class Finding:
    """One piece of PII found in a text."""

    kind: str  # a key of PLACEHOLDERS, or CUSTOM
    start: int
    end: int
    text: str
    name: str = ""  # the tenant pattern's name for CUSTOM

    @property
    def placeholder(self) -> str:
        return f"<CUSTOM:{self.name}>" if self.kind == "CUSTOM" else PLACEHOLDERS[self.kind]
