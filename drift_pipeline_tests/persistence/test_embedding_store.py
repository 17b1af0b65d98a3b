"""The content-addressed embedding store, on a local folder and on S3 (moto's server): round trips,
concurrent writers, tampered and forged objects, privacy, and the Embedder using it."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from drift_pipeline.config import Settings
from drift_pipeline.detection import embeddings
from drift_pipeline.detection.embeddings import Backend, Embedder, text_key
from drift_pipeline.errors import InvalidInputError
from drift_pipeline.persistence.embedding_store import CORRUPT, EmbeddingStore, encode
from drift_pipeline.persistence.objects import ObjectStore

DIM = 16
BACKEND = "test/hash/dim=16"


def vectors(keys: Sequence[str], seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for key in keys:
        v = rng.normal(size=DIM).astype(np.float32)
        out[key] = v / np.linalg.norm(v)
    return out


def keys(n: int, tag: str = "") -> list[str]:
    return [hashlib.sha256(f"{tag}{i}".encode()).hexdigest() for i in range(n)]


def stored(objects: ObjectStore, store: EmbeddingStore) -> list[str]:
    base = objects.full_path(store.root)
    return sorted(p for p in objects.fs.find(base) if p.endswith(".vec") and f"/{CORRUPT}/" not in p)


def test_round_trip_across_instances(objects: ObjectStore) -> None:
    written = vectors(keys(100))
    EmbeddingStore(objects, BACKEND, DIM).put_many(written)
    reader = EmbeddingStore(objects, BACKEND, DIM)  # another run, another process: only the files are shared
    wanted = [*keys(100)[:50], *keys(5, "never-stored")]
    found = reader.get_many(wanted)
    assert set(found) == set(keys(100)[:50])
    for key, vector in found.items():
        np.testing.assert_array_equal(vector, written[key])
    assert reader.stats.rejected == []
    assert objects.read_json(f"{reader.root}/backend.json") == {"backend": BACKEND, "dimension": DIM}


def test_concurrent_writers_lose_nothing(objects: ObjectStore) -> None:
    """Eight writers flush overlapping and disjoint keys into the same shards at once."""
    shared_keys = keys(16, "shared")
    batches = [{**vectors(shared_keys), **vectors(keys(16, f"w{w}"), seed=w + 1)} for w in range(8)]
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def write(batch: dict[str, np.ndarray]) -> None:
        try:
            start.wait()
            EmbeddingStore(objects, BACKEND, DIM).put_many(batch)
        except BaseException as exc:  # reported below: a thread's exception would otherwise vanish
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    every = {k: v for b in batches for k, v in b.items()}
    found = EmbeddingStore(objects, BACKEND, DIM).get_many(every)
    assert set(found) == set(every)
    for key, vector in found.items():
        np.testing.assert_array_equal(vector, every[key])


def test_a_tampered_object_is_ignored_and_moved_aside(objects: ObjectStore) -> None:
    store = EmbeddingStore(objects, BACKEND, DIM)
    key = keys(1)[0]
    store.put_many(vectors([key]))
    [path] = stored(objects, store)
    flipped = bytearray(objects.fs.cat_file(path))
    flipped[-40] ^= 0x01  # one bit of one float: still finite, still about unit norm
    objects.fs.pipe_file(path, bytes(flipped))

    reader = EmbeddingStore(objects, BACKEND, DIM)
    assert reader.get_many([key]) == {}
    assert reader.stats.rejected == ["checksum mismatch (torn or altered)"]
    assert stored(objects, store) == []
    assert any(f"/{CORRUPT}/" in p for p in objects.fs.find(objects.full_path(store.root)))


@pytest.mark.parametrize(
    ("backend", "vector", "reason"),
    [
        ("another/backend", None, "written for another backend"),
        (BACKEND, np.full(DIM, np.nan, np.float32), "NaN or infinite values"),
        (BACKEND, np.full(DIM, 1.0, np.float32), "not unit-norm"),
        (BACKEND, np.eye(1, 8, dtype=np.float32)[0], "dimension 8, expected 16"),
    ],
)
def test_forged_objects_with_a_valid_checksum_are_refused(
    objects: ObjectStore, backend: str, vector: np.ndarray | None, reason: str
) -> None:
    """An insider who recomputes the checksum still cannot slip in foreign, NaN or malformed vectors."""
    key = keys(1)[0]
    store = EmbeddingStore(objects, BACKEND, DIM)
    objects.write_bytes(store.rel(key), encode(backend, key, vector if vector is not None else vectors([key])[key]))
    assert store.get_many([key]) == {}
    assert reason in store.stats.rejected[0]


def test_a_vector_copied_under_another_key_is_refused(objects: ObjectStore) -> None:
    """Swapping two texts' vectors (to hide a change) needs rewriting the header: it names its own key."""
    first, second = keys(2)
    store = EmbeddingStore(objects, BACKEND, DIM)
    store.put_many(vectors([first]))
    objects.write_bytes(store.rel(second), objects.read_bytes(store.rel(first)))
    assert set(store.get_many([first, second])) == {first}
    assert store.stats.rejected == ["written for another key"]


@pytest.mark.parametrize(
    ("vector", "message"),
    [
        (np.full(DIM, np.nan, np.float32), "non-finite"),
        (np.ones(DIM, np.float32), "not unit-norm"),
        (np.ones(3, np.float32) / np.sqrt(3), "wrong dimension"),
    ],
)
def test_bad_vectors_are_never_stored(local_objects: ObjectStore, vector: np.ndarray, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        EmbeddingStore(local_objects, BACKEND, DIM).put_many({keys(1)[0]: vector})
    with pytest.raises(InvalidInputError, match="sha256 hex digests"):
        EmbeddingStore(local_objects, BACKEND, DIM).put_many({"../../etc/passwd": vectors(["x"])["x"]})


class CountingEncoder:
    """A deterministic encoder that counts what it was asked to embed."""

    def __init__(self, salt: str) -> None:
        self.salt = salt
        self.seen: list[str] = []

    def encode(self, texts: Sequence[str], **_: Any) -> np.ndarray:
        self.seen.extend(texts)
        rows = []
        for text in texts:
            seed = int(hashlib.sha256((self.salt + text).encode()).hexdigest()[:8], 16)
            v = np.random.default_rng(seed).normal(size=DIM)
            rows.append(v / np.linalg.norm(v))
        return np.asarray(rows, dtype=np.float32)


def _embedder(objects: ObjectStore, backend_id: str, encoder: CountingEncoder) -> Embedder:
    backend = Backend(backend_id, lambda: encoder, DIM)
    return Embedder(backend=backend, store=EmbeddingStore(objects, backend_id, DIM), batch_size=4)


def test_identical_texts_are_embedded_once_per_deployment_and_never_stored_as_text(objects: ObjectStore) -> None:
    texts = [f"tenant secret answer number {i}" for i in range(10)]
    first = CountingEncoder("a")
    baseline_run = _embedder(objects, BACKEND, first).embed(texts)
    second = CountingEncoder("a")
    compare_run = _embedder(objects, BACKEND, second).embed([*texts[:5], "one new text"])
    assert sorted(first.seen) == sorted(texts) and second.seen == ["one new text"]
    np.testing.assert_array_equal(compare_run[:5], baseline_run[:5])

    stored = b"".join(objects.fs.cat_file(p) for p in objects.fs.find(objects.full_path("embeddings")))
    assert all(t.encode() not in stored for t in texts)  # keys and vectors only


def test_switching_backend_never_returns_another_backends_vector(objects: ObjectStore, tmp_path: Any) -> None:
    """Same texts, same store root, same cache file path: backend B always gets B's own vectors."""
    texts = ["refund sent", "order shipped", "cannot help"]
    a, b = CountingEncoder("A"), CountingEncoder("B")
    from_a = _embedder(objects, "backend-a/model/dim=16", a).embed(texts)
    embedder_b = _embedder(objects, "backend-b/model/dim=16", b)
    from_b = embedder_b.embed(texts)
    assert sorted(b.seen) == sorted(texts) and embedder_b.texts_from_store == 0
    np.testing.assert_allclose(from_b, CountingEncoder("B").encode(texts), atol=1e-6)
    assert not np.allclose(from_a, from_b)
    assert text_key("x", "backend-a/model/dim=16") != text_key("x", "backend-b/model/dim=16")

    cache_file = tmp_path / "cache.npz"
    embedder_b.cache.save(cache_file)
    with pytest.raises(InvalidInputError, match="built with backend-b/model/dim=16, not backend-a"):
        embeddings.EmbeddingCache.load(cache_file, "backend-a/model/dim=16")


def test_an_encoder_normalising_in_low_precision_is_stored_as_unit_vectors(objects: ObjectStore) -> None:
    """bf16 normalises to ~1e-3 of unit length: the embedder re-normalises in float32 before storing."""

    class LowPrecision(CountingEncoder):
        def encode(self, texts: Sequence[str], **kwargs: Any) -> np.ndarray:
            return (super().encode(texts, **kwargs) * 1.004).astype(np.float16)

    texts = ["refund sent", "order shipped"]
    vectors = _embedder(objects, BACKEND, LowPrecision("a")).embed(texts)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    again = _embedder(objects, BACKEND, CountingEncoder("unused"))
    np.testing.assert_array_equal(again.embed(texts), vectors)
    assert again.texts_from_store == 2


def test_a_corrupt_object_is_embedded_again(local_objects: ObjectStore) -> None:
    text = "the refund was sent"
    _embedder(local_objects, BACKEND, CountingEncoder("a")).embed([text])
    [path] = [p for p in local_objects.fs.find(local_objects.full_path("embeddings")) if p.endswith(".vec")]
    local_objects.fs.pipe_file(path, b"DPVEC1\ngarbage")
    again = CountingEncoder("a")
    vector = _embedder(local_objects, BACKEND, again).embed([text])
    assert again.seen == [text]
    np.testing.assert_allclose(vector, CountingEncoder("a").encode([text]), atol=1e-6)


def test_the_store_follows_the_settings(home: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFT_PIPELINE_EMBEDDING_STORE", "true")
    embedder = embeddings.from_settings()
    assert embedder.store is not None and embedder.store.objects.url == str(home / "data")
    assert embeddings.shared().store is not None
    monkeypatch.setenv("DRIFT_PIPELINE_EMBEDDING_STORE", "false")
    assert embeddings.from_settings().store is None and embeddings.shared().store is None
    assert Settings.from_env().embedding_store is False
