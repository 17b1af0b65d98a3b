"""Dagster wiring of the detection pillar: assets, checks, jobs, schedules and sensors over `drift_pipeline.detection`."""
