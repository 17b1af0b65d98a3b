"""Anchored audit log: append-only triggers, signed checkpoints (store + write-once objects), and the
insider attacks a hash chain alone misses (cut tail, re-chained rewrite, renumbered deletion)."""

from dataclasses import asdict
from datetime import datetime

import pytest
import sqlalchemy.exc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, text

from drift_pipeline.errors import IntegrityError
from drift_pipeline.persistence import audit, checkpoints
from drift_pipeline.persistence.audit_verify import chain_problem
from drift_pipeline.persistence.objects import ObjectStore
from drift_pipeline.persistence.tables import AuditCheckpoint, AuditEntry
from drift_pipeline.versioning import manifests, registry, tenants


@pytest.fixture
def history(store):
    registry.add_version(store, "openai", "m-1", actor="alice")
    registry.add_version(store, "openai", "m-2", actor="alice")
    for tenant in ("acme", "globex"):
        tenants.add_tenant(store, tenant, actor="alice")
        manifests.pin(store, tenant, "support", "m-1", actor="bob")
    return store


@pytest.fixture
def key():
    return Ed25519PrivateKey.generate()


@pytest.fixture
def anchored(history, local_objects, key):
    """The history with a signed checkpoint of its 6 entries, then 2 more entries."""
    checkpoints.create(history, local_objects, key)
    manifests.pin(history, "acme", "support", "m-2", actor="bob")
    manifests.pin(history, "globex", "support", "m-2", actor="bob")
    return history


def rewrite(store, dba, mutate):
    """An insider's consistent rewrite: change the rows, then renumber and recompute every hash and link
    (global chain and tenant sub-chains) so that the chain alone verifies."""
    rows = mutate(audit.all_rows(store))
    prev, tenant_heads = audit.GENESIS, {}
    for seq, row in enumerate(rows, 1):
        row["seq"], row["prev_hash"] = seq, prev
        if row["tenant_id"] is not None:
            count, last = tenant_heads.get(row["tenant_id"], (0, audit.GENESIS))
            row["tenant_seq"], row["tenant_prev_hash"] = count + 1, last
        row["hash"] = audit.row_hash(row)
        prev = row["hash"]
        if row["tenant_id"] is not None:
            tenant_heads[row["tenant_id"]] = (row["tenant_seq"], row["hash"])
    with dba(store), store.transaction() as s:
        s.execute(delete(AuditEntry))
        s.flush()
        for row in rows:
            s.add(AuditEntry(**{**row, "ts": datetime.fromisoformat(row["ts"])}))
    return rows


def test_checkpoints_verify_and_live_in_the_store_and_write_once_objects(anchored, local_objects, key):
    result = audit.verify(anchored, local_objects)
    assert result.ok and result.checked == 8 and result.checkpoints == 1, result.problem
    cp = checkpoints.create(anchored, local_objects, key)
    assert cp.tree_size == 8
    assert checkpoints.Checkpoint.from_dict(local_objects.read_json(cp.object_name)) == cp
    assert [c for _, c in checkpoints.stored(anchored)][-1] == cp
    assert audit.verify(anchored, local_objects).checkpoints == 2
    with pytest.raises(IntegrityError, match="write-once"):  # an existing checkpoint is never replaced
        local_objects.write_once(cp.object_name, b"{}")
    assert local_objects.write_once(cp.object_name, local_objects.read_bytes(cp.object_name)) is False


def test_the_tables_reject_update_and_delete(anchored):
    for statement in (
        "UPDATE audit_log SET reason = 'edited' WHERE seq = 1",
        "DELETE FROM audit_log WHERE seq = 8",
        "DELETE FROM audit_checkpoints",
        "UPDATE audit_signing_keys SET public_key = 'x'",
    ):
        with pytest.raises(sqlalchemy.exc.DatabaseError, match="append-only"), anchored.transaction() as s:
            s.execute(text(statement))
    assert audit.verify(anchored).ok and len(audit.all_rows(anchored)) == 8


def test_tail_truncation_is_caught_by_the_checkpoint(anchored, local_objects, dba):
    with dba(anchored), anchored.transaction() as s:
        s.execute(text("DELETE FROM audit_log WHERE seq > 4"))
    assert audit.verify(anchored).ok is False  # the store's own checkpoint already says 6
    result = audit.verify(anchored, local_objects)
    assert not result.ok and result.bad_checkpoint and "tree size 6" in result.bad_checkpoint
    assert "covers 6 entries but the log has 4" in result.problem


def test_a_rechained_rewrite_contradicts_the_checkpoint(anchored, local_objects, dba):
    def edit(rows):
        rows[2]["reason"] = "nothing to see"
        return rows

    rewrite(anchored, dba, edit)
    assert chain_problem(audit.all_rows(anchored)) is None  # the chain alone is fooled ...
    result = audit.verify(anchored, local_objects)  # ... the signed checkpoint is not
    assert not result.ok and "contradicted by the log" in result.problem
    assert "an entry in 1..6" in result.problem and "tree size 6" in result.bad_checkpoint


def test_a_renumbered_deletion_is_caught(anchored, local_objects, dba, key):
    checkpoints.create(anchored, local_objects, key)  # a second checkpoint narrows down where it happened
    rewrite(anchored, dba, lambda rows: rows[:6] + rows[7:])  # drop entry 7, renumber 8 -> 7, re-chain
    assert chain_problem(audit.all_rows(anchored)) is None
    result = audit.verify(anchored, local_objects)
    assert not result.ok and "covers 8 entries but the log has 7" in result.problem


def test_deleted_store_checkpoints_do_not_hide_a_rewrite(anchored, local_objects, dba):
    with dba(anchored), anchored.transaction() as s:
        s.execute(delete(AuditCheckpoint))
    rewrite(anchored, dba, lambda rows: rows[:1] + rows[2:])
    assert audit.verify(anchored).ok  # nothing left in the store to compare with ...
    result = audit.verify(anchored, local_objects)  # ... the write-once copy remains
    assert not result.ok and "object checkpoint audit/checkpoints/" in result.bad_checkpoint
    with pytest.raises(IntegrityError, match="refusing to sign"):  # and the rewrite cannot be blessed
        checkpoints.create(anchored, local_objects)


def test_a_checkpoint_only_in_the_store_or_forged_is_refused(anchored, local_objects, key, dba):
    rogue = Ed25519PrivateKey.generate()
    forged = checkpoints.sign(8, bytes(32), rogue)
    with anchored.transaction() as s:
        s.add(AuditCheckpoint(**asdict(forged), object_path=forged.object_name))
    result = audit.verify(anchored, local_objects)
    assert not result.ok and "not a known public key" in result.problem
    checkpoints.register_key(anchored, ObjectStore(local_objects.url + "-elsewhere", {}), rogue.public_key())
    result = audit.verify(anchored, local_objects)  # the insider also put the rogue key in the store keyring
    assert not result.ok and "contradicted" in result.problem
    trusted = [checkpoints.public_pem(key.public_key())]
    assert "not a known public key" in audit.verify(anchored, local_objects, trusted).problem


def test_rotated_keys_stay_verifiable(anchored, local_objects):
    new_key = Ed25519PrivateKey.generate()
    checkpoints.create(anchored, local_objects, new_key)
    result = audit.verify(anchored, local_objects)
    assert result.ok and result.checkpoints == 2
    assert len(checkpoints.keyring(anchored, local_objects)) == 2


def test_checkpoints_on_s3_are_write_once(history, s3_objects, key):
    cp = checkpoints.create(history, s3_objects, key)
    assert audit.verify(history, s3_objects).ok
    assert s3_objects.write_once(cp.object_name, s3_objects.read_bytes(cp.object_name)) is False
    with pytest.raises(IntegrityError, match="write-once"):
        s3_objects.write_once(cp.object_name, b"forged")


def test_default_signing_key_is_generated_once_and_private(home):
    first = checkpoints.load_signing_key()
    path = checkpoints.signing_key_path()
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
    assert checkpoints.key_id(checkpoints.load_signing_key().public_key()) == checkpoints.key_id(first.public_key())
