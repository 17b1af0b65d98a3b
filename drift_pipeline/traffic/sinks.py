"""Where captured records go: any `RecordSink`, by default object storage (scrubbed before the first write,
invalid tenants and agents quarantined, never dropped)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import pandas as pd

from drift_pipeline.errors import InvalidInputError
from drift_pipeline.identifiers import is_identifier
from drift_pipeline.persistence.objects import QUARANTINE_DATASET, TRAFFIC_DATASET, UNKNOWN_TENANT, ObjectStore
from drift_pipeline.traffic.privacy import Scrubber
from drift_pipeline.traffic.records import TrafficRecord, scrubbed_row


class RecordSink(Protocol):
    """Where captured records go; `write` may block or raise, the capture thread retries it."""

    def write(self, records: Sequence[TrafficRecord]) -> None: ...


class StorageSink:
    """Writes records as committed batches, one per tenant and UTC day (invalid tenants: quarantine).

    Every row is scrubbed before it is written (nothing unscrubbed at rest); the record id was computed
    from the raw content. `pii_patterns(tenant_id)` gives a tenant's own PII regexes (none by default).
    """

    def __init__(
        self,
        objects: ObjectStore,
        fmt: str = "parquet",
        pii_patterns: Callable[[str], Mapping[str, str] | None] | None = None,
    ) -> None:
        if fmt not in ("parquet", "jsonl"):
            raise InvalidInputError(f"unknown capture format {fmt!r}: use parquet or jsonl")
        self.objects, self.fmt, self.pii_patterns = objects, fmt, pii_patterns
        self._scrubbers: dict[str, Scrubber] = {}

    def _scrubber(self, tenant_id: str) -> Scrubber:
        if tenant_id not in self._scrubbers:
            self._scrubbers[tenant_id] = Scrubber(self.pii_patterns(tenant_id) if self.pii_patterns else None)
        return self._scrubbers[tenant_id]

    def write(self, records: Sequence[TrafficRecord]) -> None:
        groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
        for record in records:
            dataset, tenant, reason = TRAFFIC_DATASET, record.tenant_id, ""
            if not is_identifier(tenant):
                dataset, tenant = QUARANTINE_DATASET, UNKNOWN_TENANT
                reason = "missing_tenant" if not record.tenant_id else "invalid_tenant"
            elif record.agent_id and not is_identifier(record.agent_id):  # the one identifier rule for agents too
                dataset, reason = QUARANTINE_DATASET, "invalid_agent"
            row = scrubbed_row(self._scrubber(tenant), record.to_row())
            if reason:
                row = {"reason": reason, **row}
            groups[(dataset, tenant, record.timestamp[:10])].append(row)
        for (dataset, tenant, day), rows in groups.items():
            frame = pd.DataFrame(rows, columns=list(rows[0]))
            self.objects.write_batch(dataset, tenant, day, frame, fmt=self.fmt, meta={"source": "capture"})
