"""Forced migrations at a version's sunset, and the readiness of every agent pinned near one.

A version whose sunset has passed must not stay pinned: each agent still on it gets a migration to the
registered successor (staged at once when a runner is given), through the same gate as any other. The
notices that precede the sunset are `deprecation`'s.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select

from drift_pipeline.migration import review, states
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.tables import ModelVersion
from drift_pipeline.versioning import manifests, registry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ForcedMigration:
    tenant_id: str
    agent_id: str
    from_model_id: str
    to_model_id: str | None
    migration_id: int | None
    created: bool
    readiness: str
    sunset_date: date | None


def open_forced_migrations(
    store: Store, today: date, *, actor: str = "deprecation-sensor", runner: review.StagingRunner | None = None
) -> list[ForcedMigration]:
    """For every version whose sunset has passed, open a migration of each still-pinned agent to its successor.

    Idempotent: an agent that already has an open migration to the successor is reported, not re-opened.
    With `runner`, newly opened migrations are assessed (staging replay) so readiness is known at once.
    """
    out: list[ForcedMigration] = []
    with store.session() as session:
        sunset = session.execute(
            select(ModelVersion).where(ModelVersion.sunset_date.is_not(None), ModelVersion.sunset_date <= today)
        ).scalars()
        sunset_versions = {v.model_id: (v.successor_id, v.sunset_date) for v in sunset}
    for manifest in manifests.list_current(store):
        if manifest.pinned_model_id not in sunset_versions:
            continue
        successor, sunset_date = sunset_versions[manifest.pinned_model_id]
        t, a, old = manifest.tenant_id, manifest.agent_id, manifest.pinned_model_id
        if successor is None:
            out.append(ForcedMigration(t, a, old, None, None, False, "no successor registered", sunset_date))
            continue
        existing = states.open_migration(store, t, a)
        if existing is not None and existing.to_model_id == successor:
            out.append(ForcedMigration(t, a, old, successor, existing.id, False, existing.readiness, sunset_date))
            continue
        if existing is not None:
            out.append(
                ForcedMigration(
                    t, a, old, successor, existing.id, False, f"blocked by migration {existing.id}", sunset_date
                )
            )
            continue
        info = review.propose(
            store, t, a, successor, actor=actor, forced=True, reason=f"{old} reached its sunset on {sunset_date}"
        )
        if runner is not None:
            try:
                info = review.run_staging(store, info.id, runner, actor=actor)
            except Exception as exc:  # one tenant's failed assessment must not stop the others
                log.warning("readiness assessment of %s/%s failed: %s", t, a, exc)
                info = states.get(store, info.id)
        out.append(ForcedMigration(t, a, old, successor, info.id, True, info.readiness, sunset_date))
    return out


def readiness_report(store: Store, today: date, *, horizon_days: int = 90) -> list[dict[str, Any]]:
    """Every agent pinned to a version whose sunset is past or within `horizon_days`, with its readiness."""
    horizon = today + timedelta(days=horizon_days)
    versions = {v.model_id: v for v in registry.list_versions(store) if v.sunset_date and v.sunset_date <= horizon}
    rows = []
    for manifest in manifests.list_current(store):
        version = versions.get(manifest.pinned_model_id)
        if version is None:
            continue
        migration = states.open_migration(store, manifest.tenant_id, manifest.agent_id)
        rows.append(
            {
                "tenant_id": manifest.tenant_id,
                "agent_id": manifest.agent_id,
                "model_id": version.model_id,
                "sunset_date": version.sunset_date.isoformat(),
                "days_left": (version.sunset_date - today).days,
                "successor_id": version.successor_id,
                "migration_id": migration.id if migration else None,
                "migration_state": migration.state if migration else None,
                "readiness": migration.readiness if migration else "not assessed",
            }
        )
    return rows
