"""Sensors against a real Dagster instance, real stores, a real local OpenAI-compatible server, the real
offline model, and the real local alert receiver."""

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from dagster import DagsterEventType

from drift_pipeline.defs.alerts import sensors as alert_sensors
from drift_pipeline.defs.detection import sensors as detection_sensors
from drift_pipeline.defs.migration import sensors as migration_sensors
from drift_pipeline.defs.resources import DriftStore, ObjectStorage
from drift_pipeline.defs.traffic import sensors as traffic_sensors
from drift_pipeline.defs.versioning import sensors as versioning_sensors
from drift_pipeline.detection import probes
from drift_pipeline.detection.offline import variants
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.objects import ObjectStore
from drift_pipeline.versioning import manifests, registry, tenants
from drift_pipeline_tests.plugins.migration import add_baseline
from drift_pipeline_tests.plugins.providers import FakeOpenAI

OFFLINE = variants.MODEL_ID


@pytest.fixture
def sensor_setup(home: Path, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A migrated SQLite store and local object storage under an isolated home, and a real Dagster instance."""
    store = Store.open(f"sqlite:///{home / 'drift.db'}")
    resources = {
        "drift_store": DriftStore(database_url=f"sqlite:///{home / 'drift.db'}"),
        "object_storage": ObjectStorage(url=str(home / "data")),
    }
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        yield {"store": store, "objects": ObjectStore(str(home / "data")), "instance": instance, "resources": resources}


def tick(sensor: Any, sensor_setup: dict[str, Any], cursor: str | None = None) -> dg.SensorResult:
    context = dg.build_sensor_context(
        instance=sensor_setup["instance"], cursor=cursor, resources=sensor_setup["resources"]
    )
    result = sensor(context)
    assert isinstance(result, dg.SensorResult)
    return result


def keys(result: Any) -> list[str]:
    return sorted(r.run_key for r in result.run_requests or [])


def pin(store: Store, tenant: str, agent: str, model: str) -> None:
    if tenant not in {t.tenant_id for t in tenants.list_tenants(store)}:
        tenants.add_tenant(store, tenant, actor="t")
    manifests.pin(store, tenant, agent, model, actor="t")


# ---------------------------------------------------------------------------------- new model versions


def test_new_version_is_registered_and_family_tenants_replayed_once(
    sensor_setup: dict[str, Any], fake_openai: FakeOpenAI
) -> None:
    store = sensor_setup["store"]
    params = {"api_base": fake_openai.api_base}
    registry.add_version(store, "openai", "llm-2025-06-01", actor="t", litellm_params=params)
    registry.add_version(store, "openai", "other-1", actor="t", litellm_params=params)
    pin(store, "acme", "support", "llm-2025-06-01")
    pin(store, "globex", "bot", "other-1")
    fake_openai.models = ["llm-2025-06-01", "other-1"]
    first = tick(versioning_sensors.new_model_version_sensor, sensor_setup)
    assert not first.run_requests and first.skip_reason  # nothing new: only the cursor is set

    fake_openai.models = ["llm-2025-06-01", "llm-2026-01-01", "other-1"]
    second = tick(versioning_sensors.new_model_version_sensor, sensor_setup, first.cursor)
    assert registry.get_version(store, "llm-2026-01-01").litellm_params == params
    [request] = second.run_requests
    assert request.job_name == "replay_job"
    assert request.partition_key == "acme"
    assert request.tags["drift_pipeline/day"] == datetime.now(UTC).date().isoformat()
    assert request.tags["drift_pipeline/reason"] == "new-version"
    assert request.tags["drift_pipeline/candidates"] == "llm-2026-01-01"
    assert request.tags["drift_pipeline/provider"] == "openai"  # the run queue's per-provider limit keys on it
    # Same cursor again: the same run key (Dagster launches it once); the new cursor: nothing.
    assert keys(tick(versioning_sensors.new_model_version_sensor, sensor_setup, first.cursor)) == keys(second)
    assert not tick(versioning_sensors.new_model_version_sensor, sensor_setup, second.cursor).run_requests
    actors = [e.actor for e in _audit(store) if e.action == "registry.add" and e.subject == "llm-2026-01-01"]
    assert actors == ["sensor:new_model_version"]


def test_alias_move_replays_tenants_on_the_old_version(
    sensor_setup: dict[str, Any], fake_openai: FakeOpenAI, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = sensor_setup["store"]
    monkeypatch.setenv("FAKE_OPENAI_KEY", "sk-test")
    params = {"api_base": fake_openai.api_base, "api_key_env": "FAKE_OPENAI_KEY"}
    registry.add_version(store, "openai", "llm-2025-06-01", actor="t", aliases=["llm-latest"], litellm_params=params)
    pin(store, "acme", "support", "llm-2025-06-01")
    (home / "providers.yaml").write_text(
        yaml.safe_dump([{"provider": "openai", "kind": "openai-compatible", **params, "aliases": ["llm-latest"]}])
    )
    fake_openai.models = ["llm-2025-06-01"]
    fake_openai.serves = {"llm-latest": "llm-2025-06-01"}
    first = tick(versioning_sensors.new_model_version_sensor, sensor_setup)
    assert not first.run_requests

    fake_openai.serves = {"llm-latest": "llm-2026-01-01"}  # the provider moved the alias, silently
    second = tick(versioning_sensors.new_model_version_sensor, sensor_setup, first.cursor)
    assert registry.resolve_alias(store, "llm-latest") == "llm-2026-01-01"
    [request] = second.run_requests
    assert request.tags["drift_pipeline/reason"] == "alias-moved"
    assert request.tags["drift_pipeline/candidates"] == "llm-2026-01-01"
    assert not tick(versioning_sensors.new_model_version_sensor, sensor_setup, second.cursor).run_requests


# ---------------------------------------------------------------------------------- silent change


def test_silent_offline_revision_is_noticed_by_the_probe(sensor_setup: dict[str, Any]) -> None:
    """The real SmolLM2 model: a silent provider variant changes behaviour under the same id and fingerprint.

    Two of the probe prompts keep this test short on a 2-core machine; the sensor uses all of them.
    """
    store, objects = sensor_setup["store"], sensor_setup["objects"]
    prompts = (probes.PROBE_PROMPTS[0], probes.PROBE_PROMPTS[2])
    registry.add_version(store, "offline", OFFLINE, actor="t")
    pin(store, "acme", "support", OFFLINE)
    pin(store, "globex", "bot", OFFLINE)
    add_baseline(store, "bl-acme", "acme", "support", OFFLINE)
    manifests.set_baseline(store, "acme", "support", "bl-acme", actor="t")  # globex has no baseline yet
    first = detection_sensors.silent_change_tick(store, objects, None, prompts=prompts)  # reference + noise floor
    assert not first.run_requests
    fp0 = registry.get_version(store, OFFLINE).fingerprint
    assert fp0 and fp0.startswith("probe-v1:") and fp0.endswith(":r0")
    assert probes.load_reference(objects, OFFLINE).noise_distance == 0.0  # greedy: two probes agree

    variants.set_variant(OFFLINE, "safety-silent", note="staged silent update")
    changed = detection_sensors.silent_change_tick(store, objects, first.cursor, prompts=prompts)
    fp1 = registry.get_version(store, OFFLINE).fingerprint
    assert fp1 != fp0 and fp1.endswith(":r1"), changed.log
    # Only agents with a baseline have anything to replay against.
    assert sorted(r.partition_key for r in changed.run_requests) == ["acme"]
    assert {r.tags["drift_pipeline/reason"] for r in changed.run_requests} == {"silent-change"}
    [entry] = [e for e in _audit(store) if e.action == "model.silent_change"]
    assert entry.after["changed"] and entry.after["distance"] > entry.after["noise_distance"]
    # Idempotent: the old cursor gives the same run keys without probing a change again; the new one nothing.
    assert keys(detection_sensors.silent_change_tick(store, objects, first.cursor, prompts=prompts)) == keys(changed)
    assert not detection_sensors.silent_change_tick(store, objects, changed.cursor, prompts=prompts).run_requests


# ---------------------------------------------------------------------------------- deprecation


@pytest.fixture
def webhook_alerts(alert_receiver: Any, home: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    config = home / "alerts.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "platform": [{"type": "webhook", "url": alert_receiver.url("/drift"), "secret": "s"}],
                "retry": {"backoff_s": 0},
            }
        )
    )
    monkeypatch.setenv("DRIFT_PIPELINE_ALERTS_CONFIG", str(config))
    return alert_receiver


def test_deprecation_notice_timing_and_readiness_replay(sensor_setup: dict[str, Any], webhook_alerts: Any) -> None:
    from drift_pipeline.alerts.channels import load_channel_config
    from drift_pipeline.alerts.router import AlertRouter

    store = sensor_setup["store"]
    registry.add_version(store, "openai", "llm-2025-06-01", actor="t")
    registry.add_version(store, "openai", "llm-2026-01-01", actor="t")
    pin(store, "acme", "support", "llm-2025-06-01")
    pin(store, "acme", "sales", "llm-2025-06-01")
    pin(store, "globex", "bot", "llm-2026-01-01")
    today = date(2026, 3, 1)
    registry.deprecate(
        store, "llm-2025-06-01", sunset=today + timedelta(days=31), successor="llm-2026-01-01", actor="t"
    )
    router = AlertRouter(store, load_channel_config(), actor="sensor:deprecation", sleep=lambda _: None)

    early = migration_sensors.deprecation_tick(store, router, None, days_before=30, today=today)
    assert not early.run_requests and not webhook_alerts.requests()  # 31 days left: too early
    due = migration_sensors.deprecation_tick(
        store, router, early.cursor, days_before=30, today=today + timedelta(days=1)
    )
    [request] = due.run_requests
    assert request.partition_key == "acme" and request.tags["drift_pipeline/day"]
    assert request.tags["drift_pipeline/reason"] == "deprecation-readiness"
    assert request.tags["drift_pipeline/candidates"] == "llm-2026-01-01"
    assert request.tags["drift_pipeline/provider"] == registry.get_version(store, "llm-2026-01-01").provider
    bodies = [r.json() for r in webhook_alerts.requests("/drift")]
    assert sorted(b["agent_id"] for b in bodies) == ["sales", "support"]
    assert {(b["tenant_id"], b["severity"], b["episode"]) for b in bodies} == {
        ("acme", "WARN", "deprecation:llm-2025-06-01")
    }
    again = migration_sensors.deprecation_tick(
        store, router, due.cursor, days_before=30, today=today + timedelta(days=2)
    )
    assert not again.run_requests and len(webhook_alerts.requests("/drift")) == 2  # once per tenant and version


def test_deprecation_sensor_runs_in_dagster(sensor_setup: dict[str, Any], webhook_alerts: Any) -> None:
    store = sensor_setup["store"]
    registry.add_version(store, "openai", "llm-2025-06-01", actor="t")
    pin(store, "acme", "support", "llm-2025-06-01")
    registry.deprecate(store, "llm-2025-06-01", sunset=datetime.now(UTC).date() + timedelta(days=5), actor="t")
    result = tick(migration_sensors.deprecation_sensor, sensor_setup)
    assert not result.run_requests  # no successor registered: notice only
    [body] = [r.json() for r in webhook_alerts.requests("/drift")]
    assert "no successor is registered" in body["summary"]
    assert json.loads(result.cursor) == {"notified": ["llm-2025-06-01|acme|support"]}


# ---------------------------------------------------------------------------------- new tenants


def test_new_tenants_get_partitions_and_a_first_run(sensor_setup: dict[str, Any]) -> None:
    store, objects, instance = sensor_setup["store"], sensor_setup["objects"], sensor_setup["instance"]
    registry.add_version(store, "offline", OFFLINE, actor="t")
    pin(store, "acme", "support", OFFLINE)
    tenants.add_tenant(store, "globex", actor="t")  # no manifest yet
    objects.write_json("traffic/tenant=initech/day=2026-01-01/_commits/x.json", {})
    result = tick(traffic_sensors.new_tenants_sensor, sensor_setup)
    [add] = result.dynamic_partitions_requests
    assert add.partitions_def_name == "tenants" and sorted(add.partition_keys) == ["acme", "globex", "initech"]
    day = datetime.now(UTC).date().isoformat()
    assert {r.tags["drift_pipeline/day"] for r in result.run_requests} == {day}
    assert {r.job_name for r in result.run_requests} == {"nightly_drift_job"}
    # acme has a manifest: its whole chain; globex and initech (consecutive new partitions) share a run
    # that only samples their traffic.
    acme, others = result.run_requests
    assert acme.partition_key == "acme" and acme.asset_selection is None
    assert others.run_key == f"first-run:{day}:globex..initech"
    assert others.asset_selection == [dg.AssetKey("sampled_inputs")]
    assert keys(tick(traffic_sensors.new_tenants_sensor, sensor_setup, result.cursor)) == keys(
        result
    )  # not applied yet: same keys
    instance.add_dynamic_partitions("tenants", list(add.partition_keys))  # what the daemon does
    assert not tick(traffic_sensors.new_tenants_sensor, sensor_setup, result.cursor).run_requests


# ---------------------------------------------------------------------------------- alerts


@dg.asset(name="drift_report")
def stand_in_report() -> int:
    return 1


def _alert_entry(severity: str) -> dict[str, Any]:
    return {
        "tenant_id": "acme",
        "agent_id": "support",
        "episode": "offline/x@bl-1",
        "severity": severity,
        "summary": f"{severity} refusal moved",
        "report_uri": "file:///r.json",
        "dimensions": ["refusal"],
    }


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec("drift_within_threshold", asset="drift_report"),  # ERROR, not blocking: like checks.py
        dg.AssetCheckSpec("equivalence_shown", asset="drift_report"),
    ]
)
def stand_in_checks(context: dg.AssetCheckExecutionContext) -> Iterator[dg.AssetCheckResult]:
    """Emits exactly the lead's check metadata contract; the run tag `outcome` picks breach, near-miss or clean."""
    outcome = context.run.tags["outcome"]
    for name, severity, fails in (
        ("drift_within_threshold", "ERROR", outcome == "breach"),
        ("equivalence_shown", "WARN", outcome == "near-miss"),
    ):
        yield dg.AssetCheckResult(
            check_name=name,
            asset_key="drift_report",
            passed=not fails,
            severity=dg.AssetCheckSeverity.ERROR if severity == "ERROR" else dg.AssetCheckSeverity.WARN,
            metadata={
                "tenant_id": "acme",
                "alerts": dg.MetadataValue.json([_alert_entry(severity)] if fails else []),
                "thresholds": json.dumps({"support": 0.05}),
            },
        )


def _run(sensor_setup: dict[str, Any], outcome: str) -> tuple[dg.RunStatusSensorContext, str]:
    result = dg.materialize(
        [stand_in_report, stand_in_checks],
        instance=sensor_setup["instance"],
        tags={"outcome": outcome},
        raise_on_error=False,
    )
    run = sensor_setup["instance"].get_run_by_id(result.run_id)
    event_type = DagsterEventType.RUN_SUCCESS if result.success else DagsterEventType.RUN_FAILURE
    [record] = sensor_setup["instance"].all_logs(result.run_id, of_type=event_type)
    context = dg.build_run_status_sensor_context(
        sensor_name="s",
        dagster_event=record.dagster_event,
        dagster_instance=sensor_setup["instance"],
        dagster_run=run,
        resources=sensor_setup["resources"],
    )
    return context, ("success" if result.success else "failure")


def test_failed_checks_alert_the_real_receiver_and_a_pass_resolves(
    sensor_setup: dict[str, Any], webhook_alerts: Any
) -> None:
    clean, status = _run(sensor_setup, "clean")
    assert status == "success"
    alert_sensors.drift_check_alerts(clean)
    assert webhook_alerts.requests() == []  # a passed check sends nothing

    breach, status = _run(sensor_setup, "breach")
    assert status == "success"  # a drift is a finding, not a crash: the run succeeds and the ERROR check alerts
    alert_sensors.drift_check_alerts(breach)
    [trigger] = [r.json() for r in webhook_alerts.requests("/drift")]
    assert (trigger["event"], trigger["tenant_id"], trigger["agent_id"], trigger["severity"]) == (
        "drift.trigger",
        "acme",
        "support",
        "ERROR",
    )
    alert_sensors.drift_check_alerts(breach)  # a re-delivered run event: deduplicated
    assert len(webhook_alerts.requests("/drift")) == 1

    near, status = _run(sensor_setup, "near-miss")
    assert status == "success"  # a failed non-blocking check does not fail its run
    summary = alert_sensors.alerts_for_run(sensor_setup["instance"], near.dagster_run.run_id, _router(sensor_setup))
    # Inconclusive (a near miss) shows on the WARN check but is not an incident: nothing is sent.
    assert (
        summary.notified == 0 and summary.resolved == 0 and summary.outcomes == ["acme/support WARN: not an incident"]
    )
    assert len(webhook_alerts.requests("/drift")) == 1

    # A canary abort is not a drift episode: a passing drift check must not close it.
    from drift_pipeline.alerts.events import DriftEvent

    _router(sensor_setup).notify(DriftEvent("acme", "support", "canary:7", "ERROR", "canary aborted"))
    clean_again, _ = _run(sensor_setup, "clean")
    alert_sensors.drift_check_alerts(clean_again)
    events = [r.json()["event"] for r in webhook_alerts.requests("/drift")]
    assert events[-1] == "drift.resolve"
    assert [i.payload["episode"] for i in _router(sensor_setup).open_incidents("acme")] == ["canary:7"]


def _router(sensor_setup: dict[str, Any]) -> Any:
    from drift_pipeline.alerts.channels import load_channel_config
    from drift_pipeline.alerts.router import AlertRouter

    return AlertRouter(sensor_setup["store"], load_channel_config(), actor="test", sleep=lambda _: None)


def _audit(store: Store) -> list[Any]:
    from sqlalchemy import select

    from drift_pipeline.persistence.tables import AuditEntry

    with store.session() as session:
        return list(session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars())
