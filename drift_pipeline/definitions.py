"""The drift-pipeline Dagster code location: every definition under `drift_pipeline/defs`, plus resources."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from drift_pipeline.defs.resources import DriftStore, ObjectStorage, ParquetIOManager


@dg.definitions
def defs() -> dg.Definitions:
    storage = ObjectStorage()
    loaded = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
    resources = dg.Definitions(
        resources={
            "drift_store": DriftStore(),
            "object_storage": storage,
            "io_manager": ParquetIOManager(storage=storage),
        }
    )
    return dg.Definitions.merge(loaded, resources)
