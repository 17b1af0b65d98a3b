"""RFC 9162 Merkle tree: roots and proofs against a naive recursive recomputation of the RFC's definitions."""

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drift_pipeline.persistence import merkle


def _mth(leaves: list[bytes]) -> bytes:
    """MTH straight from RFC 9162 2.1.1, no caching."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


def _path(m: int, leaves: list[bytes]) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    if m < k:
        return [*_path(m, leaves[:k]), _mth(leaves[k:])]
    return [*_path(m - k, leaves[k:]), _mth(leaves[:k])]


def _subproof(m: int, leaves: list[bytes], b: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if b else [_mth(leaves)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*_subproof(m, leaves[:k], b), _mth(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], False), _mth(leaves[:k])]


def _leaves(n: int) -> list[bytes]:
    return [merkle.leaf_hash(f"entry {i}".encode()) for i in range(n)]


sizes = st.integers(min_value=1, max_value=70)


@settings(max_examples=60, deadline=None)
@given(n=sizes, data=st.data())
def test_root_and_inclusion_proofs_match_the_rfc_definitions(n, data):
    leaves = _leaves(n)
    tree = merkle.MerkleTree(leaves)
    size = data.draw(st.integers(1, n))
    index = data.draw(st.integers(0, size - 1))
    assert tree.root(size) == _mth(leaves[:size])
    proof = tree.inclusion_proof(index, size)
    assert proof == _path(index, leaves[:size])
    assert merkle.verify_inclusion(index, size, leaves[index], proof, tree.root(size))
    # the same proof does not verify another leaf, position or root
    other = (index + 1) % size
    if other != index:
        assert not merkle.verify_inclusion(other, size, leaves[index], proof, tree.root(size))
        assert not merkle.verify_inclusion(index, size, leaves[other], proof, tree.root(size))
    assert not merkle.verify_inclusion(index, size, leaves[index], proof, merkle.leaf_hash(b"x"))


@settings(max_examples=60, deadline=None)
@given(n=sizes, data=st.data())
def test_consistency_proofs_match_the_rfc_and_catch_any_rewrite(n, data):
    leaves = _leaves(n)
    tree = merkle.MerkleTree(leaves)
    old = data.draw(st.integers(1, n))
    proof = tree.consistency_proof(old)
    assert proof == _subproof(old, leaves, True)
    assert merkle.verify_consistency(old, n, _mth(leaves[:old]), tree.root(), proof)
    # an old tree that differs in any one leaf is not a prefix of this one
    changed = data.draw(st.integers(0, old - 1))
    forged = list(leaves[:old])
    forged[changed] = merkle.leaf_hash(b"rewritten")
    assert not merkle.verify_consistency(old, n, _mth(forged), tree.root(), proof)
    if old < n:  # nor is this tree consistent with a shorter one that claims to be longer
        assert not merkle.verify_consistency(old + 1, n, _mth(leaves[:old]), tree.root(), proof)


def test_edge_cases():
    tree = merkle.MerkleTree([])
    assert tree.root() == merkle.EMPTY_ROOT
    assert merkle.verify_consistency(0, 0, merkle.EMPTY_ROOT, merkle.EMPTY_ROOT, [])
    one = merkle.MerkleTree(_leaves(1))
    assert one.root() == _leaves(1)[0] and one.inclusion_proof(0) == []
    with pytest.raises(ValueError):
        one.inclusion_proof(1)
    with pytest.raises(ValueError):
        one.consistency_proof(2)
    assert not merkle.verify_inclusion(3, 3, b"", [], b"")
    assert not merkle.verify_consistency(3, 2, b"", b"", [])
