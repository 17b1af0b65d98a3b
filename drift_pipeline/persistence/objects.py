"""Object storage for traffic, quarantine and samples: a local folder or an ``s3://`` prefix via fsspec.

Layout (one prefix per tenant, one folder per UTC day)::

    {root}/{dataset}/tenant={tenant_id}/day={YYYY-MM-DD}/{batch_id}.parquet|.jsonl
    {root}/{dataset}/tenant={tenant_id}/day={YYYY-MM-DD}/_commits/{batch_id}.json

A batch becomes visible only through its commit marker, written *after* the data file: readers list
``_commits/`` and read exactly the files the markers name. The data file's name carries a digest of its
bytes (``{batch_id}-{sha256[:16]}.{format}``), so rewriting a batch never touches the file the current
marker names: a crash between the two writes leaves an orphan that no reader sees, and a retry with the
same ``batch_id`` replaces the marker (then removes the old data file). On S3 each PUT is atomic per
object. Locally every file is written to a temporary name (``.tmp-*``) in the same folder, fsynced and
renamed into place (``os.replace`` is atomic on one file system), so nothing is ever seen half-written,
and created owner-only (``0600`` files in ``0700`` folders, `drift_pipeline.files`).

Markers are recognised strictly: only ``{batch_id}.json`` names count (a leftover ``.tmp-*`` is never a
commit), and a marker that cannot be read, is not JSON or does not describe its own batch is moved to
``_bad_commits/`` beside a ``.reason.json`` and skipped, with a warning: never fatal for readers.

Every key is checked before any I/O (`check_key`): no ``.``/``..``/empty segment, no backslash or
control character, and a local path must resolve under the root (symlinks included). Keys built from
ids go through `object_key` with ids that passed the identifier rule, or `identifiers.model_key`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd

from drift_pipeline import files
from drift_pipeline.errors import InvalidInputError, NotFoundError
from drift_pipeline.identifiers import check_identifier
from drift_pipeline.persistence.frames import frame_from_bytes, frame_to_bytes
from drift_pipeline.persistence.markers import FORMATS, fsync_folder, marker_problem
from drift_pipeline.persistence.object_keys import check_key, day_str, object_key

log = logging.getLogger(__name__)

BAD_COMMITS = "_bad_commits"  # where unreadable commit markers are moved, with their reason
UNKNOWN_TENANT = "_unknown"  # quarantine prefix for records without a usable tenant (never a valid id)
TRAFFIC_DATASET = "traffic"  # accepted traffic records (capture and ingest)
QUARANTINE_DATASET = "quarantine"  # rejected records with their reason and raw input


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
        # Resolved once: every local key must resolve under it (`full_path`).
        self._real_root = os.path.realpath(self.root or "/") if self.is_local else ""

    @classmethod
    def from_settings(cls, settings: Any = None) -> ObjectStore:
        """The store named by `Settings.storage_url` (``DRIFT_PIPELINE_STORAGE_URL``)."""
        from drift_pipeline.config import Settings

        return cls((settings or Settings.from_env()).storage_url)

    def __repr__(self) -> str:
        return f"ObjectStore({self.url!r})"

    # -- raw files ---------------------------------------------------------------------------------

    def full_path(self, rel: str) -> str:
        """Where `rel` lives; refuses a key that could leave the root (checked before every read and write)."""
        key = check_key(rel)
        path = f"{self.root}/{key}" if key else self.root
        # Locally the resolved path must stay under the root: a symlink planted under it cannot lead out.
        if self.is_local and os.path.commonpath([self._real_root, os.path.realpath(path)]) != self._real_root:
            raise InvalidInputError(f"object key {rel!r} resolves outside the storage root")
        return path

    def uri(self, rel: str) -> str:
        """A URL a person (or pandas with `storage_options`) can open."""
        return f"{self.url}/{check_key(rel)}"

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write one file so that readers see either nothing or all of it."""
        path = self.full_path(rel)
        if self.is_local:
            files.write_private(path, data)  # temp name, fsync, rename; 0600 in 0700 folders
            fsync_folder(os.path.dirname(path))  # the rename itself must survive a power cut
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
        return object_key(dataset, f"tenant={tenant_id}", f"day={day_str(day)}")

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
        replacing = batch_id is not None  # a fresh id cannot have an earlier version to replace
        batch_id = check_identifier(batch_id or new_batch_id(), "batch id")
        part = self.partition(dataset, tenant_id, day)
        data = frame_to_bytes(frame, fmt)
        digest = hashlib.sha256(data).hexdigest()
        marker = {
            "batch_id": batch_id,
            "file": f"{batch_id}-{digest[:16]}.{fmt}",
            "format": fmt,
            "rows": len(frame),
            "sha256": digest,
            "committed_at": datetime.now(UTC).isoformat(),
            "meta": dict(meta or {}),
        }
        previous = self.committed(dataset, tenant_id, day, batch_id) if replacing else None
        self.write_bytes(f"{part}/{marker['file']}", data)  # data first ...
        self.write_json(f"{part}/_commits/{batch_id}.json", marker)  # ... the commit marker last
        if previous is not None and previous.path != f"{part}/{marker['file']}":
            self._remove_quietly(previous.path)  # the replaced batch's data: no marker names it any more
        return _ref(dataset, tenant_id, day_str(day), part, marker)

    def committed(self, dataset: str, tenant_id: str, day: str | date, batch_id: str) -> BatchRef | None:
        """The committed batch `batch_id` of one tenant-day, or None (no marker, or a bad one: quarantined)."""
        part = self.partition(dataset, tenant_id, day)
        check_identifier(batch_id, "batch id")
        return self._read_marker(dataset, tenant_id, day_str(day), part, f"{batch_id}.json")

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
                ref = self._read_marker(dataset, tenant_id, day, part, name)
                if ref is not None:
                    refs.append(ref)
        return refs

    def _read_marker(self, dataset: str, tenant_id: str, day: str, part: str, name: str) -> BatchRef | None:
        """The batch a marker names; None for a non-marker name, a missing marker or a bad one (moved aside)."""
        batch_id = name.removesuffix(".json")
        if name.startswith(".") or not name.endswith(".json"):
            return None  # a temporary name of an unfinished write (or a stranger): never a commit
        rel = f"{part}/_commits/{name}"
        try:
            marker = json.loads(self.read_bytes(rel))
        except NotFoundError:
            return None
        except (OSError, ValueError) as exc:  # unreadable, not UTF-8, not JSON
            self._quarantine_marker(part, name, f"unreadable marker: {type(exc).__name__}")
            return None
        problem = marker_problem(marker, batch_id)
        if problem:
            self._quarantine_marker(part, name, problem)
            return None
        return _ref(dataset, tenant_id, day, part, marker)

    def _quarantine_marker(self, part: str, name: str, reason: str) -> None:
        """Move a bad marker to ``_bad_commits/`` with its reason; readers go on without it."""
        log.warning("commit marker %s/_commits/%s quarantined: %s", self.uri(part), name, reason)
        try:
            self.write_json(f"{part}/{BAD_COMMITS}/{name}.reason.json", {"marker": name, "reason": reason})
            self.fs.mv(self.full_path(f"{part}/_commits/{name}"), self.full_path(f"{part}/{BAD_COMMITS}/{name}"))
        except (OSError, ValueError) as exc:  # e.g. a read-only store: still skipped, just not moved
            log.warning("could not move the bad marker %s aside: %s", name, exc)

    def _remove_quietly(self, rel: str) -> None:
        with contextlib.suppress(OSError, ValueError):  # an orphan data file is invisible: harmless
            self.fs.rm_file(self.full_path(rel))

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
