"""The migration state machine: states, allowed steps, locking, audited transitions, and the queries.

One open migration per tenant agent, persisted in `migrations` and audited:

    proposed -> staging -> review -> approved -> canary -> promoted
    any open state -> rejected | aborted | rolled_back;  promoted -> rolled_back

Every write locks the tenant row (the lock manifest writers take) and then the migration row, and checks
the optimistic `version` when the caller passes the one it read: two operators can never both act on
what they read. The steps themselves live in `review` (propose, stage, approve, reject), `promotion`
(canary, monitor, promote, abort) and `rollback`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from drift_pipeline.errors import NotFoundError, RefusedError
from drift_pipeline.migration import canary
from drift_pipeline.migration.details import MigrationDetails, Transition, edit_details
from drift_pipeline.persistence import audit
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.tables import ManifestRevision, Migration
from drift_pipeline.versioning import manifests

NEXT: dict[str, tuple[str, ...]] = {
    "proposed": ("staging", "rejected", "aborted", "rolled_back"),
    "staging": ("review", "proposed", "rejected", "aborted", "rolled_back"),
    "review": ("approved", "rejected", "aborted", "rolled_back"),
    "approved": ("canary", "rejected", "aborted", "rolled_back"),
    "canary": ("canary", "promoted", "aborted", "rolled_back"),
    "promoted": ("rolled_back",),
    "rejected": (),
    "aborted": (),
    "rolled_back": (),
}
STATES = tuple(NEXT)
CLOSED = ("promoted", "rejected", "aborted", "rolled_back")
OPEN = tuple(s for s in STATES if s not in CLOSED)


@dataclass(frozen=True)
class MigrationInfo:
    """A migration as read (details as the stored JSON; `MigrationDetails.load` types them)."""

    id: int
    tenant_id: str
    agent_id: str
    from_model_id: str
    to_model_id: str
    from_revision: int
    state: str
    canary_share: float
    version: int
    details: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    @property
    def next_steps(self) -> tuple[str, ...]:
        return next_steps(self.state)

    @property
    def readiness(self) -> str:
        """'ready' / 'not ready' from the staging assessment, or 'not assessed'."""
        staging = self.details.get("staging")
        if not staging:
            return "not assessed"
        return "ready" if staging.get("passed") else "not ready"

    def to_dict(self) -> dict[str, Any]:
        data = {k: getattr(self, k) for k in self.__dataclass_fields__}
        data.update(created_at=self.created_at.isoformat(), updated_at=self.updated_at.isoformat())
        data.update(next_steps=list(self.next_steps), readiness=self.readiness)
        return data


@dataclass(frozen=True)
class CanaryRoute:
    """What the runtime needs to route a session of a tenant agent with an active canary."""

    migration_id: int
    to_model_id: str
    share_history: tuple[tuple[datetime, float], ...]

    def routes(self, tenant_id: str, agent_id: str, session_key: str, started_at: datetime | None = None) -> bool:
        return canary.routes_to_canary(
            tenant_id, agent_id, self.migration_id, session_key, self.share_history, started_at
        )


# -------------------------------------------------------------------------------------------- queries


def get(store: Store, migration_id: int) -> MigrationInfo:
    with store.session() as session:
        return to_info(load_row(session, migration_id))


def list_migrations(
    store: Store, tenant_id: str | None = None, agent_id: str | None = None, *, open_only: bool = False
) -> list[MigrationInfo]:
    query = select(Migration).order_by(Migration.id)
    if tenant_id:
        query = query.where(Migration.tenant_id == tenant_id)
    if agent_id:
        query = query.where(Migration.agent_id == agent_id)
    if open_only:
        query = query.where(Migration.state.in_(OPEN))
    with store.session() as session:
        return [to_info(r) for r in session.execute(query).scalars()]


def open_migration(store: Store, tenant_id: str, agent_id: str) -> MigrationInfo | None:
    found = list_migrations(store, tenant_id, agent_id, open_only=True)
    return found[0] if found else None


def active_canary(store: Store, tenant_id: str, agent_id: str) -> CanaryRoute | None:
    """The canary routing of a tenant agent, or None (read by the runtime resolver on a cache miss)."""
    with store.session() as session:
        row = session.execute(
            select(Migration).where(
                Migration.tenant_id == tenant_id, Migration.agent_id == agent_id, Migration.state == "canary"
            )
        ).scalar_one_or_none()
        if row is None or row.canary_share <= 0:
            return None
        steps = MigrationDetails.load(row.details).share_history
        history = tuple((datetime.fromisoformat(s.since), float(s.share)) for s in steps)
        return CanaryRoute(row.id, row.to_model_id, history or ((row.updated_at, row.canary_share),))


# ------------------------------------------------------------------------- rows, locks and transitions


def lock(
    session: Session, migration_id: int, expected_version: int | None, *, tenant_locked: bool = False
) -> Migration:
    """Lock tenant then migration (the order manifest writers use, so no deadlock) and check the version."""
    row = load_row(session, migration_id)
    if not tenant_locked:
        manifests.lock_tenant(session, row.tenant_id)
    session.refresh(row, with_for_update=True)
    check_version(row.id, row.state, row.version, expected_version)
    return row


def check_version(migration_id: int, state: str, version: int, expected_version: int | None) -> None:
    """A decision taken on a stale read is refused: someone else acted on the migration meanwhile."""
    if expected_version is not None and version != expected_version:
        raise RefusedError(
            f"migration {migration_id} changed meanwhile (now {state}, version {version}, you read version "
            f"{expected_version}): re-read with `migrate status` and retry"
        )


def check_allowed(migration_id: int, state: str, to_state: str) -> None:
    if to_state not in NEXT[state]:
        allowed = list(next_steps(state)) or ["none (it is closed)"]
        raise RefusedError(
            f"migration {migration_id} is {state}: cannot move to {to_state}; allowed next: {', '.join(allowed)}"
        )


def next_steps(state: str) -> tuple[str, ...]:
    return tuple(s for s in NEXT[state] if s != state)


def load_row(session: Session, migration_id: int) -> Migration:
    row = session.get(Migration, migration_id)
    if row is None:
        raise NotFoundError(f"unknown migration {migration_id}")
    return row


def open_rows(session: Session, tenant_id: str, agent_id: str) -> list[Migration]:
    """The agent's open migrations, locked (at most one: `review.propose` refuses a second)."""
    return list(
        session.execute(
            select(Migration)
            .where(Migration.tenant_id == tenant_id, Migration.agent_id == agent_id, Migration.state.in_(OPEN))
            .with_for_update()
        ).scalars()
    )


def latest_revision(session: Session, tenant_id: str, agent_id: str) -> ManifestRevision:
    latest = manifests.latest_row(session, tenant_id, agent_id)
    if latest is None:
        raise NotFoundError(f"tenant {tenant_id!r} has no manifest for agent {agent_id!r}: pin a model first")
    return latest


def transition(
    store: Store,
    session: Session,
    row: Migration,
    to_state: str,
    *,
    actor: str,
    reason: str,
    extra: dict[str, Any] | None = None,
) -> None:
    """Move `row` to `to_state` if allowed: the step is kept in its details, the version bumped, the move audited."""
    check_allowed(row.id, row.state, to_state)
    before = summary(row)
    now = audit.utcnow()
    step = Transition(from_state=row.state, to=to_state, at=now.isoformat(), by=actor, reason=reason)
    with edit_details(row) as details:
        details.transitions = [*details.transitions, step]
    row.state, row.version, row.updated_at = to_state, row.version + 1, now
    session.flush()
    record(store, session, row, to_state, actor=actor, reason=reason, before=before, extra=extra)


def record(
    store: Store,
    session: Session,
    row: Migration,
    state: str,
    *,
    actor: str,
    reason: str,
    before: dict[str, Any] | None,
    extra: dict[str, Any] | None = None,
) -> None:
    """The audit entry `migration.<state>` of a step (`transition` writes it; `propose` for the first)."""
    audit.append(
        store,
        session,
        actor=actor,
        action=f"migration.{state}",
        subject=f"{row.tenant_id}/{row.agent_id}#migration-{row.id}",
        tenant_id=row.tenant_id,
        before=before,
        after={**summary(row), **(extra or {})},
        reason=reason,
    )


def summary(row: Migration) -> dict[str, Any]:
    return {
        "migration_id": row.id,
        "agent_id": row.agent_id,
        "from_model_id": row.from_model_id,
        "to_model_id": row.to_model_id,
        "state": row.state,
        "canary_share": row.canary_share,
        "version": row.version,
    }


def to_info(row: Migration) -> MigrationInfo:
    return MigrationInfo(
        id=row.id,
        tenant_id=row.tenant_id,
        agent_id=row.agent_id,
        from_model_id=row.from_model_id,
        to_model_id=row.to_model_id,
        from_revision=row.from_revision,
        state=row.state,
        canary_share=row.canary_share,
        version=row.version,
        details=dict(row.details or {}),
        created_at=_utc(row.created_at),
        updated_at=_utc(row.updated_at),
    )


def _utc(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)
