"""Drift-check results to incidents: which failed checks alert, and which open incidents a passing check resolves.

The alert sensors read a run's check evaluations (Dagster's) and hand them here as `CheckEvaluation`s;
this module decides what they mean and the `AlertRouter` sends it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from drift_pipeline.alerts.events import CANARY_EPISODE, DEPRECATION_EPISODE, DriftEvent
from drift_pipeline.alerts.router import AlertRouter

# Incidents that are not drift findings: their owners close them, a passing drift check never does.
_OTHER_EPISODES = (DEPRECATION_EPISODE, CANARY_EPISODE)


@dataclass(frozen=True)
class CheckEvaluation:
    """One drift check of one tenant in one run.

    `alerts` holds one entry per failing agent (tenant_id, agent_id, episode, severity, summary,
    report_uri, dimensions); `checked_agents` is None when the check did not say which agents it judged.
    """

    check_name: str
    tenant_id: str
    passed: bool
    alerts: list[Mapping[str, Any]] = field(default_factory=list)
    checked_agents: frozenset[str] | None = None


@dataclass
class AlertSummary:
    """What one run's drift checks caused: alerts sent, incidents resolved, tenants checked, a log line each."""

    notified: int = 0
    resolved: int = 0
    tenants: set[str] = field(default_factory=set)
    outcomes: list[str] = field(default_factory=list)


def drift_event(entry: Mapping[str, Any], *, run_id: str, check_name: str) -> DriftEvent:
    """The event for one failing agent of a drift check; anything but ERROR is inconclusive (WARN)."""
    return DriftEvent(
        tenant_id=str(entry["tenant_id"]),
        agent_id=str(entry["agent_id"]),
        episode=str(entry["episode"]),
        severity="ERROR" if entry.get("severity") == "ERROR" else "WARN",
        summary=str(entry.get("summary") or ""),
        report_uri=entry.get("report_uri"),
        dimensions=list(entry.get("dimensions") or []),
        details={"run_id": run_id, "check": check_name},
    )


def alerts_for_checks(router: AlertRouter, evaluations: Iterable[CheckEvaluation], *, run_id: str) -> AlertSummary:
    """Alert every drifted agent of the run's drift checks; resolve the drift incidents its passing checks end.

    A tenant's passing check resolves the open drift incidents of the agents it checked, except those of
    agents that failed another drift check in the same run.
    """
    summary = AlertSummary()
    failing: dict[str, set[str]] = {}
    checked: dict[str, set[str] | None] = {}
    passed_tenants: set[str] = set()
    for evaluation in evaluations:
        tenant_id = evaluation.tenant_id
        summary.tenants.add(tenant_id)
        if evaluation.checked_agents is not None:
            checked[tenant_id] = (checked.get(tenant_id) or set()) | evaluation.checked_agents
        else:
            checked.setdefault(tenant_id, None)  # unknown scope: every agent of the tenant counts as checked
        if evaluation.passed:
            passed_tenants.add(tenant_id)
            continue
        for entry in evaluation.alerts:
            event = drift_event(entry, run_id=run_id, check_name=evaluation.check_name)
            failing.setdefault(event.tenant_id, set()).add(event.agent_id)
            if event.severity != "ERROR":
                # Inconclusive (equivalence not yet shown, near misses included) is not an incident: it is
                # visible on the WARN check, and it keeps an open drift incident of that agent open.
                summary.outcomes.append(f"{event.tenant_id}/{event.agent_id} WARN: not an incident")
                continue
            outcome = router.notify(event)
            summary.notified += 1
            summary.outcomes.append(f"{event.tenant_id}/{event.agent_id} {event.severity}: {outcome.status}")
    for tenant_id in sorted(passed_tenants):
        scope = checked.get(tenant_id)
        for incident in router.open_incidents(tenant_id):
            episode = str((incident.payload or {}).get("episode", ""))
            if episode.startswith(_OTHER_EPISODES) or incident.agent_id in failing.get(tenant_id, set()):
                continue
            if scope is not None and incident.agent_id not in scope:
                continue  # that agent was not checked in this run
            outcome = router.resolve(
                tenant_id, incident.agent_id, episode, reason=f"drift checks passed in run {run_id}"
            )
            summary.resolved += outcome.status == "resolved"
            summary.outcomes.append(f"{tenant_id}/{incident.agent_id} resolved: {outcome.status}")
    return summary
