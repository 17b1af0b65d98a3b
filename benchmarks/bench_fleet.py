"""The nightly fleet: N tenants x P sampled pairs, one run process per tenant (before) vs one per shard (after).

Seeds N tenants, each with one agent whose baseline holds P prompts answered by a scripted provider (a local
OpenAI-compatible HTTP server on 127.0.0.1), then answers the night's replay with `--changed` of the outputs
changed (10 % by default: 90 % unchanged). Each night is real Dagster runs of `replay_job` (replay, scoring,
report, checks) in child processes on a SQLite instance:

- before: one process per tenant partition (what one run per tenant costs: start, imports, model loads);
- after: one process per shard of `--shard` consecutive tenant partitions (one ranged run per shard).

Both nights use their own day (so neither reuses the other's replay cache). It prints wall time and
CPU-seconds (the child processes' user + system time) per tenant, and each child's fixed cost: seconds
from process start to the definitions imported and the embedding model loaded, vs the run itself.

    .venv/bin/python benchmarks/bench_fleet.py [--tenants 1000] [--pairs 200] [--shard 50] [--changed 0.1]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MODEL = "scripted-1"
AGENT = "support"


class ScriptedProvider:
    """An OpenAI-compatible chat endpoint: the same answer per prompt, except `changed` of them at night."""

    def __init__(self) -> None:
        self.night = False
        self.changed = 0.1
        self.calls = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def answer(self, prompt: str) -> str:
        digest = int(hashlib.sha256(prompt.encode()).hexdigest()[:8], 16)
        if self.night and (digest % 1000) < self.changed * 1000:
            return f"Sorry, I cannot help with that request about {prompt[-24:]}."
        return f"Certainly: here is the answer to {prompt[-24:]}, in one sentence."

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                outer.calls += 1
                prompt = str(body.get("messages", [{}])[-1].get("content", ""))
                text = outer.answer(prompt)
                data = json.dumps(
                    {
                        "id": "chatcmpl-bench",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body.get("model", MODEL),
                        "system_fingerprint": "fp_bench",
                        "choices": [
                            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                        ],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


def samples(tenant_id: str, pairs: int) -> Any:
    """`pairs` distinct sampled records of one tenant agent, over four strata."""
    import pandas as pd

    from drift_pipeline.traffic.records import TrafficRecord

    rows = [
        TrafficRecord(
            tenant_id=tenant_id,
            agent_id=AGENT,
            timestamp="2026-01-01T00:00:00+00:00",
            messages=json.dumps([{"role": "user", "content": f"{tenant_id} asks question {k} about order {k * 7}"}]),
            workflow_type=("refund", "shipping")[k % 2],
            agent_step=("triage", "answer")[(k // 2) % 2],
            pinned_model_id=MODEL,
        ).to_row()
        for k in range(pairs)
    ]
    return pd.DataFrame(rows)


def seed(n: int, pairs: int, api_base: str) -> list[str]:
    """Tenants, manifests and baselines (setup: not part of the nightly figures)."""
    from drift_pipeline.detection import baselines, embeddings
    from drift_pipeline.persistence.db import Store
    from drift_pipeline.persistence.objects import ObjectStore
    from drift_pipeline.versioning import manifests, registry, tenants

    store, objects = Store.open(), ObjectStore.from_settings()
    registry.add_version(store, "openai", MODEL, actor="bench", litellm_params={"api_base": api_base})
    ids = [f"tenant-{i:05d}" for i in range(n)]
    embedder = embeddings.shared()
    for i, tenant_id in enumerate(ids):
        tenants.add_tenant(store, tenant_id, actor="bench")
        manifest = manifests.pin(store, tenant_id, AGENT, MODEL, actor="bench")
        baselines.build_baseline(
            store, objects, manifest, samples(tenant_id, pairs), max_prompts=pairs, embedder=embedder, actor="bench"
        )
        print(f"\rseeded {i + 1}/{n} tenants", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    store.dispose()
    return ids


def child(env: dict[str, str], tags: dict[str, str], partition: str | None) -> dict[str, Any]:
    """One run in a fresh process: its wall time, CPU-seconds and the phases it reports."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    args = [sys.executable, __file__, "--worker", json.dumps({"tags": tags, "partition": partition})]
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"worker failed ({done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
    phases = json.loads(done.stdout.strip().splitlines()[-1])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, **phases}


def worker(spec: str) -> None:
    """Child process: import the code location, load the embedding model, run `replay_job` once."""
    started = time.perf_counter()
    import dagster as dg

    from drift_pipeline.definitions import defs
    from drift_pipeline.detection import embeddings

    imported = time.perf_counter()
    embeddings.load_model()
    loaded = time.perf_counter()
    args = json.loads(spec)
    result = defs.resolve_job_def("replay_job").execute_in_process(
        instance=dg.DagsterInstance.get(),
        partition_key=args["partition"],
        tags=args["tags"],
        raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
    )
    ran = time.perf_counter()
    evaluations = result.get_asset_check_evaluations()
    print(
        json.dumps(
            {
                "imports": imported - started,
                "model_load": loaded - imported,
                "run": ran - loaded,
                "materialized": len(result.asset_materializations_for_node("shadow_replays")),
                "checks": len(evaluations),
                "checks_failed": sum(not e.passed for e in evaluations),
            }
        )
    )


def night(label: str, env: dict[str, str], requests: list[tuple[str | None, dict[str, str]]], n: int) -> dict:
    runs = []
    start = time.perf_counter()
    for i, (partition, tags) in enumerate(requests):
        runs.append(child(env, tags, partition))
        print(f"\r{label}: run {i + 1}/{len(requests)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    wall = time.perf_counter() - start
    total = {k: sum(r[k] for r in runs) for k in ("cpu", "imports", "model_load", "run", "materialized", "checks")}
    return {"label": label, "runs": len(runs), "wall": wall, "n": n, **total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--shard", type=int, default=50, help="tenants per run in the sharded night")
    parser.add_argument("--changed", type=float, default=0.1, help="share of outputs that change at night")
    parser.add_argument("--mode", choices=("both", "before", "after"), default="both")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
        return
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        env = {
            **os.environ,
            "DRIFT_PIPELINE_HOME": f"{tmp}/home",
            "DAGSTER_HOME": f"{tmp}/dagster",
            "OPENAI_API_KEY": "sk-bench-not-a-secret",
            "HF_HUB_OFFLINE": "1",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        }
        os.makedirs(env["DAGSTER_HOME"])
        shutil.copy(ROOT / "dagster.yaml", Path(env["DAGSTER_HOME"]) / "dagster.yaml")
        os.environ.update(env)
        report(run_nights(args, env), args)


def run_nights(args: argparse.Namespace, env: dict[str, str]) -> list[dict]:
    import dagster as dg

    from drift_pipeline.defs import partitions
    from drift_pipeline.defs.runs import REASON_TAG
    from drift_pipeline.detection import shards

    provider = ScriptedProvider()
    provider.changed = args.changed
    started = time.perf_counter()
    ids = seed(args.tenants, args.pairs, provider.api_base)
    print(f"setup: {time.perf_counter() - started:.0f} s for {len(ids)} baselines", file=sys.stderr)
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions(partitions.TENANTS, ids)
    provider.night = True
    today = datetime.now(UTC).date()
    nights = []
    if args.mode in ("both", "before"):
        day = (today - timedelta(days=2)).isoformat()
        per_tenant = [(partitions.key(t), {REASON_TAG: "nightly", **partitions.day_tags(day)}) for t in ids]
        nights.append(night("before: a run per tenant", env, per_tenant, len(ids)))
    if args.mode in ("both", "after"):
        day = (today - timedelta(days=1)).isoformat()
        per_shard: list[tuple[str | None, dict[str, str]]] = [
            (None, {REASON_TAG: "nightly", **partitions.shard_tags(s.first, s.last, day)})
            for s in shards.plan(ids, args.shard)
        ]
        nights.append(night(f"after: a run per {args.shard} tenants", env, per_shard, len(ids)))
    provider.server.shutdown()
    return nights


def report(nights: list[dict], args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Nightly fleet: {args.tenants} tenants x {args.pairs} pairs, {1 - args.changed:.0%} unchanged")
    for column in ("night", "runs", "wall s/tenant", "CPU s/tenant", "fixed s/run", "run s/run", "checks"):
        table.add_column(column, justify="left" if column == "night" else "right")
    for n in nights:
        fixed = (n["imports"] + n["model_load"]) / n["runs"]
        table.add_row(
            n["label"],
            str(n["runs"]),
            f"{n['wall'] / n['n']:.2f}",
            f"{n['cpu'] / n['n']:.2f}",
            f"{fixed:.1f}",
            f"{n['run'] / n['runs']:.1f}",
            str(n["checks"]),
        )
    Console().print(table)
    for n in nights:
        hours = n["wall"] / n["n"] * 1000 / 3600
        print(
            f"{n['label']}: extrapolated to 1,000 tenants at this per-tenant rate: {hours:.1f} h wall (measured on {n['n']})"
        )


if __name__ == "__main__":
    main()
