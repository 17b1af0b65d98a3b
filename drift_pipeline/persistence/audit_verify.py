"""Full verification of the audit log: chain, tenant sub-chains, Merkle tree and every signed checkpoint.

The chain alone catches an edited, removed or swapped row. What it cannot catch (a cut tail, or a rewrite
that recomputes every later hash, or a deletion with the rest renumbered and re-chained) contradicts the
signed checkpoints: each one must be a prefix of today's tree (an RFC 9162 consistency proof), and an
insider without the signing key cannot make a new one. Checkpoints are read from the store and, when given,
from object storage; a store checkpoint without its object copy is itself a finding.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from drift_pipeline.errors import InvalidInputError
from drift_pipeline.persistence import audit, checkpoints, merkle
from drift_pipeline.persistence.checkpoints import Checkpoint
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.objects import ObjectStore


def verify_log(
    store: Store, objects: ObjectStore | None = None, public_keys: list[bytes] | None = None
) -> audit.VerifyResult:
    """Everything `audit verify` checks; the result names the first bad entry or the contradicted checkpoint.

    `public_keys` (PEM) are the only keys trusted when given; otherwise the keyring (store and objects)."""
    rows = audit.all_rows(store)
    bad = chain_problem(rows)
    if bad is not None:
        seq, checked, problem = bad
        return audit.VerifyResult(False, checked, seq, problem)
    tree = merkle.MerkleTree([audit.row_leaf(r) for r in rows])
    root = tree.root().hex()
    try:
        keys = checkpoints.load_public_keys(public_keys or list(checkpoints.keyring(store, objects).values()))
    except InvalidInputError as exc:
        return audit.VerifyResult(False, len(rows), None, f"keyring: {exc}", root)
    found, notes, unreadable = _all_checkpoints(store, objects)
    if unreadable:
        return audit.VerifyResult(False, len(rows), None, unreadable[0], root, 0, unreadable[0], notes)
    consistent: list[Checkpoint] = []
    for label, cp in sorted(found, key=lambda item: (item[1].tree_size, item[1].timestamp)):
        problem = _checkpoint_problem(cp, tree, keys, consistent)
        if problem:
            return audit.VerifyResult(False, len(rows), None, f"{label} {problem}", root, len(consistent), label, notes)
        consistent.append(cp)
    for label, problem in _copy_problems(store, objects):
        return audit.VerifyResult(False, len(rows), None, f"{label} {problem}", root, len(consistent), label, notes)
    return audit.VerifyResult(True, len(rows), root_hash=root, checkpoints=len(consistent), notes=notes)


def chain_problem(rows: list[dict[str, Any]]) -> tuple[int, int, str] | None:
    """(first bad seq, entries verified before it, why) for the first row whose position, link, hash or
    tenant sub-chain does not match; None when the chain is intact."""
    prev_hash, expected_seq = audit.GENESIS, 1
    tenants: dict[str, tuple[int, str]] = {}  # tenant -> (entries so far, hash of the last one)
    for checked, row in enumerate(rows):
        problem = ""
        count, last = tenants.get(row["tenant_id"], (0, audit.GENESIS))
        if row["seq"] != expected_seq:
            problem = f"expected entry {expected_seq} here, found {row['seq']} (missing or reordered)"
        elif row["prev_hash"] != prev_hash:
            problem = "its predecessor link does not match the previous entry (reordered or removed)"
        elif row["hash"] != audit.row_hash(row):
            problem = "its content does not match its hash (edited)"
        elif row["tenant_seq"] is not None and (row["tenant_seq"], row["tenant_prev_hash"]) != (count + 1, last):
            problem = f"it does not follow entry {count} of tenant {row['tenant_id']!r} (a tenant entry removed)"
        if problem:
            return row["seq"], checked, problem
        if row["tenant_id"] is not None:
            tenants[row["tenant_id"]] = (count + 1, row["hash"])
        prev_hash, expected_seq = row["hash"], row["seq"] + 1
    return None


def _checkpoint_problem(
    cp: Checkpoint, tree: merkle.MerkleTree, keys: dict[str, Ed25519PublicKey], consistent: list[Checkpoint]
) -> str | None:
    signature = checkpoints.signature_problem(cp, keys)
    if signature:
        return signature
    n = tree.size
    if cp.tree_size > n:
        return (
            f"covers {cp.tree_size} entries but the log has {n}: {cp.tree_size - n} removed (the tail cut, or "
            "rows deleted and the rest renumbered)"
        )
    proof = tree.consistency_proof(cp.tree_size)
    if merkle.verify_consistency(cp.tree_size, n, bytes.fromhex(cp.root_hash), tree.root(), proof):
        return None
    good = max((c.tree_size for c in consistent), default=0)
    return (
        f"is contradicted by the log: an entry in {good + 1}..{cp.tree_size} was rewritten, removed or "
        "re-chained since it was signed (consistency proof fails)"
    )


def _all_checkpoints(
    store: Store, objects: ObjectStore | None
) -> tuple[list[tuple[str, Checkpoint]], list[str], list[str]]:
    """Each distinct checkpoint once, labelled by where it was found; notes on what is merely odd; objects
    that are not checkpoints at all."""
    found: dict[Checkpoint, str] = {}
    notes: list[str] = []
    unreadable: list[str] = []
    for row_id, cp in checkpoints.stored(store):
        found.setdefault(cp, f"checkpoint #{row_id} ({cp.label()})")
    if objects is not None:
        for name, cp_or_problem in checkpoints.in_objects(objects):
            if isinstance(cp_or_problem, str):
                unreadable.append(f"object {name} is not a readable checkpoint: {cp_or_problem}")
                continue
            if cp_or_problem not in found:
                # A crash between the object write and the store commit leaves this; still checked.
                notes.append(f"{name} has no copy in the store")
            found.setdefault(cp_or_problem, f"object checkpoint {name} ({cp_or_problem.label()})")
    return [(label, cp) for cp, label in found.items()], notes, unreadable


def _copy_problems(store: Store, objects: ObjectStore | None) -> list[tuple[str, str]]:
    """Store checkpoints whose write-once copy is missing or differs: edited or forged in the store."""
    if objects is None:
        return []
    problems = []
    for row_id, cp in checkpoints.stored(store):
        if not objects.exists(cp.object_name):
            problems.append(
                (
                    f"checkpoint #{row_id} ({cp.label()})",
                    f"has no copy in object storage ({objects.uri(cp.object_name)})",
                )
            )
    return problems
