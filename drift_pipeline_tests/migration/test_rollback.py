"""The rollback contract: last known-good pin and baseline, idempotent, stops an in-flight canary, seen by
resolvers in other processes within their poll interval."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from drift_pipeline.errors import NotFoundError, RefusedError
from drift_pipeline.migration import promotion, review, states
from drift_pipeline.migration.rollback import rollback
from drift_pipeline.persistence import audit
from drift_pipeline.versioning import manifests
from drift_pipeline.versioning.runtime import Resolver


def _migrate(store, to, staging, baseline_creator, *, promote=True, share=0.2):
    m = review.propose(store, "acme", "support", to, actor="alice")
    review.run_staging(store, m.id, staging, actor="alice")
    m = promotion.start_canary(store, m.id, share, actor="alice")
    return promotion.promote(store, m.id, baseline_creator, actor="alice") if promote else m


def _pin(store):
    m = manifests.current(store, "acme", "support")
    return m.pinned_model_id, m.behavioral_baseline_id


def test_rollback_after_promotion_is_idempotent(pinned_store, staging_ok, baseline_creator):
    promoted = _migrate(pinned_store, "m-2", staging_ok, baseline_creator)
    assert _pin(pinned_store) == ("m-2", "bl-m-2-1")
    result = rollback(pinned_store, "acme", "support", actor="oncall", reason="tenant complaint")
    assert result.changed and result.closed_migrations == [promoted.id]
    assert _pin(pinned_store) == ("m-1", "bl-m-1-0")  # pin AND baseline of the revision the promotion started from
    assert states.get(pinned_store, promoted.id).state == "rolled_back"
    revisions = len(manifests.history(pinned_store, "acme", "support"))

    again = rollback(pinned_store, "acme", "support", actor="oncall")
    assert not again.changed and again.message.startswith("nothing to roll back: acme/support already serves m-1")
    assert len(manifests.history(pinned_store, "acme", "support")) == revisions  # no new revision
    # a later non-pin change does not make the next rollback roll forward again
    manifests.update(pinned_store, "acme", "support", {"drift_alert_threshold": 0.1}, actor="ops")
    assert not rollback(pinned_store, "acme", "support", actor="oncall").changed
    assert _pin(pinned_store) == ("m-1", "bl-m-1-0")
    assert audit.verify(pinned_store).ok


def test_rollback_during_an_in_flight_canary(pinned_store, staging_ok, baseline_creator):
    _migrate(pinned_store, "m-2", staging_ok, baseline_creator)
    in_flight = _migrate(pinned_store, "m-3", staging_ok, baseline_creator, promote=False, share=0.5)
    resolver = Resolver(pinned_store, poll_interval=3600)
    sessions = [f"c{i}" for i in range(200)]
    assert {resolver.resolve("acme", "support", s).model_id for s in sessions} == {"m-2", "m-3"}

    result = rollback(pinned_store, "acme", "support", actor="oncall")
    assert result.changed and in_flight.id in result.closed_migrations
    assert states.get(pinned_store, in_flight.id).state == "rolled_back"
    assert states.active_canary(pinned_store, "acme", "support") is None
    assert {resolver.resolve("acme", "support", s).model_id for s in sessions} == {"m-1"}
    assert _pin(pinned_store) == ("m-1", "bl-m-1-0")


def test_canary_without_earlier_pin_change_is_closed_without_a_new_revision(pinned_store, staging_ok, baseline_creator):
    in_flight = _migrate(pinned_store, "m-2", staging_ok, baseline_creator, promote=False)
    before = len(manifests.history(pinned_store, "acme", "support"))
    result = rollback(pinned_store, "acme", "support", actor="oncall")
    assert not result.changed and f"closed migration {in_flight.id}" in result.message
    assert states.get(pinned_store, in_flight.id).state == "rolled_back"
    assert len(manifests.history(pinned_store, "acme", "support")) == before
    resolver = Resolver(pinned_store)
    assert {resolver.resolve("acme", "support", f"c{i}").model_id for i in range(100)} == {"m-1"}


def test_aborted_canary_then_rollback_end_to_end(pinned_store, staging_ok, baseline_creator):
    first = _migrate(pinned_store, "m-2", staging_ok, baseline_creator)
    m = review.propose(pinned_store, "acme", "support", "m-3", actor="alice")
    review.run_staging(pinned_store, m.id, staging_ok, actor="alice")
    promotion.start_canary(pinned_store, m.id, 0.3, actor="alice")
    bad = [{"route": "pinned", "error": False} for _ in range(700)] + [
        {"route": "canary", "error": i % 4 == 0} for i in range(300)
    ]
    assert promotion.observe(pinned_store, m.id, bad).aborted
    assert _pin(pinned_store) == ("m-2", "bl-m-2-1")  # an abort never touches the pin
    result = rollback(pinned_store, "acme", "support", actor="oncall", reason="m-2 looks suspect too")
    assert result.changed and result.closed_migrations == [first.id] and _pin(pinned_store) == ("m-1", "bl-m-1-0")

    steps = [
        (e["subject"].rsplit("-", 1)[-1], e["action"])
        for e in audit.entries(pinned_store, tenant_id="acme")
        if e["action"].startswith("migration.")
    ]
    assert steps == [
        ("1", "migration.proposed"), ("1", "migration.staging"), ("1", "migration.review"), ("1", "migration.approved"),
        ("1", "migration.canary"), ("1", "migration.promoted"),
        ("2", "migration.proposed"), ("2", "migration.staging"), ("2", "migration.review"), ("2", "migration.approved"),
        ("2", "migration.canary"), ("2", "migration.aborted"),
        ("1", "migration.rolled_back"),
    ]  # fmt: skip
    actions = [e["action"] for e in audit.entries(pinned_store, tenant_id="acme")]
    assert actions.count("manifest.promote") == 1 and actions[-2:] == ["manifest.rollback", "migration.rolled_back"]
    assert audit.verify(pinned_store).ok


def test_explicit_target_revision(pinned_store, staging_ok, baseline_creator):
    _migrate(pinned_store, "m-2", staging_ok, baseline_creator)
    with pytest.raises(NotFoundError, match="has no revision 42"):
        rollback(pinned_store, "acme", "support", actor="oncall", to_revision=42)
    with pytest.raises(RefusedError, match="revision 3 is the one in force"):
        rollback(pinned_store, "acme", "support", actor="oncall", to_revision=3)
    result = rollback(pinned_store, "acme", "support", actor="oncall", to_revision=1)
    assert result.changed and _pin(pinned_store) == ("m-1", None)  # revision 1 had no baseline yet
    assert not rollback(pinned_store, "acme", "support", actor="oncall", to_revision=1).changed


def test_another_process_sees_the_rollback_within_its_poll_interval(pinned_store, staging_ok, baseline_creator):
    _migrate(pinned_store, "m-2", staging_ok, baseline_creator)
    resolver = Resolver(pinned_store, poll_interval=0.1)
    assert resolver.resolve("acme", "support", "c1").model_id == "m-2"
    url = pinned_store.engine.url.render_as_string(hide_password=False)
    code = (
        "from drift_pipeline.migration.rollback import rollback; from drift_pipeline.persistence.db import Store; "
        f"print(rollback(Store.open({url!r}, upgrade=False), 'acme', 'support', actor='other').message)"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, timeout=120, capture_output=True, text=True)
    assert "rolled back to m-1" in out.stdout
    time.sleep(0.15)
    assert resolver.resolve("acme", "support", "c1").model_id == "m-1"
