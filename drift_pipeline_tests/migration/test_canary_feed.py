"""Live canary monitoring from captured traffic: real stores (SQLite and PostgreSQL), local object storage,
the real capture sink, the real alert receiver, and the Dagster sensor on a real instance."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from drift_pipeline.alerts.channels import load_channel_config
from drift_pipeline.alerts.router import AlertRouter
from drift_pipeline.defs.migration.sensors import NO_CANARY, canary_monitor_sensor
from drift_pipeline.defs.resources import DriftStore, ObjectStorage
from drift_pipeline.migration import canary_feed, promotion, review, states
from drift_pipeline.persistence import audit
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.objects import ObjectStore
from drift_pipeline.traffic.capture import StorageSink
from drift_pipeline.traffic.records import TrafficRecord, dumps
from drift_pipeline.versioning import manifests
from drift_pipeline.versioning.runtime import Resolver

REFUSAL = "I'm sorry, but I can't help with that request."
ANSWER = "Sure: your order ships tomorrow."


@pytest.fixture
def objects(tmp_path: Path) -> ObjectStore:
    return ObjectStore(str(tmp_path / "objects"))


@pytest.fixture
def in_canary(pinned_store: Store, staging_ok: Any) -> states.MigrationInfo:
    """acme/support: m-1 pinned, migration to m-2 in canary with 20 % of sessions."""
    m = review.propose(pinned_store, "acme", "support", "m-2", actor="alice")
    review.run_staging(pinned_store, m.id, staging_ok, actor="alice")
    return promotion.start_canary(pinned_store, m.id, 0.2, actor="alice")


@pytest.fixture
def router(pinned_store: Store, alert_receiver: Any, tmp_path: Path) -> AlertRouter:
    config = tmp_path / "alerts.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "platform": [{"type": "webhook", "url": alert_receiver.url("/canary"), "secret": "s"}],
                "contact_email": False,
                "retry": {"backoff_s": 0},
            }
        )
    )
    return AlertRouter(pinned_store, load_channel_config(config), actor="test")


def platform_traffic(
    store: Store,
    objects: ObjectStore,
    *,
    sessions: range,
    canary_refuses: float,
    start: datetime,
    tenant: str = "acme",
    agent: str = "support",
    pinned_refuses: float = 0.05,
) -> list[TrafficRecord]:
    """What the platform's calls look like once captured: the resolver picks the model per session, the
    capture callback records requested/pinned/served model; the candidate refuses `canary_refuses` of the time."""
    resolver = Resolver(store, poll_interval=3600)
    records = []
    for n, i in enumerate(sessions):
        resolution = resolver.resolve(tenant, agent, f"conv-{i}")
        rate = canary_refuses if resolution.route == "canary" else pinned_refuses
        refuses = (i % 100) < rate * 100
        records.append(
            TrafficRecord(
                tenant_id=tenant,
                agent_id=agent,
                timestamp=(start + timedelta(milliseconds=n + 1)).isoformat(),
                messages=dumps([{"role": "user", "content": f"where is order {i}?"}]),
                response_text=REFUSAL if refuses else ANSWER,
                requested_model=resolution.litellm_model,
                pinned_model_id=manifests.current(store, tenant, agent).pinned_model_id,
                served_model=resolution.model_id,
                source="capture",
            )
        )
    StorageSink(objects).write(records)
    return records


def started(migration: states.MigrationInfo) -> datetime:
    return canary_feed.canary_started_at(migration)


def counts(store: Store, migration_id: int, dim: str = "refusal") -> dict[str, list[int]]:
    return states.get(store, migration_id).details.get("monitor", {}).get("counts", {}).get(dim, {})


# ------------------------------------------------------------------------------------------ core


def test_a_refusing_candidate_is_aborted_routed_back_alerted_and_audited(
    pinned_store: Store, objects: ObjectStore, in_canary: states.MigrationInfo, router: AlertRouter, alert_receiver: Any
) -> None:
    t0 = started(in_canary)
    records = platform_traffic(pinned_store, objects, sessions=range(1500), canary_refuses=0.4, start=t0)
    [check] = canary_feed.monitor_all(pinned_store, objects, router=router, now=t0 + timedelta(seconds=5))

    assert check.aborted and check.error is None
    assert check.canary + check.pinned == len(records) and 200 < check.canary < 400
    migration = states.get(pinned_store, in_canary.id)
    assert migration.state == "aborted" and migration.canary_share == 0
    assert migration.details["breach"]["dimensions"][0]["dimension"] == "refusal"
    resolver = Resolver(pinned_store)
    assert {resolver.resolve("acme", "support", f"conv-{i}").model_id for i in range(1500)} == {"m-1"}
    [body] = [r.json() for r in alert_receiver.requests("/canary")]
    assert body["tenant_id"] == "acme" and body["agent_id"] == "support"
    assert body["severity"] == "ERROR" and body["episode"] == f"canary:{in_canary.id}"
    assert "m-2" in body["summary"] and "back on m-1" in body["summary"]
    [entry] = audit.entries(pinned_store, tenant_id="acme", action_prefix="migration.aborted")
    assert entry["actor"] == canary_feed.ACTOR and entry["reason"].startswith("canary divergence: refusal")
    assert audit.verify(pinned_store).ok
    assert canary_feed.monitor_all(pinned_store, objects, router=router) == []  # nothing in canary any more


def test_an_equal_candidate_is_not_aborted_and_every_record_counts_once(
    pinned_store: Store, objects: ObjectStore, in_canary: states.MigrationInfo, router: AlertRouter, alert_receiver: Any
) -> None:
    t0 = started(in_canary)
    platform_traffic(pinned_store, objects, sessions=range(1000), canary_refuses=0.05, start=t0)
    [first] = canary_feed.monitor_all(pinned_store, objects, router=router, now=t0 + timedelta(seconds=5))
    assert not first.aborted and first.canary + first.pinned == 1000
    assert {r["dimension"] for r in first.results} == {"refusal", "error"}
    refusal = counts(pinned_store, in_canary.id)
    assert refusal["canary"][1] == first.canary and refusal["pinned"][1] == first.pinned

    # Looking again counts nothing; a batch that lands late (earlier timestamps, within the lateness) counts once.
    [again] = canary_feed.monitor_all(pinned_store, objects, router=router, now=t0 + timedelta(seconds=6))
    assert (again.canary, again.pinned) == (0, 0) and counts(pinned_store, in_canary.id) == refusal
    late = platform_traffic(pinned_store, objects, sessions=range(1000, 1200), canary_refuses=0.05, start=t0)
    [third] = canary_feed.monitor_all(pinned_store, objects, router=router, now=t0 + timedelta(seconds=7))
    assert third.canary + third.pinned == len(late)
    [fourth] = canary_feed.monitor_all(pinned_store, objects, router=router, now=t0 + timedelta(seconds=8))
    assert (fourth.canary, fourth.pinned) == (0, 0)
    total = counts(pinned_store, in_canary.id)
    assert total["canary"][1] + total["pinned"][1] == 1200
    assert states.get(pinned_store, in_canary.id).state == "canary" and alert_receiver.requests() == []


def test_other_tenants_agents_and_models_never_count(
    pinned_store: Store, objects: ObjectStore, in_canary: states.MigrationInfo, router: AlertRouter
) -> None:
    t0 = started(in_canary)
    manifests.pin(pinned_store, "acme", "billing", "m-1", actor="setup")
    # bank's agent refuses everything on m-2, under bank's prefix; acme's billing agent too.
    for tenant, agent in (("bank", "support"), ("acme", "billing")):
        records = [
            TrafficRecord(
                tenant_id=tenant,
                agent_id=agent,
                timestamp=(t0 + timedelta(milliseconds=i + 1)).isoformat(),
                messages=dumps([{"role": "user", "content": f"q{i}"}]),
                response_text=REFUSAL,
                requested_model="offline/m-2",
                pinned_model_id="m-1",
                served_model="m-2",
            )
            for i in range(600)
        ]
        StorageSink(objects).write(records)
    # A record filed under acme's prefix but naming another tenant is not acme's evidence either.
    stray = TrafficRecord(
        tenant_id="bank",
        agent_id="support",
        timestamp=(t0 + timedelta(seconds=1)).isoformat(),
        messages="[]",
        response_text=REFUSAL,
        served_model="m-2",
    )
    objects.write_batch("traffic", "acme", t0.date(), _frame([stray]))
    # acme/support traffic served by a third model: neither slice.
    other = [
        TrafficRecord(
            tenant_id="acme",
            agent_id="support",
            timestamp=(t0 + timedelta(milliseconds=i + 1)).isoformat(),
            messages=dumps([{"role": "user", "content": f"x{i}"}]),
            response_text=REFUSAL,
            requested_model="offline/m-3",
            pinned_model_id="m-3",
            served_model="m-3",
        )
        for i in range(5)
    ]
    StorageSink(objects).write(other)
    [check] = canary_feed.monitor_all(pinned_store, objects, router=router, now=t0 + timedelta(seconds=5))
    assert (check.canary, check.pinned, check.aborted) == (0, 0, False)
    assert check.skipped == {"unattributed": 5}
    assert "monitor" not in states.get(pinned_store, in_canary.id).details  # the gate was never asked


def test_schema_failures_of_the_candidate_abort_it(
    pinned_store: Store, objects: ObjectStore, staging_ok: Any, router: AlertRouter, alert_receiver: Any
) -> None:
    schema = {"type": "object", "required": ["answer"], "properties": {"answer": {"type": "string"}}}
    manifests.update(
        pinned_store, "acme", "support", {"config": manifests.AgentConfig(response_schema=schema)}, actor="t"
    )
    m = review.propose(pinned_store, "acme", "support", "m-2", actor="alice")
    review.run_staging(pinned_store, m.id, staging_ok, actor="alice")
    m = promotion.start_canary(pinned_store, m.id, 0.5, actor="alice")
    t0 = started(m)
    resolver = Resolver(pinned_store, poll_interval=3600)
    records = []
    for i in range(600):
        r = resolver.resolve("acme", "support", f"s{i}")
        text = '{"answer": "ok"}' if r.route == "pinned" or i % 4 == 0 else "ok, shipped"  # candidate drops JSON
        records.append(
            TrafficRecord(
                tenant_id="acme",
                agent_id="support",
                timestamp=(t0 + timedelta(milliseconds=i + 1)).isoformat(),
                messages=dumps([{"role": "user", "content": f"s{i}"}]),
                response_text=text,
                requested_model=r.litellm_model,
                pinned_model_id="m-1",
                served_model=r.model_id,
            )
        )
    StorageSink(objects).write(records)
    [check] = canary_feed.monitor_all(pinned_store, objects, router=router, now=t0 + timedelta(seconds=5))
    assert check.aborted
    breach = states.get(pinned_store, m.id).details["breach"]["dimensions"]
    assert [d["dimension"] for d in breach] == ["schema_failure"]
    [body] = [r.json() for r in alert_receiver.requests("/canary")]
    assert body["episode"] == f"canary:{m.id}"


# ------------------------------------------------------------------------------------------ sensor


@pytest.fixture
def dagster_env(pinned_store: Store, objects: ObjectStore, tmp_path: Path) -> Iterator[dict[str, Any]]:
    url = pinned_store.engine.url.render_as_string(hide_password=False)
    resources = {"drift_store": DriftStore(database_url=url), "object_storage": ObjectStorage(url=objects.url)}
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        yield {"instance": instance, "resources": resources}


def _tick(env: dict[str, Any], cursor: str | None = None) -> Any:
    with dg.build_sensor_context(instance=env["instance"], cursor=cursor, resources=env["resources"]) as context:
        return canary_monitor_sensor(context)


def test_sensor_skips_without_canary_and_never_counts_twice(
    pinned_store: Store,
    objects: ObjectStore,
    staging_ok: Any,
    dagster_env: dict[str, Any],
    alert_receiver: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = tmp_path / "sensor-alerts.yaml"
    config.write_text(
        yaml.safe_dump(
            {"platform": [{"type": "webhook", "url": alert_receiver.url("/s"), "secret": "s"}], "contact_email": False}
        )
    )
    monkeypatch.setenv("DRIFT_PIPELINE_ALERTS_CONFIG", str(config))
    idle = _tick(dagster_env)
    assert isinstance(idle, dg.SkipReason) and idle.skip_message == NO_CANARY

    m = review.propose(pinned_store, "acme", "support", "m-2", actor="alice")
    review.run_staging(pinned_store, m.id, staging_ok, actor="alice")
    m = promotion.start_canary(pinned_store, m.id, 0.2, actor="alice")
    platform_traffic(pinned_store, objects, sessions=range(600), canary_refuses=0.05, start=started(m))
    first = _tick(dagster_env)
    summary = json.loads(first.cursor)[str(m.id)]
    assert summary["canary"] + summary["pinned"] == 600 and not summary["aborted"] and summary["error"] is None
    before = counts(pinned_store, m.id)
    # Re-evaluated with the same (first) cursor, then with the one it returned: nothing is counted again.
    for cursor in (None, first.cursor):
        _tick(dagster_env, cursor)
        assert counts(pinned_store, m.id) == before

    # Now the candidate starts refusing: the next tick aborts it.
    platform_traffic(
        pinned_store, objects, sessions=range(600, 2400), canary_refuses=0.5, start=started(m) + timedelta(seconds=2)
    )
    last = _tick(dagster_env, first.cursor)
    assert (
        json.loads(last.cursor)[str(m.id)]["aborted"] is True and "aborted migration" in last.skip_reason.skip_message
    )
    assert states.get(pinned_store, m.id).state == "aborted"
    assert [r.json()["episode"] for r in alert_receiver.requests("/s")] == [f"canary:{m.id}"]
    assert isinstance(_tick(dagster_env, last.cursor), dg.SkipReason)


def _frame(records: list[TrafficRecord]) -> Any:
    import pandas as pd

    return pd.DataFrame([r.to_row() for r in records])
