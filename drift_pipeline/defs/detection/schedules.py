"""Schedules: the nightly sample -> replay -> score -> check chain per tenant, and hourly runs for high-stakes tenants.

Tenants share runs: one run per shard of `DRIFT_PIPELINE_SHARD_TENANTS` consecutive tenant partitions (a
range run), so a run's fixed cost (process start, imports, model loads) is paid per shard, while the UI
still shows a materialization and check results per tenant partition.

Both read the tenants from the `tenants` dynamic partitions (the new-tenants sensor adds them), so a tenant
is scheduled from the tick after it appears. Both start RUNNING: a fresh deployment must have a "last night"
to look at, and nothing ticks without `dagster-daemon` anyway (`dagster dev` and `make ui` start one; a test or
a plain code server does not). The hourly one acts only for tenants whose manifest cadence is `hourly`, so
it costs nothing elsewhere. Turn either off in the UI (Automation) or with `dagster schedule stop`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg

from drift_pipeline.config import Settings
from drift_pipeline.defs.detection.jobs import nightly_drift_job
from drift_pipeline.defs.partitions import TENANTS
from drift_pipeline.defs.resources import DriftStore
from drift_pipeline.defs.runs import CANDIDATES_TAG, REASON_TAG, WINDOW_TAG, shard_requests
from drift_pipeline.versioning import tenants

NIGHTLY_CRON = "0 2 * * *"
HOURLY_CRON = "15 * * * *"


def _tick_time(context: dg.ScheduleEvaluationContext) -> datetime:
    when = context.scheduled_execution_time or datetime.now(UTC)
    return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)


def nightly_requests(tenant_ids: list[str], day: str, *, size: int | None = None) -> list[dg.RunRequest]:
    """The nightly chain for `day` over every tenant (in partition order), one run per shard, with run keys
    that make a re-evaluated tick harmless."""
    size = size or Settings.from_env().shard_tenants
    tags = {REASON_TAG: "nightly", CANDIDATES_TAG: ""}
    return shard_requests(list(tenant_ids), day, tags, size=size, run_key=f"nightly:{day}")


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
    tenant_ids = list(context.instance.get_dynamic_partitions(TENANTS))
    if not tenant_ids:
        return dg.SkipReason("no tenant partitions yet (the new_tenants_sensor adds them)")
    return nightly_requests(tenant_ids, day)


@dg.schedule(
    name="hourly_drift_schedule",
    cron_schedule=HOURLY_CRON,
    job=nightly_drift_job,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every hour at :15 UTC, for tenants whose manifest cadence is `hourly`: the same chain on today's traffic so far.",
)
def hourly_drift_schedule(
    context: dg.ScheduleEvaluationContext, drift_store: DriftStore
) -> dg.SkipReason | list[dg.RunRequest]:
    when = _tick_time(context)
    day = when.date().isoformat()
    hourly = {t.tenant_id for t in tenants.list_tenants(drift_store.get()) if t.cadence == "hourly"}
    ordered = list(context.instance.get_dynamic_partitions(TENANTS))
    tenant_ids = sorted(hourly & set(ordered))
    if not tenant_ids:
        return dg.SkipReason("no tenant with an hourly cadence")
    hour = f"{day}T{when.hour:02d}"
    tags = {REASON_TAG: "hourly", CANDIDATES_TAG: "", WINDOW_TAG: hour}
    size = Settings.from_env().shard_tenants
    return shard_requests(ordered, day, tags, size=size, run_key=f"hourly:{hour}", selected=tenant_ids)
