"""The nightly audit checkpoint job: signs a checkpoint kept in the store and object storage; a log that
no longer verifies fails the run instead of being signed."""

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
from sqlalchemy import text

from drift_pipeline.defs.persistence.audit import audit_checkpoint_job, nightly_audit_checkpoint_schedule
from drift_pipeline.defs.resources import DriftStore, ObjectStorage
from drift_pipeline.persistence import audit, checkpoints
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.objects import ObjectStore
from drift_pipeline.versioning import registry


def _run(url: str, objects_url: str) -> dg.ExecuteInProcessResult:
    return audit_checkpoint_job.execute_in_process(
        resources={"drift_store": DriftStore(database_url=url), "object_storage": ObjectStorage(url=objects_url)},
        raise_on_error=False,
    )


def test_the_job_signs_a_checkpoint_and_refuses_a_tampered_log(home: Path, tmp_path: Path, dba) -> None:
    url, objects_url = f"sqlite:///{tmp_path / 'drift.db'}", str(tmp_path / "objects")
    store = Store.open(url)
    registry.add_version(store, "openai", "m-1", actor="alice")
    registry.add_version(store, "openai", "m-2", actor="alice")
    assert _run(url, objects_url).success
    [(_, cp)] = checkpoints.stored(store)
    objects = ObjectStore(objects_url, {})
    assert cp.tree_size == 2 and objects.exists(cp.object_name)
    assert audit.verify(store, objects).ok
    with dba(store), store.transaction() as s:
        s.execute(text("DELETE FROM audit_log WHERE seq = 2"))
    assert not _run(url, objects_url).success
    assert len(checkpoints.stored(store)) == 1


def test_the_schedule_asks_for_one_run_a_night() -> None:
    when = datetime(2026, 12, 2, 2, 45, tzinfo=UTC)
    request = nightly_audit_checkpoint_schedule(dg.build_schedule_context(scheduled_execution_time=when))
    assert request.run_key == "audit-checkpoint:2026-12-02"
