"""Ingestion of existing logs (JSONL, Parquet, CSV, LLMDrift CSV) with a quarantine for bad records.

Guarantees:

- **accepted + quarantined = read**: every non-blank line/row is either normalised to a `TrafficRecord`
  and stored under ``traffic/tenant=<id>/`` or stored under ``quarantine/tenant=<id or _unknown>/`` with
  its reason, detail and raw input.
- **idempotent**: record ids are deterministic; a record already stored (by any earlier batch) is
  counted as a duplicate and not written again.
- **resumable**: the input is cut into chunks of `chunk_size` records. Each chunk's batches have a
  deterministic id (source key + chunk index), and a ledger marker ``_ingest/<source key>/chunk-N.json``
  is written after all of them are committed. A rerun skips chunks with a marker and rewrites (replaces)
  the batches of an unfinished chunk: no duplicates, no gaps.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from drift_pipeline.errors import InvalidInputError, NotFoundError
from drift_pipeline.persistence.objects import (
    QUARANTINE_DATASET,
    TRAFFIC_DATASET,
    UNKNOWN_TENANT,
    ObjectStore,
    storage_options_from_env,
    validate_slug,
)
from drift_pipeline.traffic.records import TrafficRecord, compute_record_id, dumps

FORMATS = ("jsonl", "parquet", "csv", "llmdrift")
MAX_RECORD_BYTES = 1_000_000
CHUNK_SIZE = 1000
_RAW_KEEP = 65_536  # quarantine keeps at most this many characters of a raw record

_STR_FIELDS = (
    "workflow_type",
    "agent_step",
    "prompt_id",
    "requested_model",
    "pinned_model_id",
    "served_model",
    "system_fingerprint",
    "response_text",
    "finish_reason",
    "error",
)
_INT_FIELDS = ("prompt_tokens", "completion_tokens")
_JSON_FIELDS = ("tools", "response_format", "tool_calls")
_LLMDRIFT_REQUIRED = ("model", "id", "query", "answer", "timestamp")


class RecordError(Exception):
    """A record that cannot be accepted: `reason` is a short code, `detail` says what was wrong."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


@dataclass
class Item:
    """One line or row of the input: a parsed mapping, or the reason it could not be parsed."""

    offset: int
    raw: str
    value: Mapping[str, Any] | None = None
    error: RecordError | None = None


@dataclass
class IngestReport:
    """What one ingest run did. `accepted` = `written` + `duplicates`; `accepted` + `quarantined` = `read`."""

    source: str
    format: str
    read: int = 0
    accepted: int = 0
    quarantined: int = 0
    written: int = 0
    duplicates: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    tenants: Counter[str] = field(default_factory=Counter)
    chunks: int = 0
    resumed_chunks: int = 0

    def add(self, other: Mapping[str, Any]) -> None:
        for key in ("read", "accepted", "quarantined", "written", "duplicates"):
            setattr(self, key, getattr(self, key) + int(other.get(key, 0)))
        self.reasons.update(other.get("reasons", {}))
        self.tenants.update(other.get("tenants", {}))

    def to_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "accepted": self.accepted,
            "quarantined": self.quarantined,
            "reasons": dict(sorted(self.reasons.items())),
            "written": self.written,
            "duplicates": self.duplicates,
            "tenants": dict(sorted(self.tenants.items())),
            "chunks": self.chunks,
            "resumed_chunks": self.resumed_chunks,
            "source": self.source,
            "format": self.format,
        }


# -- public API -----------------------------------------------------------------------------------------


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
) -> IngestReport:
    """Ingest one file (local path or ``s3://`` URL) into `objects`.

    `tenant`/`agent` fill records that lack them (a record naming another tenant is quarantined);
    `known_agents` (tenant -> agent ids with a manifest) rejects unknown tenants/agents when given.
    `on_progress(n)` is called with the number of records read after each chunk.
    """
    if fmt not in FORMATS:
        raise InvalidInputError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if fmt == "llmdrift" and not (tenant and agent):
        raise InvalidInputError("--tenant and --agent are required for the llmdrift format")
    for value, what in ((tenant, "tenant id"), (agent, "agent id")):
        if value is not None:
            validate_slug(value, what)
    fs, path = _open_fs(source, objects, storage_options)
    key = _source_key(fs, path, source, fmt, tenant, agent)
    run = _Run(objects, source, fmt, key, tenant, agent, known_agents)
    items = _read_items(fs, path, fmt, max_record_bytes, chunk_size)
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
    known = known_agents_from_store(store) if check_agents else None
    return ingest(source, objects, known_agents=known, **kwargs)


def known_agents_from_store(store: Any) -> dict[str, set[str]]:
    """Tenant -> agent ids with a manifest, from `drift_pipeline.versioning.manifests`."""
    from drift_pipeline.versioning.manifests import known_agents

    return known_agents(store)


def read_quarantine(objects: ObjectStore, tenant_id: str | None = None) -> pd.DataFrame:
    """Quarantined records (all tenants, `_unknown` included, when `tenant_id` is None)."""
    tenants = [tenant_id] if tenant_id else objects.list_tenants(QUARANTINE_DATASET)
    frames = [objects.read_batches(QUARANTINE_DATASET, t) for t in tenants]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def normalise(
    value: Mapping[str, Any],
    *,
    tenant: str | None = None,
    agent: str | None = None,
    known_agents: Mapping[str, set[str]] | None = None,
    source: str = "",
) -> TrafficRecord:
    """A `TrafficRecord` from one log record, or `RecordError` with the reason it is rejected."""
    tenant_id = _tenant(value, tenant)
    agent_id = _text(value.get("agent_id") or value.get("agent") or agent, "agent_id")
    if not agent_id:
        raise RecordError("missing_agent", "no agent_id and no --agent")
    check_known(tenant_id, agent_id, known_agents)
    fields: dict[str, Any] = {name: _text(value.get(name), name) for name in _STR_FIELDS}
    if not fields["response_text"] and value.get("response") is not None:
        fields["response_text"] = _text(value.get("response"), "response")
    for name in _INT_FIELDS:
        fields[name] = _int(value.get(name), name)
    fields["latency_ms"] = _float(value.get("latency_ms"), "latency_ms")
    for name in _JSON_FIELDS:
        fields[name] = dumps(_json_value(value.get(name), name))
    fields["workflow_type"] = fields["workflow_type"] or "default"
    fields["agent_step"] = fields["agent_step"] or "default"
    reroute = value.get("silent_reroute")
    if reroute is not None and not isinstance(reroute, bool):
        raise RecordError("wrong_type", f"silent_reroute must be a boolean, got {type(reroute).__name__}")
    fields["silent_reroute"] = bool(reroute) or is_silent_reroute(fields["pinned_model_id"], fields["served_model"])
    return TrafficRecord(
        tenant_id=tenant_id,
        agent_id=agent_id,
        timestamp=_timestamp(value.get("timestamp")),
        messages=dumps(_messages(value)),
        source=_text(value.get("source"), "source") or source,
        **fields,
    )


def check_known(tenant_id: str, agent_id: str, known_agents: Mapping[str, set[str]] | None) -> None:
    """Raise `RecordError` unless the agent has a manifest (no check when `known_agents` is None)."""
    if known_agents is None:
        return
    if tenant_id not in known_agents:
        raise RecordError("unknown_tenant", f"tenant {tenant_id!r} has no manifest")
    if agent_id not in known_agents[tenant_id]:
        raise RecordError("unknown_agent", f"agent {agent_id!r} of tenant {tenant_id!r} has no manifest")


def normalise_model(name: str | None) -> str:
    """Compare model names without provider prefixes or case: 'openai/GPT-4o' == 'gpt-4o'."""
    return (name or "").strip().rsplit("/", 1)[-1].lower()


def is_silent_reroute(pinned: str | None, served: str | None) -> bool:
    """True when the provider served a model other than the pinned one (both known)."""
    return bool(pinned and served) and normalise_model(pinned) != normalise_model(served)


def llmdrift_record(row: Mapping[str, Any], *, tenant: str, agent: str, source: str) -> TrafficRecord:
    """One LLMDrift CSV row: model -> model version, id -> prompt id, query -> prompt, answer -> response."""
    missing = [c for c in _LLMDRIFT_REQUIRED if c not in row or row[c] is None]
    if missing:
        raise RecordError("missing_field", f"LLMDrift row lacks {', '.join(missing)}")
    version = str(row["model"]).strip().rsplit("/", 1)[-1]  # 'openaichat/gpt-4-0613' -> 'gpt-4-0613'
    dataset = str(row.get("dataset") or "llmdrift").strip() or "llmdrift"
    prompt_id = f"{dataset}:{str(row['id']).strip()}"
    try:
        stamp = datetime.strptime(str(row["timestamp"]).strip(), "%m/%d/%Y, %H:%M:%S").replace(tzinfo=UTC)
    except ValueError as exc:
        raise RecordError("bad_timestamp", f"{row['timestamp']!r} is not MM/DD/YYYY, HH:MM:SS") from exc
    latency = _float(row.get("latency") or None, "latency")
    record = normalise(
        {
            "timestamp": stamp.isoformat(),
            "prompt_id": prompt_id,
            "requested_model": version,
            "pinned_model_id": version,
            "served_model": version,
            "messages": [{"role": "user", "content": str(row["query"])}],
            "response_text": str(row["answer"]),
            "latency_ms": None if latency is None else latency * 1000,
            "completion_tokens": _int(row.get("answer_token") or None, "answer_token"),
            "workflow_type": dataset,
        },
        tenant=tenant,
        agent=agent,
        source=source,
    )
    # The file's timestamp is per run, not per call: the version and prompt id make each row distinct.
    record.record_id = compute_record_id(tenant, agent, f"{record.timestamp}|{version}|{prompt_id}", record.messages)
    return record


# -- the run: chunks, dedup, batches, ledger --------------------------------------------------------------


class _Run:
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
        tenants: Counter[str] = Counter()
        duplicates = 0
        now = datetime.now(UTC).isoformat()
        for item in items:
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
            tenants[record.tenant_id] += 1
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
        n_accepted = sum(tenants.values())
        return {
            "read": len(items),
            "accepted": n_accepted,
            "quarantined": sum(reasons.values()),
            "written": n_accepted - duplicates,
            "duplicates": duplicates,
            "reasons": dict(reasons),
            "tenants": dict(tenants),
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


# -- reading the input ------------------------------------------------------------------------------------


def _open_fs(source: str, objects: ObjectStore, options: Mapping[str, Any] | None) -> tuple[Any, str]:
    import fsspec

    if options is None:
        same_scheme = source.split("://", 1)[0] == objects.url.split("://", 1)[0] and "://" in source
        options = objects.storage_options if same_scheme else storage_options_from_env(source)
    fs, path = fsspec.core.url_to_fs(source, **dict(options))
    try:
        info = fs.info(path)
    except FileNotFoundError as exc:
        raise NotFoundError(f"no such file: {source}") from exc
    if info.get("type") == "directory":
        raise InvalidInputError(f"{source} is a folder: ingest one file at a time")
    return fs, path


def _source_key(fs: Any, path: str, source: str, fmt: str, tenant: str | None, agent: str | None) -> str:
    info = fs.info(path)
    version = info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("LastModified") or ""
    ident = json.dumps([source, info.get("size"), str(version), fmt, tenant, agent])
    return hashlib.sha256(ident.encode("utf-8")).hexdigest()[:32]


def _read_items(fs: Any, path: str, fmt: str, max_bytes: int, chunk_size: int) -> Iterator[Item]:
    if fmt == "jsonl":
        return _jsonl_items(fs, path, max_bytes)
    if fmt == "parquet":
        return _parquet_items(fs, path, max_bytes, chunk_size)
    return _csv_items(fs, path, max_bytes)


def _jsonl_items(fs: Any, path: str, max_bytes: int) -> Iterator[Item]:
    with fs.open(path, "rb") as fh:
        offset = -1
        for line in fh:
            line = line.rstrip(b"\r\n")
            if not line.strip():
                continue  # blank lines are not records
            offset += 1
            if len(line) > max_bytes:
                raw = line[:_RAW_KEEP].decode("utf-8", "backslashreplace")
                yield Item(offset, raw, error=RecordError("oversized", f"{len(line)} bytes > {max_bytes}"))
                continue
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                raw = line.decode("utf-8", "backslashreplace")
                yield Item(offset, raw, error=RecordError("bad_encoding", f"not UTF-8 at byte {exc.start}"))
                continue
            try:
                value = json.loads(text)
            except ValueError as exc:
                yield Item(offset, text, error=RecordError("not_json", str(exc)))
                continue
            if not isinstance(value, dict):
                yield Item(offset, text, error=RecordError("not_an_object", f"a JSON {type(value).__name__}"))
                continue
            yield Item(offset, text, value=value)


def _parquet_items(fs: Any, path: str, max_bytes: int, chunk_size: int) -> Iterator[Item]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with fs.open(path, "rb") as fh:
        try:
            parquet = pq.ParquetFile(fh)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InvalidInputError(f"{path} is not a readable Parquet file: {exc}") from exc
        offset = 0
        for batch in parquet.iter_batches(batch_size=chunk_size):
            for row in batch.to_pylist():
                raw = json.dumps(row, default=str, ensure_ascii=False)
                if len(raw.encode("utf-8")) > max_bytes:
                    yield Item(offset, raw[:_RAW_KEEP], error=RecordError("oversized", f"row > {max_bytes} bytes"))
                else:
                    yield Item(offset, raw, value=row)
                offset += 1


def _csv_items(fs: Any, path: str, max_bytes: int) -> Iterator[Item]:
    # Quoted fields may span lines and be large: let our size check decide, not csv's field limit.
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))
    with fs.open(path, "rb") as fh:
        text = io.TextIOWrapper(fh, encoding="utf-8", errors="surrogateescape", newline="")
        reader = csv.reader(text)
        header = next(reader, None)
        if header is None:
            return
        for offset, cells in enumerate(reader):
            if not cells:
                continue
            raw = json.dumps(cells, ensure_ascii=False).encode("utf-8", "backslashreplace").decode("utf-8")
            if any(_has_surrogates(c) for c in cells):
                yield Item(offset, raw[:_RAW_KEEP], error=RecordError("bad_encoding", "not UTF-8"))
            elif sum(len(c) for c in cells) > max_bytes:
                yield Item(offset, raw[:_RAW_KEEP], error=RecordError("oversized", f"row > {max_bytes} bytes"))
            elif len(cells) != len(header):
                detail = f"expected {len(header)} columns, got {len(cells)}"
                yield Item(offset, raw, error=RecordError("bad_row", detail))
            else:
                yield Item(offset, raw, value={k: (v if v != "" else None) for k, v in zip(header, cells, strict=True)})


def _has_surrogates(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


# -- field coercion ----------------------------------------------------------------------------------------


def _tenant(value: Mapping[str, Any], default: str | None) -> str:
    tenant_id = _text(value.get("tenant_id") or value.get("tenant"), "tenant_id")
    if default and tenant_id and tenant_id != default:
        raise RecordError("tenant_mismatch", f"record names tenant {tenant_id!r}, the run is for {default!r}")
    tenant_id = tenant_id or (default or "")
    if not tenant_id:
        raise RecordError("missing_tenant", "no tenant_id and no --tenant")
    try:
        return validate_slug(tenant_id)
    except InvalidInputError as exc:
        raise RecordError("invalid_tenant", str(exc)) from exc


def _quarantine_tenant(value: Mapping[str, Any] | None, default: str | None) -> str:
    try:
        return _tenant(value or {}, default)
    except RecordError:
        return UNKNOWN_TENANT


def _quarantine_row(source: str, item: Item, err: RecordError, tenant_id: str, now: str) -> dict[str, Any]:
    return {
        "source": source,
        "offset": item.offset,
        "reason": err.reason,
        "detail": err.detail,
        "raw": item.raw[:_RAW_KEEP],
        "tenant_id": "" if tenant_id == UNKNOWN_TENANT else tenant_id,
        "quarantined_at": now,
    }


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _text(value: Any, name: str) -> str:
    if _missing(value):
        return ""
    if not isinstance(value, str):
        raise RecordError("wrong_type", f"{name} must be a string, got {type(value).__name__}")
    return value


def _int(value: Any, name: str) -> int | None:
    if _missing(value):
        return None
    if isinstance(value, bool):
        raise RecordError("wrong_type", f"{name} must be an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise RecordError("wrong_type", f"{name} must be an integer, got {value!r}"[:200])


def _float(value: Any, name: str) -> float | None:
    if _missing(value):
        return None
    if isinstance(value, bool):
        raise RecordError("wrong_type", f"{name} must be a number, got a boolean")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise RecordError("wrong_type", f"{name} must be a number, got {value!r}"[:200])


def _json_value(value: Any, name: str) -> Any:
    if _missing(value):
        return None
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise RecordError("wrong_type", f"{name} is a string but not JSON") from exc
    if isinstance(value, dict | list):
        return value
    raise RecordError("wrong_type", f"{name} must be JSON, got {type(value).__name__}")


def _messages(value: Mapping[str, Any]) -> list[dict[str, Any]]:
    messages = _json_value(value.get("messages"), "messages")
    if messages is None:
        prompt = value.get("prompt")
        if _missing(prompt):
            raise RecordError("missing_messages", "no messages and no prompt")
        return [{"role": "user", "content": _text(prompt, "prompt")}]
    if not isinstance(messages, list) or not messages:
        raise RecordError("wrong_type", "messages must be a non-empty list")
    for message in messages:
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise RecordError("wrong_type", "each message must be an object with a string role")
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise RecordError("wrong_type", "message content must be a string or a list of parts")
    return messages


def _timestamp(value: Any) -> str:
    if _missing(value):
        raise RecordError("missing_timestamp", "no timestamp")
    if isinstance(value, bool):
        raise RecordError("wrong_type", "timestamp must be ISO 8601 or epoch seconds, got a boolean")
    try:
        if isinstance(value, datetime):
            stamp = value
        elif isinstance(value, int | float):
            stamp = datetime.fromtimestamp(float(value), UTC)
        elif isinstance(value, str):
            stamp = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        else:
            raise RecordError("wrong_type", f"timestamp must be ISO 8601 or epoch seconds, got {type(value).__name__}")
    except (ValueError, OverflowError, OSError) as exc:
        raise RecordError("bad_timestamp", f"{value!r} is not ISO 8601"[:200]) from exc
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)  # logs without an offset are taken as UTC
    return stamp.astimezone(UTC).isoformat()
