"""Migration sensors: deprecation notices before a sunset, and the live canary monitor.

`canary_monitor_tick` feeds `migration.canary_feed` from captured traffic every minute; the work is plain
Python, what each canary has already counted lives with its migration. `deprecation_tick` calls the rule in
`migration.deprecation`. Both start RUNNING.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import dagster as dg

from drift_pipeline.alerts.channels import load_channel_config
from drift_pipeline.alerts.router import AlertRouter
from drift_pipeline.config import Settings
from drift_pipeline.defs.detection.jobs import replay_job
from drift_pipeline.defs.resources import DriftStore, ObjectStorage
from drift_pipeline.defs.runs import Tick, load_cursor, replay_request
from drift_pipeline.migration import canary_feed, deprecation
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.objects import ObjectStore
from drift_pipeline.versioning import registry

_SETTINGS = Settings.from_env()
DEPRECATION_DAYS = _SETTINGS.deprecation_notice_days
DEPRECATION_BATCH = _SETTINGS.deprecation_batch  # notices per tick (the rest next tick)
ACTOR_DEPRECATION = "sensor:deprecation"


def deprecation_tick(
    store: Store,
    router: AlertRouter,
    cursor: dict[str, Any] | None,
    *,
    days_before: int = DEPRECATION_DAYS,
    batch: int = DEPRECATION_BATCH,
    today: date | None = None,
    now: datetime | None = None,
) -> Tick:
    """Notify each tenant agent pinned to a version sunsetting within `days_before` days, once, and ask for
    a migration-readiness replay against the successor (the rule is `migration.deprecation.send_notices`)."""
    today = today or (now or datetime.now(UTC)).date()
    notified = (cursor or {}).get("notified", [])
    sent = deprecation.send_notices(store, router, notified, today=today, days_before=days_before, batch=batch)
    day = (now or datetime.now(UTC)).date().isoformat()
    providers = {v.model_id: v.provider for v in registry.list_versions(store)} if sent.replays else {}
    requests = [
        replay_request(
            r.tenant_id,
            day,
            deprecation.REPLAY_REASON,
            [r.successor_id],
            run_key=r.key,
            provider=providers.get(r.successor_id, ""),
        )
        for r in sent.replays
    ]
    return Tick(run_requests=requests, cursor={"notified": sent.notified}, log=sent.log)


@dg.sensor(
    name="deprecation_sensor",
    jobs=[replay_job],
    minimum_interval_seconds=3600,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=f"N days (DRIFT_PIPELINE_DEPRECATION_NOTICE_DAYS, now {DEPRECATION_DAYS}) before a pinned version's sunset: a WARN notice to each affected tenant (audited, deduplicated) and a migration-readiness replay against the successor, once per tenant and version.",
)
def deprecation_sensor(context: dg.SensorEvaluationContext, drift_store: DriftStore) -> dg.SensorResult:
    store = drift_store.get()
    router = AlertRouter(store, load_channel_config(), actor=ACTOR_DEPRECATION)
    tick = deprecation_tick(store, router, load_cursor(context.cursor))
    return tick.result(context, "no pinned version is near its sunset, or every tenant was told")


ACTOR_CANARY = "sensor:canary_monitor"
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
    checks = canary_feed.monitor_all(store, objects, router=router, now=now, actor=ACTOR_CANARY)
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
    router = AlertRouter(store, load_channel_config(), actor=ACTOR_CANARY)
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
