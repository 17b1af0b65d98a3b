"""Dagster wiring of the versioning pillar: assets, checks, jobs, schedules and sensors over `drift_pipeline.versioning`."""
