"""Which drift-check results alert and which open incidents a passing check resolves, without Dagster."""

from __future__ import annotations

from typing import Any

import pytest

from drift_pipeline.alerts.channels import ChannelConfig
from drift_pipeline.alerts.events import DriftEvent
from drift_pipeline.alerts.incidents import CheckEvaluation, alerts_for_checks
from drift_pipeline.alerts.receiver import AlertReceiver
from drift_pipeline.alerts.router import AlertRouter
from drift_pipeline.persistence.db import Store

SECRET = "incident-secret"


@pytest.fixture
def router(sqlite_store: Store, alert_receiver: AlertReceiver) -> AlertRouter:
    cfg = ChannelConfig.from_dict(
        {
            "platform": [{"type": "webhook", "url": alert_receiver.url("/hook"), "secret": SECRET}],
            "contact_email": False,
        }
    )
    return AlertRouter(sqlite_store, cfg, sleep=lambda _s: None)


def entry(agent: str, severity: str = "ERROR", episode: str = "cand@bl-1") -> dict[str, Any]:
    return {"tenant_id": "acme", "agent_id": agent, "episode": episode, "severity": severity, "summary": "drifted"}


def test_failing_checks_alert_and_a_later_pass_resolves_only_drift(
    router: AlertRouter, alert_receiver: AlertReceiver
) -> None:
    failed = CheckEvaluation("drift_within_threshold", "acme", False, [entry("support"), entry("sales", "near")])
    summary = alerts_for_checks(router, [failed], run_id="r1")

    # Only drift (ERROR) is an incident; the inconclusive WARN of sales is logged, not sent.
    assert (summary.notified, summary.resolved, summary.tenants) == (1, 0, {"acme"})
    assert summary.outcomes[-1] == "acme/sales WARN: not an incident"
    bodies = [r.json() for r in alert_receiver.requests("/hook")]
    assert [(b["agent_id"], b["severity"]) for b in bodies] == [("support", "ERROR")]
    assert bodies[0]["details"] == {"run_id": "r1", "check": "drift_within_threshold"}
    assert all(r.signed_with(SECRET) and not r.signed_with("other") for r in alert_receiver.requests())

    router.notify(DriftEvent("acme", "support", "canary:7", "ERROR", "canary aborted"))
    router.notify(DriftEvent("acme", "support", "deprecation:m-1", "WARN", "deprecated"))
    passed = CheckEvaluation("drift_within_threshold", "acme", True, checked_agents=frozenset({"support"}))
    summary = alerts_for_checks(router, [passed], run_id="r2")

    assert summary.resolved == 1  # support's drift episode
    open_episodes = sorted((i.agent_id, i.payload["episode"]) for i in router.open_incidents("acme"))
    assert open_episodes == [("support", "canary:7"), ("support", "deprecation:m-1")]


def test_a_pass_does_not_resolve_an_agent_failing_in_the_same_run(router: AlertRouter) -> None:
    alerts_for_checks(
        router, [CheckEvaluation("drift_within_threshold", "acme", False, [entry("support")])], run_id="r0"
    )
    evaluations = [
        CheckEvaluation("drift_within_threshold", "acme", True),  # no scope: every agent counts as checked
        CheckEvaluation("equivalence_shown", "acme", False, [entry("support", "WARN")]),
    ]
    summary = alerts_for_checks(router, evaluations, run_id="r1")

    # Back under the drift bar but not yet shown equivalent: the drift incident stays open, nothing new is sent.
    assert (summary.notified, summary.resolved) == (0, 0)
    assert [i.agent_id for i in router.open_incidents("acme")] == ["support"]
