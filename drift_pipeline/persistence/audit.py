"""Append-only, hash-chained audit log: every registry, manifest, drift, alert and migration event.

Each entry's hash covers its own content and its predecessor's hash, so editing, deleting or reordering
any row breaks the chain from that row on; `verify` names the first entry that does not match. A tenant's
entries also form their own sub-chain (`tenant_seq`, `tenant_prev_hash`), so a tenant holding only its
entries can see one is missing. The entries are the leaves of an RFC 9162 Merkle tree (`merkle`), whose
signed checkpoints (`checkpoints`) catch what a chain alone cannot: a cut tail, or a rewrite that
recomputes every later hash (`audit_verify`). Per-tenant proofs: `audit_proofs`.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from drift_pipeline.errors import InvalidInputError
from drift_pipeline.persistence import merkle
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.tables import AuditEntry

if TYPE_CHECKING:
    from drift_pipeline.persistence.objects import ObjectStore

GENESIS = "0" * 64
EXPORT_FORMATS = ("csv", "jsonl", "parquet")


def utcnow() -> datetime:
    return datetime.now(UTC)


def append(
    store: Store,
    session: Session,
    *,
    actor: str,
    action: str,
    subject: str,
    tenant_id: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str = "",
) -> AuditEntry:
    """Append one entry inside the caller's transaction, so the change and its record commit together."""
    store.lock_audit_chain(session)
    last = session.execute(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).scalar_one_or_none()
    tenant_seq, tenant_prev = _tenant_link(session, tenant_id)
    entry = AuditEntry(
        seq=(last.seq + 1) if last else 1,
        ts=utcnow(),
        actor=actor,
        action=action,
        tenant_id=tenant_id,
        subject=subject,
        before=_jsonable(before),
        after=_jsonable(after),
        reason=reason,
        prev_hash=last.hash if last else GENESIS,
        tenant_seq=tenant_seq,
        tenant_prev_hash=tenant_prev,
    )
    entry.hash = entry_hash(entry)
    session.add(entry)
    session.flush()
    return entry


def _tenant_link(session: Session, tenant_id: str | None) -> tuple[int | None, str | None]:
    """Position and predecessor of a new entry in its tenant's sub-chain (none for platform entries)."""
    if tenant_id is None:
        return None, None
    tenant = select(AuditEntry).where(AuditEntry.tenant_id == tenant_id)
    last = session.execute(tenant.order_by(AuditEntry.seq.desc()).limit(1)).scalar_one_or_none()
    if last is None:
        return 1, GENESIS
    if last.tenant_seq is not None:
        return last.tenant_seq + 1, last.hash
    # The tenant's entries so far predate the sub-chain (revision 0002): number on from their count.
    count = session.execute(select(func.count()).select_from(tenant.subquery())).scalar_one()
    return int(count) + 1, last.hash


BODY_FIELDS = ("seq", "ts", "actor", "action", "tenant_id", "subject", "before", "after", "reason", "prev_hash")
TENANT_FIELDS = ("tenant_seq", "tenant_prev_hash")


def body_bytes(fields: Mapping[str, Any]) -> bytes:
    """The canonical bytes an entry's hash and Merkle leaf cover, from an entry row dict (`entries()`).

    The per-tenant fields are covered only when set, so entries written before they existed keep their hash."""
    body = {k: fields[k] for k in BODY_FIELDS}
    if fields.get("tenant_seq") is not None:
        body.update({k: fields[k] for k in TENANT_FIELDS})
    return json.dumps(body, sort_keys=True, default=str).encode("utf-8")


def row_hash(fields: Mapping[str, Any]) -> str:
    """sha256 over the canonical JSON of the entry's content and its predecessor's hash (the chain hash)."""
    return hashlib.sha256(body_bytes(fields)).hexdigest()


def row_leaf(fields: Mapping[str, Any]) -> bytes:
    """The entry's Merkle leaf hash: H(0x00 || entry bytes), RFC 9162."""
    return merkle.leaf_hash(body_bytes(fields))


def entry_hash(entry: AuditEntry) -> str:
    return row_hash(_row(entry))


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str = ""
    root_hash: str = ""
    checkpoints: int = 0  # checkpoints (store and object copies, each counted once) found consistent
    bad_checkpoint: str | None = None  # the checkpoint the log contradicts, when that is the problem
    notes: list[str] = field(default_factory=list)


def verify(store: Store, objects: ObjectStore | None = None, public_keys: list[bytes] | None = None) -> VerifyResult:
    """Check the chain, the tenant sub-chains, the Merkle tree and every checkpoint (the store's, and the
    object-storage copies when `objects` is given); see `audit_verify.verify_log`."""
    from drift_pipeline.persistence.audit_verify import verify_log

    return verify_log(store, objects, public_keys)


def all_rows(store: Store, upto: int | None = None) -> list[dict[str, Any]]:
    """Every entry as a row dict, oldest first (up to seq `upto`)."""
    with store.session() as session:
        return rows_in(session, upto)


def rows_in(session: Session, upto: int | None = None) -> list[dict[str, Any]]:
    """`all_rows` inside the caller's session (a transaction that holds the audit lock)."""
    query = select(AuditEntry).order_by(AuditEntry.seq)
    if upto is not None:
        query = query.where(AuditEntry.seq <= upto)
    return [_row(e) for e in session.execute(query).scalars()]


def entries(
    store: Store,
    *,
    tenant_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    action_prefix: str | None = None,
) -> list[dict[str, Any]]:
    """Entries as plain dicts, oldest first, filtered by tenant, time range and action prefix."""
    query = select(AuditEntry).order_by(AuditEntry.seq)
    if tenant_id:
        query = query.where(AuditEntry.tenant_id == tenant_id)
    if since:
        query = query.where(AuditEntry.ts >= since)
    if until:
        query = query.where(AuditEntry.ts < until)
    if action_prefix:
        query = query.where(AuditEntry.action.startswith(action_prefix))
    with store.session() as session:
        return [_row(e) for e in session.execute(query).scalars()]


def export(rows: list[dict[str, Any]], fmt: str, output: Path | None) -> str | None:
    """Write rows as CSV, JSONL or Parquet to `output` (atomically); with no output, return CSV/JSONL text."""
    if fmt not in EXPORT_FORMATS:
        raise InvalidInputError(f"unknown export format {fmt!r}: use one of {', '.join(EXPORT_FORMATS)}")
    import pandas as pd

    frame = pd.DataFrame(rows, columns=list(_row_columns()))
    frame["tenant_seq"] = frame["tenant_seq"].astype("Int64")  # stays an integer column with gaps for nulls
    for col in ("before", "after"):  # nested JSON stays one readable, lossless cell in every format
        frame[col] = frame[col].map(lambda v: None if v is None else json.dumps(v, sort_keys=True))
    if fmt == "parquet":
        if output is None:
            raise InvalidInputError("parquet export needs --output FILE")
        write_atomically(output, lambda tmp: frame.to_parquet(tmp, index=False))
        return None
    text = frame.to_csv(index=False) if fmt == "csv" else frame.to_json(orient="records", lines=True)
    if output is None:
        return text
    write_atomically(output, lambda tmp: tmp.write_bytes(text.encode("utf-8")))
    return None


def write_atomically(output: Path, write: Callable[[Path], None]) -> None:
    """`write` a temporary file beside `output`, flush it to disk, then rename it into place: a crash at
    any point leaves either the old file or the complete new one under `output`, never a partial one."""
    output = Path(output)
    tmp = output.with_name(f".{output.name}.tmp-{uuid.uuid4().hex[:12]}")
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)


def _row_columns() -> tuple[str, ...]:
    return (*BODY_FIELDS, "hash", *TENANT_FIELDS)


def _row(entry: AuditEntry) -> dict[str, Any]:
    row = {c: getattr(entry, c) for c in _row_columns()}
    row["ts"] = _ts(entry.ts)
    return row


def _ts(ts: datetime) -> str:
    # SQLite returns naive datetimes; all stored times are UTC, so normalise before hashing.
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).isoformat(timespec="microseconds")


def _jsonable(value: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if value is None else json.loads(json.dumps(value, default=str))
