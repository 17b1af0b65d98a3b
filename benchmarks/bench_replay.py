"""Replay throughput against the offline model: batched vs unbatched generation, cold vs cached replay.

Usage: .venv/bin/python benchmarks/bench_replay.py [--n 16] [--max-tokens 32] [--batch 16]
Prints prompts/s and generated tokens/s for each mode. Runs in a throw-away DRIFT_PIPELINE_HOME.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid

PROMPTS = [
    "Name three primary colors.",
    "What is the capital of France?",
    "Write a haiku about rain.",
    "Explain gravity in one sentence.",
    "Give me a JSON object with keys name and age for a fictional person.",
    "How do I reset my password?",
    "Summarise the plot of Romeo and Juliet in two sentences.",
    "List three tips for writing clean code.",
    "Translate 'good morning' into Spanish.",
    "What is 17 times 3?",
    "Suggest a name for a coffee shop.",
    "Why is the sky blue?",
    "Write a polite email declining a meeting.",
    "What are the benefits of unit tests?",
    "Describe a cat in five words.",
    "How many days are in a leap year?",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=16, help="number of distinct prompts")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--batch", type=int, default=16, help="micro-batch size for the batched run")
    args = parser.parse_args()

    home = tempfile.mkdtemp(prefix="bench-replay-")
    os.environ["DRIFT_PIPELINE_HOME"] = home
    os.environ.pop("DRIFT_PIPELINE_DATABASE_URL", None)

    import pandas as pd

    from drift_pipeline.detection.offline.generation import generation_threads
    from drift_pipeline.detection.offline.model import load_base
    from drift_pipeline.detection.offline.provider import register_offline_provider
    from drift_pipeline.detection.offline.variants import MODEL_ID
    from drift_pipeline.detection.replay import Decoding, ReplayTarget, replay
    from drift_pipeline.persistence.db import Store
    from drift_pipeline.traffic.records import TrafficRecord

    started = time.perf_counter()
    load_base()
    load_s = time.perf_counter() - started
    handler = register_offline_provider()
    store = Store.open()
    prompts = [PROMPTS[i % len(PROMPTS)] + ("" if i < len(PROMPTS) else f" (#{i})") for i in range(args.n)]
    sample = pd.DataFrame(
        [
            TrafficRecord(
                "bench", "agent", f"2026-11-26T00:00:{i:02d}+00:00", json.dumps([{"role": "user", "content": p}])
            ).to_row()
            for i, p in enumerate(prompts)
        ]
    )
    target = ReplayTarget(MODEL_ID, "offline")
    decoding = Decoding(temperature=0, seed=0, max_tokens=args.max_tokens)

    def run(label: str, batch: int, namespace: str) -> None:
        handler.max_batch = batch
        t = time.perf_counter()
        df = replay(
            sample,
            [target],
            store=store,
            decoding=decoding,
            concurrency={"offline": max(batch, 1)},
            cache_namespace=namespace,
            progress=False,
        )
        wall = time.perf_counter() - t
        tokens = int(df["completion_tokens"].sum())
        hits = int(df["cache_hit"].sum())
        print(
            f"{label:<22} {len(df):>4} prompts  {wall:7.2f} s  {len(df) / wall:8.2f} prompts/s  "
            f"{tokens / wall:8.1f} tokens/s  cache hits {hits}/{len(df)}  errors {int((df['error'] != '').sum())}"
        )

    print(
        f"model load (process start): {load_s:.1f} s; n={args.n}, max_tokens={args.max_tokens}, generation threads:",
        end=" ",
    )
    print(generation_threads())
    run("unbatched (batch=1)", 1, f"u-{uuid.uuid4()}")
    batched_ns = f"b-{uuid.uuid4()}"
    run(f"batched (batch={args.batch})", args.batch, batched_ns)
    run("cached rerun", args.batch, batched_ns)


if __name__ == "__main__":
    main()
