"""Power of the distribution-level test next to the per-pair similarity test, on controlled mixtures.

Real LLMDrift answers (PRIME: GPT-3.5 March = the pinned model A, GPT-3.5 June = another source B). A replay
of a model's answer is one of `--replays` fixed perturbed copies of it (each sentence dropped with
probability 0.15, seeded): two replays of A on one prompt are exchangeable, as two samples of one model
are. Each simulated comparison draws n prompts; the baseline is a replay of A, the candidate another
replay of A, except that a share p of candidates are replays of B's answer to the same prompt. The
per-pair test is production's similarity test (Welch against a pinned-vs-pinned noise floor measured on
other prompts, `statistics.evaluate`); the distribution test is `distribution.paired_test` (Gaussian
kernel, median heuristic, within-pair swaps). Power = share of runs significant at alpha (p = 0 gives
the type-I error); for the per-pair test also the share reaching a `drift` verdict at the threshold.

    .venv/bin/python benchmarks/bench_distribution_power.py --runs 200 --sizes 50 100
"""

from __future__ import annotations

import argparse
import os
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd

from drift_pipeline.detection import distribution as dist
from drift_pipeline.detection.embeddings import Embedder, EmbeddingCache
from drift_pipeline.detection.statistics import DimensionSpec, NoiseFloor, evaluate

DATA = Path(
    os.environ.get("DRIFT_PIPELINE_LLMDRIFT_DIR")
    or Path(__file__).resolve().parents[2] / "shared" / "data" / "llmdrift"
)
SIMILARITY = DimensionSpec("similarity", "similarity", 1.0)
SENTENCE = re.compile(r"(?<=[.!?])\s+")


def replays(text: str, count: int, rng: np.random.Generator) -> list[str]:
    """`count` perturbed copies: each sentence dropped with probability 0.15 (at least one kept)."""
    sentences = [s for s in SENTENCE.split(text.strip()) if s] or [text]
    out = []
    for _ in range(count):
        keep = rng.random(len(sentences)) >= 0.15
        if not keep.any():
            keep[rng.integers(len(sentences))] = True
        out.append(" ".join(s for s, k in zip(sentences, keep, strict=True) if k))
    return out


def corpus(prompts: int, count: int, embedder: Embedder, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings [prompt, replay, dim] of A's and B's replays on the same prompts."""
    raw = pd.read_csv(DATA / "PRIME_FULL_EVAL.csv")
    a = raw[raw["model"].str.endswith("gpt-3.5-turbo-0301")].set_index("id")["answer"].fillna("").astype(str)
    b = raw[raw["model"].str.endswith("gpt-3.5-turbo-0613")].set_index("id")["answer"].fillna("").astype(str)
    ids = sorted(set(a.index) & set(b.index))[:prompts]
    rng = np.random.default_rng(seed)
    texts_a = [replays(a[i], count, rng) for i in ids]
    texts_b = [replays(b[i], count, rng) for i in ids]
    flat = [t for group in texts_a + texts_b for t in group]
    vectors = embedder.embed(flat, progress=True).astype(np.float64).reshape(2, len(ids), count, -1)
    return vectors[0], vectors[1]


def simulate(emb_a, emb_b, n, share, rng):
    """(baseline rows, candidate rows) of one comparison, and the pinned-vs-pinned noise floor pairs."""
    order = rng.permutation(len(emb_a))
    pick, floor_ids = order[:n], order[n : 2 * n]
    count = emb_a.shape[1]
    r1 = rng.integers(count, size=n)
    r2 = (r1 + rng.integers(1, count, size=n)) % count  # another replay of the same prompt
    base = emb_a[pick, r1]
    from_b = rng.random(n) < share
    cand = np.where(from_b[:, None], emb_b[pick, r2], emb_a[pick, r2])
    f1 = rng.integers(count, size=n)
    f2 = (f1 + rng.integers(1, count, size=n)) % count
    floor = np.einsum("ij,ij->i", emb_a[floor_ids, f1], emb_a[floor_ids, f2])
    return base, cand, floor


def per_pair(base, cand, floor, threshold, alpha):
    sims = np.clip(np.einsum("ij,ij->i", base, cand), -1, 1)
    table = pd.DataFrame(
        {"pair_id": np.arange(len(sims)).astype(str), "dimension": "similarity", "kind": "similarity",
         "baseline_value": 1.0, "candidate_value": sims}
    )  # fmt: skip
    noise = NoiseFloor(floors={"similarity": float(1 - floor.mean())}, similarities=floor.tolist(), n_pairs=len(floor))
    (result,), _ = evaluate(table, [SIMILARITY], threshold=threshold, alpha=alpha, noise_floor=noise)
    return (result.p_value or 1.0) < alpha, result.verdict == "drift"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 100])
    parser.add_argument("--shares", type=float, nargs="+", default=[0.0, 0.1, 0.2, 0.3, 0.5])
    parser.add_argument("--prompts", type=int, default=300, help="PRIME prompts in the pool")
    parser.add_argument("--replays", type=int, default=3)
    parser.add_argument("--permutations", type=int, default=500)
    parser.add_argument("--kernel", choices=["gaussian", "energy"], default="gaussian")
    parser.add_argument("--alpha", type=float, default=0.01)
    parser.add_argument("--threshold", type=float, default=0.05)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/drift-pipeline-bench-distribution.npz"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    embedder = Embedder(EmbeddingCache.load(args.cache))
    started = time.perf_counter()
    emb_a, emb_b = corpus(args.prompts, args.replays, embedder, args.seed)
    embedder.cache.save(args.cache)
    print(f"corpus: {len(emb_a)} prompts x {args.replays} replays x 2 sources, "
          f"{embedder.texts_embedded} texts embedded in {time.perf_counter() - started:.0f} s")  # fmt: skip
    print(f"alpha {args.alpha}, threshold {args.threshold}, {args.runs} runs per cell, "
          f"{args.permutations} permutations, kernel {args.kernel}\n")  # fmt: skip
    print(
        "| n | share p from B | per-pair similarity: significant | per-pair: drift verdict | distribution test: significant | distribution test s/run |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    rng = np.random.default_rng(args.seed + 1)
    for n in args.sizes:
        for share in args.shares:
            sig = drift = found = 0
            spent = 0.0
            for _ in range(args.runs):
                base, cand, floor = simulate(emb_a, emb_b, n, share, rng)
                s, d = per_pair(base, cand, floor, args.threshold, args.alpha)
                sig, drift = sig + s, drift + d
                t0 = time.perf_counter()
                test = dist.paired_test(base, cand, kernel=args.kernel, permutations=args.permutations,
                                        seed=int(rng.integers(1 << 31)))  # fmt: skip
                spent += time.perf_counter() - t0
                found += test.p_value < args.alpha
            r = args.runs
            print(f"| {n} | {share:.1f} | {sig / r:.1%} | {drift / r:.1%} | {found / r:.1%} | {spent / r:.3f} |")


if __name__ == "__main__":
    main()
