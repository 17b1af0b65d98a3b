"""One ingest run: items cut into chunks, normalised, deduplicated, written as batches, recorded in a ledger.

Guarantees:

- **accepted + quarantined + skipped = read**, whatever a record holds: every non-blank line/row (every
  span, for OTLP) is either normalised to a `TrafficRecord` and stored under ``traffic/tenant=<id>/``, or
  stored under ``quarantine/tenant=<id or _unknown>/`` with its reason, a scrubbed detail and a scrubbed
  excerpt, or skipped with a reason because it is not a model call (import formats only: HTTP spans,
  chains, embeddings).
  `fields` bounds every value; anything it did not foresee is still quarantined (reason
  ``unprocessable``, the exception's type), so one poison record never stops the rest of its chunk.
- **nothing unscrubbed at rest**: accepted rows are scrubbed (`privacy.Scrubber`, the tenant's own
  patterns when the store is known) *before* the first write; the record id is computed before, from
  the full raw content. Quarantine rows never keep the raw line, only a scrubbed excerpt.
- **idempotent**: record ids are deterministic; a record already stored (by any earlier batch) is
  counted as a duplicate and not written again.
- **resumable after any crash** (``kill -9`` included): the input is cut into chunks of `chunk_size`
  records. Each chunk's batches have a deterministic id (source key + chunk index), and a ledger marker
  ``_ingest/<source key>/chunk-N.json`` naming them is written after all of them are committed. A rerun
  skips a chunk only when its ledger marker is sound and every batch it names is still committed;
  otherwise it rewrites (replaces) the chunk's batches: no duplicates, no gaps.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from drift_pipeline.errors import InvalidInputError
from drift_pipeline.identifiers import check_identifier
from drift_pipeline.persistence.objects import (
    QUARANTINE_DATASET,
    TRAFFIC_DATASET,
    UNKNOWN_TENANT,
    ObjectStore,
    day_str,
)
from drift_pipeline.traffic.ingest.fields import RecordError, check_known, normalise, tenant_of
from drift_pipeline.traffic.ingest.imports import IMPORT_FORMATS, ImportOptions, import_items
from drift_pipeline.traffic.ingest.llmdrift import llmdrift_record
from drift_pipeline.traffic.ingest.readers import FORMATS, Item, open_source, read_items, source_key
from drift_pipeline.traffic.ingest.report import IngestReport
from drift_pipeline.traffic.privacy import Scrubber
from drift_pipeline.traffic.records import TrafficRecord, scrubbed_row
from drift_pipeline.versioning import tenants

MAX_RECORD_BYTES = 1_000_000
CHUNK_SIZE = 1000
EXCERPT_CHARS = 2000  # a quarantined record keeps this much of its (scrubbed) text
_SCRUB_MARGIN = 256  # scrubbed beyond the excerpt, so PII cut by the excerpt's end is still recognised
_COUNTS = ("read", "accepted", "quarantined", "written", "duplicates")


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
    pii_patterns: Mapping[str, Mapping[str, str]] | None = None,
) -> IngestReport:
    """Ingest one file (local path or ``s3://`` URL) into `objects`.

    `tenant`/`agent` fill records that lack them (a record naming another tenant is quarantined);
    `known_agents` (tenant -> agent ids with a manifest) rejects unknown tenants/agents when given.
    `pii_patterns` (tenant -> its custom PII regexes) are scrubbed along with the built-in detectors.
    `on_progress(n)` is called with the number of records read after each chunk. `import_options` say
    where the import formats (`IMPORT_FORMATS`) find tenant and agent, and the batch input file.
    """
    if fmt not in FORMATS + IMPORT_FORMATS:
        raise InvalidInputError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS + IMPORT_FORMATS)}")
    if fmt == "llmdrift" and not (tenant and agent):
        raise InvalidInputError("--tenant and --agent are required for the llmdrift format")
    _check_run_ids(tenant, agent)
    fs, path = open_source(source, objects, storage_options)
    key = source_key(fs, path, source, fmt, tenant, agent)
    if fmt in IMPORT_FORMATS:
        items = import_items(fs, path, fmt, import_options or ImportOptions(), max_record_bytes, chunk_size)
    else:
        items = read_items(fs, path, fmt, max_record_bytes, chunk_size)
    run = _Run(objects, source, fmt, key, tenant, agent, known_agents, pii_patterns or {})
    return _feed(items, run, chunk_size, on_progress)


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
    pii_patterns: Mapping[str, Mapping[str, str]] | None = None,
) -> IngestReport:
    """Items that arrive without a file (the OTLP receiver), under the ledger `key` (the same key twice
    resumes: a retried request is not stored twice)."""
    _check_run_ids(tenant, agent)
    run = _Run(objects, source, fmt, key, tenant, agent, known_agents, pii_patterns or {})
    return _feed(items, run, CHUNK_SIZE, None)


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
    """`ingest` with the known agents (skipped when not `check_agents`) and PII patterns read from `store`."""
    known = tenants.known_agents(store) if check_agents else None
    patterns = {t.tenant_id: dict(t.pii_patterns) for t in tenants.list_tenants(store)} if store is not None else {}
    return ingest(source, objects, known_agents=known, pii_patterns=patterns, **kwargs)


def read_quarantine(objects: ObjectStore, tenant_id: str | None = None) -> pd.DataFrame:
    """Quarantined records (all tenants, `_unknown` included, when `tenant_id` is None)."""
    owners = [tenant_id] if tenant_id else objects.list_tenants(QUARANTINE_DATASET)
    frames = [objects.read_batches(QUARANTINE_DATASET, t) for t in owners]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


class _Run:
    """The state of one run: its ledger, its quarantine day, its scrubbers and the record ids already stored."""

    def __init__(
        self,
        objects: ObjectStore,
        source: str,
        fmt: str,
        key: str,
        tenant: str | None,
        agent: str | None,
        known_agents: Mapping[str, set[str]] | None,
        pii_patterns: Mapping[str, Mapping[str, str]],
    ) -> None:
        self.objects, self.source, self.fmt, self.key = objects, source, fmt, key
        self.tenant, self.agent, self.known_agents = tenant, agent, known_agents
        self.pii_patterns = pii_patterns
        self.report = IngestReport(source=source, format=fmt)
        self.ledger = f"_ingest/{key}"
        self.done = set(objects.list_names(self.ledger))
        self.day = self._run_day()
        self.index = 0
        self._ids: dict[tuple[str, str], dict[str, str]] = {}  # (tenant, day) -> record_id -> batch_id
        self._scrubbers: dict[str, Scrubber] = {}
        self._memos: dict[str, dict[str, str]] = {}  # tenant -> scrubbed labels (see `scrubbed_row`)

    def _run_day(self) -> str:
        # Quarantine batches of a resumed run must land in the same partition as the first attempt's.
        marker = f"{self.ledger}/_run.json"
        if "_run.json" in self.done:
            try:
                return day_str(self.objects.read_json(marker)["day"])
            except Exception:  # a damaged run marker: start the run's day afresh
                pass
        day = datetime.now(UTC).date().isoformat()
        self.objects.write_json(marker, {"day": day, "source": self.source, "format": self.fmt})
        return day

    def scrubber(self, tenant_id: str) -> Scrubber:
        if tenant_id not in self._scrubbers:
            self._scrubbers[tenant_id] = Scrubber(self.pii_patterns.get(tenant_id))
        return self._scrubbers[tenant_id]

    def process(self, items: list[Item]) -> None:
        name = f"chunk-{self.index:06d}.json"
        batch_id = f"ingest-{self.key[:20]}-{self.index:06d}"
        self.index += 1
        self.report.chunks += 1
        counts = self._finished(name) if name in self.done else None
        if counts is not None:
            self.report.add({**counts, "written": 0, "duplicates": counts["accepted"]})
            self.report.resumed_chunks += 1
            return
        counts = self._process(items, batch_id)
        self.objects.write_json(f"{self.ledger}/{name}", counts)  # the chunk is done only now
        self.report.add(counts)

    def _finished(self, name: str) -> dict[str, Any] | None:
        """The counts of a chunk an earlier run finished; None when its ledger or a batch it names is damaged."""
        try:
            counts = self.objects.read_json(f"{self.ledger}/{name}")
            ok = (
                all(isinstance(counts[k], int) for k in _COUNTS)
                and counts["accepted"] + counts["quarantined"] + counts.get("skipped", 0) == counts["read"]
            )
            for dataset, tenant_id, day, batch_id in counts.get("batches", []):
                ok = ok and self.objects.committed(dataset, tenant_id, day, batch_id) is not None
        except Exception:  # unreadable or malformed ledger marker: redo the chunk (its batches are replaced)
            return None
        return counts if ok else None

    def _process(self, items: list[Item], batch_id: str) -> dict[str, Any]:
        accepted: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        in_chunk: set[str] = set()
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
                record, row = self._accept(item)
            except RecordError as err:
                reasons[err.reason] += 1
                owner = _quarantine_tenant(item.value, self.tenant)
                quarantine[owner].append(self._quarantine_row(item, err, owner, now))
                continue
            per_tenant[record.tenant_id] += 1
            part = (record.tenant_id, record.timestamp[:10])
            known = self._known_ids(part)
            if known.get(record.record_id, batch_id) != batch_id or record.record_id in in_chunk:
                duplicates += 1  # stored by an earlier batch, or the same record twice in this chunk
                continue
            known[record.record_id] = batch_id
            in_chunk.add(record.record_id)
            accepted[part].append(row)
        meta = {"source": self.source, "format": self.fmt, "source_key": self.key}
        batches = []
        for (tenant_id, day), rows in accepted.items():
            self.objects.write_batch(TRAFFIC_DATASET, tenant_id, day, pd.DataFrame(rows), batch_id=batch_id, meta=meta)
            batches.append([TRAFFIC_DATASET, tenant_id, day, batch_id])
        for owner, rows in quarantine.items():
            frame = pd.DataFrame(rows)
            self.objects.write_batch(
                QUARANTINE_DATASET, owner, self.day, frame, fmt="jsonl", batch_id=batch_id, meta=meta
            )
            batches.append([QUARANTINE_DATASET, owner, self.day, batch_id])
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
            "batches": batches,
        }

    def _accept(self, item: Item) -> tuple[TrafficRecord, dict[str, Any]]:
        """The record and its scrubbed row, or `RecordError` (whatever went wrong: the run goes on)."""
        try:
            if item.error:
                raise item.error
            assert item.value is not None
            record = self._record(item.value)
            memo = self._memos.setdefault(record.tenant_id, {})
            return record, scrubbed_row(self.scrubber(record.tenant_id), record.to_row(), memo)
        except RecordError:
            raise
        except RecursionError as exc:  # a text field holding JSON nested too deep for the scrubber's parser
            raise RecordError("too_deep", "a text field nests JSON too deep to scrub") from exc
        except Exception as exc:  # the last line of defence: quarantined with the exception's type, never fatal
            raise RecordError("unprocessable", type(exc).__name__) from exc

    def _record(self, value: Mapping[str, Any]) -> TrafficRecord:
        if self.fmt == "llmdrift":
            assert self.tenant and self.agent
            check_known(self.tenant, self.agent, self.known_agents)
            return llmdrift_record(value, tenant=self.tenant, agent=self.agent, source=self.source)
        return normalise(
            value, tenant=self.tenant, agent=self.agent, known_agents=self.known_agents, source=self.source
        )

    def _quarantine_row(self, item: Item, err: RecordError, tenant_id: str, now: str) -> dict[str, Any]:
        """Reason, scrubbed detail and scrubbed excerpt: the raw line itself is never stored."""
        scrubber = self.scrubber(tenant_id)
        return {
            "source": self.source,
            "offset": item.offset,
            "reason": err.reason,
            "detail": _storable(_scrub(scrubber, err.detail, 500)),
            "excerpt": _storable(_scrub(scrubber, _excerpt_text(item), EXCERPT_CHARS)),
            "tenant_id": "" if tenant_id == UNKNOWN_TENANT else tenant_id,
            "quarantined_at": now,
        }

    def _known_ids(self, part: tuple[str, str]) -> dict[str, str]:
        if part not in self._ids:
            ids: dict[str, str] = {}
            for ref in self.objects.list_batches(TRAFFIC_DATASET, part[0], part[1], part[1]):
                for record_id in self.objects.read_batch(ref, ["record_id"])["record_id"]:
                    ids.setdefault(str(record_id), ref.batch_id)
            self._ids[part] = ids
        return self._ids[part]


def _check_run_ids(tenant: str | None, agent: str | None) -> None:
    for value, what in ((tenant, "tenant id"), (agent, "agent id")):
        if value is not None:
            check_identifier(value, what)


def _quarantine_tenant(value: Mapping[str, Any] | None, default: str | None) -> str:
    try:
        return tenant_of(value or {}, default)
    except Exception:  # no usable tenant, whatever the record holds
        return UNKNOWN_TENANT


def _excerpt_text(item: Item) -> str:
    # A parsed record is re-serialised with real characters (no \u escapes), so escaped PII is seen too.
    if item.value is not None:
        try:
            return json.dumps(item.value, ensure_ascii=False, default=str)[: EXCERPT_CHARS + _SCRUB_MARGIN]
        except (TypeError, ValueError, RecursionError):
            pass
    return item.raw[: EXCERPT_CHARS + _SCRUB_MARGIN]


def _scrub(scrubber: Scrubber, text: str, keep: int) -> str:
    """`text` scrubbed, then cut to `keep` characters (PII cut by the cut was scrubbed whole before)."""
    try:
        return scrubber.scrub(text[: keep + _SCRUB_MARGIN])[:keep]
    except Exception:  # a text the detectors cannot handle is not kept at all
        return "<UNSCRUBBABLE>"


def _storable(text: str) -> str:
    # Lone surrogates (from undecodable input) cannot be written as UTF-8: keep them as escapes.
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
