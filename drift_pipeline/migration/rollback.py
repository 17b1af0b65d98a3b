"""The way back: restore a tenant agent's last known-good pin and baseline, closing its migrations.

Idempotent by construction: a rollback right after a rollback is a no-op, never a new revision. The new
revision, the closed migrations and their audit entries commit in one transaction, and the change counter
tells every resolver, in any process, to re-read the pin.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from drift_pipeline.errors import NotFoundError, RefusedError
from drift_pipeline.migration import states
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.tables import AuditEntry, ManifestRevision, Migration
from drift_pipeline.versioning import manifests


@dataclass(frozen=True)
class RollbackResult:
    changed: bool  # a new manifest revision was written
    message: str
    manifest: manifests.Manifest
    closed_migrations: list[int] = field(default_factory=list)


def rollback(
    store: Store, tenant_id: str, agent_id: str, *, actor: str, to_revision: int | None = None, reason: str = ""
) -> RollbackResult:
    """Restore the last known-good pin and baseline; close any open migration (an in-flight canary stops).

    Known-good (default): the revision just before the most recent pin change made since the last
    rollback; for a promotion that is the revision the promotion started from. When the most recent pin
    change is itself a rollback, there is nothing to do: a second rollback is a no-op, never a new
    revision. `to_revision` names the target explicitly (a no-op when its pin and baseline are in force).
    """
    with store.transaction() as session:
        tenant = manifests.lock_tenant(session, tenant_id)
        revisions = _revisions(session, tenant_id, agent_id)
        current = revisions[-1]
        closed = []
        for row in states.open_rows(session, tenant_id, agent_id):
            row.canary_share = 0.0  # before the transition, so its audit entry shows the routing ended
            states.transition(store, session, row, "rolled_back", actor=actor, reason=reason or "rollback")
            closed.append(row.id)
        if to_revision is not None:
            target = next((r for r in revisions if r.revision == to_revision), None)
            if target is None:
                raise NotFoundError(f"manifest {tenant_id}/{agent_id} has no revision {to_revision}")
            if target.revision == current.revision:
                raise RefusedError(f"revision {to_revision} is the one in force: nothing to roll back to")
        else:
            target = _known_good(revisions, _rollback_revisions(session, tenant_id, agent_id))
        if target is None or (
            target.pinned_model_id == current.pinned_model_id
            and target.behavioral_baseline_id == current.behavioral_baseline_id
        ):
            if closed:
                store.bump_change_counter(session)
            message = (
                f"nothing to roll back: {tenant_id}/{agent_id} already serves {current.pinned_model_id} "
                f"(revision {current.revision})"
                + (", and has no earlier pin to go back to" if target is None else ", the known-good pin")
                + (f"; closed migration {', '.join(map(str, closed))}" if closed else "")
            )
            result = RollbackResult(False, message, manifests.to_manifest(current), closed)
        else:
            why = reason or f"rollback to revision {target.revision}"
            manifest = manifests.write_revision(
                store,
                session,
                tenant,
                agent_id,
                {"pinned_model_id": target.pinned_model_id, "behavioral_baseline_id": target.behavioral_baseline_id},
                actor=actor,
                action="manifest.rollback",
                reason=why,
            )
            for row in _promoted_rows(session, tenant_id, agent_id, current.pinned_model_id):
                states.transition(store, session, row, "rolled_back", actor=actor, reason=why)
                closed.append(row.id)
            message = (
                f"{tenant_id}/{agent_id} rolled back to {target.pinned_model_id} "
                f"(baseline {target.behavioral_baseline_id or 'none'}, from revision {target.revision}) "
                f"as revision {manifest.revision}"
                + (f"; closed migration {', '.join(map(str, closed))}" if closed else "")
            )
            result = RollbackResult(True, message, manifest, closed)
    manifests.notify()
    return result


def _known_good(revisions: list[ManifestRevision], rollbacks: set[int]) -> ManifestRevision | None:
    last_rollback = max(rollbacks, default=0)
    changes = [
        cur.revision
        for prev, cur in itertools.pairwise(revisions)
        if cur.pinned_model_id != prev.pinned_model_id
        and cur.revision > last_rollback
        and cur.revision not in rollbacks
    ]
    if not changes:
        return None
    return next(r for r in revisions if r.revision == changes[-1] - 1)


def _rollback_revisions(session: Session, tenant_id: str, agent_id: str) -> set[int]:
    entries = session.execute(
        select(AuditEntry.after).where(
            AuditEntry.action == "manifest.rollback", AuditEntry.subject == f"{tenant_id}/{agent_id}"
        )
    ).scalars()
    return {int(after["revision"]) for after in entries if after}


def _revisions(session: Session, tenant_id: str, agent_id: str) -> list[ManifestRevision]:
    rows = list(
        session.execute(
            select(ManifestRevision)
            .where(ManifestRevision.tenant_id == tenant_id, ManifestRevision.agent_id == agent_id)
            .order_by(ManifestRevision.revision)
        ).scalars()
    )
    if not rows:
        raise NotFoundError(f"tenant {tenant_id!r} has no manifest for agent {agent_id!r}")
    return rows


def _promoted_rows(session: Session, tenant_id: str, agent_id: str, model_id: str) -> list[Migration]:
    return list(
        session.execute(
            select(Migration).where(
                Migration.tenant_id == tenant_id,
                Migration.agent_id == agent_id,
                Migration.state == "promoted",
                Migration.to_model_id == model_id,
            )
        ).scalars()
    )
