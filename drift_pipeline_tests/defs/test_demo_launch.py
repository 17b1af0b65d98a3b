"""The demo's runs are the code location's runs: named jobs with a remote origin, launched on the instance."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

from drift_pipeline.defs.demo.launch import LOCATION, code_location
from drift_pipeline.defs.detection.jobs import sampling_job
from drift_pipeline.defs.partitions import TENANTS, key
from drift_pipeline.persistence.db import Store
from drift_pipeline.versioning import tenants

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def instance(home: Path, monkeypatch: pytest.MonkeyPatch) -> dg.DagsterInstance:
    """A DAGSTER_HOME with the repository's dagster.yaml (queued runs, run limits), as `make demo` sets up."""
    dagster_home = home / "dagster"
    dagster_home.mkdir(parents=True)
    shutil.copy(ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    # The code server and run workers are other processes: they find the code through PYTHONPATH.
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    return dg.DagsterInstance.get()


def test_a_demo_run_is_a_named_job_of_the_code_location(instance: dg.DagsterInstance) -> None:
    store = Store.open()
    tenants.add_tenant(store, "acme", actor="test", reason="a tenant without traffic yet")
    instance.add_dynamic_partitions(TENANTS, ["acme"])
    request = dg.RunRequest(job_name=sampling_job.name, partition_key=key("acme", "2026-11-30"), tags={"who": "test"})
    with code_location(instance) as launcher:
        (finished,) = launcher.run_all([request])
    assert finished.error is None
    assert finished.status == "SUCCESS"
    run = instance.get_run_by_id(finished.run_id)
    assert run is not None
    assert run.job_name == "sampling_job"  # not an anonymous __ASSET_JOB selection
    assert run.remote_job_origin is not None
    assert run.remote_job_origin.location_name == LOCATION
    assert run.tags["who"] == "test"
    assert run.tags["drift_pipeline/kind"] == "sampling"  # the job's own tags, as a scheduled run has them
    materialized = instance.get_latest_materialization_event(dg.AssetKey("sampled_inputs"))
    assert materialized is not None and materialized.run_id == run.run_id


def test_a_broken_step_is_reported_not_hidden(instance: dg.DagsterInstance) -> None:
    """A step that fails for a reason other than a drift check comes back as an error with its step."""
    instance.add_dynamic_partitions(TENANTS, ["ghost"])  # a partition without a tenant in the store
    request = dg.RunRequest(job_name=sampling_job.name, partition_key=key("ghost", "2026-11-30"))
    with code_location(instance) as launcher:
        (finished,) = launcher.run_all([request])
    assert finished.status == "FAILURE"
    assert finished.error is not None and finished.error.startswith("sampled_inputs")


def test_runs_never_launched_are_canceled_when_the_demo_stops(
    instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A demo stopped before launching leaves no run that the UI shows as waiting for ever."""
    instance.add_dynamic_partitions(TENANTS, ["acme"])
    requests = [
        dg.RunRequest(job_name=sampling_job.name, partition_key=key("acme", d)) for d in ("2026-11-29", "2026-11-30")
    ]

    def interrupted(run_id: str, workspace: object) -> None:
        raise KeyboardInterrupt

    with code_location(instance) as launcher:
        monkeypatch.setattr(launcher.instance, "launch_run", interrupted)
        with pytest.raises(KeyboardInterrupt):
            launcher.run_all(requests)
    runs = instance.get_runs(dg.RunsFilter(job_name=sampling_job.name))
    assert len(runs) == 2
    assert {run.status for run in runs} == {dg.DagsterRunStatus.CANCELED}
