"""Resources: the SQL store, object storage and the Parquet I/O manager, configured from the environment."""

import io
from datetime import date, timedelta
from typing import Any

import dagster as dg
import pandas as pd

from drift_pipeline.config import Settings
from drift_pipeline.defs.partitions import run_day
from drift_pipeline.identifiers import check_identifier
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.objects import ObjectStore, object_key, storage_options_from_env

LOOKBACK_DAYS = "drift_pipeline/lookback_days"  # input metadata: read this many days up to the run's day


class DriftStore(dg.ConfigurableResource):
    """The drift-pipeline SQL store (SQLite under DRIFT_PIPELINE_HOME, or DRIFT_PIPELINE_DATABASE_URL)."""

    database_url: str | None = None

    def get(self) -> Store:
        return Store.open(self.database_url)


class ObjectStorage(dg.ConfigurableResource):
    """Object storage for traffic, samples, baselines and reports: a local folder or an s3:// prefix."""

    url: str | None = None
    endpoint_url: str | None = None  # a local S3 (moto, MinIO); AWS otherwise

    def get(self) -> ObjectStore:
        url = self.url or Settings.from_env().storage_url
        options = storage_options_from_env(url)
        if self.endpoint_url:
            options.setdefault("client_kwargs", {})["endpoint_url"] = self.endpoint_url
        return ObjectStore(url, options)


class ParquetIOManager(dg.ConfigurableIOManager):
    """DataFrames as one Parquet object per asset partition and day: `assets/<asset>/tenant=<id>/day=<day>.parquet`.

    The day is the run's (`partitions.run_day`), so nights never overwrite each other and a downstream
    asset reads the day its run works on; an input with `LOOKBACK_DAYS` metadata reads that many days up
    to the run's day, whichever exist. Writes go through `ObjectStore.write_bytes`, so a half-written file
    never becomes visible (temp file + rename locally, a single PUT on S3).
    """

    storage: dg.ResourceDependency[ObjectStorage]

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        if obj is None:
            return
        buf = io.BytesIO()
        obj.to_parquet(buf, index=False)
        day = _day(context)
        rel, objects = self._path(context, day=day), self.storage.get()
        objects.write_bytes(rel, buf.getvalue())
        meta: dict[str, Any] = {"uri": dg.MetadataValue.path(objects.uri(rel)), "rows": len(obj)}
        context.add_output_metadata({**meta, "day": day} if day else meta)

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        store, day = self.storage.get(), _day(context)
        lookback = int((context.definition_metadata or {}).get(LOOKBACK_DAYS, 1))
        days = [(date.fromisoformat(day) - timedelta(days=n)).isoformat() for n in range(lookback)] if day else [day]
        frames = [self._read(store, self._path(context, day=d)) for d in days]
        frames = [f for f in frames if len(f)]
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else (frames[0] if frames else pd.DataFrame())

    @staticmethod
    def _read(store: ObjectStore, rel: str) -> pd.DataFrame:
        if not store.exists(rel):
            return pd.DataFrame()
        return pd.read_parquet(io.BytesIO(store.read_bytes(rel)))

    @staticmethod
    def _path(context: Any, *, day: str | None) -> str:
        partition_key = context.asset_partition_key if context.has_asset_partitions else None
        if partition_key is None:
            return object_key("assets", *context.asset_key.path[:-1], f"{context.asset_key.path[-1]}.parquet")
        tenant = _partition_value(str(partition_key))
        return object_key("assets", *context.asset_key.path, f"tenant={tenant}", f"day={day}.parquet")


def _day(context: dg.OutputContext | dg.InputContext) -> str | None:
    """The day of the run this I/O belongs to (None for an unpartitioned asset: it has no history by day)."""
    if not context.has_asset_partitions:
        return None
    step = context.step_context
    return run_day(step.instance, step.dagster_run)


def _partition_value(value: str) -> str:
    """A partition key (a tenant id) in an object path: it follows the one identifier rule, and a key added by
    hand through Dagster's UI or API is not trusted."""
    return check_identifier(value, "partition key")
