"""Fixtures for the migration tests: a store with versions, tenants and pins, and fake injected steps."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from drift_pipeline.migration import approvals, review, reviewers, states
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.tables import Baseline
from drift_pipeline.versioning import manifests, registry, tenants


def drift_report(
    baseline: str, candidate: str, *, drifted: tuple[str, ...] = (), n_pairs: int = 400, equivalent: bool = True
) -> dict[str, Any]:
    """A drift report in the docs/scoring.md schema, generated now: the named dimensions drifted, the others
    equivalent within the 0.05 margin (or, with `equivalent=False`, inconclusive)."""
    dims = []
    half = 0.02 if equivalent else 0.08
    for name in ("refusal", "length", "semantic_similarity"):
        hit = name in drifted
        verdict = "drift" if hit else ("equivalent" if equivalent else "inconclusive")
        dims.append(
            {
                "name": name,
                "kind": "binary" if name == "refusal" else "continuous",
                "baseline_value": 0.1,
                "candidate_value": 0.3 if hit else 0.1,
                "effect": 0.2 if hit else 0.0,
                "ci_low": 0.1 if hit else -0.02,
                "ci_high": 0.3 if hit else 0.02,
                "p_value": 0.001 if hit else 0.9,
                "p_adjusted": 0.003 if hit else 1.0,
                "test": "tango-score",
                "n": n_pairs,
                "drifted": hit,
                "near_miss": False,
                "direction": "up" if hit else "none",
                "verdict": verdict,
                "margin": 0.05,
                "equivalence_low": 0.12 if hit else -half,
                "equivalence_high": 0.28 if hit else half,
                "pairs_needed": None if equivalent or hit else 900,
            }
        )
    return {
        "schema_version": "2.0",
        "tenant_id": None,
        "agent_id": None,
        "baseline": baseline,
        "candidate": candidate,
        "n_pairs": n_pairs,
        "alpha": 0.01,
        "threshold": 0.05,
        "margin": 0.05,
        "drift_detected": bool(drifted),
        "verdict": "drift" if drifted else ("equivalent" if equivalent else "inconclusive"),
        "pairs_needed": None if equivalent or drifted else 900,
        "dimensions": dims,
        "examples": [{"pair_id": str(i), "prompt": "p", "baseline_text": "a", "candidate_text": "b"} for i in range(8)],
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


class FakeStagingRunner:
    """Returns a canned drift report for the candidate and remembers what it was asked to replay."""

    def __init__(self, drifted: tuple[str, ...] = (), fail: Exception | None = None, equivalent: bool = True) -> None:
        self.drifted, self.fail, self.equivalent, self.calls = drifted, fail, equivalent, []

    def __call__(self, manifest: manifests.Manifest, candidate: registry.VersionInfo) -> dict[str, Any]:
        self.calls.append((manifest.tenant_id, manifest.agent_id, manifest.pinned_model_id, candidate.model_id))
        if self.fail is not None:
            raise self.fail
        report = drift_report(
            manifest.pinned_model_id, candidate.model_id, drifted=self.drifted, equivalent=self.equivalent
        )
        return {**report, "tenant_id": manifest.tenant_id, "agent_id": manifest.agent_id}


def add_baseline(store: Store, baseline_id: str, tenant_id: str, agent_id: str, model_id: str) -> str:
    """Index a baseline row (its data is never read by these tests): pins and promotions need a real one."""
    with store.transaction() as session:
        session.add(
            Baseline(
                baseline_id=baseline_id,
                tenant_id=tenant_id,
                agent_id=agent_id,
                model_id=model_id,
                uri=f"memory://{baseline_id}",
                n_prompts=40,
                summary={},
                created_at=datetime.now(UTC),
            )
        )
    return baseline_id


class FakeBaselineCreator:
    """Snapshots a new (indexed) baseline of the candidate per call, like the real one (baselines are immutable)."""

    def __init__(self, store: Store | None = None) -> None:
        self.store = store
        self.calls: list[tuple[str, str, int]] = []

    def __call__(self, manifest: manifests.Manifest, migration: Any) -> str:
        self.calls.append((manifest.tenant_id, migration.to_model_id, migration.id))
        baseline_id = f"bl-{migration.to_model_id}-{len(self.calls)}"
        if self.store is not None and not _exists(self.store, baseline_id):
            add_baseline(self.store, baseline_id, manifest.tenant_id, manifest.agent_id, migration.to_model_id)
        return baseline_id


def _exists(store: Store, baseline_id: str) -> bool:
    with store.session() as session:
        return session.get(Baseline, baseline_id) is not None


def reviewer_key(store: Store, name: str) -> Ed25519PrivateKey:
    """Register `name` as a reviewer (once per store) and return their private key."""
    key = _KEYS.setdefault(name, Ed25519PrivateKey.generate())
    if not any(r.name == reviewers.normalise_name(name) for r in reviewers.list_reviewers(store)):
        reviewers.add(store, name, reviewers.public_pem(key.public_key()), actor="setup")
    return key


def signed_approval(
    store: Store,
    migration_id: int,
    reviewer: str = "bob",
    *,
    reason: str = "reviewed the staging diff",
    decision: str = "approved",
) -> dict[str, Any]:
    """What `migrate sign-approval` produces: `reviewer`'s signed statement over the migration in review."""
    key = reviewer_key(store, reviewer)
    info = states.get(store, migration_id)
    sha = (info.details.get("staging") or {}).get("report_sha256")
    body = approvals.statement(review.subject(info, sha), decision=decision, reviewer=reviewer, reason=reason)
    return approvals.sign(body, key)


_KEYS: dict[str, Ed25519PrivateKey] = {}


@pytest.fixture
def pinned_store(store: Store) -> Store:
    """m-1, m-2, m-3 registered; tenants acme (not regulated) and bank (regulated), both agents on m-1."""
    for model in ("m-1", "m-2", "m-3"):
        registry.add_version(store, "offline", model, actor="setup")
    registry.set_alias(store, "m-latest", "m-2", actor="setup")
    tenants.add_tenant(store, "acme", actor="setup")
    tenants.add_tenant(store, "bank", actor="setup", regulated=True)
    for tenant in ("acme", "bank"):
        manifests.pin(store, tenant, "support", "m-1", actor="setup")
        baseline = "bl-m-1-0" if tenant == "acme" else f"bl-{tenant}-m-1-0"
        manifests.set_baseline(
            store, tenant, "support", add_baseline(store, baseline, tenant, "support", "m-1"), actor="setup"
        )
    return store


@pytest.fixture
def staging_ok() -> FakeStagingRunner:
    return FakeStagingRunner()


@pytest.fixture
def baseline_creator(store: Store) -> FakeBaselineCreator:
    return FakeBaselineCreator(store)
