"""The drift-pipeline Dagster code location: the definitions in `drift_pipeline/defs/<pillar>/`, plus resources.

Listed explicitly (stable APIs only, no instance needed at load time), so the definitions build the same
way in a test process, `dagster dev` and a code server. A new sensor or job is added here.
"""

from __future__ import annotations

import dagster as dg

from drift_pipeline.defs.alerts import sensors as alert_sensors
from drift_pipeline.defs.detection import assets as detection_assets
from drift_pipeline.defs.detection import checks, jobs, schedules
from drift_pipeline.defs.detection import sensors as detection_sensors
from drift_pipeline.defs.migration import jobs as migration_jobs
from drift_pipeline.defs.migration import sensors as migration_sensors
from drift_pipeline.defs.persistence import audit as audit_defs
from drift_pipeline.defs.resources import DriftStore, ObjectStorage, ParquetIOManager
from drift_pipeline.defs.traffic import assets as traffic_assets
from drift_pipeline.defs.traffic import sensors as traffic_sensors
from drift_pipeline.defs.versioning import sensors as versioning_sensors


def build_defs(
    database_url: str | None = None, storage_url: str | None = None, endpoint_url: str | None = None
) -> dg.Definitions:
    """The code location; the arguments override the environment's store and object storage (for tests)."""
    storage = ObjectStorage(url=storage_url, endpoint_url=endpoint_url)
    return dg.Definitions(
        assets=dg.load_assets_from_modules([traffic_assets, detection_assets]),
        asset_checks=dg.load_asset_checks_from_modules([checks]),
        jobs=[
            jobs.nightly_drift_job,
            jobs.replay_job,
            jobs.sampling_job,
            jobs.baseline_job,
            migration_jobs.staging_replay_job,
            migration_jobs.approve_migration_job,
            migration_jobs.readiness_job,
            audit_defs.audit_checkpoint_job,
        ],
        sensors=[
            versioning_sensors.new_model_version_sensor,
            traffic_sensors.new_tenants_sensor,
            detection_sensors.silent_change_sensor,
            migration_sensors.deprecation_sensor,
            migration_sensors.canary_monitor_sensor,
            alert_sensors.drift_check_alerts,
            alert_sensors.drift_check_failure_alerts,
        ],
        schedules=[
            schedules.nightly_drift_schedule,
            schedules.hourly_drift_schedule,
            audit_defs.nightly_audit_checkpoint_schedule,
        ],
        resources={
            "drift_store": DriftStore(database_url=database_url),
            "object_storage": storage,
            "io_manager": ParquetIOManager(storage=storage),
            migration_jobs.SUMMARY_IO: dg.FilesystemIOManager(),  # the migration jobs' small JSON summaries
        },
    )


defs = build_defs()
