"""Migration gate state machine: full path, review rules, refusals, one open migration, concurrent promote."""

from __future__ import annotations

import threading
from datetime import date

import pytest

from drift_pipeline.errors import InvalidInputError, RefusedError
from drift_pipeline.migration import gates
from drift_pipeline.persistence import audit
from drift_pipeline.versioning import manifests, registry
from drift_pipeline.versioning.runtime import Resolver
from drift_pipeline_tests.plugins.migration import FakeStagingRunner


def _actions(store, tenant="acme"):
    return [e["action"] for e in audit.entries(store, tenant_id=tenant, action_prefix="migration.")]


def test_full_migration_end_to_end(world, staging_ok, baseline_creator):
    m = gates.propose(world, "acme", "support", "m-2", actor="alice", reason="cheaper")
    assert (m.state, m.from_model_id, m.from_revision) == ("proposed", "m-1", 2)
    m = gates.run_staging(world, m.id, staging_ok, actor="alice")
    # acme is not regulated and every check passed: approved automatically
    assert m.state == "approved" and m.details["review"]["reviewer"] == gates.AUTO_REVIEWER
    assert m.details["staging"]["passed"] and m.readiness == "ready"
    assert len(m.details["staging"]["report"]["examples"]) == gates.MAX_EXAMPLES
    m = gates.start_canary(world, m.id, 0.2, actor="alice")
    m = gates.start_canary(world, m.id, 0.5, actor="alice")
    assert [h["share"] for h in m.details["share_history"]] == [0.2, 0.5]
    m = gates.promote(world, m.id, baseline_creator, actor="alice")

    assert m.state == "promoted" and m.details["baseline_id"] == "bl-m-2-1"
    current = manifests.current(world, "acme", "support")
    assert (current.pinned_model_id, current.behavioral_baseline_id, current.revision) == ("m-2", "bl-m-2-1", 3)
    assert Resolver(world).resolve("acme", "support", "conv-1").model_id == "m-2"
    assert _actions(world) == [
        "migration.proposed",
        "migration.staging",
        "migration.review",
        "migration.approved",
        "migration.canary",
        "migration.canary",
        "migration.promoted",
    ]
    assert "manifest.promote" in [e["action"] for e in audit.entries(world, tenant_id="acme")]
    assert [t["to"] for t in m.details["transitions"]][-1] == "promoted"
    assert audit.verify(world).ok


def test_illegal_transition_names_state_and_allowed_steps(world, baseline_creator):
    m = gates.propose(world, "acme", "support", "m-2", actor="alice")
    with pytest.raises(
        RefusedError,
        match="migration 1 is proposed: cannot move to promoted; allowed next: staging, rejected, aborted, rolled_back",
    ):
        gates.promote(world, m.id, baseline_creator, actor="alice")
    with pytest.raises(RefusedError, match="is proposed: cannot move to canary"):
        gates.start_canary(world, m.id, 0.1, actor="alice")
    gates.abort(world, m.id, actor="alice", reason="changed our mind")
    with pytest.raises(RefusedError, match=r"is aborted: cannot move to approved; allowed next: none \(it is closed\)"):
        gates.approve(world, m.id, reviewer="bob", reason="ok")
    assert manifests.current(world, "acme", "support").pinned_model_id == "m-1"


def test_one_open_migration_per_agent_and_pins_must_be_exact(world):
    gates.propose(world, "acme", "support", "m-2", actor="alice")
    with pytest.raises(RefusedError, match=r"already has open migration 1 .* state proposed"):
        gates.propose(world, "acme", "support", "m-3", actor="bob")
    with pytest.raises(RefusedError, match="is an alias"):
        gates.propose(world, "bank", "support", "m-latest", actor="bob")
    with pytest.raises(RefusedError, match="already pinned to 'm-1'"):
        gates.propose(world, "bank", "support", "m-1", actor="bob")


def test_regulated_tenant_needs_a_human_other_than_the_proposer(world, staging_ok):
    m = gates.propose(world, "bank", "support", "m-2", actor="alice")
    m = gates.run_staging(world, m.id, staging_ok, actor="alice")
    assert m.state == "review"  # checks passed, but regulated: no automatic approval
    with pytest.raises(RefusedError, match="proposer 'alice' cannot approve their own migration"):
        gates.approve(world, m.id, reviewer="alice", reason="lgtm")
    with pytest.raises(InvalidInputError, match="needs a reason"):
        gates.approve(world, m.id, reviewer="carol", reason=" ")
    m = gates.approve(world, m.id, reviewer="carol", reason="staging clean, risk reviewed")
    assert m.state == "approved" and m.details["review"] == {**m.details["review"], "reviewer": "carol"}
    entry = audit.entries(world, tenant_id="bank", action_prefix="migration.approved")[-1]
    assert (entry["actor"], entry["reason"]) == ("carol", "staging clean, risk reviewed")


def test_failed_staging_waits_for_review_and_can_be_rejected(world):
    m = gates.propose(world, "acme", "support", "m-2", actor="alice")
    m = gates.run_staging(world, m.id, FakeStagingRunner(drifted=("refusal",)), actor="alice")
    assert (m.state, m.readiness) == ("review", "not ready")
    failed = [c["name"] for c in m.details["staging"]["checks"] if not c["passed"]]
    assert failed == ["no drift in refusal", "no drift detected overall"]
    m = gates.reject(world, m.id, reviewer="carol", reason="refusal rate up 20 points")
    assert m.state == "rejected"
    gates.propose(world, "acme", "support", "m-3", actor="alice")  # a closed migration frees the agent


def test_runner_failure_returns_to_proposed_with_the_error(world):
    m = gates.propose(world, "acme", "support", "m-2", actor="alice")
    with pytest.raises(TimeoutError):
        gates.run_staging(world, m.id, FakeStagingRunner(fail=TimeoutError("provider timed out")), actor="alice")
    m = gates.get(world, m.id)
    assert m.state == "proposed" and "provider timed out" in m.details["staging_error"]
    assert gates.run_staging(world, m.id, FakeStagingRunner(), actor="alice").state == "approved"


def test_stale_version_is_refused(world, staging_ok):
    m = gates.propose(world, "acme", "support", "m-2", actor="alice")
    gates.run_staging(world, m.id, staging_ok, actor="alice", expected_version=m.version)
    with pytest.raises(RefusedError, match=r"changed meanwhile .* you read version 1"):
        gates.abort(world, m.id, actor="bob", reason="stop", expected_version=m.version)


def test_two_operators_cannot_both_promote(world, staging_ok, baseline_creator):
    m = gates.propose(world, "acme", "support", "m-2", actor="alice")
    gates.run_staging(world, m.id, staging_ok, actor="alice")
    m = gates.start_canary(world, m.id, 0.1, actor="alice")
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def operator(name: str) -> None:
        barrier.wait()  # all read version m.version, then race
        try:
            gates.promote(world, m.id, baseline_creator, actor=name, expected_version=m.version)
            outcomes.append("promoted")
        except RefusedError as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=operator, args=(f"op-{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert outcomes.count("promoted") == 1, outcomes
    assert all("changed meanwhile" in o for o in outcomes if o != "promoted")
    assert [r.pinned_model_id for r in manifests.history(world, "acme", "support")] == ["m-1", "m-1", "m-2"]
    assert _actions(world).count("migration.promoted") == 1
    assert audit.verify(world).ok


def test_forced_migrations_after_sunset_and_readiness(world, staging_ok):
    registry.deprecate(world, "m-1", sunset=date(2026, 1, 31), successor="m-3", actor="vendor")
    gates.propose(world, "bank", "support", "m-2", actor="alice")  # bank is busy with another migration
    forced = gates.open_forced_migrations(world, date(2026, 2, 1), runner=staging_ok)
    by_tenant = {f.tenant_id: f for f in forced}
    assert by_tenant["acme"].created and by_tenant["acme"].to_model_id == "m-3"
    assert by_tenant["acme"].readiness == "ready"
    assert by_tenant["bank"].readiness == "blocked by migration 1" and not by_tenant["bank"].created
    again = gates.open_forced_migrations(world, date(2026, 2, 2))  # idempotent: reported, not re-opened
    assert [(f.tenant_id, f.created, f.migration_id) for f in again if f.tenant_id == "acme"] == [
        ("acme", False, by_tenant["acme"].migration_id)
    ]
    assert gates.get(world, by_tenant["acme"].migration_id).details["forced"] is True
    report = {r["tenant_id"]: r for r in gates.readiness_report(world, date(2026, 2, 1))}
    assert report["acme"]["readiness"] == "ready" and report["bank"]["readiness"] == "not assessed"
    assert report["acme"]["days_left"] == -1
    assert gates.open_forced_migrations(world, date(2026, 1, 30)) == []  # before the sunset nothing happens
