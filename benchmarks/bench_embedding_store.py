"""The persistent embedding store: what a second run (another day, another process) saves, and its cost.

Texts are real LLMDrift answers (all models, both files; distinct texts only). Three passes:

1. cold: an empty store, every text reaches the encoder and is written to the store;
2. warm: a new Embedder (a new run) on the same store: every text comes from the store;
3. raw lookups: `EmbeddingStore.get_many` alone, as texts/s.

It also prints the store's size on disk (segments and bytes). `--backend local` embeds with the real
all-MiniLM-L6-v2; `--backend hash` uses a cheap deterministic encoder so the store's own overhead shows;
`--backend settings` uses the configured backend (e.g. a text-embeddings-inference server).

    .venv/bin/python benchmarks/bench_embedding_store.py --texts 500 --backend local
    .venv/bin/python benchmarks/bench_embedding_store.py --texts 5000 --backend hash [--storage-url s3://...]
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from drift_pipeline.detection import embeddings
from drift_pipeline.detection.embeddings import Backend, Embedder, text_key
from drift_pipeline.persistence.embedding_store import EmbeddingStore
from drift_pipeline.persistence.objects import ObjectStore

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "llmdrift"


def real_texts(n: int) -> list[str]:
    answers: list[str] = []
    for name in ("SENSITIVEQ_EVAL.csv", "PRIME_FULL_EVAL.csv"):
        answers.extend(pd.read_csv(DATA / name)["answer"].dropna().astype(str))
    distinct = sorted(set(answers))
    if n > len(distinct):
        raise SystemExit(f"only {len(distinct)} distinct answers available")
    rng = np.random.default_rng(0)
    return [distinct[i] for i in rng.choice(len(distinct), size=n, replace=False)]


class HashEncoder:
    """384-d unit vectors from a hash of the text: no model time, so the store's cost is what remains."""

    def encode(self, texts: Sequence[str], **_: Any) -> np.ndarray:
        rows = [np.frombuffer(hashlib.shake_256(t.encode()).digest(384 * 4), dtype=np.uint32) for t in texts]
        matrix = np.asarray(rows, dtype=np.float64) - 2**31
        return (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)


def backend(name: str) -> Backend:
    if name == "local":
        return embeddings.LOCAL
    if name == "settings":  # e.g. DRIFT_PIPELINE_EMBEDDING_BACKEND=openai-compatible and a TEI server
        return embeddings.backend()
    return Backend("bench/hash/dim=384", HashEncoder, 384)


def timed_run(objects: ObjectStore, chosen: Backend, texts: list[str]) -> tuple[float, Embedder]:
    embedder = Embedder(backend=chosen, store=EmbeddingStore(objects, chosen.id, chosen.dimension))
    _ = embedder.model  # model loading is not the store's cost
    started = time.perf_counter()
    embedder.embed(texts)
    return time.perf_counter() - started, embedder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=500)
    parser.add_argument("--backend", choices=("local", "hash", "settings"), default="hash")
    parser.add_argument("--storage-url", default=None, help="store root (default: a fresh temporary folder)")
    args = parser.parse_args()

    texts = real_texts(args.texts)
    chosen = backend(args.backend)
    with tempfile.TemporaryDirectory() as tmp:
        objects = ObjectStore(args.storage_url or tmp) if args.storage_url else ObjectStore(tmp, {})
        cold_s, cold = timed_run(objects, chosen, texts)
        warm_s, warm = timed_run(objects, chosen, texts)
        store = EmbeddingStore(objects, chosen.id, chosen.dimension)
        keys = [text_key(t, chosen.id) for t in texts]
        started = time.perf_counter()
        found = store.get_many(keys)
        lookup_s = time.perf_counter() - started
        files = [p for p in objects.fs.find(objects.full_path(store.root)) if p.endswith(".vec")]
        size = sum(objects.fs.size(p) for p in files)

    print(f"backend {chosen.id}, {len(texts)} distinct real answers, store {args.storage_url or 'local temp folder'}")
    print(f"cold run : {cold_s:7.2f} s, {cold.texts_embedded} embedded, {len(texts) / cold_s:8.1f} texts/s")
    print(f"warm run : {warm_s:7.2f} s, {warm.texts_embedded} embedded, {warm.texts_from_store} from the store, "
          f"{len(texts) / warm_s:8.1f} texts/s ({cold_s / warm_s:.1f}x)")  # fmt: skip
    print(f"lookups  : {len(found)} found, {len(texts) / lookup_s:8.1f} texts/s")
    print(f"store    : {len(files)} objects, {size / 1e6:.2f} MB ({size / len(texts):.0f} bytes per vector)")


if __name__ == "__main__":
    main()
