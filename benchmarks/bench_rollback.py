"""Rollback SLA: time from `rollback` returning until a Resolver in ANOTHER process serves the restored pin.

A child process resolves the agent in a tight loop (as the platform's request path would) and reports
every model change with its wall-clock time; the parent pins forward, rolls back, and measures.
Run: .venv/bin/python benchmarks/bench_rollback.py [--trials 20] [--poll 0.25] [--database-url URL]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import sys, time
from drift_pipeline.versioning.runtime import Resolver
from drift_pipeline.persistence.db import Store
resolver = Resolver(Store.open(sys.argv[1], upgrade=False), poll_interval=float(sys.argv[2]))
last = None
while True:
    model = resolver.resolve("acme", "support", "conversation-1").model_id
    if model != last:
        print(model, time.time(), flush=True)
        last = model
    time.sleep(0.0005)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--poll", type=float, nargs="+", default=[0.25, 0.05])
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()

    from drift_pipeline.migration.rollback import rollback
    from drift_pipeline.persistence.db import Store
    from drift_pipeline.versioning import manifests, registry, tenants

    url = args.database_url or f"sqlite:///{Path(tempfile.mkdtemp()) / 'drift.db'}"
    store = Store.open(url)
    for model in ("m-1", "m-2"):
        registry.add_version(store, "offline", model, actor="bench")
    tenants.add_tenant(store, "acme", actor="bench")
    manifests.pin(store, "acme", "support", "m-1", actor="bench")
    print(f"store {store.engine.dialect.name}; {args.trials} rollbacks per poll interval")
    print(f"{'poll_interval':>13} {'median ms':>10} {'p95 ms':>8} {'max ms':>8} {'rollback call ms':>17}")
    for poll in args.poll:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, url, str(poll)], stdout=subprocess.PIPE, text=True, bufsize=1
        )
        assert child.stdout is not None
        child.stdout.readline()  # first resolution seen
        lags, calls = [], []
        try:
            for _ in range(args.trials):
                manifests.pin(store, "acme", "support", "m-2", actor="bench")
                while not child.stdout.readline().startswith("m-2"):
                    pass
                t0 = time.time()
                result = rollback(store, "acme", "support", actor="bench")
                returned = time.time()
                assert result.changed, result.message
                model, seen = child.stdout.readline().split()
                assert model == "m-1"
                lags.append(max(0.0, float(seen) - returned) * 1000)
                calls.append((returned - t0) * 1000)
        finally:
            child.kill()
        lags.sort()
        p95 = lags[min(len(lags) - 1, int(0.95 * len(lags)))]
        print(
            f"{poll:>13} {statistics.median(lags):>10.0f} {p95:>8.0f} {lags[-1]:>8.0f} {statistics.median(calls):>17.0f}"
        )
    print("SLA target: < 1000 ms after the command returns (bounded by poll_interval + one store read)")


if __name__ == "__main__":
    main()
