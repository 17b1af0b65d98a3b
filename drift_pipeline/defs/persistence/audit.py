"""The nightly signed audit checkpoint: one op around `persistence.checkpoints.create`.

Starts RUNNING: a checkpoint is cheap (one pass over the log) and it is what anchors the audit log against
a later rewrite. A log that no longer verifies fails the run (with the one-line finding) instead of
being signed.
"""

import dagster as dg

from drift_pipeline.defs.resources import DriftStore, ObjectStorage
from drift_pipeline.persistence import checkpoints

CHECKPOINT_CRON = "45 2 * * *"  # after the 02:00 nightly chain has written its audit entries


@dg.op(
    description="Verify the audit log against every checkpoint kept, then sign a new checkpoint (tree size, "
    "root hash, time) and keep it in the store and, write-once, in object storage.",
    tags={"drift_pipeline/kind": "audit"},
)
def sign_audit_checkpoint(
    context: dg.OpExecutionContext, drift_store: DriftStore, object_storage: ObjectStorage
) -> dg.Output[None]:
    objects = object_storage.get()
    cp = checkpoints.create(drift_store.get(), objects)
    context.log.info(f"audit checkpoint: tree size {cp.tree_size}, root {cp.root_hash}")
    return dg.Output(
        None,
        metadata={
            "tree_size": cp.tree_size,
            "root_hash": cp.root_hash,
            "key_id": cp.key_id,
            "object": dg.MetadataValue.path(objects.uri(cp.object_name)),
        },
    )


@dg.job(description="Sign a checkpoint of the audit log (docs/audit.md).", tags={"drift_pipeline/kind": "audit"})
def audit_checkpoint_job() -> None:
    sign_audit_checkpoint()


@dg.schedule(
    name="nightly_audit_checkpoint_schedule",
    cron_schedule=CHECKPOINT_CRON,
    job=audit_checkpoint_job,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="02:45 UTC: verify the audit log and sign a checkpoint of it (store + write-once object).",
)
def nightly_audit_checkpoint_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    return dg.RunRequest(run_key=f"audit-checkpoint:{context.scheduled_execution_time:%Y-%m-%d}")
