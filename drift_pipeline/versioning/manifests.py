"""Per-agent model version manifests: the versioning contract with each tenant.

A manifest is never edited: every change (a pin, a threshold, a prompt, a baseline, a rollback) writes a
new revision, and the highest revision is the one in force. Writers lock the tenant row first, so two
processes changing the same agent at once queue instead of losing an update.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from drift_pipeline.errors import IntegrityError, InvalidInputError, NotFoundError, RefusedError
from drift_pipeline.identifiers import check_identifier
from drift_pipeline.persistence import audit, refusals
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.tables import Baseline, ManifestRevision, Tenant
from drift_pipeline.versioning import registry
from drift_pipeline.versioning.agent_config import AgentConfig
from drift_pipeline.versioning.tenants import TenantInfo, require_tenant, tenant_info

DEFAULT_THRESHOLD = 0.05

# In-process listeners (runtime resolvers) told after every committed manifest change; weakly held so a
# discarded resolver is not kept alive by the registry of listeners.
_listeners: list[weakref.WeakMethod[Callable[[], None]]] = []


@dataclass(frozen=True)
class Manifest:
    """One revision of a tenant agent's manifest."""

    tenant_id: str
    agent_id: str
    revision: int
    pinned_model_id: str
    pinned_at: datetime
    drift_alert_threshold: float
    behavioral_baseline_id: str | None
    config: AgentConfig
    tenant: TenantInfo
    created_at: datetime
    created_by: str
    reason: str
    config_error: str | None = None  # a stored config that no longer validates (see `AgentConfig.from_stored`)

    def require_valid_config(self) -> AgentConfig:
        """The config, or a one-line refusal when the stored one is invalid (never handed to a runtime)."""
        if self.config_error:
            raise IntegrityError(
                f"manifest {self.tenant_id}/{self.agent_id} revision {self.revision} holds an invalid config "
                f"({self.config_error}); pin a corrected one with `drift-pipeline pin --config`"
            )
        return self.config

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("pinned_at", "created_at"):
            data[key] = getattr(self, key).isoformat()
        return data


def pin(
    store: Store,
    tenant_id: str,
    agent_id: str,
    model_id: str,
    *,
    actor: str,
    threshold: float | None = None,
    config: AgentConfig | None = None,
    reason: str = "",
    baseline_id: str | None = None,
) -> Manifest:
    """Pin an agent to an exact registered version (a new revision; creates the manifest if needed), with
    `baseline_id` as its baseline when given (it must exist and be of this tenant agent and model)."""
    changes: dict[str, Any] = {"pinned_model_id": model_id}
    if baseline_id is not None:
        changes["behavioral_baseline_id"] = baseline_id
    if threshold is not None:
        changes["drift_alert_threshold"] = threshold
    if config is not None:
        changes["config"] = config
    return update(store, tenant_id, agent_id, changes, actor=actor, action="manifest.pin", reason=reason)


def set_baseline(
    store: Store, tenant_id: str, agent_id: str, baseline_id: str, *, actor: str, reason: str = ""
) -> Manifest:
    """Point the manifest at the behavioural baseline in force (an audited change)."""
    return update(
        store,
        tenant_id,
        agent_id,
        {"behavioral_baseline_id": baseline_id},
        actor=actor,
        action="manifest.baseline",
        reason=reason,
    )


def update(
    store: Store,
    tenant_id: str,
    agent_id: str,
    changes: dict[str, Any],
    *,
    actor: str,
    action: str = "manifest.update",
    reason: str = "",
    expected_revision: int | None = None,
) -> Manifest:
    """Write a new revision with `changes` applied to the current one, atomically and audited.

    `expected_revision` makes the write conditional (optimistic concurrency for callers that decided
    on an older read, such as a migration gate).
    """
    check_identifier(agent_id, "agent id")
    # A refused baseline (unknown, another tenant's or model's) is itself audited: someone tried to point at it.
    guard = (
        refusals.audited(
            store, actor=actor, action=f"{action}_refused", subject=f"{tenant_id}/{agent_id}", tenant_id=tenant_id
        )
        if "behavioral_baseline_id" in changes
        else nullcontext()
    )
    with guard, store.transaction() as session:
        tenant = lock_tenant(session, tenant_id)
        current = latest_row(session, tenant_id, agent_id)
        if expected_revision is not None and (current.revision if current else 0) != expected_revision:
            raise RefusedError(
                f"manifest {tenant_id}/{agent_id} changed meanwhile (revision {current.revision if current else 0}, expected {expected_revision}); re-read and retry"
            )
        manifest = write_revision(store, session, tenant, agent_id, changes, actor=actor, action=action, reason=reason)
    notify()
    return manifest


def current(store: Store, tenant_id: str, agent_id: str) -> Manifest:
    with store.session() as session:
        row = latest_row(session, tenant_id, agent_id)
        if row is None:
            require_tenant(session, tenant_id)
            raise NotFoundError(f"tenant {tenant_id!r} has no manifest for agent {agent_id!r}: pin a model first")
        return to_manifest(row)


def history(store: Store, tenant_id: str, agent_id: str) -> list[Manifest]:
    with store.session() as session:
        rows = (
            session.execute(
                select(ManifestRevision)
                .where(ManifestRevision.tenant_id == tenant_id, ManifestRevision.agent_id == agent_id)
                .order_by(ManifestRevision.revision)
            )
            .scalars()
            .all()
        )
        if not rows:
            require_tenant(session, tenant_id)
            raise NotFoundError(f"tenant {tenant_id!r} has no manifest for agent {agent_id!r}")
        return [to_manifest(r) for r in rows]


def get_revision(store: Store, tenant_id: str, agent_id: str, revision: int) -> Manifest:
    for manifest in history(store, tenant_id, agent_id):
        if manifest.revision == revision:
            return manifest
    raise NotFoundError(f"manifest {tenant_id}/{agent_id} has no revision {revision}")


def list_current(store: Store, tenant_id: str | None = None) -> list[Manifest]:
    """The revision in force for every agent (optionally of one tenant)."""
    latest = (
        select(ManifestRevision.tenant_id, ManifestRevision.agent_id, func.max(ManifestRevision.revision).label("rev"))
        .group_by(ManifestRevision.tenant_id, ManifestRevision.agent_id)
        .subquery()
    )
    query = select(ManifestRevision).join(
        latest,
        (ManifestRevision.tenant_id == latest.c.tenant_id)
        & (ManifestRevision.agent_id == latest.c.agent_id)
        & (ManifestRevision.revision == latest.c.rev),
    )
    if tenant_id:
        query = query.where(ManifestRevision.tenant_id == tenant_id)
    with store.session() as session:
        rows = session.execute(query.order_by(ManifestRevision.tenant_id, ManifestRevision.agent_id)).scalars()
        return [to_manifest(r) for r in rows]


def subscribe(listener: Callable[[], None]) -> None:
    """Call the bound method `listener` after every manifest change committed by this process."""
    _listeners.append(weakref.WeakMethod(listener))  # type: ignore[arg-type]


def check_threshold(value: float) -> float:
    if not 0 < value <= 1:
        raise InvalidInputError(f"drift alert threshold {value} is out of range: it must be in (0, 1]")
    return value


# ------------------------------------------- building blocks for callers that own the transaction (gates)


def write_revision(
    store: Store,
    session: Session,
    tenant: Tenant,
    agent_id: str,
    changes: dict[str, Any],
    *,
    actor: str,
    action: str,
    reason: str,
) -> Manifest:
    """Write the next revision of `agent_id` with `changes` applied, audited, inside the caller's transaction
    (which must hold `lock_tenant`)."""
    latest = latest_row(session, tenant.tenant_id, agent_id)
    before = to_manifest(latest) if latest else None
    model_id = changes.get("pinned_model_id", before.pinned_model_id if before else None)
    if model_id is None:
        raise RefusedError(f"agent {agent_id!r} of {tenant.tenant_id!r} has no manifest yet: pin a model first")
    registry.require_exact_version(session, model_id)
    threshold = check_threshold(
        float(changes.get("drift_alert_threshold", before.drift_alert_threshold if before else DEFAULT_THRESHOLD))
    )
    if "config" in changes:
        config = changes["config"]
        config.validate()  # code builds configs too: the same bounds as a file
    elif before is not None and before.config_error:
        raise RefusedError(
            f"{tenant.tenant_id}/{agent_id} revision {before.revision} holds an invalid config "
            f"({before.config_error}): give a corrected one with --config"
        )
    else:
        config = before.config if before else AgentConfig()
    model_changed = before is None or before.pinned_model_id != model_id
    now = audit.utcnow()
    # A baseline fingerprints one model's behaviour: a new pin invalidates it unless one is given.
    baseline = changes.get("behavioral_baseline_id", None if model_changed else before.behavioral_baseline_id)
    if baseline is not None and "behavioral_baseline_id" in changes:
        _check_baseline(session, baseline, tenant.tenant_id, agent_id, model_id)
    row = ManifestRevision(
        tenant_id=tenant.tenant_id,
        agent_id=agent_id,
        revision=(latest.revision + 1) if latest else 1,
        pinned_model_id=model_id,
        pinned_at=changes.get("pinned_at") or (now if model_changed else before.pinned_at),
        behavioral_baseline_id=baseline,
        drift_alert_threshold=threshold,
        config={"agent": asdict(config), "tenant": asdict(tenant_info(tenant))},
        created_at=now,
        created_by=actor,
        reason=reason,
    )
    session.add(row)
    session.flush()
    manifest = to_manifest(row)
    store.bump_change_counter(session)
    audit.append(
        store,
        session,
        actor=actor,
        action=action,
        subject=f"{tenant.tenant_id}/{agent_id}",
        tenant_id=tenant.tenant_id,
        before=before.to_dict() if before else None,
        after=manifest.to_dict(),
        reason=reason,
    )
    return manifest


def _check_baseline(session: Session, baseline_id: str, tenant_id: str, agent_id: str, model_id: str) -> None:
    """A manifest may only point at a baseline of the same tenant, agent and pinned model: another
    tenant's baseline would replay its prompts under this tenant's prefix, another model's would make every
    verdict meaningless."""
    row = session.get(Baseline, baseline_id)
    if row is None:
        raise RefusedError(f"baseline {baseline_id!r} does not exist: build it first (the behavioral_baselines asset)")
    if (row.tenant_id, row.agent_id, row.model_id) != (tenant_id, agent_id, model_id):
        raise RefusedError(
            f"baseline {baseline_id} belongs to {row.tenant_id}/{row.agent_id} on {row.model_id}, "
            f"not {tenant_id}/{agent_id} on {model_id}"
        )


def latest_row(session: Session, tenant_id: str, agent_id: str) -> ManifestRevision | None:
    """The revision row in force, inside the caller's transaction."""
    return session.execute(
        select(ManifestRevision)
        .where(ManifestRevision.tenant_id == tenant_id, ManifestRevision.agent_id == agent_id)
        .order_by(ManifestRevision.revision.desc())
        .limit(1)
    ).scalar_one_or_none()


def lock_tenant(session: Session, tenant_id: str) -> Tenant:
    """Lock the tenant row for this transaction: every manifest writer of this tenant queues behind it."""
    row = session.get(Tenant, tenant_id, with_for_update=True)
    if row is None:
        raise NotFoundError(f"unknown tenant {tenant_id!r}: add it first with `drift-pipeline tenants add`")
    return row


def to_manifest(row: ManifestRevision) -> Manifest:
    config = row.config or {}
    agent, error = AgentConfig.from_stored(config.get("agent"))
    return Manifest(
        tenant_id=row.tenant_id,
        agent_id=row.agent_id,
        revision=row.revision,
        pinned_model_id=row.pinned_model_id,
        pinned_at=row.pinned_at,
        drift_alert_threshold=row.drift_alert_threshold,
        behavioral_baseline_id=row.behavioral_baseline_id,
        config=agent,
        tenant=TenantInfo(**config["tenant"]) if "tenant" in config else TenantInfo(row.tenant_id),
        created_at=row.created_at,
        created_by=row.created_by,
        reason=row.reason,
        config_error=error,
    )


def notify() -> None:
    """Tell this process's resolvers that manifests changed (call after the transaction committed)."""
    for ref in list(_listeners):
        listener = ref()
        if listener is None:
            _listeners.remove(ref)
        else:
            listener()
