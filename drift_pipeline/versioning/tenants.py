"""Tenants: the settings every agent manifest of a tenant carries (contact, regulation, consent, cadence, PII).

A tenant must exist before any of its agents is pinned. Changing a tenant's settings writes a new manifest
revision for each of its agents, so every revision records the settings that were in force with it.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from drift_pipeline.errors import InvalidInputError, NotFoundError, RefusedError
from drift_pipeline.identifiers import check_identifier
from drift_pipeline.persistence import audit
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.tables import ManifestRevision, Tenant

CADENCES = ("daily", "hourly")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True)
class TenantInfo:
    tenant_id: str
    contact: str | None = None
    regulated: bool = False
    sampling_consent: bool = True
    cadence: str = "daily"
    pii_patterns: dict[str, str] = field(default_factory=dict)


def add_tenant(
    store: Store,
    tenant_id: str,
    *,
    actor: str,
    contact: str | None = None,
    regulated: bool = False,
    sampling_consent: bool = True,
    cadence: str = "daily",
    pii_patterns: dict[str, str] | None = None,
    reason: str = "",
) -> TenantInfo:
    check_identifier(tenant_id, "tenant id")
    info = TenantInfo(tenant_id, contact, regulated, sampling_consent, cadence, dict(pii_patterns or {}))
    validate(info)
    with store.transaction() as session:
        if session.get(Tenant, tenant_id) is not None:
            raise RefusedError(f"tenant {tenant_id!r} already exists")
        session.add(Tenant(**asdict(info), created_at=audit.utcnow()))
        session.flush()
        audit.append(
            store,
            session,
            actor=actor,
            action="tenant.add",
            subject=tenant_id,
            tenant_id=tenant_id,
            after=asdict(info),
            reason=reason,
        )
    return info


def update_tenant(store: Store, tenant_id: str, *, actor: str, reason: str = "", **changes: Any) -> TenantInfo:
    """Change tenant settings; every agent's manifest gets a new revision carrying the new snapshot."""
    # Deferred: manifests builds on this module (TenantInfo, tenant_info) and is needed only here.
    from drift_pipeline.versioning import manifests

    with store.transaction() as session:
        row = manifests.lock_tenant(session, tenant_id)
        before = tenant_info(row)
        after = replace(before, **changes)
        validate(after)
        for key, value in changes.items():
            setattr(row, key, value)
        audit.append(
            store,
            session,
            actor=actor,
            action="tenant.update",
            subject=tenant_id,
            tenant_id=tenant_id,
            before=asdict(before),
            after=asdict(after),
            reason=reason,
        )
        for agent_id in _agent_ids(session, tenant_id):
            manifests.write_revision(
                store, session, row, agent_id, {}, actor=actor, action="manifest.tenant_settings", reason=reason
            )
    manifests.notify()
    return after


def get_tenant(store: Store, tenant_id: str) -> TenantInfo:
    with store.session() as session:
        row = session.get(Tenant, tenant_id)
        if row is None:
            raise NotFoundError(f"unknown tenant {tenant_id!r}")
        return tenant_info(row)


def list_tenants(store: Store) -> list[TenantInfo]:
    with store.session() as session:
        return [tenant_info(r) for r in session.execute(select(Tenant).order_by(Tenant.tenant_id)).scalars()]


def known_agents(store: Store) -> dict[str, set[str]]:
    """Tenant id -> agent ids that have a manifest (ingestion refuses records of any other agent)."""
    agents: dict[str, set[str]] = {}
    with store.session() as session:
        for tenant_id, agent_id in session.execute(
            select(ManifestRevision.tenant_id, ManifestRevision.agent_id).distinct()
        ):
            agents.setdefault(tenant_id, set()).add(agent_id)
    return agents


def tenant_info(row: Tenant) -> TenantInfo:
    """The settings of a tenant row, as the snapshot a manifest revision stores."""
    return TenantInfo(
        row.tenant_id, row.contact, row.regulated, row.sampling_consent, row.cadence, dict(row.pii_patterns or {})
    )


def require_tenant(session: Session, tenant_id: str) -> None:
    if session.get(Tenant, tenant_id) is None:
        raise NotFoundError(f"unknown tenant {tenant_id!r}")


def validate(info: TenantInfo) -> None:
    """Refuse an unknown cadence, a contact that is not an e-mail address or a PII pattern that does not compile."""
    if info.cadence not in CADENCES:
        raise InvalidInputError(f"cadence must be one of {', '.join(CADENCES)}, not {info.cadence!r}")
    if info.contact is not None and not _EMAIL.fullmatch(info.contact):
        raise InvalidInputError(f"technical contact {info.contact!r} is not an e-mail address")
    for name, pattern in info.pii_patterns.items():
        try:
            re.compile(pattern)
        except re.error as exc:
            raise InvalidInputError(f"PII pattern {name!r} is not a valid regular expression: {exc}") from exc


def _agent_ids(session: Session, tenant_id: str) -> list[str]:
    return list(
        session.execute(
            select(ManifestRevision.agent_id)
            .where(ManifestRevision.tenant_id == tenant_id)
            .distinct()
            .order_by(ManifestRevision.agent_id)
        ).scalars()
    )
