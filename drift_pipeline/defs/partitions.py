"""Partitions: one dynamic `tenants` partition per tenant; the day travels in a run tag, not in the key.

Tenant x day partitions grow by one key per tenant every day and pass Dagster's 100k-per-asset guidance
at ~1,000 tenants within a retention window. Keyed by tenant alone, 10,000 tenants are 10,000 keys for
ever, and each tenant partition's materialization history is its time series: every run carries its
day in the `drift_pipeline/day` tag and every materialization repeats it as `day` metadata, so the UI
plots a point per night per tenant.

A run without the tag (launched by hand from the UI) works on the UTC day the run was created. A shard
run covers a range of tenant partitions (`shard_tags`); assets read its tenants with `tenant_ids`.
Build keys and tags only through `key`, `day_tags` and `shard_tags`, and read them back only through
`split`, `tenant_ids` and `run_day`: nobody else should know the key format. See docs/scale.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime

import dagster as dg

from drift_pipeline.identifiers import check_identifier
from drift_pipeline.persistence.objects import day_str

TENANTS = "tenants"
DAY_TAG = "drift_pipeline/day"
# Dagster's own tags for a run over a range of partitions (what a single-run backfill sets).
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"

tenants = dg.DynamicPartitionsDefinition(name=TENANTS)


def key(tenant_id: str, day: str | date | None = None) -> str:
    """The partition key of a tenant. `day` is only checked here: send it with the run as `day_tags(day)`."""
    if day is not None:
        day_str(day)
    return check_identifier(tenant_id, "tenant id")


def day_tags(day: str | date) -> dict[str, str]:
    """The run tags that carry the day a run works on."""
    return {DAY_TAG: day_str(day)}


def day_from_tags(tags: Mapping[str, str], created: datetime | None = None) -> str:
    """The run's day: its tag (checked: a tag set by hand in the UI is not trusted), else its UTC creation day."""
    if tags.get(DAY_TAG):
        return day_str(tags[DAY_TAG])
    return day_str((created or datetime.now(UTC)).astimezone(UTC))


def run_day(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str:
    """`day_from_tags` for a stored run; the creation time keeps every step of an untagged run on one day."""
    if run.tags.get(DAY_TAG):
        return day_from_tags(run.tags)
    record = instance.get_run_record_by_id(run.run_id)
    created = record.create_timestamp if record else None
    return day_from_tags(run.tags, created.replace(tzinfo=created.tzinfo or UTC) if created else None)


def split(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> tuple[str, str]:
    """(tenant_id, day) of the partition being materialized; a tenant partition added by hand through
    Dagster's UI or API must follow the one identifier rule like every other entry point."""
    return check_identifier(context.partition_key, "tenant id"), run_day(context.instance, context.run)


def tenant_ids(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> list[str]:
    """Every tenant partition of the run: one for a tenant's own run, a contiguous range for a shard run."""
    return [check_identifier(k, "tenant id") for k in context.partition_keys]


def shard_tags(first: str, last: str, day: str | date) -> dict[str, str]:
    """Run tags of one run over the tenant partitions `first`..`last` (in partition order) on `day`.

    Dagster runs every asset once for the whole range and records a materialization and a check result
    per tenant partition, so the UI keeps its per-tenant views while the run pays its fixed cost once.
    """
    return {
        RANGE_START_TAG: check_identifier(first, "tenant id"),
        RANGE_END_TAG: check_identifier(last, "tenant id"),
        **day_tags(day),
    }
