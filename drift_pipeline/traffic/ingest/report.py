"""What one ingest run did: the counts every caller prints and every test checks."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class IngestReport:
    """What one ingest run did. `accepted` = `written` + `duplicates`;
    `accepted` + `quarantined` + `skipped` = `read`."""

    source: str
    format: str
    read: int = 0
    accepted: int = 0
    quarantined: int = 0
    skipped: int = 0
    written: int = 0
    duplicates: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    skip_reasons: Counter[str] = field(default_factory=Counter)
    tenants: Counter[str] = field(default_factory=Counter)
    chunks: int = 0
    resumed_chunks: int = 0

    def add(self, other: Mapping[str, Any]) -> None:
        for key in ("read", "accepted", "quarantined", "skipped", "written", "duplicates"):
            setattr(self, key, getattr(self, key) + int(other.get(key, 0)))
        self.reasons.update(other.get("reasons", {}))
        self.skip_reasons.update(other.get("skip_reasons", {}))
        self.tenants.update(other.get("tenants", {}))

    def to_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "accepted": self.accepted,
            "quarantined": self.quarantined,
            "reasons": dict(sorted(self.reasons.items())),
            "skipped": self.skipped,
            "skip_reasons": dict(sorted(self.skip_reasons.items())),
            "written": self.written,
            "duplicates": self.duplicates,
            "tenants": dict(sorted(self.tenants.items())),
            "chunks": self.chunks,
            "resumed_chunks": self.resumed_chunks,
            "source": self.source,
            "format": self.format,
        }
