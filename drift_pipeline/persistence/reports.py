"""Reports bound to their origin: drift reports and staging results the system produced, stored by id.

Only a report recorded here can approve a migration, back a promotion or answer evidence. `record` stores
the canonical JSON body with its sha256 in `stored_reports`, copies the same bytes to object storage and
writes the hash to the audit log in the same transaction. `verify` recomputes the hash on use and compares
it with the row, the audit entry and (when given) the object copy: an insider who edits the row, or a
report file edited on disk, is refused. A file handed in on the command line is only ever an
*attachment* marked `external, unverified` (`external_attachment`).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from drift_pipeline.errors import IntegrityError, InvalidInputError, NotFoundError, RefusedError
from drift_pipeline.persistence import audit
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.objects import ObjectStore
from drift_pipeline.persistence.tables import AuditEntry, StoredReport

KINDS = ("drift", "staging")
EXTERNAL = "external, unverified"
RECORDED = "report.recorded"  # the audit action that anchors a report's hash
_IN_CHUNK = 500  # ids per IN (...) query: well under SQLite's and PostgreSQL's parameter limits


def canonical_json(value: Any) -> bytes:
    """The one byte form that is hashed and signed: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")


def content_hash(value: Any) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()


@dataclass(frozen=True)
class ReportInfo:
    report_id: str
    kind: str
    tenant_id: str
    agent_id: str
    model_id: str
    sha256: str
    body: dict[str, Any]
    uri: str | None
    created_at: datetime
    created_by: str

    def reference(self) -> dict[str, Any]:
        """What a migration or an evidence file keeps: the id and the hash, never a path."""
        return {"report_id": self.report_id, "sha256": self.sha256, "origin": "system", "uri": self.uri}


def check_subject(
    body: Mapping[str, Any], tenant_id: str, agent_id: str, model_id: str | None, *, unnamed_model_ok: bool = False
) -> None:
    """Refuse a report about another tenant, agent or model, or one with no paired replays (`unnamed_model_ok`:
    a file that names no model is not about another one)."""
    if not isinstance(body.get("dimensions"), list) or "drift_detected" not in body:
        raise InvalidInputError("not a drift report: it has no 'dimensions'/'drift_detected'")
    n_pairs = body.get("n_pairs")
    if isinstance(n_pairs, bool) or not isinstance(n_pairs, int) or n_pairs < 1:
        raise RefusedError(f"the drift report has no paired replays (n_pairs {n_pairs!r})")
    for key, want in (("tenant_id", tenant_id), ("agent_id", agent_id)):
        if body.get(key) not in (None, want):
            raise RefusedError(f"the drift report is for {key} {body.get(key)!r}, not {want!r}")
    named = body.get("candidate")
    if model_id is not None and named != model_id and not (unnamed_model_ok and named is None):
        raise RefusedError(f"the drift report is about model {body.get('candidate')!r}, not {model_id!r}")


def record(
    store: Store,
    session: Session,
    *,
    kind: str,
    tenant_id: str,
    agent_id: str,
    model_id: str,
    body: Mapping[str, Any],
    actor: str,
    objects: ObjectStore | None = None,
) -> ReportInfo:
    """Store a system-produced report inside the caller's transaction (row, object copy, audit entry)."""
    if kind not in KINDS:
        raise InvalidInputError(f"unknown report kind {kind!r}")
    check_subject(body, tenant_id, agent_id, model_id)
    data = canonical_json(body)
    clean = json.loads(data)  # exactly what is hashed is what is stored
    sha = hashlib.sha256(data).hexdigest()
    report_id = f"rpt-{uuid.uuid4().hex[:20]}"
    uri = None
    if objects is not None:  # copy first: an orphan object is harmless, a row without its copy is not
        rel = object_path(tenant_id, report_id)
        objects.write_bytes(rel, data)
        uri = objects.uri(rel)
    row = StoredReport(
        report_id=report_id,
        kind=kind,
        tenant_id=tenant_id,
        agent_id=agent_id,
        model_id=model_id,
        sha256=sha,
        body=clean,
        uri=uri,
        created_at=audit.utcnow(),
        created_by=actor,
    )
    session.add(row)
    session.flush()
    audit.append(
        store,
        session,
        actor=actor,
        action=RECORDED,
        subject=f"report:{report_id}",
        tenant_id=tenant_id,
        after={"report_id": report_id, "kind": kind, "agent_id": agent_id, "model_id": model_id, "sha256": sha},
        reason=f"{kind} report of {model_id} for {tenant_id}/{agent_id}",
    )
    return _info(row)


def object_path(tenant_id: str, report_id: str) -> str:
    return f"reports/tenant={tenant_id}/origin/{report_id}.json"


def get(store: Store, report_id: str) -> ReportInfo:
    with store.session() as session:
        row = session.get(StoredReport, report_id)
        if row is None:
            raise NotFoundError(f"no stored report {report_id!r}")
        return _info(row)


def latest(store: Store, tenant_id: str, agent_id: str, model_id: str, kind: str = "drift") -> ReportInfo | None:
    """The newest stored report of a tenant agent against `model_id` (not yet verified: call `verify`)."""
    query = (
        select(StoredReport)
        .where(
            StoredReport.tenant_id == tenant_id,
            StoredReport.agent_id == agent_id,
            StoredReport.model_id == model_id,
            StoredReport.kind == kind,
        )
        .order_by(StoredReport.created_at.desc())
        .limit(1)
    )
    with store.session() as session:
        row = session.execute(query).scalar_one_or_none()
        return None if row is None else _info(row)


def latest_per_subject(store: Store, *, kind: str = "drift", since: datetime) -> list[ReportInfo]:
    """The newest stored report of each (tenant, agent, model) recorded since `since` (not verified)."""
    newest = (
        select(
            StoredReport.tenant_id,
            StoredReport.agent_id,
            StoredReport.model_id,
            func.max(StoredReport.created_at).label("created_at"),
        )
        .where(StoredReport.kind == kind, StoredReport.created_at >= since)
        .group_by(StoredReport.tenant_id, StoredReport.agent_id, StoredReport.model_id)
        .subquery()
    )
    query = (
        select(StoredReport)
        .join(
            newest,
            and_(
                StoredReport.tenant_id == newest.c.tenant_id,
                StoredReport.agent_id == newest.c.agent_id,
                StoredReport.model_id == newest.c.model_id,
                StoredReport.created_at == newest.c.created_at,
            ),
        )
        .where(StoredReport.kind == kind)
    )
    with store.session() as session:
        return [_info(row) for row in session.execute(query).scalars()]


def verify(
    store: Store,
    report_id: str,
    *,
    tenant_id: str,
    agent_id: str,
    model_id: str | None = None,
    expected_sha256: str | None = None,
    objects: ObjectStore | None = None,
) -> ReportInfo:
    """The stored report, after checking it is this subject's and that nothing about it was changed."""
    info = get(store, report_id)
    if (info.tenant_id, info.agent_id) != (tenant_id, agent_id):
        raise RefusedError(
            f"report {report_id} belongs to {info.tenant_id}/{info.agent_id}, not {tenant_id}/{agent_id}"
        )
    if model_id is not None and info.model_id != model_id:
        raise RefusedError(f"report {report_id} is about {info.model_id!r}, not {model_id!r}")
    check_integrity(info, recorded_hashes(store, [report_id]).get(report_id))
    if expected_sha256 is not None and expected_sha256 != info.sha256:
        raise IntegrityError(f"report {report_id} is not the report that was referenced (hash differs)")
    if objects is not None and info.uri:
        copy = objects.read_bytes(object_path(info.tenant_id, report_id))
        if hashlib.sha256(copy).hexdigest() != info.sha256:
            raise IntegrityError(f"report {report_id} does not match its object-storage copy")
    check_subject(info.body, tenant_id, agent_id, model_id)
    return info


def external_attachment(path: Path, tenant_id: str, agent_id: str, model_id: str | None) -> dict[str, Any]:
    """A report file from outside the system: kept for the reader, marked unverified, never relied on."""
    body = load_file(path)
    check_subject(body, tenant_id, agent_id, model_id, unnamed_model_ok=True)
    return {"origin": EXTERNAL, "file": path.name, "sha256": content_hash(body), "report": body}


def load_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidInputError(f"cannot read drift report {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidInputError(f"drift report {path} is not a JSON object")
    return data


def check_integrity(info: ReportInfo, audited_sha256: str | None) -> None:
    """Refuse a report whose body is not the one hashed, or whose hash is not the one the audit log recorded
    (`recorded_hashes`): an insider would have to rewrite the anchored audit chain as well."""
    if content_hash(info.body) != info.sha256:
        raise IntegrityError(f"report {info.report_id} was edited: its content does not match its stored hash")
    if audited_sha256 != info.sha256:
        raise IntegrityError(f"report {info.report_id} does not match the hash the audit log recorded for it")


def recorded_hashes(store: Store, report_ids: Sequence[str]) -> dict[str, str]:
    """The hash the audit log recorded when each report was stored (its first `report.recorded` entry; a
    report whose first entry holds no hash has none, whatever later entries claim)."""
    found: dict[str, str | None] = {}
    with store.session() as session:
        for start in range(0, len(report_ids), _IN_CHUNK):
            subjects = [f"report:{r}" for r in report_ids[start : start + _IN_CHUNK]]
            query = (
                select(AuditEntry.subject, AuditEntry.after)
                .where(AuditEntry.action == RECORDED, AuditEntry.subject.in_(subjects))
                .order_by(AuditEntry.seq)
            )
            for subject, after in session.execute(query):
                report_id = subject.removeprefix("report:")
                if report_id not in found:
                    sha256 = after.get("sha256") if isinstance(after, dict) else None
                    found[report_id] = sha256 if isinstance(sha256, str) else None
    return {report_id: sha256 for report_id, sha256 in found.items() if sha256 is not None}


def _info(row: StoredReport) -> ReportInfo:
    return ReportInfo(
        report_id=row.report_id,
        kind=row.kind,
        tenant_id=row.tenant_id,
        agent_id=row.agent_id,
        model_id=row.model_id,
        sha256=row.sha256,
        # A body edited into a non-object reads as {}: it fails verification instead of raising in readers.
        body=dict(row.body) if isinstance(row.body, dict) else {},
        uri=row.uri,
        created_at=row.created_at,
        created_by=row.created_by,
    )
