"""Resources: the SQL store, object storage and the Parquet I/O manager, configured from the environment."""

import io
from typing import Any

import dagster as dg
import pandas as pd

from drift_pipeline.config import Settings
from drift_pipeline.identifiers import check_identifier
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.objects import ObjectStore, object_key, storage_options_from_env


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
    """DataFrames as one Parquet object per asset partition: `assets/<asset>/<partition>.parquet`.

    Writes go through `ObjectStore.write_bytes`, so a half-written file never becomes visible (temp file +
    rename locally, a single PUT on S3).
    """

    storage: dg.ResourceDependency[ObjectStorage]

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        if obj is None:
            return
        buf = io.BytesIO()
        obj.to_parquet(buf, index=False)
        rel, objects = self._path(context), self.storage.get()
        objects.write_bytes(rel, buf.getvalue())
        context.add_output_metadata({"uri": dg.MetadataValue.path(objects.uri(rel)), "rows": len(obj)})

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        store = self.storage.get()
        if context.has_asset_partitions and len(context.asset_partition_keys) > 1:
            frames = [self._read(store, self._path(context, k)) for k in context.asset_partition_keys]
            return (
                pd.concat([f for f in frames if len(f)], ignore_index=True)
                if any(len(f) for f in frames)
                else pd.DataFrame()
            )
        return self._read(store, self._path(context))

    @staticmethod
    def _read(store: ObjectStore, rel: str) -> pd.DataFrame:
        if not store.exists(rel):
            return pd.DataFrame()
        return pd.read_parquet(io.BytesIO(store.read_bytes(rel)))

    @staticmethod
    def _path(context: Any, partition_key: str | None = None) -> str:
        if partition_key is None and context.has_asset_partitions:
            partition_key = context.asset_partition_key
        if partition_key is None:
            return object_key("assets", *context.asset_key.path[:-1], f"{context.asset_key.path[-1]}.parquet")
        keys = getattr(partition_key, "keys_by_dimension", None)
        if not keys and "|" in str(partition_key):  # a multi-partition key given as a string
            date, tenant = str(partition_key).split("|", 1)
            keys = {"date": date, "tenant": tenant}
        if keys:
            parts = [f"{k}={_partition_value(v)}" for k, v in sorted(keys.items())]
        else:
            parts = [_partition_value(str(partition_key))]
        parts[-1] += ".parquet"
        return object_key("assets", *context.asset_key.path, *parts)


def _partition_value(value: str) -> str:
    """A partition key (a day or a tenant id) in an object path: both follow the one identifier rule, and a
    key added by hand through Dagster's UI or API is not trusted."""
    return check_identifier(value, "partition key")
