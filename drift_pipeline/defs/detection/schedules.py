"""Schedules: the nightly sample -> replay -> score -> check chain per tenant, and hourly runs for high-stakes tenants.

Both read the tenants from the `tenants` dynamic partitions (the new-tenants sensor adds them), so a tenant
is scheduled from the tick after it appears. Both start RUNNING: a fresh deployment must have a "last night"
to look at, and nothing ticks without `dagster-daemon` anyway (`dagster dev` and `make ui` start one; a test or
a plain code server does not). The hourly one acts only for tenants whose manifest cadence is `hourly`, so
it costs nothing elsewhere. Turn either off in the UI (Automation) or with `dagster schedule stop`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg

from drift_pipeline.defs.detection.jobs import nightly_drift_job
from drift_pipeline.defs.partitions import START_DATE, TENANTS, key
from drift_pipeline.defs.resources import DriftStore
from drift_pipeline.defs.runs import CANDIDATES_TAG, REASON_TAG, WINDOW_TAG
from drift_pipeline.versioning import tenants

NIGHTLY_CRON = "0 2 * * *"
HOURLY_CRON = "15 * * * *"


def _tick_time(context: dg.ScheduleEvaluationContext) -> datetime:
    when = context.scheduled_execution_time or datetime.now(UTC)
    return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)


def nightly_requests(tenant_ids: list[str], day: str) -> list[dg.RunRequest]:
    """One nightly chain per tenant for `day`, with a run key that makes a re-evaluated tick harmless."""
    return [
        dg.RunRequest(
            run_key=f"nightly:{tenant_id}:{day}",
            partition_key=key(tenant_id, day),
            tags={REASON_TAG: "nightly", CANDIDATES_TAG: ""},
        )
        for tenant_id in sorted(tenant_ids)
    ]


@dg.schedule(
    name="nightly_drift_schedule",
    cron_schedule=NIGHTLY_CRON,
    job=nightly_drift_job,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="02:00 UTC: for every tenant, sample the last complete day's traffic, replay it against the pinned model, score, report and check.",
)
def nightly_drift_schedule(context: dg.ScheduleEvaluationContext) -> dg.SkipReason | list[dg.RunRequest]:
    day = (_tick_time(context).date() - timedelta(days=1)).isoformat()
    if day < START_DATE:
        return dg.SkipReason(f"{day} is before the retention window")
    tenant_ids = context.instance.get_dynamic_partitions(TENANTS)
    if not tenant_ids:
        return dg.SkipReason("no tenant partitions yet (the new_tenants_sensor adds them)")
    return nightly_requests(tenant_ids, day)


@dg.schedule(
    name="hourly_drift_schedule",
    cron_schedule=HOURLY_CRON,
    job=nightly_drift_job,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every hour at :15 UTC, for tenants whose manifest cadence is `hourly`: the same chain on today's partition so far.",
)
def hourly_drift_schedule(
    context: dg.ScheduleEvaluationContext, drift_store: DriftStore
) -> dg.SkipReason | list[dg.RunRequest]:
    when = _tick_time(context)
    day = when.date().isoformat()
    hourly = {t.tenant_id for t in tenants.list_tenants(drift_store.get()) if t.cadence == "hourly"}
    tenant_ids = sorted(hourly & set(context.instance.get_dynamic_partitions(TENANTS)))
    if not tenant_ids:
        return dg.SkipReason("no tenant with an hourly cadence")
    return [
        dg.RunRequest(
            run_key=f"hourly:{tenant_id}:{day}T{when.hour:02d}",
            partition_key=key(tenant_id, day),
            tags={REASON_TAG: "hourly", CANDIDATES_TAG: "", WINDOW_TAG: f"{day}T{when.hour:02d}"},
        )
        for tenant_id in tenant_ids
    ]
