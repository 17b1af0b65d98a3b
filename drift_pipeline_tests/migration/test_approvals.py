"""Reviewers as registered principals and signed approvals: forged, unsigned, moved and self-approvals refused."""

from __future__ import annotations

import copy

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from drift_pipeline.errors import InvalidInputError, NotFoundError, RefusedError
from drift_pipeline.migration import approvals, promotion, review, reviewers, states
from drift_pipeline.persistence import audit
from drift_pipeline_tests.plugins.migration import FakeStagingRunner, reviewer_key, signed_approval


def _in_review(store, tenant="bank", proposer="alice"):
    m = review.propose(store, tenant, "support", "m-2", actor=proposer)
    return review.run_staging(store, m.id, FakeStagingRunner(), actor=proposer)


def _refused(store, m, signed, match):
    before = states.get(store, m.id)
    with pytest.raises(RefusedError, match=match):
        review.approve(store, m.id, signed)
    after = states.get(store, m.id)
    assert (after.state, after.version) == (before.state, before.version)  # nothing changed
    trace = audit.entries(store, action_prefix="migration.review_refused")[-1]
    assert trace["tenant_id"] == m.tenant_id and "refused:" in trace["reason"]


@pytest.mark.parametrize(
    ("raw", "normal"),
    [("Mallory", "mallory"), ("  mallory ", "mallory"), ("ｍａｌｌｏｒｙ", "mallory"), ("MALLORY\t", "mallory")],
)
def test_names_are_normalised(raw, normal):
    assert reviewers.normalise_name(raw) == normal


@pytest.mark.parametrize("bad", ["mal lory", "mal\u200blory", "mal\x00lory", "", "   ", "x" * 101])
def test_names_hiding_characters_are_refused(bad):
    with pytest.raises(InvalidInputError):
        reviewers.normalise_name(bad)


def test_duplicate_normalised_names_and_keys_are_refused(store):
    key = Ed25519PrivateKey.generate()
    reviewers.add(store, "Carol", reviewers.public_pem(key.public_key()), actor="admin")
    other = reviewers.public_pem(Ed25519PrivateKey.generate().public_key())
    with pytest.raises(RefusedError, match="'carol' is already registered"):
        reviewers.add(store, "CAROL ", other, actor="admin")
    with pytest.raises(RefusedError, match="already registered to reviewer 'carol'"):
        reviewers.add(store, "dave", reviewers.public_pem(key.public_key()), actor="admin")
    with pytest.raises(InvalidInputError, match="not a PEM public key"):
        reviewers.add(store, "erin", b"not a key", actor="admin")
    assert [r.name for r in reviewers.list_reviewers(store)] == ["carol"]
    [entry] = audit.entries(store, action_prefix="reviewer.add")
    assert entry["after"]["key_id"] == reviewers.key_id(key.public_key())


@pytest.mark.parametrize(
    "proposer", ["mallory", "mallory ", "Mallory", "cli:mallory", "ｍａｌｌｏｒｙ", "mal\u200blory"]
)
def test_a_regulated_self_approval_is_refused_however_the_name_is_spelt(pinned_store, proposer):
    m = _in_review(pinned_store, proposer=proposer)
    _refused(pinned_store, m, signed_approval(pinned_store, m.id, "mallory"), "cannot approve it")
    assert review.approve(pinned_store, m.id, signed_approval(pinned_store, m.id, "carol")).state == "approved"


def test_unsigned_forged_and_moved_approvals_are_refused(pinned_store):
    m = _in_review(pinned_store)
    good = signed_approval(pinned_store, m.id, "carol")
    _refused(pinned_store, m, {"statement": good["statement"]}, "not signed")
    edited = copy.deepcopy(good)
    edited["statement"]["reason"] = "something else"
    _refused(pinned_store, m, edited, "does not verify with carol's registered key")
    by_bob = signed_approval(pinned_store, m.id, "bob")
    claimed = {**by_bob, "statement": {**by_bob["statement"], "reviewer": "carol"}}  # bob signs as carol
    _refused(pinned_store, m, claimed, "does not verify with carol's registered key")
    other_report = approvals.sign({**good["statement"], "report_sha256": "0" * 64}, reviewer_key(pinned_store, "carol"))
    _refused(pinned_store, m, other_report, "signed for report_sha256")
    other_model = approvals.sign({**good["statement"], "candidate": "m-3"}, reviewer_key(pinned_store, "carol"))
    _refused(pinned_store, m, other_model, "signed for candidate 'm-3'")
    stranger = Ed25519PrivateKey.generate()
    body = {**good["statement"], "reviewer": "zed"}
    with pytest.raises(NotFoundError, match="'zed' is not a registered reviewer"):
        review.approve(pinned_store, m.id, approvals.sign(body, stranger))
    rejected = signed_approval(pinned_store, m.id, "carol", decision="rejected")
    _refused(pinned_store, m, rejected, "decision is 'rejected', not 'approved'")
    assert states.get(pinned_store, m.id).state == "review"
    assert review.approve(pinned_store, m.id, good).state == "approved"


def test_an_approval_rests_on_the_stored_report_and_is_checked_again_at_promotion(pinned_store, baseline_creator):
    from sqlalchemy import update

    from drift_pipeline.persistence.tables import StoredReport

    m = _in_review(pinned_store)
    m = review.approve(pinned_store, m.id, signed_approval(pinned_store, m.id, "carol"))
    m = promotion.start_canary(pinned_store, m.id, 0.2, actor="alice")
    with pinned_store.transaction() as session:  # an insider rewrites the staging report after approval
        session.execute(update(StoredReport).values(body={"dimensions": [], "drift_detected": False, "n_pairs": 1}))
    with pytest.raises(Exception, match="content does not match its stored hash"):
        promotion.promote(pinned_store, m.id, baseline_creator, actor="alice")
    assert states.get(pinned_store, m.id).state == "canary" and baseline_creator.calls == []
    assert audit.entries(pinned_store, action_prefix="migration.promote_refused")
