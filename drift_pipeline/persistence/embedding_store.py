"""A persistent, content-addressed embedding store on the object storage: each distinct text is embedded
once per deployment, whichever baseline, replay or comparison meets it first.

Layout under the store root (a local folder or ``s3://``, `ObjectStore`)::

    embeddings/{sha256(backend id)[:24]}/backend.json                  {"backend": id, "dimension": d}
    embeddings/{sha256(backend id)[:24]}/{key[:2]}/{key[2:4]}/{key}.vec

A key is ``sha256(backend id + NUL + text)`` (computed by `detection.embeddings`): the store holds keys
and vectors, never texts. One small immutable object per key, sharded by two levels of key prefix
(65,536 folders): a lookup reads exactly the objects it needs (one batched, concurrent GET per key on
S3), whatever the size of the store, so memory and I/O are bounded by the request; there is no index to
update, hence no read-modify-write race. Writers of the same key write the same vector (last writer wins);
every write is atomic (locally a temp name renamed into place, on S3 one PUT).

An object is ``MAGIC``, one JSON header line ``{"backend", "dimension", "key"}``, ``dimension``
little-endian float32, and the sha256 of everything before it. It is used only if the checksum holds (no
torn or bit-flipped file), the header names this store's backend, dimension and the object's own key (a
vector copied under another key is refused), and the vector is finite and unit-norm. Otherwise it is
logged, moved to ``_corrupt/`` and its text embedded again. An insider who can write the bucket can still
forge a consistent object (docs/operations.md, "The embedding store").

Local writes skip fsync on purpose: this is a cache, and a file torn by a power cut fails its checksum and
is simply embedded again; the batch of a run stays fast (thousands of small files).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from drift_pipeline import files
from drift_pipeline.errors import InvalidInputError
from drift_pipeline.persistence.objects import ObjectStore

log = logging.getLogger(__name__)

MAGIC = b"DPVEC1\n"
PREFIX = "embeddings"
CORRUPT = "_corrupt"
NORM_TOLERANCE = 1e-3
_KEY = re.compile(r"[0-9a-f]{64}")


@dataclass
class StoreStats:
    """Counters for tests, benchmarks and the CLI summary."""

    hits: int = 0
    written: int = 0
    rejected: list[str] = field(default_factory=list)  # why objects were refused


class EmbeddingStore:
    """Unit-norm vectors of one embedding backend, by content key, shared by every run of a deployment."""

    def __init__(self, objects: ObjectStore, backend_id: str, dimension: int | None = None) -> None:
        if not backend_id:
            raise InvalidInputError("an embedding store needs a backend id")
        self.objects = objects
        self.backend_id = backend_id
        self.dimension = dimension  # None: the first valid object (or put) fixes it
        self.root = f"{PREFIX}/{hashlib.sha256(backend_id.encode('utf-8')).hexdigest()[:24]}"
        self.stats = StoreStats()

    def __repr__(self) -> str:
        return f"EmbeddingStore({self.objects.uri(self.root)!r}, backend={self.backend_id!r})"

    def rel(self, key: str) -> str:
        """Where the vector of `key` lives, relative to the storage root."""
        return f"{self.root}/{key[:2]}/{key[2:4]}/{key}.vec"

    # -- reading -----------------------------------------------------------------------------------

    def get_many(self, keys: Iterable[str]) -> dict[str, np.ndarray]:
        """The stored vectors among `keys` (missing ones are simply absent)."""
        wanted = sorted({k for k in keys if _KEY.fullmatch(k)})
        if not wanted:
            return {}
        paths = {self.objects.full_path(self.rel(k)): k for k in wanted}
        try:  # batched: concurrent GETs on S3; a missing object is just not in the answer
            blobs = self.objects.fs.cat(list(paths), on_error="omit")
        except FileNotFoundError:
            blobs = {}
        found: dict[str, np.ndarray] = {}
        for path, data in blobs.items():
            key = paths.get(path) or paths.get(_strip(path, self.objects))
            if key is None or not isinstance(data, bytes):
                continue
            try:
                found[key] = self._decode(key, data)
            except ValueError as exc:
                self._quarantine(key, str(exc))
        self.stats.hits += len(found)
        return found

    def _decode(self, key: str, data: bytes) -> np.ndarray:
        """The vector of one object, after every integrity check; ValueError says which one failed."""
        body, checksum = data[:-32], data[-32:]
        if len(data) <= len(MAGIC) + 32 or hashlib.sha256(body).digest() != checksum:
            raise ValueError("checksum mismatch (torn or altered)")
        if not body.startswith(MAGIC) or b"\n" not in body[len(MAGIC) :]:
            raise ValueError("not an embedding object")
        head, raw = body[len(MAGIC) :].split(b"\n", 1)
        header = json.loads(head)
        if not isinstance(header, dict) or header.get("backend") != self.backend_id:
            raise ValueError("written for another backend")
        if header.get("key") != key:
            raise ValueError("written for another key")
        dim = header.get("dimension")
        if not isinstance(dim, int) or dim <= 0 or len(raw) != 4 * dim:
            raise ValueError("size does not match its header")
        if self.dimension is not None and dim != self.dimension:
            raise ValueError(f"dimension {dim}, expected {self.dimension}")
        vector = np.frombuffer(raw, dtype="<f4").astype(np.float32)
        if not np.isfinite(vector).all():
            raise ValueError("NaN or infinite values")
        if abs(float(np.linalg.norm(vector)) - 1.0) > NORM_TOLERANCE:
            raise ValueError("a vector that is not unit-norm")
        self.dimension = dim
        return vector

    def _quarantine(self, key: str, reason: str) -> None:
        """Move an object that failed a check aside (kept as evidence) and go on without it."""
        self.stats.rejected.append(reason)
        log.warning("embedding object %s ignored: %s", self.objects.uri(self.rel(key)), reason)
        try:
            src = self.objects.full_path(self.rel(key))
            dst = self.objects.full_path(f"{self.root}/{CORRUPT}/{key}-{uuid.uuid4().hex[:8]}.vec")
            if self.objects.is_local:
                files.private_dirs(os.path.dirname(dst))
            self.objects.fs.mv(src, dst)
        except (OSError, ValueError, InvalidInputError) as exc:  # e.g. a read-only store: still ignored
            log.warning("could not move the bad embedding object %s aside: %s", key, exc)

    # -- writing -----------------------------------------------------------------------------------

    def put_many(self, items: Mapping[str, np.ndarray]) -> int:
        """Store vectors by key (one object each); returns how many were written."""
        blobs: dict[str, bytes] = {}
        for key, vector in items.items():
            if not _KEY.fullmatch(key):
                raise InvalidInputError(f"embedding store keys are sha256 hex digests, not {key[:80]!r}")
            blobs[self.rel(key)] = encode(self.backend_id, key, self._checked(vector))
        if not blobs:
            return 0
        self._describe_backend()
        if self.objects.is_local:
            for rel, data in blobs.items():
                _write_local(self.objects.full_path(rel), data)
        else:  # one PUT per object (atomic), sent concurrently by s3fs
            self.objects.fs.pipe({self.objects.full_path(rel): data for rel, data in blobs.items()})
        self.stats.written += len(blobs)
        return len(blobs)

    def _checked(self, vector: np.ndarray) -> np.ndarray:
        row = np.asarray(vector, dtype=np.float32).reshape(-1)
        if self.dimension is None:
            self.dimension = row.size
        if row.size != self.dimension or not np.isfinite(row).all():
            raise InvalidInputError(
                f"refusing to store a vector of length {row.size} with non-finite values or the wrong "
                f"dimension (expected {self.dimension})"
            )
        if abs(float(np.linalg.norm(row)) - 1.0) > NORM_TOLERANCE:
            raise InvalidInputError("refusing to store a vector that is not unit-norm")
        return row

    def _describe_backend(self) -> None:
        rel = f"{self.root}/backend.json"
        if not self.objects.exists(rel):
            self.objects.write_json(rel, {"backend": self.backend_id, "dimension": self.dimension})


def encode(backend_id: str, key: str, vector: np.ndarray) -> bytes:
    """The bytes of one object: magic, header line, float32 vector, sha256 of all that."""
    row = np.asarray(vector, dtype="<f4").reshape(-1)
    header = json.dumps({"backend": backend_id, "dimension": int(row.size), "key": key}, sort_keys=True)
    body = MAGIC + header.encode("utf-8") + b"\n" + row.tobytes()
    return body + hashlib.sha256(body).digest()


def _write_local(path: str, data: bytes) -> None:
    """Temp name in the same folder, then rename: readers see nothing or all (owner-only, no fsync)."""
    folder = os.path.dirname(path)
    files.private_dirs(folder)
    tmp = os.path.join(folder, f".tmp-{uuid.uuid4().hex}")
    try:
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, files.FILE_MODE), "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _strip(path: str, objects: ObjectStore) -> str:
    """fsspec's batched `cat` may key results with or without the protocol or a leading slash."""
    bare = path.split("://", 1)[-1]
    return bare if objects.is_local else bare.lstrip("/")
