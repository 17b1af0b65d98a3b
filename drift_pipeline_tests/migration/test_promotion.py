"""From proposal to promotion end to end, and two operators racing to promote."""

from __future__ import annotations

import threading

from drift_pipeline.errors import RefusedError
from drift_pipeline.migration import promotion, review
from drift_pipeline.persistence import audit
from drift_pipeline.versioning import manifests
from drift_pipeline.versioning.runtime import Resolver


def _actions(store, tenant="acme"):
    return [e["action"] for e in audit.entries(store, tenant_id=tenant, action_prefix="migration.")]


def test_full_migration_end_to_end(pinned_store, staging_ok, baseline_creator):
    m = review.propose(pinned_store, "acme", "support", "m-2", actor="alice", reason="cheaper")
    assert (m.state, m.from_model_id, m.from_revision) == ("proposed", "m-1", 2)
    m = review.run_staging(pinned_store, m.id, staging_ok, actor="alice")
    # acme is not regulated and every check passed: approved automatically
    assert m.state == "approved" and m.details["review"]["reviewer"] == review.AUTO_REVIEWER
    assert m.details["staging"]["passed"] and m.readiness == "ready"
    assert len(m.details["staging"]["report"]["examples"]) == review.MAX_EXAMPLES
    m = promotion.start_canary(pinned_store, m.id, 0.2, actor="alice")
    m = promotion.start_canary(pinned_store, m.id, 0.5, actor="alice")
    assert [h["share"] for h in m.details["share_history"]] == [0.2, 0.5]
    m = promotion.promote(pinned_store, m.id, baseline_creator, actor="alice")

    assert m.state == "promoted" and m.details["baseline_id"] == "bl-m-2-1"
    current = manifests.current(pinned_store, "acme", "support")
    assert (current.pinned_model_id, current.behavioral_baseline_id, current.revision) == ("m-2", "bl-m-2-1", 3)
    assert Resolver(pinned_store).resolve("acme", "support", "conv-1").model_id == "m-2"
    assert _actions(pinned_store) == [
        "migration.proposed",
        "migration.staging",
        "migration.review",
        "migration.approved",
        "migration.canary",
        "migration.canary",
        "migration.promoted",
    ]
    assert "manifest.promote" in [e["action"] for e in audit.entries(pinned_store, tenant_id="acme")]
    assert [t["to"] for t in m.details["transitions"]][-1] == "promoted"
    assert audit.verify(pinned_store).ok


def test_two_operators_cannot_both_promote(pinned_store, staging_ok, baseline_creator):
    m = review.propose(pinned_store, "acme", "support", "m-2", actor="alice")
    review.run_staging(pinned_store, m.id, staging_ok, actor="alice")
    m = promotion.start_canary(pinned_store, m.id, 0.1, actor="alice")
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def operator(name: str) -> None:
        barrier.wait()  # all read version m.version, then race
        try:
            promotion.promote(pinned_store, m.id, baseline_creator, actor=name, expected_version=m.version)
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
    assert [r.pinned_model_id for r in manifests.history(pinned_store, "acme", "support")] == ["m-1", "m-1", "m-2"]
    assert _actions(pinned_store).count("migration.promoted") == 1
    assert audit.verify(pinned_store).ok
