"""Object storage for traffic, quarantine and samples: a local folder or an ``s3://`` prefix via fsspec.

Layout (one prefix per tenant, one folder per UTC day)::

    {root}/{dataset}/tenant={tenant_id}/day={YYYY-MM-DD}/{batch_id}.parquet|.jsonl
    {root}/{dataset}/tenant={tenant_id}/day={YYYY-MM-DD}/_commits/{batch_id}.json

A batch becomes visible only through its commit marker, written *after* the data file: readers list
``_commits/`` and read exactly the files the markers name. On S3 each PUT is atomic per object, so a
crash between the two PUTs leaves an orphan data file that no reader sees; a retry with the same
``batch_id`` overwrites both. Locally every file is written to a temporary name in the same folder and
renamed into place (``os.replace`` is atomic on one file system), so even the data file is never seen
half-written.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd

from drift_pipeline.errors import InvalidInputError, NotFoundError
from drift_pipeline.identifiers import check_identifier

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
UNKNOWN_TENANT = "_unknown"  # quarantine prefix for records without a usable tenant (never a valid id)
FORMATS = ("parquet", "jsonl")
TRAFFIC_DATASET = "traffic"  # accepted traffic records (capture and ingest)
QUARANTINE_DATASET = "quarantine"  # rejected records with their reason and raw input


def day_str(value: str | date | datetime) -> str:
    """Normalise a day (date, datetime or 'YYYY-MM-DD') to 'YYYY-MM-DD'."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).date().isoformat() if value.tzinfo else value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and _DAY.fullmatch(value):
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            pass
    raise InvalidInputError(f"invalid day {value!r}: expected YYYY-MM-DD")


def storage_options_from_env(url: str) -> dict[str, Any]:
    """fsspec options for `url` from the environment.

    ``DRIFT_PIPELINE_STORAGE_OPTIONS`` (a JSON object) is passed through as is; for ``s3://``,
    ``DRIFT_PIPELINE_S3_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``) points s3fs at a
    local S3 such as moto or MinIO. Credentials come from the usual AWS variables.
    """
    from drift_pipeline.config import Settings

    settings = Settings.from_env()
    options: dict[str, Any] = dict(settings.storage_options)
    if url.startswith("s3://"):
        endpoint = (
            settings.s3_endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        )
        if endpoint:
            options.setdefault("client_kwargs", {}).setdefault("endpoint_url", endpoint)
    return options


@dataclass(frozen=True)
class BatchRef:
    """A committed batch: where its data lives and what its commit marker says."""

    dataset: str
    tenant_id: str
    day: str
    batch_id: str
    path: str  # relative to the store root
    format: str
    rows: int
    sha256: str
    committed_at: str
    meta: Mapping[str, Any]


class ObjectStore:
    """Parquet/JSONL batches under a local folder or an ``s3://`` prefix, committed atomically."""

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None) -> None:
        import fsspec

        self.url = url.rstrip("/")
        options = dict(storage_options if storage_options is not None else storage_options_from_env(url))
        if url.startswith("s3://"):
            # Listings must never be served from s3fs's cache: a commit made by another process must show up.
            options.setdefault("use_listings_cache", False)
        try:
            self.fs, root = fsspec.core.url_to_fs(self.url, **options)
        except (ImportError, ValueError) as exc:
            raise InvalidInputError(f"cannot open storage {url!r}: {exc}") from exc
        self.root = root.rstrip("/")
        self.storage_options = options
        self.is_local = "file" in _protocols(self.fs)

    @classmethod
    def from_settings(cls, settings: Any = None) -> ObjectStore:
        """The store named by `Settings.storage_url` (``DRIFT_PIPELINE_STORAGE_URL``)."""
        from drift_pipeline.config import Settings

        return cls((settings or Settings.from_env()).storage_url)

    def __repr__(self) -> str:
        return f"ObjectStore({self.url!r})"

    # -- raw files ---------------------------------------------------------------------------------

    def full_path(self, rel: str) -> str:
        return f"{self.root}/{rel.lstrip('/')}"

    def uri(self, rel: str) -> str:
        """A URL a person (or pandas with `storage_options`) can open."""
        return f"{self.url}/{rel.lstrip('/')}"

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write one file so that readers see either nothing or all of it."""
        path = self.full_path(rel)
        if self.is_local:
            folder = os.path.dirname(path)
            os.makedirs(folder, exist_ok=True)
            tmp = os.path.join(folder, f".tmp-{uuid.uuid4().hex}-{os.path.basename(path)}")
            try:
                with open(tmp, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        else:
            self.fs.pipe_file(path, data)  # one PUT: atomic per object on S3

    def write_once(self, rel: str, data: bytes) -> bool:
        """Create `rel` with `data`, never replacing an existing object: True when written, False when the
        same bytes are already there; an existing object with other bytes is an IntegrityError.

        Locally the file appears complete and read-only through a hard link (fails if the name exists); on
        S3 the PUT is conditional (`If-None-Match: *`). S3 Object Lock on the bucket is what also stops a
        holder of the storage credentials from deleting it (docs/audit.md)."""
        from drift_pipeline.errors import IntegrityError

        path = self.full_path(rel)
        try:
            if self.is_local:
                self._link_new_local(path, data)
            elif self.fs.exists(path):
                raise FileExistsError(path)
            else:
                self.fs.pipe_file(path, data, mode="create")
            return True
        except FileExistsError:
            if self.read_bytes(rel) != data:
                raise IntegrityError(f"{self.uri(rel)} already exists with other content (write-once)") from None
            return False

    @staticmethod
    def _link_new_local(path: str, data: bytes) -> None:
        folder = os.path.dirname(path)
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, f".tmp-{uuid.uuid4().hex}-{os.path.basename(path)}")
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o444)
            os.link(tmp, path)  # atomic, and refuses an existing name (os.replace would overwrite)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def read_bytes(self, rel: str) -> bytes:
        try:
            return self.fs.cat_file(self.full_path(rel))
        except FileNotFoundError as exc:
            raise NotFoundError(f"no object {self.uri(rel)}") from exc

    def exists(self, rel: str) -> bool:
        return bool(self.fs.exists(self.full_path(rel)))

    def list_names(self, rel: str) -> list[str]:
        """Base names directly under the folder `rel` (empty when it does not exist)."""
        try:
            entries = self.fs.ls(self.full_path(rel), detail=False)
        except FileNotFoundError:
            return []
        return sorted(str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries)

    def write_json(self, rel: str, value: Any) -> None:
        self.write_bytes(rel, json.dumps(value, sort_keys=True, default=str).encode("utf-8"))

    def read_json(self, rel: str) -> Any:
        return json.loads(self.read_bytes(rel))

    # -- committed batches -------------------------------------------------------------------------

    @staticmethod
    def partition(dataset: str, tenant_id: str, day: str | date) -> str:
        if tenant_id != UNKNOWN_TENANT:
            check_identifier(tenant_id, "tenant id")
        check_identifier(dataset, "dataset")
        return f"{dataset}/tenant={tenant_id}/day={day_str(day)}"

    def write_batch(
        self,
        dataset: str,
        tenant_id: str,
        day: str | date,
        frame: pd.DataFrame,
        *,
        fmt: str = "parquet",
        batch_id: str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> BatchRef:
        """Write `frame` as one batch and commit it; the same `batch_id` again replaces it (idempotent)."""
        if fmt not in FORMATS:
            raise InvalidInputError(f"unknown batch format {fmt!r}: use one of {', '.join(FORMATS)}")
        batch_id = check_identifier(batch_id or new_batch_id(), "batch id")
        part = self.partition(dataset, tenant_id, day)
        data = frame_to_bytes(frame, fmt)
        rel = f"{part}/{batch_id}.{fmt}"
        marker = {
            "batch_id": batch_id,
            "file": f"{batch_id}.{fmt}",
            "format": fmt,
            "rows": len(frame),
            "sha256": hashlib.sha256(data).hexdigest(),
            "committed_at": datetime.now(UTC).isoformat(),
            "meta": dict(meta or {}),
        }
        self.write_bytes(rel, data)  # data first ...
        self.write_json(f"{part}/_commits/{batch_id}.json", marker)  # ... the commit marker last
        return _ref(dataset, tenant_id, day_str(day), part, marker)

    def list_batches(
        self,
        dataset: str,
        tenant_id: str,
        start: str | date | None = None,
        end: str | date | None = None,
    ) -> list[BatchRef]:
        """Committed batches of one tenant, days `start`..`end` inclusive (all days when omitted)."""
        refs: list[BatchRef] = []
        for day in self.list_days(dataset, tenant_id, start, end):
            part = self.partition(dataset, tenant_id, day)
            for name in self.list_names(f"{part}/_commits"):
                if name.endswith(".json"):
                    refs.append(_ref(dataset, tenant_id, day, part, self.read_json(f"{part}/_commits/{name}")))
        return refs

    def list_days(
        self, dataset: str, tenant_id: str, start: str | date | None = None, end: str | date | None = None
    ) -> list[str]:
        lo, hi = (day_str(start) if start else None), (day_str(end) if end else None)
        days = []
        for name in self.list_names(f"{dataset}/tenant={tenant_id}"):
            day = name.removeprefix("day=")
            if name.startswith("day=") and (lo is None or day >= lo) and (hi is None or day <= hi):
                days.append(day)
        return days

    def list_tenants(self, dataset: str) -> list[str]:
        """Tenants with at least one folder under `dataset` (the quarantine's `_unknown` included)."""
        return [n.removeprefix("tenant=") for n in self.list_names(dataset) if n.startswith("tenant=")]

    def read_batch(self, ref: BatchRef, columns: list[str] | None = None) -> pd.DataFrame:
        data = self.read_bytes(ref.path)
        if hashlib.sha256(data).hexdigest() != ref.sha256:
            from drift_pipeline.errors import IntegrityError

            raise IntegrityError(f"batch {self.uri(ref.path)} does not match its commit marker")
        return frame_from_bytes(data, ref.format, columns)

    def read_batches(
        self,
        dataset: str,
        tenant_id: str,
        start: str | date | None = None,
        end: str | date | None = None,
        columns: list[str] | None = None,
    ) -> pd.DataFrame:
        """All committed rows of one tenant for a day range, concatenated (empty frame when none)."""
        frames = [self.read_batch(ref, columns) for ref in self.list_batches(dataset, tenant_id, start, end)]
        frames = [f for f in frames if len(f)]
        if not frames:
            return pd.DataFrame(columns=columns or [])
        return pd.concat(frames, ignore_index=True)


def new_batch_id() -> str:
    """Time-ordered, unique batch id (lowercase 't': ids follow the one identifier rule)."""
    return f"{datetime.now(UTC).strftime('%Y%m%dt%H%M%S%f')}-{uuid.uuid4().hex[:8]}"


def frame_to_bytes(frame: pd.DataFrame, fmt: str) -> bytes:
    if fmt == "parquet":
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        return buf.getvalue()
    lines = (json.dumps(row, ensure_ascii=False, default=str) for row in _records(frame))
    return ("".join(line + "\n" for line in lines)).encode("utf-8")


def frame_from_bytes(data: bytes, fmt: str, columns: list[str] | None = None) -> pd.DataFrame:
    if fmt == "parquet":
        return pd.read_parquet(io.BytesIO(data), columns=columns)
    rows = [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]
    frame = pd.DataFrame(rows)
    return frame[columns] if columns else frame


def _records(frame: pd.DataFrame) -> Iterable[dict[str, Any]]:
    for row in frame.to_dict(orient="records"):
        yield {k: (None if _isna(v) else v) for k, v in row.items()}


def _isna(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _ref(dataset: str, tenant_id: str, day: str, part: str, marker: Mapping[str, Any]) -> BatchRef:
    return BatchRef(
        dataset=dataset,
        tenant_id=tenant_id,
        day=day,
        batch_id=marker["batch_id"],
        path=f"{part}/{marker['file']}",
        format=marker["format"],
        rows=int(marker["rows"]),
        sha256=marker["sha256"],
        committed_at=marker["committed_at"],
        meta=marker.get("meta", {}),
    )


def _protocols(fs: Any) -> tuple[str, ...]:
    proto = fs.protocol
    return (proto,) if isinstance(proto, str) else tuple(proto)
