"""One ingest run: items cut into chunks, normalised, deduplicated, written as batches, recorded in a ledger.

Guarantees:

- **accepted + quarantined + skipped = read**: every non-blank line/row (every span, for OTLP) is either
  normalised to a `TrafficRecord` and stored under ``traffic/tenant=<id>/``, or stored under
  ``quarantine/tenant=<id or _unknown>/`` with its reason, detail and raw input, or skipped with a reason
  because it is not a model call (import formats only: HTTP spans, chains, embeddings).
- **idempotent**: record ids are deterministic; a record already stored (by any earlier batch) is
  counted as a duplicate and not written again.
- **resumable**: the input is cut into chunks of `chunk_size` records. Each chunk's batches have a
  deterministic id (source key + chunk index), and a ledger marker ``_ingest/<source key>/chunk-N.json``
  is written after all of them are committed. A rerun skips chunks with a marker and rewrites (replaces)
  the batches of an unfinished chunk: no duplicates, no gaps.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from drift_pipeline.errors import InvalidInputError
from drift_pipeline.identifiers import check_identifier
from drift_pipeline.persistence.objects import QUARANTINE_DATASET, TRAFFIC_DATASET, UNKNOWN_TENANT, ObjectStore
from drift_pipeline.traffic.ingest.fields import RecordError, check_known, normalise, tenant_of
from drift_pipeline.traffic.ingest.imports import IMPORT_FORMATS, ImportOptions, import_items
from drift_pipeline.traffic.ingest.llmdrift import llmdrift_record
from drift_pipeline.traffic.ingest.readers import FORMATS, RAW_KEEP, Item, open_source, read_items, source_key
from drift_pipeline.traffic.records import TrafficRecord
from drift_pipeline.versioning import tenants

MAX_RECORD_BYTES = 1_000_000
CHUNK_SIZE = 1000


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


def ingest(
    source: str,
    objects: ObjectStore,
    *,
    fmt: str = "jsonl",
    tenant: str | None = None,
    agent: str | None = None,
    known_agents: Mapping[str, set[str]] | None = None,
    storage_options: Mapping[str, Any] | None = None,
    chunk_size: int = CHUNK_SIZE,
    max_record_bytes: int = MAX_RECORD_BYTES,
    on_progress: Callable[[int], None] | None = None,
    import_options: ImportOptions | None = None,
) -> IngestReport:
    """Ingest one file (local path or ``s3://`` URL) into `objects`.

    `tenant`/`agent` fill records that lack them (a record naming another tenant is quarantined);
    `known_agents` (tenant -> agent ids with a manifest) rejects unknown tenants/agents when given.
    `on_progress(n)` is called with the number of records read after each chunk. `import_options` say
    where the import formats (`IMPORT_FORMATS`) find tenant and agent, and the batch input file.
    """
    if fmt not in FORMATS + IMPORT_FORMATS:
        raise InvalidInputError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS + IMPORT_FORMATS)}")
    if fmt == "llmdrift" and not (tenant and agent):
        raise InvalidInputError("--tenant and --agent are required for the llmdrift format")
    for value, what in ((tenant, "tenant id"), (agent, "agent id")):
        if value is not None:
            check_identifier(value, what)
    fs, path = open_source(source, objects, storage_options)
    key = source_key(fs, path, source, fmt, tenant, agent)
    if fmt in IMPORT_FORMATS:
        items = import_items(fs, path, fmt, import_options or ImportOptions(), max_record_bytes, chunk_size)
    else:
        items = read_items(fs, path, fmt, max_record_bytes, chunk_size)
    return _feed(items, _Run(objects, source, fmt, key, tenant, agent, known_agents), chunk_size, on_progress)


def ingest_stream(
    items: Iterable[Item],
    objects: ObjectStore,
    *,
    source: str,
    fmt: str,
    key: str,
    tenant: str | None = None,
    agent: str | None = None,
    known_agents: Mapping[str, set[str]] | None = None,
) -> IngestReport:
    """Items that arrive without a file (the OTLP receiver), under the ledger `key` (the same key twice
    resumes: a retried request is not stored twice)."""
    for value, what in ((tenant, "tenant id"), (agent, "agent id")):
        if value is not None:
            check_identifier(value, what)
    return _feed(items, _Run(objects, source, fmt, key, tenant, agent, known_agents), CHUNK_SIZE, None)


def _feed(items: Iterable[Item], run: _Run, chunk_size: int, on_progress: Callable[[int], None] | None) -> IngestReport:
    chunk: list[Item] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= chunk_size:
            run.process(chunk)
            chunk = []
            if on_progress:
                on_progress(chunk_size)
    if chunk:
        run.process(chunk)
        if on_progress:
            on_progress(len(chunk))
    return run.report


def ingest_with_store(
    source: str,
    objects: ObjectStore,
    store: Any,
    *,
    check_agents: bool = True,
    **kwargs: Any,
) -> IngestReport:
    """`ingest` with the known agents read from the manifests in `store` (skipped when not `check_agents`)."""
    known = tenants.known_agents(store) if check_agents else None
    return ingest(source, objects, known_agents=known, **kwargs)


def read_quarantine(objects: ObjectStore, tenant_id: str | None = None) -> pd.DataFrame:
    """Quarantined records (all tenants, `_unknown` included, when `tenant_id` is None)."""
    owners = [tenant_id] if tenant_id else objects.list_tenants(QUARANTINE_DATASET)
    frames = [objects.read_batches(QUARANTINE_DATASET, t) for t in owners]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


class _Run:
    """The state of one run: its ledger, its quarantine day and the record ids already stored."""

    def __init__(
        self,
        objects: ObjectStore,
        source: str,
        fmt: str,
        key: str,
        tenant: str | None,
        agent: str | None,
        known_agents: Mapping[str, set[str]] | None,
    ) -> None:
        self.objects, self.source, self.fmt, self.key = objects, source, fmt, key
        self.tenant, self.agent, self.known_agents = tenant, agent, known_agents
        self.report = IngestReport(source=source, format=fmt)
        self.ledger = f"_ingest/{key}"
        self.done = set(objects.list_names(self.ledger))
        self.day = self._run_day()
        self.index = 0
        self._ids: dict[tuple[str, str], dict[str, str]] = {}  # (tenant, day) -> record_id -> batch_id

    def _run_day(self) -> str:
        # Quarantine batches of a resumed run must land in the same partition as the first attempt's.
        marker = f"{self.ledger}/_run.json"
        if "_run.json" in self.done:
            return str(self.objects.read_json(marker)["day"])
        day = datetime.now(UTC).date().isoformat()
        self.objects.write_json(marker, {"day": day, "source": self.source, "format": self.fmt})
        return day

    def process(self, items: list[Item]) -> None:
        name = f"chunk-{self.index:06d}.json"
        batch_id = f"ingest-{self.key[:20]}-{self.index:06d}"
        self.index += 1
        self.report.chunks += 1
        if name in self.done:
            counts = self.objects.read_json(f"{self.ledger}/{name}")
            counts = {**counts, "written": 0, "duplicates": counts["accepted"]}
            self.report.add(counts)
            self.report.resumed_chunks += 1
            return
        counts = self._process(items, batch_id)
        self.objects.write_json(f"{self.ledger}/{name}", counts)  # the chunk is done only now
        self.report.add(counts)

    def _process(self, items: list[Item], batch_id: str) -> dict[str, Any]:
        accepted: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        quarantine: dict[str, list[dict[str, Any]]] = defaultdict(list)
        reasons: Counter[str] = Counter()
        skip_reasons: Counter[str] = Counter()
        per_tenant: Counter[str] = Counter()
        duplicates = 0
        now = datetime.now(UTC).isoformat()
        for item in items:
            if item.skipped:
                skip_reasons[item.skipped] += 1
                continue
            try:
                if item.error:
                    raise item.error
                assert item.value is not None
                record = self._record(item.value)
            except RecordError as err:
                reasons[err.reason] += 1
                owner = _quarantine_tenant(item.value, self.tenant)
                quarantine[owner].append(_quarantine_row(self.source, item, err, owner, now))
                continue
            per_tenant[record.tenant_id] += 1
            part = (record.tenant_id, record.timestamp[:10])
            known = self._known_ids(part)
            if known.get(record.record_id, batch_id) != batch_id:
                duplicates += 1
                continue
            known[record.record_id] = batch_id
            if any(row["record_id"] == record.record_id for row in accepted[part]):
                duplicates += 1  # the same record twice in one chunk
                continue
            accepted[part].append(record.to_row())
        meta = {"source": self.source, "format": self.fmt, "source_key": self.key}
        for (tenant_id, day), rows in accepted.items():
            if rows:
                self.objects.write_batch(
                    TRAFFIC_DATASET, tenant_id, day, pd.DataFrame(rows), batch_id=batch_id, meta=meta
                )
        for owner, rows in quarantine.items():
            frame = pd.DataFrame(rows)
            self.objects.write_batch(
                QUARANTINE_DATASET, owner, self.day, frame, fmt="jsonl", batch_id=batch_id, meta=meta
            )
        n_accepted = sum(per_tenant.values())
        return {
            "read": len(items),
            "accepted": n_accepted,
            "quarantined": sum(reasons.values()),
            "written": n_accepted - duplicates,
            "duplicates": duplicates,
            "reasons": dict(reasons),
            "skipped": sum(skip_reasons.values()),
            "skip_reasons": dict(skip_reasons),
            "tenants": dict(per_tenant),
        }

    def _record(self, value: Mapping[str, Any]) -> TrafficRecord:
        if self.fmt == "llmdrift":
            assert self.tenant and self.agent
            check_known(self.tenant, self.agent, self.known_agents)
            return llmdrift_record(value, tenant=self.tenant, agent=self.agent, source=self.source)
        return normalise(
            value, tenant=self.tenant, agent=self.agent, known_agents=self.known_agents, source=self.source
        )

    def _known_ids(self, part: tuple[str, str]) -> dict[str, str]:
        if part not in self._ids:
            ids: dict[str, str] = {}
            for ref in self.objects.list_batches(TRAFFIC_DATASET, part[0], part[1], part[1]):
                for record_id in self.objects.read_batch(ref, ["record_id"])["record_id"]:
                    ids.setdefault(str(record_id), ref.batch_id)
            self._ids[part] = ids
        return self._ids[part]


def _quarantine_tenant(value: Mapping[str, Any] | None, default: str | None) -> str:
    try:
        return tenant_of(value or {}, default)
    except RecordError:
        return UNKNOWN_TENANT


def _quarantine_row(source: str, item: Item, err: RecordError, tenant_id: str, now: str) -> dict[str, Any]:
    return {
        "source": source,
        "offset": item.offset,
        "reason": err.reason,
        "detail": err.detail,
        "raw": item.raw[:RAW_KEEP],
        "tenant_id": "" if tenant_id == UNKNOWN_TENANT else tenant_id,
        "quarantined_at": now,
    }
