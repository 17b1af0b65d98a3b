"""Scoring throughput (pairs/s) with the embedding share of the time, for new and for unchanged outputs.

Pairs are real LLMDrift answers (GPT-3.5 March vs June on both files), embedded on the configured backend
(DRIFT_PIPELINE_EMBEDDING_BACKEND, `auto` by default, as `compare` and the Dagster assets do) without
the deployment's embedding store. Three passes over the same pairs:

1. new outputs: an empty embedding cache, every text reaches the model;
2. cache hit: the same pairs again (a re-run of the same day, or a resumed job);
3. unchanged: candidate == baseline (the exact-match shortcut, no embedding at all).

    .venv/bin/python benchmarks/bench_scoring.py --pairs 200
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from drift_pipeline.detection.embeddings import Embedder, backend
from drift_pipeline.detection.scoring import score_pairs

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "llmdrift"


def real_pairs(n: int) -> pd.DataFrame:
    frames = []
    for name in ("SENSITIVEQ_EVAL.csv", "PRIME_FULL_EVAL.csv"):
        raw = pd.read_csv(DATA / name)
        base = raw[raw["model"].str.endswith("gpt-3.5-turbo-0301")].set_index("id")
        cand = raw[raw["model"].str.endswith("gpt-3.5-turbo-0613")].set_index("id")
        ids = base.index.intersection(cand.index)
        frames.append(
            pd.DataFrame(
                {
                    "pair_id": [f"{name}:{i}" for i in ids],
                    "prompt": base.loc[ids, "query"].to_numpy(),
                    "baseline_text": base.loc[ids, "answer"].fillna("").to_numpy(),
                    "candidate_text": cand.loc[ids, "answer"].fillna("").to_numpy(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True).sample(n=n, random_state=0).reset_index(drop=True)


class TimedEmbedder(Embedder):
    """Counts the seconds spent in the model."""

    seconds = 0.0

    def _embed_missing(self, missing: dict[str, str], *, progress: bool) -> None:
        start = time.perf_counter()
        super()._embed_missing(missing, progress=progress)
        self.seconds += time.perf_counter() - start


def timed(pairs: pd.DataFrame, embedder: TimedEmbedder, label: str) -> None:
    embedder.seconds, embedded = 0.0, embedder.texts_embedded
    start = time.perf_counter()
    score_pairs(pairs, baseline="a", candidate="b", threshold=0.05, embedder=embedder)
    total = time.perf_counter() - start
    print(
        f"{label:<28} {len(pairs):>5} pairs {total:7.2f}s {len(pairs) / total:8.1f} pairs/s  "
        f"embedding {embedder.seconds:6.2f}s ({embedder.seconds / total:5.1%}), "
        f"{embedder.texts_embedded - embedded} texts embedded"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=200)
    args = parser.parse_args()
    pairs = real_pairs(args.pairs)
    chosen = backend()
    embedder = TimedEmbedder(backend=chosen, model=chosen.load())  # loading stays out of the figures
    print(f"embedding backend: {embedder.backend.id}")
    timed(pairs, embedder, "new outputs (cold cache)")
    timed(pairs, embedder, "same outputs again (cache)")
    unchanged = pairs.assign(candidate_text=pairs["baseline_text"])
    timed(unchanged, embedder, "unchanged (exact match)")


if __name__ == "__main__":
    main()
