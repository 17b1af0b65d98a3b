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
        objects, day = self.storage.get(), _day(context)
        keys = list(context.asset_partition_keys) if context.has_asset_partitions else [None]
        for key in keys:
            # A shard run's frame holds many tenants: each tenant partition gets its own rows.
            part = obj if len(keys) == 1 else _rows_of(obj, key)
            objects.write_bytes(self._path(context, day=day, partition_key=key), _parquet(part))
        meta: dict[str, Any] = {"day": day} if day else {}
        if len(keys) == 1:
            # The key under the configured object storage, as text: a local path is not a link a browser can open.
            meta |= {"object_key": dg.MetadataValue.text(self._path(context, day=day)), "rows": len(obj)}
        else:
            meta |= {"shard_tenants": len(keys), "shard_rows": len(obj)}
        context.add_output_metadata(meta)

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        store, day = self.storage.get(), _day(context)
        lookback = int((context.definition_metadata or {}).get(LOOKBACK_DAYS, 1))
        days = [(date.fromisoformat(day) - timedelta(days=n)).isoformat() for n in range(lookback)] if day else [day]
        keys = list(context.asset_partition_keys) if context.has_asset_partitions else [None]
        frames = [self._read(store, self._path(context, day=d, partition_key=k)) for k in keys for d in days]
        frames = [f for f in frames if len(f)]
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else (frames[0] if frames else pd.DataFrame())

    @staticmethod
    def _read(store: ObjectStore, rel: str) -> pd.DataFrame:
        if not store.exists(rel):
            return pd.DataFrame()
        return pd.read_parquet(io.BytesIO(store.read_bytes(rel)))

    @staticmethod
    def _path(context: Any, *, day: str | None, partition_key: str | None = None) -> str:
        if partition_key is None and context.has_asset_partitions:
            partition_key = context.asset_partition_key
        if partition_key is None:
            return object_key("assets", *context.asset_key.path[:-1], f"{context.asset_key.path[-1]}.parquet")
        tenant = _partition_value(str(partition_key))
        return object_key("assets", *context.asset_key.path, f"tenant={tenant}", f"day={day}.parquet")


def _parquet(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


def _rows_of(frame: pd.DataFrame, tenant_id: str) -> pd.DataFrame:
    """One tenant's rows of a shard's frame (every asset frame carries `tenant_id`; an empty one may not)."""
    if "tenant_id" not in frame.columns:
        return frame.iloc[0:0]
    return frame[frame["tenant_id"] == tenant_id].reset_index(drop=True)


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
