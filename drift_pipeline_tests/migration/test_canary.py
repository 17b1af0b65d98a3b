"""Sticky canary routing in the resolver, the always-valid sequential test, automatic abort on a breach."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from drift_pipeline.errors import InvalidInputError, RefusedError
from drift_pipeline.migration import canary, promotion, review, states
from drift_pipeline.persistence import audit
from drift_pipeline.versioning import manifests
from drift_pipeline.versioning.runtime import Resolver

SESSIONS = [f"conv-{i}" for i in range(2000)]


@pytest.fixture
def in_canary(pinned_store, staging_ok):
    m = review.propose(pinned_store, "acme", "support", "m-2", actor="alice")
    review.run_staging(pinned_store, m.id, staging_ok, actor="alice")
    return promotion.start_canary(pinned_store, m.id, 0.1, actor="alice")


def test_bucket_is_deterministic_and_uniform():
    values = [canary.bucket("acme", "support", 7, s) for s in SESSIONS]
    assert values == [canary.bucket("acme", "support", 7, s) for s in SESSIONS]
    assert all(0 <= v < 1 for v in values)
    assert 0.08 < sum(v < 0.1 for v in values) / len(values) < 0.12
    assert values != [canary.bucket("acme", "support", 8, s) for s in SESSIONS]  # per migration


def test_share_in_force_at_a_time():
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    history = [(t0, 0.1), (t0 + timedelta(hours=1), 0.5)]
    assert canary.share_at(history, None) == 0.5
    assert canary.share_at(history, t0 - timedelta(seconds=1)) == 0.0
    assert canary.share_at(history, t0 + timedelta(minutes=30)) == 0.1
    assert canary.share_at(history, t0 + timedelta(hours=2)) == 0.5


def test_resolver_routes_a_sticky_share_and_the_share_only_grows(pinned_store, in_canary):
    resolver = Resolver(pinned_store, poll_interval=3600)
    first = {s: resolver.resolve("acme", "support", s) for s in SESSIONS}
    on_canary = {s for s, r in first.items() if r.route == "canary"}
    assert 0.07 < len(on_canary) / len(SESSIONS) < 0.13
    assert {first[s].model_id for s in on_canary} == {"m-2"} and first[next(iter(on_canary))].extra["migration_id"] == 1
    assert {r.model_id for s, r in first.items() if s not in on_canary} == {"m-1"}
    # sticky: another resolver (another process would hash the same) gives every session the same model
    other = Resolver(pinned_store)
    assert all(other.resolve("acme", "support", s).model_id == first[s].model_id for s in SESSIONS)
    assert resolver.resolve("acme", "support").route == "pinned"  # no session key: the pin

    started_before_growth = datetime.now(UTC)
    promotion.start_canary(pinned_store, in_canary.id, 0.4, actor="alice")
    with pytest.raises(RefusedError, match="the share only grows"):
        promotion.start_canary(pinned_store, in_canary.id, 0.2, actor="alice")
    grown = {s for s in SESSIONS if resolver.resolve("acme", "support", s).route == "canary"}
    assert on_canary < grown and 0.35 < len(grown) / len(SESSIONS) < 0.45
    # a conversation that began before the growth stays on the model it started with
    kept = {
        s
        for s in SESSIONS
        if resolver.resolve("acme", "support", s, session_started_at=started_before_growth).route == "canary"
    }
    assert kept == on_canary


def test_no_canary_means_the_pin_for_every_session(pinned_store):
    resolver = Resolver(pinned_store)
    assert {resolver.resolve("acme", "support", s).model_id for s in SESSIONS[:200]} == {"m-1"}


def test_msprt_ignores_noise_and_flags_a_real_shift():
    same = canary.msprt_two_proportions(50, 1000, 12, 200, alpha=0.01)
    assert not same.breached and same.p_value > 0.5
    worse = canary.msprt_two_proportions(100, 2000, 80, 800, alpha=0.01)
    assert worse.breached and worse.effect == pytest.approx(0.05) and worse.p_value < 0.01
    better = canary.msprt_two_proportions(100, 1000, 2, 400, alpha=0.01)
    assert better.p_value < 0.01 and not better.breached  # fewer refusals is a change, not a harm
    small = canary.msprt_two_proportions(0, 50, 30, 50, alpha=0.01)
    assert small.log_likelihood_ratio == 0 and not small.breached  # below the minimum sample size
    with pytest.raises(InvalidInputError, match="invalid counts"):
        canary.msprt_two_proportions(5, 3, 0, 10)


def test_breach_aborts_the_canary_alerts_and_restores_the_pin(pinned_store, in_canary):
    resolver = Resolver(pinned_store, poll_interval=3600)
    canary_sessions = [s for s in SESSIONS if resolver.resolve("acme", "support", s).route == "canary"]
    alerts: list[dict] = []
    healthy = [{"route": "pinned", "refusal": i % 20 == 0, "error": False} for i in range(900)] + [
        {"route": "canary", "refusal": i % 20 == 0, "error": False} for i in range(100)
    ]
    verdict = promotion.observe(pinned_store, in_canary.id, healthy, alert=alerts.append)
    assert not verdict.aborted and {r.dimension for r in verdict.results} == {"refusal", "error"}
    for _ in range(10):  # the candidate refuses 30% of the time: keep looking until the test fires
        bad = [{"route": "pinned", "refusal": i % 20 == 0} for i in range(450)] + [
            {"route": "canary", "refusal": i % 10 < 3} for i in range(50)
        ]
        verdict = promotion.observe(pinned_store, in_canary.id, bad, alert=alerts.append)
        if verdict.aborted:
            break
    assert verdict.aborted and verdict.migration.state == "aborted"
    assert [a["kind"] for a in alerts] == ["canary_aborted"]
    assert alerts[0]["breach"]["dimensions"][0]["dimension"] == "refusal"
    entry = audit.entries(pinned_store, tenant_id="acme", action_prefix="migration.aborted")[-1]
    assert entry["actor"] == "canary-monitor" and entry["reason"].startswith("canary divergence: refusal")
    assert {resolver.resolve("acme", "support", s).model_id for s in canary_sessions} == {"m-1"}
    assert manifests.current(pinned_store, "acme", "support").pinned_model_id == "m-1"
    with pytest.raises(RefusedError, match="not in canary"):
        promotion.observe(pinned_store, in_canary.id, bad)
    assert audit.verify(pinned_store).ok


def test_a_failing_alert_hook_does_not_undo_the_abort(pinned_store, in_canary):
    def broken(_event: dict) -> None:
        raise ConnectionError("pager down")

    bad = [{"route": "pinned", "error": False} for _ in range(500)] + [
        {"route": "canary", "error": True} for _ in range(150)
    ]
    assert promotion.observe(pinned_store, in_canary.id, bad, alert=broken).aborted
    assert states.get(pinned_store, in_canary.id).state == "aborted"


def test_bad_observation_is_refused_and_nothing_is_counted(pinned_store, in_canary):
    with pytest.raises(InvalidInputError, match="observation #2 has route 'shadow'"):
        promotion.observe(pinned_store, in_canary.id, [{"route": "canary", "error": True}, {"route": "shadow"}])
    assert "monitor" not in states.get(pinned_store, in_canary.id).details
