"""Cost per call of `Resolver.resolve` on the request path (cache hit), and of a cache miss.

Run: .venv/bin/python benchmarks/bench_resolve.py [--calls 200000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from drift_pipeline.persistence.db import Store
from drift_pipeline.versioning import manifests, registry
from drift_pipeline.versioning.runtime import Resolver
from drift_pipeline.versioning.tenants import add_tenant, list_tenants


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
    store = Store.open(url)
    if not registry.list_versions(store):
        registry.add_version(store, "openai", "gpt-4o-2024-08-06", actor="bench")
    tenants = [f"t{i:03d}" for i in range(100)]
    known = {t.tenant_id for t in list_tenants(store)}
    for t in tenants:
        if t not in known:
            add_tenant(store, t, actor="bench")
            manifests.pin(store, t, "support", "gpt-4o-2024-08-06", actor="bench")

    resolver = Resolver(store, poll_interval=0.25)
    for t in tenants:
        resolver.resolve(t, "support")  # warm
    start = time.perf_counter()
    for i in range(args.calls):
        resolver.resolve(tenants[i % 100], "support")
    hit = (time.perf_counter() - start) / args.calls

    misses = 300
    start = time.perf_counter()
    for i in range(misses):
        resolver.invalidate()
        resolver.resolve(tenants[i % 100], "support")
    miss = (time.perf_counter() - start) / misses

    print(f"store: {store.engine.dialect.name}")
    print(
        f"resolve, cache hit : {hit * 1e6:8.2f} us/call  ({1 / hit:,.0f} calls/s, includes the change-counter poll every 0.25 s)"
    )
    print(f"resolve, cache miss: {miss * 1e3:8.2f} ms/call  (two indexed reads)")


if __name__ == "__main__":
    main()
