"""Traffic sensor: a `tenants` partition for every tenant that appears, and its first run."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import dagster as dg

from drift_pipeline.config import Settings
from drift_pipeline.defs.detection.jobs import nightly_drift_job
from drift_pipeline.defs.partitions import TENANTS
from drift_pipeline.defs.resources import DriftStore, ObjectStorage
from drift_pipeline.defs.runs import CANDIDATES_TAG, REASON_TAG, Tick, load_cursor, shard_requests, today_utc
from drift_pipeline.identifiers import check_identifier
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.objects import TRAFFIC_DATASET, UNKNOWN_TENANT, ObjectStore
from drift_pipeline.versioning.tenants import known_agents, list_tenants

SAMPLE_KEY = dg.AssetKey("sampled_inputs")


def new_tenants_tick(
    store: Store,
    objects: ObjectStore,
    instance: dg.DagsterInstance,
    cursor: dict[str, Any] | None,
    *,
    now: datetime | None = None,
) -> Tick:
    """Tenants in the registry or in traffic storage without a partition yet: add them and start their first run."""
    known = set(instance.get_dynamic_partitions(TENANTS))
    seen = {t.tenant_id for t in list_tenants(store)}
    tick = Tick()
    for tenant_id in objects.list_tenants(TRAFFIC_DATASET):
        try:
            if tenant_id != UNKNOWN_TENANT:
                check_identifier(tenant_id, "tenant id")
                seen.add(tenant_id)
        except Exception as exc:  # a stray folder in storage is not a tenant
            tick.log.append(f"ignored traffic prefix {tenant_id!r}: {exc}")
    new = sorted(seen - known)
    with_manifest = set(known_agents(store))
    day = today_utc(now)
    # New partitions are added in this order before the runs start, so consecutive new tenants form shards.
    tags = {REASON_TAG: "new-tenant", CANDIDATES_TAG: ""}
    shard = {
        "size": Settings.from_env().shard_tenants,
        "run_key": f"first-run:{day}",
        "job_name": nightly_drift_job.name,
    }
    tick.run_requests += shard_requests(new, day, tags, selected=with_manifest, **shard)
    # Without a manifest there is nothing to replay yet: only sample their traffic.
    tick.run_requests += shard_requests(
        new, day, tags, selected=set(new) - with_manifest, asset_selection=[SAMPLE_KEY], **shard
    )
    tick.partitions_to_add = new
    tick.log += [f"new tenant partitions: {', '.join(new[:20])}{' ...' if len(new) > 20 else ''}"] if new else []
    tick.cursor = {"tenants": len(known | set(new)), "last_added": new[:100], "day": day}
    return tick


@dg.sensor(
    name="new_tenants_sensor",
    jobs=[nightly_drift_job],
    minimum_interval_seconds=120,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds a `tenants` partition for each tenant that appears in the registry or in traffic storage, and starts its first sample (and, with a manifest, its first nightly chain) for today.",
)
def new_tenants_sensor(
    context: dg.SensorEvaluationContext, drift_store: DriftStore, object_storage: ObjectStorage
) -> dg.SensorResult:
    tick = new_tenants_tick(drift_store.get(), object_storage.get(), context.instance, load_cursor(context.cursor))
    return tick.result(context, "no new tenant")
