"""Before the candidate serves anyone: propose a migration, stage it, and review it (approve or reject).

Staging replays the agent's workflow suite against the candidate (an injected `StagingRunner` returns a
drift report). Regulated tenants always need a human approval (by someone other than the proposer); other
tenants are approved automatically only when every staging check passes. Locking, allowed steps and
audit entries are the state machine's (`states`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from drift_pipeline.detection import verdicts
from drift_pipeline.errors import InvalidInputError, RefusedError
from drift_pipeline.migration import states
from drift_pipeline.migration.details import MigrationDetails, Review, StagingAssessment, edit_details
from drift_pipeline.persistence import audit
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.tables import Migration, Tenant
from drift_pipeline.versioning import manifests, registry

AUTO_REVIEWER = "gate:auto"
MAX_EXAMPLES = 5  # drift-report examples kept in the migration row (the full report belongs in storage)


class StagingRunner(Protocol):
    """Replays the agent's workflow suite on `candidate` and returns a drift report (architecture.md)."""

    def __call__(self, manifest: manifests.Manifest, candidate: registry.VersionInfo) -> dict[str, Any]: ...


def propose(
    store: Store, tenant_id: str, agent_id: str, to_model_id: str, *, actor: str, reason: str = "", forced: bool = False
) -> states.MigrationInfo:
    """Open a migration of the agent's current pin to the exact version `to_model_id`."""
    with store.transaction() as session:
        manifests.lock_tenant(session, tenant_id)
        current = states.latest_revision(session, tenant_id, agent_id)
        registry.require_exact_version(session, to_model_id)
        if current.pinned_model_id == to_model_id:
            raise RefusedError(f"{tenant_id}/{agent_id} is already pinned to {to_model_id!r}")
        existing = next(iter(states.open_rows(session, tenant_id, agent_id)), None)
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
            details=MigrationDetails(proposed_by=actor, reason=reason, forced=forced, transitions=[]).dump(),
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        session.flush()
        states.record(store, session, row, "proposed", actor=actor, reason=reason, before=None)
        return states.to_info(row)


def run_staging(
    store: Store, migration_id: int, runner: StagingRunner, *, actor: str, expected_version: int | None = None
) -> states.MigrationInfo:
    """Replay the workflow suite against the candidate, record report and verdict, move on to review.

    A non-regulated tenant whose checks all pass is approved automatically; a runner failure returns the
    migration to `proposed` with the error recorded (retry with another `stage`).
    """
    with store.transaction() as session:
        row = states.lock(session, migration_id, expected_version)
        states.transition(store, session, row, "staging", actor=actor, reason="staging replay started")
        version, tenant_id, agent_id, to_model_id = row.version, row.tenant_id, row.agent_id, row.to_model_id
    manifest = manifests.current(store, tenant_id, agent_id)
    candidate = registry.get_version(store, to_model_id)
    try:
        report = runner(manifest, candidate)
        checks = staging_checks(report)
    except Exception as exc:
        with store.transaction() as session:
            row = states.lock(session, migration_id, version)
            with edit_details(row) as details:
                details.staging_error = f"{type(exc).__name__}: {exc}"
            states.transition(store, session, row, "proposed", actor=actor, reason=f"staging replay failed: {exc}")
        raise
    passed = all(c["passed"] for c in checks)
    with store.transaction() as session:
        row = states.lock(session, migration_id, version)
        with edit_details(row) as details:
            details.staging = StagingAssessment(
                report=_trim(report),
                checks=checks,
                passed=passed,
                verdict="pass" if passed else "fail",
                ran_at=audit.utcnow().isoformat(),
            )
        summary = f"staging {'passed' if passed else 'failed'}: " + ", ".join(
            c["name"] for c in checks if not c["passed"]
        )
        states.transition(
            store, session, row, "review", actor=actor, reason=summary.rstrip(": "), extra={"staging": checks}
        )
        regulated = session.get(Tenant, row.tenant_id).regulated
        if passed and not regulated:
            why = "every staging check passed"
            with edit_details(row) as details:
                details.review = _review(AUTO_REVIEWER, "approved", why)
            states.transition(store, session, row, "approved", actor=AUTO_REVIEWER, reason=why)
        return states.to_info(row)


def staging_checks(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The checks a staging report must pass: replay ran, no dimension drifted, equivalence shown.

    Automatic approval needs the report's verdict `equivalent` (every tested dimension's interval inside the
    margin, docs/scoring.md "Verdicts"); `inconclusive` is no evidence of sameness, so it waits for review.
    """
    if not isinstance(report, Mapping) or "dimensions" not in report or "drift_detected" not in report:
        raise InvalidInputError("staging runner returned no drift report (needs 'dimensions' and 'drift_detected')")
    checks = [{"name": "replay produced pairs", "passed": int(report.get("n_pairs") or 0) > 0}]
    for dim in report["dimensions"]:
        checks.append({"name": f"no drift in {dim['name']}", "passed": not dim.get("drifted", False)})
    checks.append({"name": "no drift detected overall", "passed": not report["drift_detected"]})
    checks.append({"name": "equivalence shown (verdict equivalent)", "passed": verdicts.shows_equivalence(report)})
    return checks


def approve(
    store: Store, migration_id: int, *, reviewer: str, reason: str, expected_version: int | None = None
) -> states.MigrationInfo:
    """Human approval after staging (mandatory for regulated tenants; required when a check failed)."""
    _require_review_fields(reviewer, reason)
    with store.transaction() as session:
        row = states.lock(session, migration_id, expected_version)
        proposer = MigrationDetails.load(row.details).proposed_by
        if session.get(Tenant, row.tenant_id).regulated and reviewer == proposer:
            raise RefusedError(
                f"tenant {row.tenant_id!r} is regulated: the proposer {reviewer!r} cannot approve their own migration"
            )
        states.check_allowed(row.id, row.state, "approved")
        with edit_details(row) as details:
            details.review = _review(reviewer, "approved", reason)
        states.transition(store, session, row, "approved", actor=reviewer, reason=reason)
        return states.to_info(row)


def reject(
    store: Store, migration_id: int, *, reviewer: str, reason: str, expected_version: int | None = None
) -> states.MigrationInfo:
    _require_review_fields(reviewer, reason)
    with store.transaction() as session:
        row = states.lock(session, migration_id, expected_version)
        states.check_allowed(row.id, row.state, "rejected")
        with edit_details(row) as details:
            details.review = _review(reviewer, "rejected", reason)
        states.transition(store, session, row, "rejected", actor=reviewer, reason=reason)
        return states.to_info(row)


def _review(reviewer: str, decision: str, reason: str) -> Review:
    return Review(reviewer=reviewer, decision=decision, reason=reason, at=audit.utcnow().isoformat())


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
