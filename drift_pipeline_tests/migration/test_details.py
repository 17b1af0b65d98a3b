"""The typed migration details keep the stored JSON shape: keys a step never set stay absent."""

from __future__ import annotations

from typing import Any

from drift_pipeline.migration import promotion, review, states
from drift_pipeline.migration.details import MigrationDetails

STORED: dict[str, Any] = {
    "proposed_by": "alice",
    "reason": "cheaper",
    "forced": False,
    "transitions": [{"from": "proposed", "to": "staging", "at": "2026-01-01T00:00:00+00:00", "by": "a", "reason": ""}],
    "staging": {
        "report": {"n_pairs": 3, "examples": [], "extra": None},
        "checks": [{"name": "replay produced pairs", "passed": True}],
        "passed": True,
        "verdict": "pass",
        "ran_at": "2026-01-01T00:00:00+00:00",
    },
    "review": {"reviewer": "gate:auto", "decision": "approved", "reason": "ok", "at": "2026-01-01T00:00:00+00:00"},
    "share_history": [{"since": "2026-01-01T00:00:00+00:00", "share": 0.2}],
    "monitor": {"counts": {"error": {"canary": [0, 3]}}, "looks": 1, "alpha": 0.01, "last": [{"dimension": "error"}]},
    "breach": {"dimensions": [{"dimension": "error"}], "look": 1, "at": "2026-01-01T00:00:00+00:00"},
    "promoted_revision": 3,
    "baseline_id": "bl-1",
    "written_by_a_later_version": {"kept": True},
}


def test_stored_json_round_trips_unchanged() -> None:
    assert MigrationDetails.load(STORED).dump() == STORED
    assert MigrationDetails.load({"proposed_by": "alice"}).dump() == {"proposed_by": "alice"}
    assert MigrationDetails.load(None).dump() == {}


def test_each_step_adds_only_its_own_keys(pinned_store, staging_ok, baseline_creator) -> None:
    m = review.propose(pinned_store, "acme", "support", "m-2", actor="alice")
    assert set(m.details) == {"proposed_by", "reason", "forced", "transitions"}
    m = review.run_staging(pinned_store, m.id, staging_ok, actor="alice")
    assert set(m.details) == {"proposed_by", "reason", "forced", "transitions", "staging", "review"}
    m = promotion.start_canary(pinned_store, m.id, 0.3, actor="alice")
    m = promotion.promote(pinned_store, m.id, baseline_creator, actor="alice")
    stored = states.get(pinned_store, m.id).details
    assert set(stored) - set(m.details) == set() and "monitor" not in stored and "staging_error" not in stored
    assert {"promoted_revision", "baseline_id", "share_history"} <= set(stored)
    assert stored["transitions"][0] == {**stored["transitions"][0], "from": "proposed", "to": "staging"}
    assert set(stored["staging"]) == {"report", "checks", "passed", "verdict", "ran_at", "report_id", "report_sha256"}
