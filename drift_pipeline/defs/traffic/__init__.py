"""Dagster wiring of the traffic pillar: assets, checks, jobs, schedules and sensors over `drift_pipeline.traffic`."""
