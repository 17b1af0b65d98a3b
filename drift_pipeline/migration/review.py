"""Before the candidate serves anyone: propose a migration, stage it, and review it (approve or reject).

Staging replays the agent's workflow suite against the candidate (an injected `StagingRunner` returns a
drift report), and the report is stored with its hash (`persistence.reports`): only that stored report
can approve. Regulated tenants always need a human approval signed by a registered reviewer other than
the proposer (`approvals`); other tenants are approved automatically only when every staging check
passes. A report file from outside is only an attachment (`attach`). Locking, allowed steps and audit
entries are the state machine's (`states`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from drift_pipeline.detection import verdicts
from drift_pipeline.errors import InvalidInputError, RefusedError
from drift_pipeline.migration import approvals, reviewers, states
from drift_pipeline.migration.details import MigrationDetails, Review, StagingAssessment, edit_details
from drift_pipeline.persistence import audit, refusals, reports
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.objects import ObjectStore
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
    store: Store,
    migration_id: int,
    runner: StagingRunner,
    *,
    actor: str,
    expected_version: int | None = None,
    objects: ObjectStore | None = None,
) -> states.MigrationInfo:
    """Replay the workflow suite against the candidate, store the report (and its copy in `objects`) with
    its hash, record the verdict, move on to review.

    A non-regulated tenant whose checks all pass is approved automatically; a runner failure (or a report
    about another subject, or with no pairs) returns the migration to `proposed` with the error recorded.
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
        reports.check_subject(report, tenant_id, agent_id, to_model_id)
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
        stored = reports.record(
            store,
            session,
            kind="staging",
            tenant_id=tenant_id,
            agent_id=agent_id,
            model_id=to_model_id,
            body=report,
            actor=actor,
            objects=objects,
        )
        with edit_details(row) as details:
            details.staging = StagingAssessment(
                report=_trim(report),
                checks=checks,
                passed=passed,
                verdict="pass" if passed else "fail",
                ran_at=audit.utcnow().isoformat(),
                report_id=stored.report_id,
                report_sha256=stored.sha256,
            )
        summary = f"staging {'passed' if passed else 'failed'}: " + ", ".join(
            c["name"] for c in checks if not c["passed"]
        )
        extra = {"staging": checks, "report_id": stored.report_id, "report_sha256": stored.sha256}
        states.transition(store, session, row, "review", actor=actor, reason=summary.rstrip(": "), extra=extra)
        regulated = session.get(Tenant, row.tenant_id).regulated
        if passed and not regulated:
            why = f"every staging check of report {stored.report_id} passed"
            with edit_details(row) as details:
                details.review = _review(AUTO_REVIEWER, "approved", why, report_sha256=stored.sha256)
            extra = {"report_id": stored.report_id, "report_sha256": stored.sha256}
            states.transition(store, session, row, "approved", actor=AUTO_REVIEWER, reason=why, extra=extra)
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
    store: Store,
    migration_id: int,
    signed: Mapping[str, Any],
    *,
    expected_version: int | None = None,
    objects: ObjectStore | None = None,
) -> states.MigrationInfo:
    """Human approval after staging, as a signed statement (`approvals`) by a registered reviewer; mandatory
    for regulated tenants (and then by someone other than the proposer), required when a check failed."""
    return decide(store, migration_id, signed, expected_version=expected_version, objects=objects, only="approved")


def decide(
    store: Store,
    migration_id: int,
    signed: Mapping[str, Any],
    *,
    expected_version: int | None = None,
    objects: ObjectStore | None = None,
    only: str | None = None,
) -> states.MigrationInfo:
    """Apply a signed decision (approved or rejected), verified against the stored staging report."""
    claimed = approvals.claimed_reviewer(signed)
    with refusals.audited(
        store,
        actor=f"unverified:{claimed}",  # who the statement claims: not proven
        action="migration.review_refused",
        subject=f"migration-{migration_id}",
        tenant_id=lambda: states.get(store, migration_id).tenant_id,
    ):
        info = states.get(store, migration_id)
        states.check_allowed(info.id, info.state, only or "approved")  # a closed migration: say so first
        staged = verified_staging(store, info, objects)
        verified = approvals.verify(store, signed, subject(info, staged.sha256))
        if only is not None and verified.decision != only:
            raise RefusedError(f"the signed statement's decision is {verified.decision!r}, not {only!r}")
        with store.transaction() as session:
            row = states.lock(session, migration_id, expected_version)
            if MigrationDetails.load(row.details).staging.report_sha256 != staged.sha256:  # type: ignore[union-attr]
                raise RefusedError(f"migration {row.id} was staged again meanwhile: sign the new report")
            proposer = MigrationDetails.load(row.details).proposed_by or ""
            if (
                verified.decision == "approved"
                and session.get(Tenant, row.tenant_id).regulated
                and reviewers.identity_key(proposer) == reviewers.identity_key(verified.reviewer)
            ):
                raise RefusedError(
                    f"tenant {row.tenant_id!r} is regulated: {verified.reviewer!r} proposed migration {row.id} "
                    "and cannot approve it; another registered reviewer must sign"
                )
            states.check_allowed(row.id, row.state, verified.decision)
            with edit_details(row) as details:
                details.review = _review(
                    verified.reviewer,
                    verified.decision,
                    verified.reason,
                    report_sha256=staged.sha256,
                    key_id=verified.key_id,
                    approval=verified.signed,
                    approval_sha256=verified.sha256,
                )
            extra = {"approval": verified.signed, "approval_sha256": verified.sha256, "key_id": verified.key_id}
            states.transition(
                store,
                session,
                row,
                verified.decision,
                actor=f"reviewer:{verified.reviewer}",
                reason=verified.reason,
                extra=extra,
            )
            return states.to_info(row)


def reject(
    store: Store, migration_id: int, *, reviewer: str, reason: str, expected_version: int | None = None
) -> states.MigrationInfo:
    """Reject (stopping a migration needs no signature: it can only keep the pinned version in place)."""
    _require_review_fields(reviewer, reason)
    with store.transaction() as session:
        row = states.lock(session, migration_id, expected_version)
        states.check_allowed(row.id, row.state, "rejected")
        with edit_details(row) as details:
            details.review = _review(reviewer, "rejected", reason)
        states.transition(store, session, row, "rejected", actor=reviewer, reason=reason)
        return states.to_info(row)


def attach(store: Store, migration_id: int, path: Path, *, actor: str) -> dict[str, Any]:
    """Keep a report file from outside with the migration, marked `external, unverified`: reviewers see it,
    nothing relies on it (it never stages, approves or promotes)."""
    with refusals.audited(
        store,
        actor=actor,
        action="migration.attach_refused",
        subject=f"migration-{migration_id}",
        tenant_id=lambda: states.get(store, migration_id).tenant_id,
    ):
        info = states.get(store, migration_id)
        attachment = reports.external_attachment(path, info.tenant_id, info.agent_id, info.to_model_id)
        with store.transaction() as session:
            row = states.lock(session, migration_id, None)
            with edit_details(row) as details:
                details.attachments = [*details.attachments, {**attachment, "by": actor}]
            states.record(
                store,
                session,
                row,
                "attachment",
                actor=actor,
                reason=f"report file {path.name} attached as {reports.EXTERNAL}",
                before=None,
                extra={"attachment_sha256": attachment["sha256"], "origin": reports.EXTERNAL},
            )
        return attachment


def verified_staging(
    store: Store, info: states.MigrationInfo, objects: ObjectStore | None = None
) -> reports.ReportInfo:
    """The stored staging report the migration rests on, re-verified (hash, audit entry, object copy)."""
    staging = MigrationDetails.load(info.details).staging
    if staging is None or not staging.report_id:
        raise RefusedError(
            f"migration {info.id} has no staging report produced by drift-pipeline: run `migrate stage {info.id}`"
        )
    return reports.verify(
        store,
        staging.report_id,
        tenant_id=info.tenant_id,
        agent_id=info.agent_id,
        model_id=info.to_model_id,
        expected_sha256=staging.report_sha256,
        objects=objects,
    )


def subject(info: states.MigrationInfo, report_sha256: str) -> approvals.Subject:
    """What a signed approval of this migration must name."""
    return approvals.Subject(info.id, info.tenant_id, info.agent_id, info.to_model_id, report_sha256)


def _review(reviewer: str, decision: str, reason: str, **signed: Any) -> Review:
    return Review(reviewer=reviewer, decision=decision, reason=reason, at=audit.utcnow().isoformat(), **signed)


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
