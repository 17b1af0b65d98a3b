"""Migration gates: the only way a new model version reaches a tenant agent, and the way back.

State machine (one open migration per tenant agent, persisted in `migrations`, audited):

    proposed -> staging -> review -> approved -> canary -> promoted
    any open state -> rejected | aborted | rolled_back;  promoted -> rolled_back

Staging replays the agent's workflow suite against the candidate (an injected `StagingRunner` returns a
drift report). Regulated tenants always need a human approval (by someone other than the proposer); other
tenants are approved automatically only when every staging check passes. Every write locks the tenant row
(the lock manifest writers take) and then the migration row, and checks the optimistic `version` when the
caller passes the one it read: two operators can never both promote.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from drift_pipeline.errors import InvalidInputError, NotFoundError, RefusedError
from drift_pipeline.migration import canary
from drift_pipeline.persistence import audit
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.tables import AuditEntry, ManifestRevision, Migration, ModelVersion, Tenant
from drift_pipeline.versioning import manifests, registry

log = logging.getLogger(__name__)

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
AUTO_REVIEWER = "gate:auto"
MAX_EXAMPLES = 5  # drift-report examples kept in the migration row (the full report belongs in storage)


class StagingRunner(Protocol):
    """Replays the agent's workflow suite on `candidate` and returns a drift report (architecture.md)."""

    def __call__(self, manifest: manifests.Manifest, candidate: registry.VersionInfo) -> dict[str, Any]: ...


class BaselineCreator(Protocol):
    """Snapshots a baseline of the promoted model from the migration's replays; returns its id."""

    def __call__(self, manifest: manifests.Manifest, migration: MigrationInfo) -> str: ...


AlertHook = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class MigrationInfo:
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
        return tuple(s for s in NEXT[self.state] if s != self.state)

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


@dataclass(frozen=True)
class MonitorVerdict:
    migration: MigrationInfo
    results: list[canary.SequentialResult]
    aborted: bool


@dataclass(frozen=True)
class RollbackResult:
    changed: bool  # a new manifest revision was written
    message: str
    manifest: manifests.Manifest
    closed_migrations: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class ForcedMigration:
    tenant_id: str
    agent_id: str
    from_model_id: str
    to_model_id: str | None
    migration_id: int | None
    created: bool
    readiness: str
    sunset_date: date | None


# -------------------------------------------------------------------------------------------- queries


def get(store: Store, migration_id: int) -> MigrationInfo:
    with store.session() as session:
        return _info(_row(session, migration_id))


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
        return [_info(r) for r in session.execute(query).scalars()]


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
        history = tuple(
            (datetime.fromisoformat(h["since"]), float(h["share"])) for h in row.details.get("share_history", [])
        )
        return CanaryRoute(row.id, row.to_model_id, history or ((row.updated_at, row.canary_share),))


# ------------------------------------------------------------------------------------------ transitions


def propose(
    store: Store, tenant_id: str, agent_id: str, to_model_id: str, *, actor: str, reason: str = "", forced: bool = False
) -> MigrationInfo:
    """Open a migration of the agent's current pin to the exact version `to_model_id`."""
    with store.transaction() as session:
        _lock_tenant(session, tenant_id)
        current = _latest_revision(session, tenant_id, agent_id)
        registry.require_exact_version(session, to_model_id)
        if current.pinned_model_id == to_model_id:
            raise RefusedError(f"{tenant_id}/{agent_id} is already pinned to {to_model_id!r}")
        existing = _open_row(session, tenant_id, agent_id)
        if existing is not None:
            raise RefusedError(
                f"{tenant_id}/{agent_id} already has open migration {existing.id} "
                f"({existing.from_model_id} -> {existing.to_model_id}, state {existing.state}): finish or abort it first"
            )
        now = audit.utcnow()
        row = Migration(
            tenant_id=tenant_id,
            agent_id=agent_id,
            from_model_id=current.pinned_model_id,
            to_model_id=to_model_id,
            from_revision=current.revision,
            state="proposed",
            canary_share=0.0,
            version=1,
            details={"proposed_by": actor, "reason": reason, "forced": forced, "transitions": []},
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        session.flush()
        _audit(store, session, row, "proposed", actor=actor, reason=reason, before=None)
        return _info(row)


def run_staging(
    store: Store, migration_id: int, runner: StagingRunner, *, actor: str, expected_version: int | None = None
) -> MigrationInfo:
    """Replay the workflow suite against the candidate, record report and verdict, move on to review.

    A non-regulated tenant whose checks all pass is approved automatically; a runner failure returns the
    migration to `proposed` with the error recorded (retry with another `stage`).
    """
    with store.transaction() as session:
        row = _lock(session, migration_id, expected_version)
        _transition(store, session, row, "staging", actor=actor, reason="staging replay started")
        version, tenant_id, agent_id, to_model_id = row.version, row.tenant_id, row.agent_id, row.to_model_id
    manifest = manifests.current(store, tenant_id, agent_id)
    candidate = registry.get_version(store, to_model_id)
    try:
        report = runner(manifest, candidate)
        checks = staging_checks(report)
    except Exception as exc:
        with store.transaction() as session:
            row = _lock(session, migration_id, version)
            row.details = {**row.details, "staging_error": f"{type(exc).__name__}: {exc}"}
            _transition(store, session, row, "proposed", actor=actor, reason=f"staging replay failed: {exc}")
        raise
    passed = all(c["passed"] for c in checks)
    with store.transaction() as session:
        row = _lock(session, migration_id, version)
        staging = {
            "report": _trim(report),
            "checks": checks,
            "passed": passed,
            "verdict": "pass" if passed else "fail",
            "ran_at": audit.utcnow().isoformat(),
        }
        row.details = {**row.details, "staging": staging}
        summary = f"staging {'passed' if passed else 'failed'}: " + ", ".join(
            c["name"] for c in checks if not c["passed"]
        )
        _transition(store, session, row, "review", actor=actor, reason=summary.rstrip(": "), extra={"staging": checks})
        regulated = session.get(Tenant, row.tenant_id).regulated
        if passed and not regulated:
            row.details = {**row.details, "review": _review(AUTO_REVIEWER, "approved", "every staging check passed")}
            _transition(store, session, row, "approved", actor=AUTO_REVIEWER, reason="every staging check passed")
        return _info(row)


def staging_checks(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The checks a staging report must pass: replay ran, no dimension drifted, overall verdict."""
    if not isinstance(report, Mapping) or "dimensions" not in report or "drift_detected" not in report:
        raise InvalidInputError("staging runner returned no drift report (needs 'dimensions' and 'drift_detected')")
    checks = [{"name": "replay produced pairs", "passed": int(report.get("n_pairs") or 0) > 0}]
    for dim in report["dimensions"]:
        checks.append({"name": f"no drift in {dim['name']}", "passed": not dim.get("drifted", False)})
    checks.append({"name": "no drift detected overall", "passed": not report["drift_detected"]})
    return checks


def approve(
    store: Store, migration_id: int, *, reviewer: str, reason: str, expected_version: int | None = None
) -> MigrationInfo:
    """Human approval after staging (mandatory for regulated tenants; required when a check failed)."""
    _require_review_fields(reviewer, reason)
    with store.transaction() as session:
        row = _lock(session, migration_id, expected_version)
        if session.get(Tenant, row.tenant_id).regulated and reviewer == row.details.get("proposed_by"):
            raise RefusedError(
                f"tenant {row.tenant_id!r} is regulated: the proposer {reviewer!r} cannot approve their own migration"
            )
        _check_allowed(row, "approved")
        row.details = {**row.details, "review": _review(reviewer, "approved", reason)}
        _transition(store, session, row, "approved", actor=reviewer, reason=reason)
        return _info(row)


def reject(
    store: Store, migration_id: int, *, reviewer: str, reason: str, expected_version: int | None = None
) -> MigrationInfo:
    _require_review_fields(reviewer, reason)
    with store.transaction() as session:
        row = _lock(session, migration_id, expected_version)
        _check_allowed(row, "rejected")
        row.details = {**row.details, "review": _review(reviewer, "rejected", reason)}
        _transition(store, session, row, "rejected", actor=reviewer, reason=reason)
        return _info(row)


def start_canary(
    store: Store, migration_id: int, share: float, *, actor: str, reason: str = "", expected_version: int | None = None
) -> MigrationInfo:
    """Route `share` of the agent's sessions to the candidate (again to raise it: the share only grows)."""
    if not 0 < share <= 1:
        raise InvalidInputError(f"canary share {share} is out of range: it must be in (0, 1]")
    with store.transaction() as session:
        row = _lock(session, migration_id, expected_version)
        if row.state == "canary" and share <= row.canary_share:
            raise RefusedError(
                f"migration {row.id} already routes {row.canary_share:g} to the candidate: the share only grows"
            )
        _check_allowed(row, "canary")
        history = [*row.details.get("share_history", []), {"since": audit.utcnow().isoformat(), "share": share}]
        row.details = {**row.details, "share_history": history}
        row.canary_share = share
        _transition(store, session, row, "canary", actor=actor, reason=reason or f"canary share {share:g}")
        store.bump_change_counter(session)  # every resolver, in any process, re-reads its routing
        info = _info(row)
    manifests.notify()
    return info


def observe(
    store: Store,
    migration_id: int,
    observations: Sequence[Mapping[str, Any]],
    *,
    alert: AlertHook | None = None,
    alpha: float = canary.DEFAULT_ALPHA,
    actor: str = "canary-monitor",
) -> MonitorVerdict:
    """Add live outcomes of both slices and run the always-valid test; abort the canary on a breach.

    Each observation is `{"route": "canary"|"pinned", "refusal": bool, "error": bool, "schema_failure": bool}`
    (any subset of the dimensions). On a breach the canary is aborted in the same transaction (routing goes
    back to the pinned version), the abort is audited, and `alert` is called after the commit.
    """
    with store.transaction() as session:
        row = _lock(session, migration_id, None)
        if row.state != "canary":
            raise RefusedError(f"migration {row.id} is {row.state}, not in canary: nothing to monitor")
        monitor = row.details.get("monitor", {})
        counts = canary.add_observations(monitor.get("counts", {}), observations)
        results = canary.evaluate(counts, alpha=alpha)
        breaches = [r for r in results if r.breached]
        looks = int(monitor.get("looks", 0)) + 1
        row.details = {
            **row.details,
            "monitor": {"counts": counts, "looks": looks, "alpha": alpha, "last": [r.to_dict() for r in results]},
        }
        aborted = bool(breaches)
        if aborted:
            breach = {"dimensions": [r.to_dict() for r in breaches], "look": looks, "at": audit.utcnow().isoformat()}
            row.details = {**row.details, "breach": breach}
            row.canary_share = 0.0
            reason = "canary divergence: " + ", ".join(
                f"{r.dimension} {r.rate_pinned:.3f} -> {r.rate_canary:.3f} (always-valid p={r.p_value:.2g})"
                for r in breaches
            )
            _transition(store, session, row, "aborted", actor=actor, reason=reason, extra={"breach": breach})
            store.bump_change_counter(session)
        info = _info(row)
    if aborted:
        manifests.notify()
        _call_alert(alert, info)
    return MonitorVerdict(info, results, aborted)


def promote(
    store: Store,
    migration_id: int,
    baseline_creator: BaselineCreator,
    *,
    actor: str,
    reason: str = "",
    expected_version: int | None = None,
) -> MigrationInfo:
    """Pin the candidate in a new manifest revision with a new baseline snapshotted from its replays.

    The baseline is created first (an immutable snapshot: harmless if the promotion is then refused);
    manifest revision, migration state and audit entries commit in one transaction.
    """
    info = get(store, migration_id)
    _check_version(info.id, info.state, info.version, expected_version)  # before the (slow) baseline snapshot
    _check_allowed_info(info, "promoted")
    manifest = manifests.current(store, info.tenant_id, info.agent_id)
    baseline_id = baseline_creator(manifest, info)
    with store.transaction() as session:
        tenant = _lock_tenant(session, info.tenant_id)
        row = _lock(session, migration_id, expected_version, tenant_locked=True)
        _check_allowed(row, "promoted")
        current = _latest_revision(session, row.tenant_id, row.agent_id)
        if current.pinned_model_id != row.from_model_id:
            raise RefusedError(
                f"{row.tenant_id}/{row.agent_id} is pinned to {current.pinned_model_id!r} now, not {row.from_model_id!r} "
                f"as when migration {row.id} was proposed: abort it and propose again"
            )
        why = reason or f"migration {row.id} promoted"
        new = manifests.write_revision(
            store,
            session,
            tenant,
            row.agent_id,
            {"pinned_model_id": row.to_model_id, "behavioral_baseline_id": baseline_id},
            actor=actor,
            action="manifest.promote",
            reason=why,
        )
        row.details = {**row.details, "promoted_revision": new.revision, "baseline_id": baseline_id}
        row.canary_share = 1.0
        _transition(store, session, row, "promoted", actor=actor, reason=why, extra={"revision": new.revision})
        result = _info(row)
    manifests.notify()
    return result


def abort(
    store: Store, migration_id: int, *, actor: str, reason: str, expected_version: int | None = None
) -> MigrationInfo:
    """Stop a migration at any open step; an active canary stops routing at once."""
    if not reason.strip():
        raise InvalidInputError("an abort needs a reason (--reason)")
    with store.transaction() as session:
        row = _lock(session, migration_id, expected_version)
        _check_allowed(row, "aborted")
        was_canary = row.state == "canary"
        row.canary_share = 0.0
        _transition(store, session, row, "aborted", actor=actor, reason=reason)
        if was_canary:
            store.bump_change_counter(session)
        info = _info(row)
    manifests.notify()
    return info


# ------------------------------------------------------------------------------------------- rollback


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
        tenant = _lock_tenant(session, tenant_id)
        revisions = _revisions(session, tenant_id, agent_id)
        current = revisions[-1]
        closed = []
        for row in _open_rows(session, tenant_id, agent_id):
            row.canary_share = 0.0  # before the transition, so its audit entry shows the routing ended
            _transition(store, session, row, "rolled_back", actor=actor, reason=reason or "rollback")
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
                _transition(store, session, row, "rolled_back", actor=actor, reason=why)
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


# ----------------------------------------------------------------------------------- forced migrations


def open_forced_migrations(
    store: Store, today: date, *, actor: str = "deprecation-sensor", runner: StagingRunner | None = None
) -> list[ForcedMigration]:
    """For every version whose sunset has passed, open a migration of each still-pinned agent to its successor.

    Idempotent: an agent that already has an open migration to the successor is reported, not re-opened.
    With `runner`, newly opened migrations are assessed (staging replay) so readiness is known at once.
    """
    out: list[ForcedMigration] = []
    with store.session() as session:
        sunset = session.execute(
            select(ModelVersion).where(ModelVersion.sunset_date.is_not(None), ModelVersion.sunset_date <= today)
        ).scalars()
        sunset_versions = {v.model_id: (v.successor_id, v.sunset_date) for v in sunset}
    for manifest in manifests.list_current(store):
        if manifest.pinned_model_id not in sunset_versions:
            continue
        successor, sunset_date = sunset_versions[manifest.pinned_model_id]
        t, a, old = manifest.tenant_id, manifest.agent_id, manifest.pinned_model_id
        if successor is None:
            out.append(ForcedMigration(t, a, old, None, None, False, "no successor registered", sunset_date))
            continue
        existing = open_migration(store, t, a)
        if existing is not None and existing.to_model_id == successor:
            out.append(ForcedMigration(t, a, old, successor, existing.id, False, existing.readiness, sunset_date))
            continue
        if existing is not None:
            out.append(
                ForcedMigration(
                    t, a, old, successor, existing.id, False, f"blocked by migration {existing.id}", sunset_date
                )
            )
            continue
        info = propose(
            store, t, a, successor, actor=actor, forced=True, reason=f"{old} reached its sunset on {sunset_date}"
        )
        if runner is not None:
            try:
                info = run_staging(store, info.id, runner, actor=actor)
            except Exception as exc:  # one tenant's failed assessment must not stop the others
                log.warning("readiness assessment of %s/%s failed: %s", t, a, exc)
                info = get(store, info.id)
        out.append(ForcedMigration(t, a, old, successor, info.id, True, info.readiness, sunset_date))
    return out


def readiness_report(store: Store, today: date, *, horizon_days: int = 90) -> list[dict[str, Any]]:
    """Every agent pinned to a version whose sunset is past or within `horizon_days`, with its readiness."""
    horizon = today + timedelta(days=horizon_days)
    versions = {v.model_id: v for v in registry.list_versions(store) if v.sunset_date and v.sunset_date <= horizon}
    rows = []
    for manifest in manifests.list_current(store):
        version = versions.get(manifest.pinned_model_id)
        if version is None:
            continue
        migration = open_migration(store, manifest.tenant_id, manifest.agent_id)
        rows.append(
            {
                "tenant_id": manifest.tenant_id,
                "agent_id": manifest.agent_id,
                "model_id": version.model_id,
                "sunset_date": version.sunset_date.isoformat(),
                "days_left": (version.sunset_date - today).days,
                "successor_id": version.successor_id,
                "migration_id": migration.id if migration else None,
                "migration_state": migration.state if migration else None,
                "readiness": migration.readiness if migration else "not assessed",
            }
        )
    return rows


# ------------------------------------------------------------------------------------------- internals


def _lock_tenant(session: Session, tenant_id: str) -> Tenant:
    return manifests.lock_tenant(session, tenant_id)


def _lock(
    session: Session, migration_id: int, expected_version: int | None, *, tenant_locked: bool = False
) -> Migration:
    """Lock tenant then migration (the order manifest writers use, so no deadlock) and check the version."""
    row = _row(session, migration_id)
    if not tenant_locked:
        _lock_tenant(session, row.tenant_id)
    session.refresh(row, with_for_update=True)
    _check_version(row.id, row.state, row.version, expected_version)
    return row


def _check_version(migration_id: int, state: str, version: int, expected_version: int | None) -> None:
    """A decision taken on a stale read is refused: someone else acted on the migration meanwhile."""
    if expected_version is not None and version != expected_version:
        raise RefusedError(
            f"migration {migration_id} changed meanwhile (now {state}, version {version}, you read version "
            f"{expected_version}): re-read with `migrate status` and retry"
        )


def _row(session: Session, migration_id: int) -> Migration:
    row = session.get(Migration, migration_id)
    if row is None:
        raise NotFoundError(f"unknown migration {migration_id}")
    return row


def _open_row(session: Session, tenant_id: str, agent_id: str) -> Migration | None:
    rows = _open_rows(session, tenant_id, agent_id)
    return rows[0] if rows else None


def _open_rows(session: Session, tenant_id: str, agent_id: str) -> list[Migration]:
    return list(
        session.execute(
            select(Migration)
            .where(Migration.tenant_id == tenant_id, Migration.agent_id == agent_id, Migration.state.in_(OPEN))
            .with_for_update()
        ).scalars()
    )


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


def _latest_revision(session: Session, tenant_id: str, agent_id: str) -> ManifestRevision:
    latest = manifests.latest_row(session, tenant_id, agent_id)
    if latest is None:
        raise NotFoundError(f"tenant {tenant_id!r} has no manifest for agent {agent_id!r}: pin a model first")
    return latest


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


def _check_allowed(row: Migration, to_state: str) -> None:
    if to_state not in NEXT[row.state]:
        allowed = [s for s in NEXT[row.state] if s != row.state] or ["none (it is closed)"]
        raise RefusedError(
            f"migration {row.id} is {row.state}: cannot move to {to_state}; allowed next: {', '.join(allowed)}"
        )


def _check_allowed_info(info: MigrationInfo, to_state: str) -> None:
    if to_state not in NEXT[info.state]:
        allowed = list(info.next_steps) or ["none (it is closed)"]
        raise RefusedError(
            f"migration {info.id} is {info.state}: cannot move to {to_state}; allowed next: {', '.join(allowed)}"
        )


def _transition(
    store: Store,
    session: Session,
    row: Migration,
    to_state: str,
    *,
    actor: str,
    reason: str,
    extra: dict[str, Any] | None = None,
) -> None:
    _check_allowed(row, to_state)
    before = _summary(row)
    now = audit.utcnow()
    step = {"from": row.state, "to": to_state, "at": now.isoformat(), "by": actor, "reason": reason}
    row.details = {**row.details, "transitions": [*row.details.get("transitions", []), step]}
    row.state, row.version, row.updated_at = to_state, row.version + 1, now
    session.flush()
    _audit(store, session, row, to_state, actor=actor, reason=reason, before=before, extra=extra)


def _audit(
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
    audit.append(
        store,
        session,
        actor=actor,
        action=f"migration.{state}",
        subject=f"{row.tenant_id}/{row.agent_id}#migration-{row.id}",
        tenant_id=row.tenant_id,
        before=before,
        after={**_summary(row), **(extra or {})},
        reason=reason,
    )


def _summary(row: Migration) -> dict[str, Any]:
    return {
        "migration_id": row.id,
        "agent_id": row.agent_id,
        "from_model_id": row.from_model_id,
        "to_model_id": row.to_model_id,
        "state": row.state,
        "canary_share": row.canary_share,
        "version": row.version,
    }


def _info(row: Migration) -> MigrationInfo:
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


def _review(reviewer: str, decision: str, reason: str) -> dict[str, Any]:
    return {"reviewer": reviewer, "decision": decision, "reason": reason, "at": audit.utcnow().isoformat()}


def _require_review_fields(reviewer: str, reason: str) -> None:
    if not reviewer.strip():
        raise InvalidInputError("a review needs the reviewer's identity")
    if not reason.strip():
        raise InvalidInputError("a review needs a reason (--reason)")


def _trim(report: Mapping[str, Any]) -> dict[str, Any]:
    data = dict(report)
    if isinstance(data.get("examples"), list):
        data["examples"] = data["examples"][:MAX_EXAMPLES]
    return data


def _call_alert(alert: AlertHook | None, info: MigrationInfo) -> None:
    if alert is None:
        return
    event = {
        "kind": "canary_aborted",
        "tenant_id": info.tenant_id,
        "agent_id": info.agent_id,
        "migration_id": info.id,
        "candidate": info.to_model_id,
        "pinned": info.from_model_id,
        "breach": info.details.get("breach"),
    }
    try:
        alert(event)
    except Exception:  # the abort is committed and audited already; a failed alert must not undo it
        log.exception("canary abort alert for %s/%s failed", info.tenant_id, info.agent_id)
