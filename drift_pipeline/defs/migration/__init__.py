"""Dagster wiring of the migration pillar: assets, checks, jobs, schedules and sensors over `drift_pipeline.migration`."""
