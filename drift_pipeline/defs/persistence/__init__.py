"""Dagster wiring of the persistence pillar: the nightly audit checkpoint."""
