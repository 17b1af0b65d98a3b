"""Deprecation notices: who is due, once per agent, in batches; a failed notice is tried again."""

from __future__ import annotations

from datetime import date, timedelta
from types import SimpleNamespace
from typing import Any

from drift_pipeline.alerts.events import DEPRECATION_EPISODE
from drift_pipeline.migration import deprecation
from drift_pipeline.versioning import manifests, registry

TODAY = date(2026, 3, 1)


class FakeRouter:
    """Records notices; notices to `failing` tenants come back as errors."""

    def __init__(self, failing: tuple[str, ...] = ()) -> None:
        self.failing, self.events = failing, []

    def notify(self, event: Any) -> Any:
        self.events.append(event)
        if event.tenant_id in self.failing:
            return SimpleNamespace(status="error", error="webhook down")
        return SimpleNamespace(status="sent", error=None)


def test_notices_are_sent_once_in_batches_and_failures_retried(pinned_store) -> None:
    manifests.pin(pinned_store, "acme", "billing", "m-1", actor="setup")
    registry.deprecate(pinned_store, "m-1", sunset=TODAY + timedelta(days=10), successor="m-3", actor="vendor")
    assert deprecation.send_notices(pinned_store, FakeRouter(), [], today=TODAY, days_before=5, batch=10).notified == []

    router = FakeRouter(failing=("bank",))
    first = deprecation.send_notices(pinned_store, router, [], today=TODAY, days_before=30, batch=2)
    assert len(router.events) == 2 and first.log[-1] == "1 notices left for the next tick"
    second = deprecation.send_notices(pinned_store, router, first.notified, today=TODAY, days_before=30, batch=2)
    assert [e.tenant_id for e in router.events] == ["acme", "acme", "bank"]
    assert second.log[0] == "notice to bank/support failed: webhook down"
    assert "m-1|bank|support" not in second.notified and len(second.notified) == 2
    assert [r.key for r in first.replays] == ["deprecation-readiness:acme:m-1:m-3"]

    event = router.events[0]
    assert event.episode == f"{DEPRECATION_EPISODE}m-1" and event.severity == "WARN"
    assert "sunsets on 2026-03-11 (in 10 days)" in event.summary and "against m-3" in event.summary
    assert event.details == {
        "kind": "deprecation",
        "model_id": "m-1",
        "sunset_date": "2026-03-11",
        "days_left": 10,
        "successor_id": "m-3",
    }
