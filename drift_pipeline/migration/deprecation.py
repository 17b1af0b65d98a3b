"""Deprecation notices: which tenant agents to warn before their pinned version's sunset, and what to say.

A version is due when its sunset is at most `days_before` days away (or past). Each tenant agent pinned to
a due version gets one WARN notice (episode `DEPRECATION_EPISODE` + model) through the alert router, and each
tenant gets one migration-readiness replay against the successor per version. Which agents were told
is the caller's to keep (the sensor's cursor: keys `model|tenant|agent`); a failed notice is not recorded,
so it is tried again next round. What happens once the sunset has passed is `forced`'s.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from drift_pipeline.alerts.events import DEPRECATION_EPISODE, DriftEvent
from drift_pipeline.alerts.router import AlertRouter
from drift_pipeline.persistence.db import Store
from drift_pipeline.versioning import manifests, registry

REPLAY_REASON = "deprecation-readiness"


@dataclass(frozen=True)
class ReadinessReplay:
    """A replay of a tenant's agents against the successor of the version they are pinned to."""

    tenant_id: str
    model_id: str
    successor_id: str

    @property
    def key(self) -> str:
        """Once per tenant and version, whatever the day: the key leaves the day out."""
        return f"{REPLAY_REASON}:{self.tenant_id}:{self.model_id}:{self.successor_id}"


@dataclass
class NoticeRound:
    """What one round of notices did: who has been told so far, the replays to ask for, lines for a log."""

    notified: list[str] = field(default_factory=list)
    replays: list[ReadinessReplay] = field(default_factory=list)
    log: list[str] = field(default_factory=list)


def due_versions(store: Store, today: date, days_before: int) -> dict[str, registry.VersionInfo]:
    """Versions whose sunset is at most `days_before` days after `today` (past sunsets included)."""
    return {
        v.model_id: v
        for v in registry.list_versions(store)
        if v.sunset_date is not None and v.sunset_date - today <= timedelta(days=days_before)
    }


def notice_key(model_id: str, tenant_id: str, agent_id: str) -> str:
    return f"{model_id}|{tenant_id}|{agent_id}"


def send_notices(
    store: Store, router: AlertRouter, notified: Iterable[str], *, today: date, days_before: int, batch: int
) -> NoticeRound:
    """Notify up to `batch` tenant agents pinned to a due version that were not told yet (see the module doc)."""
    due = due_versions(store, today, days_before)
    told = {n for n in notified if n.split("|", 1)[0] in due}  # a version no longer due is forgotten
    pending = [
        m
        for m in manifests.list_current(store)
        if m.pinned_model_id in due and notice_key(m.pinned_model_id, m.tenant_id, m.agent_id) not in told
    ]
    done = NoticeRound()
    per_tenant: dict[tuple[str, str], list[str]] = {}
    for manifest in pending[:batch]:
        version = due[manifest.pinned_model_id]
        outcome = router.notify(notice_event(manifest, version, today))
        if outcome.status == "error":  # not recorded: tried again next round
            done.log.append(f"notice to {manifest.tenant_id}/{manifest.agent_id} failed: {outcome.error}")
            continue
        told.add(notice_key(version.model_id, manifest.tenant_id, manifest.agent_id))
        per_tenant.setdefault((manifest.tenant_id, version.model_id), []).append(manifest.agent_id)
    for (tenant_id, model_id), agents in sorted(per_tenant.items()):
        successor = due[model_id].successor_id
        done.log.append(
            f"{tenant_id}: {model_id} sunsets {due[model_id].sunset_date} ({', '.join(agents)} notified)"
            + (f"; readiness replay against {successor}" if successor else "; no successor registered")
        )
        if successor:
            done.replays.append(ReadinessReplay(tenant_id, model_id, successor))
    if len(pending) > batch:
        done.log.append(f"{len(pending) - batch} notices left for the next tick")
    done.notified = sorted(told)
    return done


def notice_event(manifest: manifests.Manifest, version: registry.VersionInfo, today: date) -> DriftEvent:
    """The WARN notice to one tenant agent pinned to `version`."""
    days = (version.sunset_date - today).days if version.sunset_date else 0
    when = f"in {days} days" if days > 0 else ("today" if days == 0 else f"{-days} days ago")
    successor = version.successor_id
    summary = (
        f"{version.model_id} (pinned by {manifest.tenant_id}/{manifest.agent_id}) sunsets on {version.sunset_date} ({when}); "
        + (
            f"a migration-readiness replay against {successor} has been requested."
            if successor
            else "no successor is registered yet: choose one and replay against it."
        )
    )
    return DriftEvent(
        tenant_id=manifest.tenant_id,
        agent_id=manifest.agent_id,
        episode=f"{DEPRECATION_EPISODE}{version.model_id}",
        severity="WARN",
        summary=summary,
        details={
            "kind": "deprecation",
            "model_id": version.model_id,
            "sunset_date": str(version.sunset_date),
            "days_left": days,
            "successor_id": successor,
        },
    )
