"""Canary monitor sensor: every minute, feed each active canary's captured traffic to the migration gate.

The work is `canary_feed.monitor_all` (plain Python); what each canary has already counted lives with
the traffic in object storage, so a re-evaluated tick never counts a record twice. The Dagster cursor only
keeps a summary per migration (for the UI): counts so far and whether it was aborted.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import dagster as dg

from drift_pipeline.alerts.router import AlertRouter, load_channel_config
from drift_pipeline.defs.resources import DriftStore, ObjectStorage
from drift_pipeline.migration import canary_feed
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.objects import ObjectStore

ACTOR = "sensor:canary_monitor"
NO_CANARY = "no migration is in canary"


def canary_monitor_tick(
    store: Store,
    objects: ObjectStore,
    cursor: dict[str, Any] | None,
    *,
    router: AlertRouter | None,
    now: datetime | None = None,
) -> tuple[list[canary_feed.CanaryCheck], dict[str, Any]]:
    """One look at every active canary; returns the checks and the summary cursor."""
    checks = canary_feed.monitor_all(store, objects, router=router, now=now, actor=ACTOR)
    summary = {}
    for check in checks:  # migrations no longer in canary drop out of the cursor
        seen = (cursor or {}).get(str(check.migration_id)) or {}
        summary[str(check.migration_id)] = {
            "canary": int(seen.get("canary", 0)) + check.canary,
            "pinned": int(seen.get("pinned", 0)) + check.pinned,
            "aborted": check.aborted,
            "error": check.error,
        }
    return checks, summary


@dg.sensor(
    name="canary_monitor_sensor",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every minute: counts each active canary's captured traffic (canary vs pinned slice: refusals, "
    "errors, schema failures) into the migration gate's always-valid test; a breach aborts the canary "
    "(routing back to the pin, audited) and sends a tenant-scoped ERROR alert.",
)
def canary_monitor_sensor(
    context: dg.SensorEvaluationContext, drift_store: DriftStore, object_storage: ObjectStorage
) -> dg.SensorResult | dg.SkipReason:
    store = drift_store.get()
    if not canary_feed.active_canaries(store):
        return dg.SkipReason(NO_CANARY)
    router = AlertRouter(store, load_channel_config(), actor=ACTOR)
    previous = _load(context.cursor)
    checks, summary = canary_monitor_tick(store, object_storage.get(), previous, router=router)
    for check in checks:
        (context.log.warning if check.aborted or check.error else context.log.info)(check.line())
    aborted = [c.migration_id for c in checks if c.aborted]
    skip = f"looked at {len(checks)} canar{'y' if len(checks) == 1 else 'ies'}" + (
        f"; aborted migration {', '.join(map(str, aborted))}" if aborted else ""
    )
    return dg.SensorResult(skip_reason=skip, cursor=json.dumps(summary, sort_keys=True))


def _load(cursor: str | None) -> dict[str, Any]:
    try:
        data = json.loads(cursor) if cursor else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
