"""Append-only, hash-chained audit log: every registry, manifest, drift, alert and migration event.

Each entry's hash covers its own content and its predecessor's hash, so editing, deleting or reordering
any row breaks the chain from that row on; `verify` names the first entry that does not match.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from drift_pipeline import files
from drift_pipeline.errors import InvalidInputError
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.tables import AuditEntry

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
    )
    entry.hash = entry_hash(entry)
    session.add(entry)
    session.flush()
    return entry


def entry_hash(entry: AuditEntry) -> str:
    """sha256 over the canonical JSON of the entry's content and its predecessor's hash."""
    body = {
        "seq": entry.seq,
        "ts": _ts(entry.ts),
        "actor": entry.actor,
        "action": entry.action,
        "tenant_id": entry.tenant_id,
        "subject": entry.subject,
        "before": entry.before,
        "after": entry.after,
        "reason": entry.reason,
        "prev_hash": entry.prev_hash,
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str = ""


def verify(store: Store) -> VerifyResult:
    """Walk the chain in order; report the first entry whose position, link or hash does not match."""
    prev_hash, expected_seq, checked = GENESIS, 1, 0
    with store.session() as session:
        for entry in session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars():
            problem = ""
            if entry.seq != expected_seq:
                problem = f"expected entry {expected_seq} here, found {entry.seq} (missing or reordered)"
            elif entry.prev_hash != prev_hash:
                problem = "its predecessor link does not match the previous entry (reordered or removed)"
            elif entry.hash != entry_hash(entry):
                problem = "its content does not match its hash (edited)"
            if problem:
                return VerifyResult(False, checked, entry.seq, problem)
            prev_hash, expected_seq, checked = entry.hash, entry.seq + 1, checked + 1
    return VerifyResult(True, checked)


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
    """Write rows as CSV, JSONL or Parquet to `output`; with no output, return CSV/JSONL text."""
    if fmt not in EXPORT_FORMATS:
        raise InvalidInputError(f"unknown export format {fmt!r}: use one of {', '.join(EXPORT_FORMATS)}")
    import pandas as pd

    frame = pd.DataFrame(rows, columns=list(_row_columns()))
    for col in ("before", "after"):  # nested JSON stays one readable, lossless cell in every format
        frame[col] = frame[col].map(lambda v: None if v is None else json.dumps(v, sort_keys=True))
    if fmt == "parquet":
        if output is None:
            raise InvalidInputError("parquet export needs --output FILE")
        files.write_private(output, frame.to_parquet(index=False))  # owner-only, temp name + rename
        return None
    text = frame.to_csv(index=False) if fmt == "csv" else frame.to_json(orient="records", lines=True)
    if output is None:
        return text
    files.write_private(output, text.encode("utf-8"))
    return None


def _row_columns() -> tuple[str, ...]:
    return ("seq", "ts", "actor", "action", "tenant_id", "subject", "before", "after", "reason", "prev_hash", "hash")


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
