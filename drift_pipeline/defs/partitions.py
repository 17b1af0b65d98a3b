"""Partitions: tenants are dynamic (added by a sensor when one first appears), days are daily windows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import dagster as dg

from drift_pipeline.config import Settings
from drift_pipeline.identifiers import check_identifier
from drift_pipeline.persistence.objects import day_str

TENANTS = "tenants"
RETENTION_DAYS = Settings.from_env().retention_days


def start_date(today: date | None = None) -> str:
    """First day kept: the retention window, rounded down to a month start so it moves monthly.

    A bounded window keeps tenants x days under Dagster's 100k partitions per asset: with the default 60
    days the window holds at most 60 + 31 days, so 1,000 tenants stay under ~92k partitions. Older days
    live on in the drift reports and the audit log, not as partitions.
    """
    today = today or datetime.now(UTC).date()
    return (today - timedelta(days=RETENTION_DAYS)).replace(day=1).isoformat()


START_DATE = Settings.from_env().start_date or start_date()

tenants = dg.DynamicPartitionsDefinition(name=TENANTS)
days = dg.DailyPartitionsDefinition(start_date=START_DATE, end_offset=1)
tenant_day = dg.MultiPartitionsDefinition({"date": days, "tenant": tenants})


def key(tenant_id: str, day: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"date": day_str(day), "tenant": check_identifier(tenant_id, "tenant id")})


def split(context: dg.AssetExecutionContext) -> tuple[str, str]:
    """(tenant_id, day) of the partition being materialized; a tenant partition added by hand through
    Dagster's UI or API must follow the one identifier rule like every other entry point."""
    keys = context.partition_key.keys_by_dimension  # type: ignore[attr-defined]
    return check_identifier(keys["tenant"], "tenant id"), day_str(keys["date"])
