"""Per-tenant audit proofs: a bundle a tenant verifies offline, with no database and no other tenant's data.

The bundle holds the tenant's entries, an RFC 9162 inclusion proof of each against one signed checkpoint,
that checkpoint and the signing public key. Other tenants appear only as hashes (proof nodes and chain
links). The tenant's entries carry their own sub-chain (`tenant_seq`, `tenant_prev_hash`), so an entry
left out of the bundle, or moved, shows as a gap. Verification trusts only the public keys the tenant
passes in, never the copy inside the bundle.

Public API (used by the evidence bundle): `tenant_proof_bundle`, `verify_tenant_bundle`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from drift_pipeline.errors import IntegrityError, InvalidInputError, NotFoundError
from drift_pipeline.persistence import audit, checkpoints, merkle
from drift_pipeline.persistence.checkpoints import Checkpoint
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.objects import ObjectStore

BUNDLE_FORMAT = "drift-pipeline/audit-proofs/1"

__all__ = ["BUNDLE_FORMAT", "read_bundle", "tenant_proof_bundle", "verify_tenant_bundle", "write_bundle"]


def tenant_proof_bundle(
    store: Store,
    tenant_id: str,
    *,
    objects: ObjectStore | None = None,
    signing_key: Ed25519PrivateKey | None = None,
) -> dict[str, Any]:
    """The JSON-serialisable bundle `audit export --tenant T --proofs` writes.

    Proofs are against the newest checkpoint when it covers the whole log, else against a new one (which
    is refused when the log does not verify). Object storage and signing key default to the settings."""
    objects = objects or ObjectStore.from_settings()
    cp = _covering_checkpoint(store, objects, signing_key)
    rows = audit.all_rows(store, upto=cp.tree_size)
    tree = merkle.MerkleTree([audit.row_leaf(r) for r in rows])
    if tree.root().hex() != cp.root_hash:  # a checkpoint we are about to hand out must match the log
        raise IntegrityError("the newest audit checkpoint does not match the log: run `drift-pipeline audit verify`")
    mine = [r for r in rows if r["tenant_id"] == tenant_id]
    if not mine:
        raise NotFoundError(f"no audit entries for tenant {tenant_id!r}")
    return {
        "format": BUNDLE_FORMAT,
        "tenant_id": tenant_id,
        "generated_at": audit.utcnow().isoformat(),
        "checkpoint": cp.to_dict(),
        "public_keys": {cp.key_id: checkpoints.keyring(store, objects)[cp.key_id].decode("ascii")},
        "entries": [
            {
                **row,
                "leaf_index": row["seq"] - 1,
                "inclusion_proof": [h.hex() for h in tree.inclusion_proof(row["seq"] - 1)],
            }
            for row in mine
        ],
    }


def _covering_checkpoint(store: Store, objects: ObjectStore, signing_key: Ed25519PrivateKey | None) -> Checkpoint:
    newest = checkpoints.latest(store)
    if newest is not None and newest.tree_size == len(audit.all_rows(store)) and audit.verify(store, objects).ok:
        return newest
    return checkpoints.create(store, objects, signing_key)


def verify_tenant_bundle(bundle: dict[str, Any], public_keys_pem: list[bytes]) -> list[str]:
    """Every problem with `bundle` under the given public keys (empty = valid), first problem first."""
    try:
        keys = checkpoints.load_public_keys(public_keys_pem)
    except InvalidInputError as exc:
        return [str(exc)]
    if not keys:
        return ["no public key given: the checkpoint's signature cannot be checked"]
    try:
        return _bundle_problems(bundle, keys)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        return [f"the bundle is malformed: {type(exc).__name__}: {exc}"]


def _bundle_problems(bundle: dict[str, Any], keys: dict[str, Any]) -> list[str]:
    if bundle.get("format") != BUNDLE_FORMAT:
        return [f"not an audit proof bundle (format {bundle.get('format')!r}, expected {BUNDLE_FORMAT!r})"]
    cp = Checkpoint.from_dict(bundle["checkpoint"])
    problems = []
    signature = checkpoints.signature_problem(cp, keys)
    if signature:
        problems.append(f"the checkpoint {signature}")
    root, tenant = bytes.fromhex(cp.root_hash), bundle["tenant_id"]
    entries = sorted(bundle["entries"], key=lambda e: int(e["seq"]))
    if not entries:
        problems.append("the bundle holds no entries")
    position, prev = 0, audit.GENESIS
    for entry in entries:
        where = f"entry {entry['seq']}"
        position += 1
        if entry["tenant_id"] != tenant:
            problems.append(f"{where} belongs to tenant {entry['tenant_id']!r}, not {tenant!r}")
        if entry["hash"] != audit.row_hash(entry):
            problems.append(f"{where} was edited: its content does not match its hash")
        proof = [bytes.fromhex(h) for h in entry["inclusion_proof"]]
        if entry["leaf_index"] != entry["seq"] - 1 or not merkle.verify_inclusion(
            entry["leaf_index"], cp.tree_size, audit.row_leaf(entry), proof, root
        ):
            problems.append(f"{where} is not in the signed log (its inclusion proof fails)")
        if entry.get("tenant_seq") is not None:
            if entry["tenant_seq"] > position:
                missing = (
                    f"{position}" if entry["tenant_seq"] == position + 1 else f"{position}..{entry['tenant_seq'] - 1}"
                )
                problems.append(f"{where} is tenant entry {entry['tenant_seq']}: tenant entry {missing} was omitted")
            elif (entry["tenant_seq"], entry["tenant_prev_hash"]) != (position, prev):
                problems.append(
                    f"{where} does not follow the tenant's previous entry (omitted, duplicated or reordered)"
                )
            position = max(position, int(entry["tenant_seq"]))
        prev = entry["hash"]
    return problems


def write_bundle(bundle: dict[str, Any], output: Path) -> None:
    """Write the bundle as JSON, atomically (never a partial file under `output`)."""
    data = json.dumps(bundle, indent=1, sort_keys=True).encode("utf-8")
    audit.write_atomically(output, lambda tmp: tmp.write_bytes(data))


def read_bundle(path: Path) -> dict[str, Any]:
    try:
        bundle = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInputError(f"no bundle file {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"{path} is not a JSON audit proof bundle: {exc}") from None
    if not isinstance(bundle, dict):
        raise InvalidInputError(f"{path} is not a JSON audit proof bundle (not an object)")
    return bundle
