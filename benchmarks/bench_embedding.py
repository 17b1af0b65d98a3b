"""Embedding backends against the fp32 reference: speed, load cost, similarity error and verdicts.

Backends are ``name:max_seq_length``: ``torch`` (sentence-transformers fp32, the reference, 256 only),
``torch-bf16`` (the same with bf16 weights, `detection/embedding_bf16.py`), ``openvino-bf16`` and
``openvino`` (the exported graph on OpenVINO, bf16 and fp32: `detection/embedding_openvino.py`), ``onnx``
(ONNX Runtime fp32) and ``onnx-int8`` (`detection/embedding_onnx.py`). For each backend it prints

- load: seconds and peak RSS of a fresh process that imports and loads it (the export is cached first);
- speed on real LLMDrift answers (the first ``--pairs`` differing pairs of each March-vs-June
  comparison): texts/s, tokens/s (tokens the model reads after truncation), wall and CPU seconds;
- error against ``torch:256``: mean, p99 and max of |cosine(backend) - cosine(reference)| per pair;
- with ``--verdicts``: `compare` on every LLMDrift comparison (each file, every pair of its four models,
  ``--verdict-ids`` prompts each; 0 = all) with that backend's embedder, and how many overall and
  per-dimension verdicts differ from the reference's.

    .venv/bin/python benchmarks/bench_embedding.py --pairs 100
    .venv/bin/python benchmarks/bench_embedding.py --pairs 400 --verdicts --verdict-ids 0   # full figures
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "llmdrift"
FILES = ("SENSITIVEQ_EVAL.csv", "PRIME_FULL_EVAL.csv")
MODELS = ("gpt-3.5-turbo-0301", "gpt-3.5-turbo-0613", "gpt-4-0314", "gpt-4-0613")
MARCH_JUNE = (("gpt-3.5-turbo-0301", "gpt-3.5-turbo-0613"), ("gpt-4-0314", "gpt-4-0613"))
REFERENCE = "torch:256"
DEFAULT_BACKENDS = (
    "torch:256", "torch-bf16:256", "openvino-bf16:256", "openvino:256", "onnx:256", "onnx-int8:256", "onnx:128",
)  # fmt: skip


def encoder(spec: str) -> Any:
    """An object with SentenceTransformer's `encode` for a backend spec (`torch` = the `local` backend)."""
    from drift_pipeline.detection.embeddings import load_encoder

    name, length = spec.split(":")
    return load_encoder("local" if name == "torch" else name, int(length))


def backend_spec(spec: str) -> str:
    """argparse type: `name:length` with a positive integer length."""
    name, _, length = spec.partition(":")
    if not name or not length.isdigit() or int(length) < 1:
        raise argparse.ArgumentTypeError(f"{spec!r} is not NAME:MAX_SEQ_LENGTH (e.g. onnx:256)")
    return spec


def child_load(spec: str) -> None:
    """Run in a fresh process: import, load and encode one text; print seconds and peak RSS as JSON."""
    start = time.perf_counter()
    model = encoder(spec)
    model.encode(["warm up"], batch_size=1, normalize_embeddings=True, convert_to_numpy=True)
    # VmHWM, not ru_maxrss: the latter keeps the (large) parent's peak across fork + exec.
    status = Path("/proc/self/status").read_text()
    rss = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) / 1024
    print(json.dumps({"seconds": time.perf_counter() - start, "rss_mib": rss}))


def load_cost(spec: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child-load", spec], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def answers(name: str) -> pd.DataFrame:
    raw = pd.read_csv(DATA / name)
    raw["version"] = raw["model"].str.split("/").str[-1]
    return raw


def speed_pairs(n: int) -> tuple[list[str], list[str]]:
    """The first `n` differing pairs of each March-vs-June comparison of both files."""
    left: list[str] = []
    right: list[str] = []
    for name in FILES:
        raw = answers(name)
        for base, cand in MARCH_JUNE:
            b = raw[raw["version"] == base].set_index("id")["answer"].fillna("").astype(str)
            c = raw[raw["version"] == cand].set_index("id")["answer"].fillna("").astype(str)
            ids = [i for i in b.index.intersection(c.index) if b[i] != c[i]][:n]
            left += [b[i] for i in ids]
            right += [c[i] for i in ids]
    return left, right


def tokens(texts: list[str], max_len: int) -> int:
    from tokenizers import Tokenizer

    from drift_pipeline.detection.embedding_minilm import model_dir

    tok = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_len)
    return sum(len(e.ids) for e in tok.encode_batch([t.strip() for t in texts]))


def encode_timed(spec: str, texts: list[str], batch_size: int) -> tuple[np.ndarray, float, float]:
    model = encoder(spec)
    model.encode(texts[:4], batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)  # warm
    order = np.argsort([len(t) for t in texts])  # as the Embedder does: length-sorted batches
    wall, cpu = time.perf_counter(), time.process_time()
    vectors = model.encode([texts[i] for i in order], batch_size=batch_size, normalize_embeddings=True)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    out = np.zeros_like(vectors, dtype=np.float32)
    out[order] = np.asarray(vectors, dtype=np.float32)
    return out, wall, cpu


def verdicts(spec: str, ids: int) -> dict[str, dict[str, str]]:
    """Overall and per-dimension verdicts of every comparison with this backend's embeddings."""
    from drift_pipeline.detection.compare import compare
    from drift_pipeline.detection.embeddings import Embedder, EmbeddingCache

    embedder = Embedder(EmbeddingCache(spec), model=encoder(spec))
    out: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in FILES:
            raw = answers(name)
            if ids:
                raw = raw[raw["id"].isin(sorted(raw["id"].unique())[:ids])]
            path = Path(tmp) / name
            raw.drop(columns="version").to_csv(path, index=False)
            for base, cand in itertools.combinations(MODELS, 2):
                report = compare(path, fmt="llmdrift", baseline=base, candidate=cand, embedder=embedder).report
                dims = {d["name"]: d["verdict"] for d in report["dimensions"] if d.get("p_value") is not None}
                distribution = str(report.get("distribution", {}).get("drift"))
                out[f"{name}:{base}->{cand}"] = {"overall": report["verdict"], "distribution": distribution, **dims}
    return out


def speed_table(specs: list[str], pairs: int, batch_size: int) -> None:
    left, right = speed_pairs(pairs)
    texts = left + right
    print(f"{len(left)} differing pairs ({len(texts)} texts), batch {batch_size}")
    print(
        f"{'backend':<16}{'load s':>7}{'RSS MiB':>8}{'texts/s':>9}{'tokens/s':>10}{'wall s':>8}{'cpu s':>7}"
        f"{'dsim mean':>10}{'p99':>8}{'max':>8}"
    )
    reference_sims = None
    for spec in specs:
        encoder(spec)  # export and cache before the clean-process load measurement
        load = load_cost(spec)
        vectors, wall, cpu = encode_timed(spec, texts, batch_size)
        sims = np.einsum("ij,ij->i", vectors[: len(left)], vectors[len(left) :])
        if reference_sims is None:
            reference_sims = sims
        delta = np.abs(sims - reference_sims)
        n_tokens = tokens(texts, int(spec.split(":")[1]))
        print(
            f"{spec:<16}{load['seconds']:7.2f}{load['rss_mib']:8.0f}{len(texts) / wall:9.1f}"
            f"{n_tokens / wall:10.0f}{wall:8.2f}{cpu:7.2f}{delta.mean():10.4f}"
            f"{np.quantile(delta, 0.99):8.4f}{delta.max():8.4f}",
            flush=True,
        )


def verdict_table(specs: list[str], ids: int) -> None:
    reference = verdicts(REFERENCE, ids)
    for spec in specs[1:]:
        got = verdicts(spec, ids)
        overall = [k for k in reference if got[k]["overall"] != reference[k]["overall"]]
        dims = [(k, d) for k in reference for d in reference[k] if got[k].get(d) != reference[k][d]]
        print(
            f"{spec:<16} verdicts differ: overall {len(overall)}/{len(reference)}, "
            f"dimensions {len(dims)}/{sum(len(v) for v in reference.values())} {dims[:5]}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100, help="differing pairs per March-vs-June comparison")
    parser.add_argument("--backends", nargs="+", type=backend_spec, default=list(DEFAULT_BACKENDS))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--verdicts", action="store_true", help="also compare verdicts on every comparison")
    parser.add_argument("--verdict-ids", type=int, default=100, help="prompts per file for --verdicts; 0 = all")
    parser.add_argument("--child-load", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_load:
        child_load(args.child_load)
        return
    specs = [REFERENCE] + [s for s in args.backends if s != REFERENCE]
    if args.pairs > 0:
        speed_table(specs, args.pairs, args.batch_size)
    if args.verdicts:
        verdict_table(specs, args.verdict_ids)


if __name__ == "__main__":
    main()
