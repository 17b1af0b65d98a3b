"""Per-tenant proof bundles: verified offline with only the public key; an omitted, edited or re-hashed
entry, a tampered checkpoint and a wrong key are each reported; no other tenant's entries inside."""

import copy
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from drift_pipeline.errors import NotFoundError
from drift_pipeline.persistence import audit, checkpoints
from drift_pipeline.persistence.audit_proofs import (
    read_bundle,
    tenant_proof_bundle,
    verify_tenant_bundle,
    write_bundle,
)
from drift_pipeline.versioning import manifests, registry, tenants


@pytest.fixture
def key():
    return Ed25519PrivateKey.generate()


@pytest.fixture
def public(key):
    return [checkpoints.public_pem(key.public_key())]


@pytest.fixture
def bundle(store, local_objects, key):
    """acme's bundle from a log where acme's four entries interleave with globex's and platform entries."""
    registry.add_version(store, "openai", "m-1", actor="alice")
    registry.add_version(store, "openai", "m-2", actor="alice")
    for tenant in ("acme", "globex"):
        tenants.add_tenant(store, tenant, actor="alice")
    for model in ("m-1", "m-2"):
        for tenant in ("globex", "acme"):
            manifests.pin(store, tenant, "support", model, actor="bob", reason=f"secret plan of {tenant}")
    manifests.pin(store, "acme", "support", "m-1", actor="bob")
    return tenant_proof_bundle(store, "acme", objects=local_objects, signing_key=key)


def test_a_bundle_verifies_offline_and_holds_no_other_tenant_data(bundle, public, tmp_path):
    assert [e["tenant_seq"] for e in bundle["entries"]] == [1, 2, 3, 4]
    assert verify_tenant_bundle(bundle, public) == []
    text = json.dumps(bundle)
    assert "secret plan of acme" in text
    assert "globex" not in text and "m-2" in text  # other tenants' entries appear only as hashes
    write_bundle(bundle, tmp_path / "b.json")
    assert verify_tenant_bundle(read_bundle(tmp_path / "b.json"), public) == []


def test_an_omitted_tenant_entry_is_detected(bundle, public):
    cut = copy.deepcopy(bundle)
    del cut["entries"][1]
    problems = verify_tenant_bundle(cut, public)
    assert problems and "tenant entry 2 was omitted" in problems[0]


def test_an_edited_entry_is_detected_even_with_its_hash_recomputed(bundle, public):
    edited = copy.deepcopy(bundle)
    edited["entries"][2]["reason"] = "approved by the board"
    assert "was edited" in verify_tenant_bundle(edited, public)[0]
    edited["entries"][2]["hash"] = audit.row_hash(edited["entries"][2])
    assert "not in the signed log" in verify_tenant_bundle(edited, public)[0]


def test_a_wrong_key_or_a_tampered_checkpoint_is_refused(bundle, public):
    other = [checkpoints.public_pem(Ed25519PrivateKey.generate().public_key())]
    assert "not a known public key" in verify_tenant_bundle(bundle, other)[0]
    assert "not a PEM key" in verify_tenant_bundle(bundle, [b"not a key"])[0]
    forged = copy.deepcopy(bundle)
    forged["checkpoint"]["tree_size"] += 1
    assert "signature that does not verify" in verify_tenant_bundle(forged, public)[0]


@pytest.mark.parametrize(
    "damage",
    [lambda b: b.pop("checkpoint"), lambda b: b["entries"][0].pop("seq"), lambda b: b.update(format="x")],
)
def test_a_malformed_bundle_is_a_problem_not_a_crash(bundle, public, damage):
    broken = copy.deepcopy(bundle)
    damage(broken)
    assert len(verify_tenant_bundle(broken, public)) == 1


def test_proofs_reuse_a_covering_checkpoint_and_refuse_unknown_tenants(store, local_objects, key):
    tenants.add_tenant(store, "acme", actor="alice")
    first = tenant_proof_bundle(store, "acme", objects=local_objects, signing_key=key)
    again = tenant_proof_bundle(store, "acme", objects=local_objects, signing_key=key)
    assert first["checkpoint"] == again["checkpoint"] and len(checkpoints.stored(store)) == 1
    with pytest.raises(NotFoundError, match="no audit entries for tenant 'nobody'"):
        tenant_proof_bundle(store, "nobody", objects=local_objects, signing_key=key)
