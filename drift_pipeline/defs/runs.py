"""Run requests and sensor cursors shared by the sensors and schedules of every pillar.

Each polling sensor keeps a JSON cursor of what it has already acted on and gives every run request a
stable `run_key`, so a re-evaluated tick never launches a replay twice. The tick logic lives in plain
functions (`*_tick`) that the sensors, the tests and `benchmarks/bench_scale.py` share.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from drift_pipeline.defs.detection.jobs import replay_job
from drift_pipeline.defs.partitions import day_tags, key, shard_tags, tenants
from drift_pipeline.detection import shards

CANDIDATES_TAG = "drift_pipeline/candidates"
REASON_TAG = "drift_pipeline/reason"
# Which answers a replay may reuse from the cache: the same day, trigger and window (an hour for hourly
# tenants, the new fingerprint after a silent change). A new window asks the providers again.
WINDOW_TAG = "drift_pipeline/replay_window"
MODEL_TAG = "drift_pipeline/model"
# The provider a replay calls: the instance's `tag_concurrency_limits` cap runs per provider (spend and rate
# limits, deploy/dagster.postgres.yaml) and per model version with these two tags.
PROVIDER_TAG = "drift_pipeline/provider"


@dataclass
class Tick:
    """What one evaluation decided: run requests, the next cursor, and lines for the sensor log."""

    run_requests: list[dg.RunRequest] = field(default_factory=list)
    cursor: dict[str, Any] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    partitions_to_add: list[str] = field(default_factory=list)

    def result(self, context: dg.SensorEvaluationContext, skip: str) -> dg.SensorResult:
        for line in self.log:
            context.log.info(line)
        return dg.SensorResult(
            run_requests=self.run_requests,
            cursor=json.dumps(self.cursor, sort_keys=True),
            skip_reason=None if self.run_requests or self.partitions_to_add else skip,
            dynamic_partitions_requests=[tenants.build_add_request(self.partitions_to_add)]
            if self.partitions_to_add
            else None,
        )


def today_utc(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).astimezone(UTC).date().isoformat()


def load_cursor(cursor: str | None) -> dict[str, Any] | None:
    """The JSON cursor, or None on the first tick (a cursor that is not JSON starts over, logged by Dagster)."""
    if not cursor:
        return None
    try:
        data = json.loads(cursor)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def replay_request(
    tenant_id: str,
    day: str,
    reason: str,
    candidates: Iterable[str],
    *,
    key_suffix: str = "",
    run_key: str | None = None,
    window: str = "",
    provider: str = "",
) -> dg.RunRequest:
    """A `replay_job` run for one tenant's partition on `day` (a run tag) with a stable run key."""
    cands = sorted(set(candidates))
    tags = {REASON_TAG: reason, CANDIDATES_TAG: ",".join(cands), **day_tags(day)}
    if window:
        tags[WINDOW_TAG] = window
    if cands:
        tags[MODEL_TAG] = cands[0]
    if provider:
        tags[PROVIDER_TAG] = provider
    return dg.RunRequest(
        run_key=run_key or f"{reason}:{tenant_id}:{day}:{','.join(cands)}{key_suffix}",
        job_name=replay_job.name,
        partition_key=key(tenant_id),
        tags=tags,
    )


def shard_requests(
    ordered: list[str],
    day: str,
    tags: dict[str, str],
    *,
    size: int,
    run_key: str,
    selected: Iterable[str] | None = None,
    asset_selection: list[dg.AssetKey] | None = None,
    job_name: str | None = None,
) -> list[dg.RunRequest]:
    """One run per shard of consecutive tenant partitions (`ordered` is the partition order) on `day`.

    A one-tenant shard is a plain tenant run; a larger one a range run, whose run key names its range
    (`run_key` is a prefix), so a re-evaluated tick over the same partitions asks for the same runs.
    """
    requests = []
    for shard in shards.plan(ordered, size, selected):
        if len(shard.tenant_ids) == 1:
            partition, run_tags, span = key(shard.first), {**tags, **day_tags(day)}, shard.first
        else:
            partition, run_tags, span = (
                None,
                {**tags, **shard_tags(shard.first, shard.last, day)},
                f"{shard.first}..{shard.last}",
            )
        requests.append(
            dg.RunRequest(
                run_key=f"{run_key}:{span}",
                job_name=job_name,
                partition_key=partition,
                tags=run_tags,
                asset_selection=asset_selection,
            )
        )
    return requests
