"""The migration state machine: allowed steps, one open migration per agent, stale reads refused."""

from __future__ import annotations

import pytest

from drift_pipeline.errors import RefusedError
from drift_pipeline.migration import promotion, review
from drift_pipeline.versioning import manifests
from drift_pipeline_tests.plugins.migration import signed_approval


def test_illegal_transition_names_state_and_allowed_steps(pinned_store, baseline_creator):
    m = review.propose(pinned_store, "acme", "support", "m-2", actor="alice")
    with pytest.raises(
        RefusedError,
        match="migration 1 is proposed: cannot move to promoted; allowed next: staging, rejected, aborted, rolled_back",
    ):
        promotion.promote(pinned_store, m.id, baseline_creator, actor="alice")
    with pytest.raises(RefusedError, match="is proposed: cannot move to canary"):
        promotion.start_canary(pinned_store, m.id, 0.1, actor="alice")
    promotion.abort(pinned_store, m.id, actor="alice", reason="changed our mind")
    with pytest.raises(RefusedError, match=r"is aborted: cannot move to approved; allowed next: none \(it is closed\)"):
        review.approve(pinned_store, m.id, signed_approval(pinned_store, m.id, "bob", reason="ok"))
    assert manifests.current(pinned_store, "acme", "support").pinned_model_id == "m-1"


def test_one_open_migration_per_agent_and_pins_must_be_exact(pinned_store):
    review.propose(pinned_store, "acme", "support", "m-2", actor="alice")
    with pytest.raises(RefusedError, match=r"already has open migration 1 .* state proposed"):
        review.propose(pinned_store, "acme", "support", "m-3", actor="bob")
    with pytest.raises(RefusedError, match="is an alias"):
        review.propose(pinned_store, "bank", "support", "m-latest", actor="bob")
    with pytest.raises(RefusedError, match="already pinned to 'm-1'"):
        review.propose(pinned_store, "bank", "support", "m-1", actor="bob")


def test_stale_version_is_refused(pinned_store, staging_ok):
    m = review.propose(pinned_store, "acme", "support", "m-2", actor="alice")
    review.run_staging(pinned_store, m.id, staging_ok, actor="alice", expected_version=m.version)
    with pytest.raises(RefusedError, match=r"changed meanwhile .* you read version 1"):
        promotion.abort(pinned_store, m.id, actor="bob", reason="stop", expected_version=m.version)
