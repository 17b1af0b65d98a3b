"""A persistent, content-addressed embedding store on the object storage: each distinct text is embedded
once per deployment, whichever baseline, replay or comparison meets it first.

Layout under the store root (a local folder or ``s3://``, `ObjectStore`)::

    embeddings/{sha256(backend id)[:24]}/backend.json            {"backend": id} (for operators)
    embeddings/{sha256(backend id)[:24]}/{key[:2]}/{sha256(file)}.seg

A key is ``sha256(backend id + NUL + text)`` (computed by `detection.embeddings`): the store holds keys
and vectors, never texts. A segment is immutable and named by the sha256 of its bytes, so writers never
modify a file another process may read: every flush writes new segments (atomically: temp file and rename
locally, one PUT on S3), two writers of identical content write identical bytes under the same name, and
no read-modify-write can lose an entry. Readers list once (`find`) and read the shards they need.

A segment is ``MAGIC``, one JSON header line ``{"backend", "dimension", "count"}``, ``count`` raw 32-byte
keys, then ``count x dimension`` little-endian float32. It is trusted only if its name matches its bytes,
its header names this store's backend and dimension, its size matches the header, every key belongs to
its shard, and every vector is finite and unit-norm; otherwise it is logged, moved to ``_corrupt/``
beside its shard, and its texts are embedded again. (An insider who can write the bucket can still
forge a consistent segment: sign or lock the bucket if that is in your threat model; docs/operations.md.)

Shards with more than `compact_after` segments are merged by the reader that loads them: the merged
segment is written first, then exactly the segments it was made of are deleted, so concurrent compactions
and writers never lose an entry (at worst a text is embedded twice). Memory is bounded by the shards one
call touches.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from drift_pipeline.errors import InvalidInputError, NotFoundError
from drift_pipeline.persistence.objects import ObjectStore

log = logging.getLogger(__name__)

MAGIC = b"DPEMB1\n"
PREFIX = "embeddings"
CORRUPT = "_corrupt"
SHARD_CHARS = 2  # 256 shards: one flush of a few hundred texts writes at most 256 small files
COMPACT_AFTER = 16
NORM_TOLERANCE = 1e-3
_KEY = re.compile(r"[0-9a-f]{64}")
_SEGMENT = re.compile(r"([0-9a-f]{64})\.seg")


@dataclass
class StoreStats:
    """Counters for tests, benchmarks and the CLI summary."""

    hits: int = 0
    written: int = 0
    segments_read: int = 0
    rejected: list[str] = field(default_factory=list)  # why segments were refused
    compacted: int = 0


class EmbeddingStore:
    """Unit-norm vectors of one embedding backend, by content key, shared by every run of a deployment."""

    def __init__(
        self, objects: ObjectStore, backend_id: str, dimension: int | None = None, *, compact_after: int = COMPACT_AFTER
    ) -> None:
        if not backend_id:
            raise InvalidInputError("an embedding store needs a backend id")
        self.objects = objects
        self.backend_id = backend_id
        self.dimension = dimension  # None: the first valid segment (or put) fixes it
        self.compact_after = compact_after
        self.root = f"{PREFIX}/{hashlib.sha256(backend_id.encode('utf-8')).hexdigest()[:24]}"
        self.stats = StoreStats()

    def __repr__(self) -> str:
        return f"EmbeddingStore({self.objects.uri(self.root)!r}, backend={self.backend_id!r})"

    # -- reading -----------------------------------------------------------------------------------

    def get_many(self, keys: Iterable[str]) -> dict[str, np.ndarray]:
        """The stored vectors among `keys` (missing ones are simply absent)."""
        wanted = {k for k in keys if _KEY.fullmatch(k)}
        if not wanted:
            return {}
        shards = {k[:SHARD_CHARS] for k in wanted}
        listing = self._list_segments(shards)
        found: dict[str, np.ndarray] = {}
        for shard, names in listing.items():
            entries, merged_from = self._load_shard(shard, names)
            found.update((k, entries[k]) for k in wanted & entries.keys())
            if len(merged_from) > self.compact_after:
                self._compact(shard, entries, merged_from)
        self.stats.hits += len(found)
        return found

    def _list_segments(self, shards: set[str]) -> dict[str, list[str]]:
        """Segment names per needed shard, from one recursive listing (one paginated LIST on S3)."""
        base = self.objects.full_path(self.root)
        try:
            paths = self.objects.fs.find(base)
        except FileNotFoundError:
            return {}
        listing: dict[str, list[str]] = {}
        for path in paths:
            parts = str(path).rstrip("/").rsplit("/", 2)
            if len(parts) == 3 and parts[1] in shards and _SEGMENT.fullmatch(parts[2]):
                listing.setdefault(parts[1], []).append(parts[2])
        return listing

    def _load_shard(self, shard: str, names: list[str]) -> tuple[dict[str, np.ndarray], list[str]]:
        """Entries of the valid segments of one shard, and the names they came from."""
        paths = [self.objects.full_path(f"{self.root}/{shard}/{n}") for n in names]
        try:
            blobs = self.objects.fs.cat(paths, on_error="omit")  # batched: concurrent GETs on S3
        except (OSError, ValueError):
            blobs = {}
        entries: dict[str, np.ndarray] = {}
        loaded: list[str] = []
        for name, path in zip(names, paths, strict=True):
            data = _blob(blobs, path)
            if data is None:
                continue  # removed by a concurrent compaction after our listing: its entries live on elsewhere
            self.stats.segments_read += 1
            try:
                entries.update(self._decode(shard, name, data))
                loaded.append(name)
            except ValueError as exc:
                self._quarantine(shard, name, str(exc))
        return entries, loaded

    def _decode(self, shard: str, name: str, data: bytes) -> dict[str, np.ndarray]:
        """The entries of one segment, after every integrity check; ValueError says which one failed."""
        if hashlib.sha256(data).hexdigest() != name.removesuffix(".seg"):
            raise ValueError("content does not match its name")
        if not data.startswith(MAGIC) or b"\n" not in data[len(MAGIC) :]:
            raise ValueError("not a segment")
        head, body = data[len(MAGIC) :].split(b"\n", 1)
        header = json.loads(head)
        if not isinstance(header, dict) or header.get("backend") != self.backend_id:
            raise ValueError("written for another backend")
        dim, count = header.get("dimension"), header.get("count")
        if not (isinstance(dim, int) and dim > 0 and isinstance(count, int) and count >= 0):
            raise ValueError("bad header")
        if self.dimension is not None and dim != self.dimension:
            raise ValueError(f"dimension {dim}, expected {self.dimension}")
        if len(body) != count * (32 + 4 * dim):
            raise ValueError("size does not match its header")
        keys = [body[i * 32 : (i + 1) * 32].hex() for i in range(count)]
        if any(k[:SHARD_CHARS] != shard for k in keys):
            raise ValueError("holds keys of another shard")
        vectors = np.frombuffer(body, dtype="<f4", offset=count * 32).reshape(count, dim)
        if not np.isfinite(vectors).all():
            raise ValueError("NaN or infinite values")
        if count and np.abs(np.linalg.norm(vectors, axis=1) - 1.0).max() > NORM_TOLERANCE:
            raise ValueError("vectors that are not unit-norm")
        self.dimension = dim
        return dict(zip(keys, vectors.astype(np.float32), strict=True))

    def _quarantine(self, shard: str, name: str, reason: str) -> None:
        """Move a segment that failed a check aside (kept as evidence) and go on without it."""
        self.stats.rejected.append(reason)
        log.warning("embedding segment %s/%s/%s ignored: %s", self.objects.uri(self.root), shard, name, reason)
        try:
            src = self.objects.full_path(f"{self.root}/{shard}/{name}")
            dst = self.objects.full_path(f"{self.root}/{CORRUPT}/{shard}-{name}")
            if self.objects.is_local:
                self.objects.fs.makedirs(dst.rsplit("/", 1)[0], exist_ok=True)
            self.objects.fs.mv(src, dst)
        except (OSError, ValueError, InvalidInputError) as exc:  # e.g. a read-only store: still ignored
            log.warning("could not move the bad segment %s aside: %s", name, exc)

    # -- writing -----------------------------------------------------------------------------------

    def put_many(self, items: Mapping[str, np.ndarray]) -> int:
        """Store vectors by key (one new segment per shard touched); returns how many were written."""
        if not items:
            return 0
        by_shard: dict[str, dict[str, np.ndarray]] = {}
        for key, vector in items.items():
            if not _KEY.fullmatch(key):
                raise InvalidInputError(f"embedding store keys are sha256 hex digests, not {key[:80]!r}")
            by_shard.setdefault(key[:SHARD_CHARS], {})[key] = self._checked(vector)
        self._describe_backend()
        blobs: dict[str, bytes] = {}
        for shard, entries in by_shard.items():
            name, data = _encode(self.backend_id, entries)
            blobs[f"{self.root}/{shard}/{name}"] = data
        self._write_all(blobs)
        self.stats.written += len(items)
        return len(items)

    def _checked(self, vector: np.ndarray) -> np.ndarray:
        row = np.asarray(vector, dtype=np.float32).reshape(-1)
        if self.dimension is None:
            self.dimension = row.size
        if row.size != self.dimension or not np.isfinite(row).all():
            raise InvalidInputError(f"refusing to store a vector of length {row.size} with non-finite values or "
                                    f"the wrong dimension (expected {self.dimension})")  # fmt: skip
        if abs(float(np.linalg.norm(row)) - 1.0) > NORM_TOLERANCE:
            raise InvalidInputError("refusing to store a vector that is not unit-norm")
        return row

    def _write_all(self, blobs: Mapping[str, bytes]) -> None:
        if self.objects.is_local:
            for rel, data in blobs.items():
                self.objects.write_bytes(rel, data)  # temp name, fsync, rename
        else:  # one PUT per object (atomic), sent concurrently by s3fs
            self.objects.fs.pipe({self.objects.full_path(rel): data for rel, data in blobs.items()})

    def _describe_backend(self) -> None:
        rel = f"{self.root}/backend.json"
        if not self.objects.exists(rel):
            self.objects.write_json(rel, {"backend": self.backend_id, "dimension": self.dimension})

    def _compact(self, shard: str, entries: Mapping[str, np.ndarray], merged_from: list[str]) -> None:
        """One segment with every entry of `merged_from`, written before exactly those are deleted."""
        name, data = _encode(self.backend_id, dict(entries))
        self._write_all({f"{self.root}/{shard}/{name}": data})
        for old in merged_from:
            if old != name:  # an identical merge by another process may have produced the same name
                # Already gone when a concurrent compaction merged it too.
                with contextlib.suppress(OSError, NotFoundError):
                    self.objects.fs.rm_file(self.objects.full_path(f"{self.root}/{shard}/{old}"))
        self.stats.compacted += 1


def _encode(backend_id: str, entries: Mapping[str, np.ndarray]) -> tuple[str, bytes]:
    """(content name, bytes) of one segment; entries sorted by key so equal content gives equal bytes."""
    keys = sorted(entries)
    dim = int(np.asarray(entries[keys[0]]).size) if keys else 0
    header = json.dumps({"backend": backend_id, "count": len(keys), "dimension": dim}, sort_keys=True)
    matrix = np.stack([np.asarray(entries[k], dtype="<f4").reshape(-1) for k in keys]) if keys else b""
    data = MAGIC + header.encode("utf-8") + b"\n" + b"".join(bytes.fromhex(k) for k in keys) + bytes(matrix)
    return f"{hashlib.sha256(data).hexdigest()}.seg", data


def _blob(blobs: Mapping[str, bytes], path: str) -> bytes | None:
    """fsspec's batched `cat` keys results by path, with or without the protocol prefix."""
    for candidate in (path, path.lstrip("/"), f"/{path.lstrip('/')}"):
        if candidate in blobs and isinstance(blobs[candidate], bytes):
            return blobs[candidate]
    return None
