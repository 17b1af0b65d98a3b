"""Proposal, staging and review: automatic approval, the regulated four-eyes rule, failed staging."""

from __future__ import annotations

import pytest

from drift_pipeline.errors import InvalidInputError, RefusedError
from drift_pipeline.migration import review, states
from drift_pipeline.persistence import audit
from drift_pipeline_tests.plugins.migration import FakeStagingRunner, drift_report, signed_approval


def test_regulated_tenant_needs_a_human_other_than_the_proposer(pinned_store, staging_ok):
    m = review.propose(pinned_store, "bank", "support", "m-2", actor="alice")
    m = review.run_staging(pinned_store, m.id, staging_ok, actor="alice")
    assert m.state == "review"  # checks passed, but regulated: no automatic approval
    with pytest.raises(RefusedError, match="'alice' proposed migration 1 and cannot approve it"):
        review.approve(pinned_store, m.id, signed_approval(pinned_store, m.id, "alice", reason="lgtm"))
    with pytest.raises(InvalidInputError, match="needs a reason"):
        signed_approval(pinned_store, m.id, "carol", reason=" ")
    signed = signed_approval(pinned_store, m.id, "carol", reason="staging clean, risk reviewed")
    m = review.approve(pinned_store, m.id, signed)
    assert m.state == "approved" and m.details["review"] == {**m.details["review"], "reviewer": "carol"}
    assert m.details["review"]["approval"]["signature"] == signed["signature"]
    assert m.details["review"]["report_sha256"] == m.details["staging"]["report_sha256"]
    entry = audit.entries(pinned_store, tenant_id="bank", action_prefix="migration.approved")[-1]
    assert (entry["actor"], entry["reason"]) == ("reviewer:carol", "staging clean, risk reviewed")
    assert entry["after"]["approval"]["signature"] == signed["signature"]


def test_failed_staging_waits_for_review_and_can_be_rejected(pinned_store):
    m = review.propose(pinned_store, "acme", "support", "m-2", actor="alice")
    m = review.run_staging(pinned_store, m.id, FakeStagingRunner(drifted=("refusal",)), actor="alice")
    assert (m.state, m.readiness) == ("review", "not ready")
    failed = [c["name"] for c in m.details["staging"]["checks"] if not c["passed"]]
    assert failed == ["no drift in refusal", "no drift detected overall", "equivalence shown (verdict equivalent)"]
    m = review.reject(pinned_store, m.id, reviewer="carol", reason="refusal rate up 20 points")
    assert m.state == "rejected"
    review.propose(pinned_store, "acme", "support", "m-3", actor="alice")  # a closed migration frees the agent


def test_inconclusive_staging_is_never_approved_automatically(pinned_store):
    """No drift found is not evidence of sameness: only an `equivalent` report approves by itself."""
    m = review.propose(pinned_store, "acme", "support", "m-2", actor="alice")
    m = review.run_staging(pinned_store, m.id, FakeStagingRunner(equivalent=False), actor="alice")
    assert m.state == "review"
    failed = [c["name"] for c in m.details["staging"]["checks"] if not c["passed"]]
    assert failed == ["equivalence shown (verdict equivalent)"]


def test_a_verdict_string_without_the_intervals_behind_it_approves_nothing():
    report = drift_report("m-1", "m-2")
    report["dimensions"][1] = {**report["dimensions"][1], "equivalence_high": 0.3}  # says equivalent, isn't
    checks = {c["name"]: c["passed"] for c in review.staging_checks(report)}
    assert report["verdict"] == "equivalent" and not checks["equivalence shown (verdict equivalent)"]


def test_runner_failure_returns_to_proposed_with_the_error(pinned_store):
    m = review.propose(pinned_store, "acme", "support", "m-2", actor="alice")
    with pytest.raises(TimeoutError):
        review.run_staging(
            pinned_store, m.id, FakeStagingRunner(fail=TimeoutError("provider timed out")), actor="alice"
        )
    m = states.get(pinned_store, m.id)
    assert m.state == "proposed" and "provider timed out" in m.details["staging_error"]
    assert review.run_staging(pinned_store, m.id, FakeStagingRunner(), actor="alice").state == "approved"
