"""After approval: the canary, its monitoring verdict, the promotion, and the abort at any open step.

`start_canary` routes a growing share of sessions to the candidate; `observe` folds live outcomes of both
slices into the always-valid test (`canary`) and aborts the canary on a breach; `promote` verifies the
approval again and pins the candidate with its own baseline in one manifest revision. Each write bumps the store's change counter when
routing changes, so every resolver, in any process, re-reads it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.orm import Session

from drift_pipeline.errors import InvalidInputError, RefusedError
from drift_pipeline.migration import approvals, canary, review, states
from drift_pipeline.migration.details import Breach, CanaryMonitor, MigrationDetails, ShareStep, edit_details
from drift_pipeline.persistence import audit, refusals
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.objects import ObjectStore
from drift_pipeline.persistence.tables import Baseline, Migration, Tenant
from drift_pipeline.versioning import manifests

log = logging.getLogger(__name__)

AlertHook = Callable[[dict[str, Any]], None]


class BaselineCreator(Protocol):
    """Snapshots a baseline of the promoted model from the migration's replays; returns its id."""

    def __call__(self, manifest: manifests.Manifest, migration: states.MigrationInfo) -> str: ...


@dataclass(frozen=True)
class MonitorVerdict:
    migration: states.MigrationInfo
    results: list[canary.SequentialResult]
    aborted: bool


def start_canary(
    store: Store, migration_id: int, share: float, *, actor: str, reason: str = "", expected_version: int | None = None
) -> states.MigrationInfo:
    """Route `share` of the agent's sessions to the candidate (again to raise it: the share only grows)."""
    if not 0 < share <= 1:
        raise InvalidInputError(f"canary share {share} is out of range: it must be in (0, 1]")
    with store.transaction() as session:
        row = states.lock(session, migration_id, expected_version)
        if row.state == "canary" and share <= row.canary_share:
            raise RefusedError(
                f"migration {row.id} already routes {row.canary_share:g} to the candidate: the share only grows"
            )
        states.check_allowed(row.id, row.state, "canary")
        with edit_details(row) as details:
            step = ShareStep(since=audit.utcnow().isoformat(), share=share)
            details.share_history = [*details.share_history, step]
        row.canary_share = share
        states.transition(store, session, row, "canary", actor=actor, reason=reason or f"canary share {share:g}")
        store.bump_change_counter(session)  # every resolver, in any process, re-reads its routing
        info = states.to_info(row)
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
        row = states.lock(session, migration_id, None)
        if row.state != "canary":
            raise RefusedError(f"migration {row.id} is {row.state}, not in canary: nothing to monitor")
        monitor = MigrationDetails.load(row.details).monitor
        counts = canary.add_observations(monitor.counts if monitor else {}, observations)
        results = canary.evaluate(counts, alpha=alpha)
        breaches = [r for r in results if r.breached]
        looks = (monitor.looks if monitor else 0) + 1
        breach = None
        if breaches:
            breach = Breach(dimensions=[r.to_dict() for r in breaches], look=looks, at=audit.utcnow().isoformat())
        with edit_details(row) as details:
            details.monitor = CanaryMonitor(
                counts=counts, looks=looks, alpha=alpha, last=[r.to_dict() for r in results]
            )
            if breach is not None:
                details.breach = breach
        aborted = breach is not None
        if breach is not None:
            row.canary_share = 0.0
            reason = "canary divergence: " + ", ".join(
                f"{r.dimension} {r.rate_pinned:.3f} -> {r.rate_canary:.3f} (always-valid p={r.p_value:.2g})"
                for r in breaches
            )
            extra = {"breach": breach.model_dump(mode="json")}
            states.transition(store, session, row, "aborted", actor=actor, reason=reason, extra=extra)
            store.bump_change_counter(session)
        info = states.to_info(row)
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
    objects: ObjectStore | None = None,
) -> states.MigrationInfo:
    """Pin the candidate in a new manifest revision with a new baseline snapshotted from its replays.

    The approval and the staging report it rests on are verified again first; the baseline must exist and
    be the candidate's own baseline of this tenant agent. The baseline is created first (an immutable
    snapshot: harmless if the promotion is then refused); manifest revision, migration state and audit
    entries commit in one transaction. A refusal changes nothing and is audited.
    """
    with refusals.audited(
        store,
        actor=actor,
        action="migration.promote_refused",
        subject=f"migration-{migration_id}",
        tenant_id=lambda: states.get(store, migration_id).tenant_id,
    ):
        info = states.get(store, migration_id)
        states.check_version(info.id, info.state, info.version, expected_version)  # before the (slow) snapshot
        states.check_allowed(info.id, info.state, "promoted")
        check_approval(store, info, objects)
        manifest = manifests.current(store, info.tenant_id, info.agent_id)
        baseline_id = baseline_creator(manifest, info)
        return _promote(store, migration_id, baseline_id, actor=actor, reason=reason, expected_version=expected_version)


def check_approval(store: Store, info: states.MigrationInfo, objects: ObjectStore | None = None) -> None:
    """Verify on use what approved the migration: the stored staging report (hash, audit entry, copy) and
    either the automatic gate's checks recomputed from it or the reviewer's signed statement."""
    staged = review.verified_staging(store, info, objects)
    details = MigrationDetails.load(info.details)
    decision = details.review
    if decision is None or decision.decision != "approved":
        raise RefusedError(f"migration {info.id} has no approval on record")
    if decision.reviewer == review.AUTO_REVIEWER:
        if not all(c["passed"] for c in review.staging_checks(staged.body)):
            raise RefusedError(f"migration {info.id} was approved automatically, but its stored report does not pass")
        if _regulated(store, info.tenant_id):
            raise RefusedError(f"tenant {info.tenant_id!r} is regulated: migration {info.id} needs a signed approval")
        return
    if decision.approval is None:
        raise RefusedError(f"migration {info.id}'s approval is not signed: a registered reviewer must sign it")
    verified = approvals.verify(store, decision.approval, review.subject(info, staged.sha256))
    if verified.decision != "approved":
        raise RefusedError(f"migration {info.id}'s signed decision is {verified.decision!r}")


def check_baseline(session: Session, baseline_id: str, row: Migration) -> None:
    """The promoted pin's baseline must exist and be a baseline of the candidate for this tenant agent."""
    found = session.get(Baseline, baseline_id)
    if found is None:
        raise RefusedError(f"baseline {baseline_id!r} does not exist: nothing was changed")
    want = (row.tenant_id, row.agent_id, row.to_model_id)
    if (found.tenant_id, found.agent_id, found.model_id) != want:
        raise RefusedError(
            f"baseline {baseline_id!r} is of {found.tenant_id}/{found.agent_id} on {found.model_id}, not of "
            f"the candidate {row.to_model_id} of {row.tenant_id}/{row.agent_id}: nothing was changed"
        )


def _regulated(store: Store, tenant_id: str) -> bool:
    with store.session() as session:
        tenant = session.get(Tenant, tenant_id)
        return bool(tenant and tenant.regulated)


def _promote(
    store: Store, migration_id: int, baseline_id: str, *, actor: str, reason: str, expected_version: int | None
) -> states.MigrationInfo:
    with store.transaction() as session:
        tenant = manifests.lock_tenant(session, states.get(store, migration_id).tenant_id)
        row = states.lock(session, migration_id, expected_version, tenant_locked=True)
        states.check_allowed(row.id, row.state, "promoted")
        check_baseline(session, baseline_id, row)
        current = states.latest_revision(session, row.tenant_id, row.agent_id)
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
        with edit_details(row) as details:
            details.promoted_revision, details.baseline_id = new.revision, baseline_id
        row.canary_share = 1.0
        states.transition(store, session, row, "promoted", actor=actor, reason=why, extra={"revision": new.revision})
        result = states.to_info(row)
    manifests.notify()
    return result


def abort(
    store: Store, migration_id: int, *, actor: str, reason: str, expected_version: int | None = None
) -> states.MigrationInfo:
    """Stop a migration at any open step; an active canary stops routing at once."""
    if not reason.strip():
        raise InvalidInputError("an abort needs a reason (--reason)")
    with store.transaction() as session:
        row = states.lock(session, migration_id, expected_version)
        states.check_allowed(row.id, row.state, "aborted")
        was_canary = row.state == "canary"
        row.canary_share = 0.0
        states.transition(store, session, row, "aborted", actor=actor, reason=reason)
        if was_canary:
            store.bump_change_counter(session)
        info = states.to_info(row)
    manifests.notify()
    return info


def _call_alert(alert: AlertHook | None, info: states.MigrationInfo) -> None:
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
