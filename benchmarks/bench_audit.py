"""Audit log anchoring: cost of appends, full verification, a signed checkpoint, and a tenant proof bundle.

Writes N entries spread over T tenants (plus platform entries) into a fresh SQLite store, then times
`audit.verify` (chain + tenant sub-chains + Merkle tree + every checkpoint, store and object copies),
`checkpoints.create`, `tenant_proof_bundle` for one tenant and its offline `verify_tenant_bundle`.
Run: .venv/bin/python benchmarks/bench_audit.py [--entries 20000] [--tenants 20] [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from drift_pipeline.persistence import audit, checkpoints
    from drift_pipeline.persistence.audit_proofs import tenant_proof_bundle, verify_tenant_bundle
    from drift_pipeline.persistence.db import Store
    from drift_pipeline.persistence.objects import ObjectStore

    folder = Path(tempfile.mkdtemp(prefix="bench-audit-"))
    store = Store.open(args.database_url or f"sqlite:///{folder / 'drift.db'}")
    objects, key = ObjectStore(str(folder / "objects"), {}), Ed25519PrivateKey.generate()

    start = time.perf_counter()
    for batch in range(0, args.entries, 100):  # as the product writes: a few entries per transaction
        with store.transaction() as session:
            for i in range(batch, min(batch + 100, args.entries)):
                tenant = None if i % (args.tenants + 1) == 0 else f"t{i % (args.tenants + 1):03d}"
                audit.append(
                    store,
                    session,
                    actor="bench",
                    action="bench.event",
                    subject=f"s{i}",
                    tenant_id=tenant,
                    after={"i": i, "note": "x" * 40},
                )
    append_s = time.perf_counter() - start
    print(f"append: {args.entries} entries in {append_s:.1f} s ({args.entries / append_s:,.0f}/s, 100 per transaction)")

    timed("checkpoint (verify + sign + store + object)", lambda: checkpoints.create(store, objects, key))
    result = timed("verify (chain, tenant chains, tree, 1 checkpoint)", lambda: audit.verify(store, objects))
    assert result.ok, result.problem
    bundle = timed(
        "tenant proof bundle (t001)", lambda: tenant_proof_bundle(store, "t001", objects=objects, signing_key=key)
    )
    pem = [checkpoints.public_pem(key.public_key())]
    problems = timed("offline bundle verification", lambda: verify_tenant_bundle(bundle, pem))
    assert problems == [], problems
    size = len(json.dumps(bundle))
    print(
        f"bundle: {len(bundle['entries'])} entries, {size / 1024:,.0f} KiB ({size / len(bundle['entries']):,.0f} B/entry)"
    )


def timed(label: str, fn):
    start = time.perf_counter()
    value = fn()
    print(f"{label}: {time.perf_counter() - start:.2f} s")
    return value


if __name__ == "__main__":
    main()
