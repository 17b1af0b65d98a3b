"""Replay throughput: against an OpenAI-compatible server with injected latency, and against the offline model.

    .venv/bin/python benchmarks/bench_replay.py --mode http [--latency-ms 200] [--concurrency 1 8 32 64] \
        [--waves 10] [--transports direct litellm] [--loop asyncio]
    .venv/bin/python benchmarks/bench_replay.py --mode offline [--n 16] [--max-tokens 32] [--batch 16]

`http`: a real aiohttp server in its own process (`drift_pipeline_tests/plugins/latency_server.py`)
answers every request after `--latency-ms` and refuses (429) above the largest concurrency. For each
transport and concurrency c the replay sends c x waves distinct requests; the bound is c / latency.
Printed: requests/s, % of the bound, the engine's overhead per request (the time a request spends in
the replay beyond the server's latency, p50/p95; on a busy machine it includes waiting for a core) and
the replay process's CPU ms per request (the server's CPU is not counted: it is another process), with the
rate one core could sustain at that cost (1000 / cpu ms). `offline`: prompts/s and generated tokens/s, batched vs
unbatched generation, cold vs cached. Runs in a throw-away DRIFT_PIPELINE_HOME (SQLite).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from typing import Any

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
    parser.add_argument("--mode", choices=("http", "offline", "all"), default="all")
    parser.add_argument("--latency-ms", type=float, default=200.0, help="the server's latency per request")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--waves", type=int, default=10, help="requests per level = concurrency x waves")
    parser.add_argument("--transports", nargs="+", choices=("direct", "litellm"), default=["direct", "litellm"])
    parser.add_argument(
        "--loop", choices=("default", "asyncio"), default="default",
        help="the replay's event loop: `default` (uvloop where installed, as replay runs) or plain asyncio",
    )  # fmt: skip
    parser.add_argument("--n", type=int, default=16, help="offline: number of distinct prompts")
    parser.add_argument("--max-tokens", type=int, default=32, help="offline: tokens per answer")
    parser.add_argument("--batch", type=int, default=16, help="offline: micro-batch size for the batched run")
    args = parser.parse_args()

    home = tempfile.mkdtemp(prefix="bench-replay-")
    os.environ["DRIFT_PIPELINE_HOME"] = home
    os.environ.pop("DRIFT_PIPELINE_DATABASE_URL", None)
    if args.mode in ("http", "all"):
        http_bench(args)
    if args.mode in ("offline", "all"):
        offline_bench(args)


def http_bench(args: argparse.Namespace) -> None:
    """Throughput vs concurrency against the latency server, per transport."""
    from drift_pipeline.detection.replay import ReplayTarget
    from drift_pipeline.persistence.db import Store
    from drift_pipeline_tests.plugins.latency_server import latency_server

    os.environ["BENCH_REPLAY_KEY"] = "sk-bench"
    store, top = Store.open(), max(args.concurrency)
    if args.loop == "asyncio":  # the comparison the uvloop figure rests on
        from drift_pipeline.detection import replay as replay_module

        replay_module.event_loop_factory = lambda: None
    from drift_pipeline.detection.replay import event_loop_factory

    print(f"event loop: {'uvloop' if event_loop_factory() else 'asyncio'}")
    print(
        f"server latency {args.latency_ms:.0f} ms, server limit {top} in flight, requests = concurrency x {args.waves}"
    )
    print(
        f"{'transport':<9} {'conc':>4} {'requests':>8} {'wall s':>7} {'req/s':>7} {'bound':>7} {'achieved':>8} "
        f"{'overhead p50 / p95 ms':>21} {'cpu ms/req':>10} {'1-core ceiling':>14} {'429s':>5}"
    )
    with latency_server(args.latency_ms, top) as server:
        for transport in args.transports:
            target = ReplayTarget(
                "bench-model", "openai", {"api_base": server.api_base, "api_key_env": "BENCH_REPLAY_KEY"}
            )
            level(store, server, target, transport, 8, 16)  # warm-up: imports, connections; not printed
            for c in args.concurrency:
                row = level(store, server, target, transport, c, c * args.waves)
                print(
                    f"{transport:<9} {c:>4} {row['n']:>8} {row['wall']:7.2f} {row['rps']:7.1f} "
                    f"{c / args.latency_ms * 1000:7.1f} {row['rps'] * args.latency_ms / 1000 / c:8.1%} "
                    f"{row['p50']:>10.1f} / {row['p95']:<8.1f} {row['cpu_ms']:10.2f} {1000 / row['cpu_ms']:10.0f} r/s {row['rejected']:>5}"
                    + (f"  errors {row['errors']}" if row["errors"] else "")
                )


def level(store: Any, server: Any, target: Any, transport: str, c: int, n: int) -> dict[str, Any]:
    """Replay `n` distinct requests at concurrency `c`: throughput, overhead beyond the server's latency, CPU."""
    import numpy as np

    from drift_pipeline.detection.replay import Decoding, replay
    from drift_pipeline_tests.plugins.replay import make_sample

    sample = make_sample([f"request {i} {uuid.uuid4()}" for i in range(n)])
    latency_ms = server.reset()["latency_ms"]
    wall, cpu = time.perf_counter(), time.process_time()
    df = replay(
        sample,
        [target],
        store=store,
        decoding=Decoding(),
        progress=False,
        concurrency={"openai": c},
        transport=transport,
    )
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    # latency_ms is measured around each attempt in the replay: what exceeds the server's own wait is ours.
    p50, p95 = np.percentile(df["latency_ms"].to_numpy(dtype=float) - latency_ms, [50, 95])
    return {
        "n": n,
        "wall": wall,
        "rps": n / wall,
        "p50": p50,
        "p95": p95,
        "cpu_ms": cpu / n * 1000,
        "rejected": server.stats()["rejected"],
        "errors": int((df["error"] != "").sum()),
    }


def offline_bench(args: argparse.Namespace) -> None:
    """Batched vs unbatched generation against the offline model, then a cached rerun."""
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
