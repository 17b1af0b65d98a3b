"""Schedules: the nightly chain for every tenant partition (last complete day) and hourly for hourly tenants."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from drift_pipeline.defs.detection import schedules
from drift_pipeline.defs.partitions import RANGE_END_TAG, RANGE_START_TAG
from drift_pipeline.defs.resources import DriftStore
from drift_pipeline.persistence.db import Store
from drift_pipeline.versioning import tenants


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as inst:
        yield inst


def test_nightly_requests_one_run_per_shard_for_the_last_complete_day(
    instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    when = datetime.now(UTC).replace(hour=2, minute=0, second=0, microsecond=0)
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=when)
    assert isinstance(schedules.nightly_drift_schedule(context), dg.SkipReason)  # no tenants yet
    instance.add_dynamic_partitions("tenants", ["globex", "acme", "initech"])
    day = (when.date() - timedelta(days=1)).isoformat()
    # One run over the whole range of tenant partitions (their stored order), the day in its tags.
    [shard] = schedules.nightly_drift_schedule(context)
    assert shard.partition_key is None and shard.run_key == f"nightly:{day}:globex..initech"
    assert (shard.tags[RANGE_START_TAG], shard.tags[RANGE_END_TAG]) == ("globex", "initech")
    assert shard.tags["drift_pipeline/day"] == day and shard.tags["drift_pipeline/reason"] == "nightly"
    monkeypatch.setenv("DRIFT_PIPELINE_SHARD_TENANTS", "2")
    requests = schedules.nightly_drift_schedule(context)
    assert [r.run_key for r in requests] == [f"nightly:{day}:globex..acme", f"nightly:{day}:initech"]
    assert requests[1].partition_key == "initech"  # a shard of one is a plain tenant run
    again = schedules.nightly_drift_schedule(context)
    assert [r.run_key for r in again] == [r.run_key for r in requests]  # a re-evaluated tick is harmless


def test_hourly_schedule_only_for_hourly_tenants(instance: dg.DagsterInstance, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'drift.db'}"
    store = Store.open(url)
    tenants.add_tenant(store, "acme", actor="t", cadence="hourly")
    tenants.add_tenant(store, "globex", actor="t")
    tenants.add_tenant(store, "initech", actor="t", cadence="hourly")  # no partition yet: not scheduled
    instance.add_dynamic_partitions("tenants", ["acme", "globex"])
    when = datetime.now(UTC).replace(hour=13, minute=15, second=0, microsecond=0)
    context = dg.build_schedule_context(
        instance=instance, scheduled_execution_time=when, resources={"drift_store": DriftStore(database_url=url)}
    )
    [request] = schedules.hourly_drift_schedule(context)
    day = when.date().isoformat()
    assert request.partition_key == "acme" and request.run_key == f"hourly:{day}T13:acme"
    assert request.tags["drift_pipeline/day"] == day
    # Each hour is its own replay window: the cache must not serve 13:00 the answers of 12:00.
    assert request.tags["drift_pipeline/replay_window"] == f"{day}T13"
