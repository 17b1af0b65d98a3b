"""Forced migrations after a version's sunset, and the readiness report."""

from __future__ import annotations

from datetime import date

from drift_pipeline.migration import forced, review, states
from drift_pipeline.versioning import registry


def test_forced_migrations_after_sunset_and_readiness(pinned_store, staging_ok):
    registry.deprecate(pinned_store, "m-1", sunset=date(2026, 1, 31), successor="m-3", actor="vendor")
    review.propose(pinned_store, "bank", "support", "m-2", actor="alice")  # bank is busy with another migration
    opened = forced.open_forced_migrations(pinned_store, date(2026, 2, 1), runner=staging_ok)
    by_tenant = {f.tenant_id: f for f in opened}
    assert by_tenant["acme"].created and by_tenant["acme"].to_model_id == "m-3"
    assert by_tenant["acme"].readiness == "ready"
    assert by_tenant["bank"].readiness == "blocked by migration 1" and not by_tenant["bank"].created
    again = forced.open_forced_migrations(pinned_store, date(2026, 2, 2))  # idempotent: reported, not re-opened
    assert [(f.tenant_id, f.created, f.migration_id) for f in again if f.tenant_id == "acme"] == [
        ("acme", False, by_tenant["acme"].migration_id)
    ]
    assert states.get(pinned_store, by_tenant["acme"].migration_id).details["forced"] is True
    report = {r["tenant_id"]: r for r in forced.readiness_report(pinned_store, date(2026, 2, 1))}
    assert report["acme"]["readiness"] == "ready" and report["bank"]["readiness"] == "not assessed"
    assert report["acme"]["days_left"] == -1
    assert forced.open_forced_migrations(pinned_store, date(2026, 1, 30)) == []  # before the sunset nothing happens
