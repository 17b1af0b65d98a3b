"""Dagster wiring of the alerts pillar: assets, checks, jobs, schedules and sensors over `drift_pipeline.alerts`."""
