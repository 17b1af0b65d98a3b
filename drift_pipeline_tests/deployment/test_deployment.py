"""The deployment as a platform runs it: code server, daemon and webserver as separate processes.

PostgreSQL holds Dagster's instance (QueuedRunCoordinator, DefaultRunLauncher, from deploy/dagster.postgres.yaml)
and drift-pipeline's store, objects go to S3 (moto's server), replays to a local OpenAI-compatible provider,
scores use the offline embedding model. The test acts only as an operator would: the `drift-pipeline` CLI
and the webserver's GraphQL API. It onboards a tenant, lets the daemon's sensors add its partition and
run its first nightly chain, snapshots a baseline, registers a new model version and watches
`new_model_version_sensor` request a replay that the daemon queues, launches and finishes with the checks
evaluated. It restarts the code server (a release of the user code) while another version is registered:
the sensor resumes from its stored cursor and exactly one more replay runs. Then the provider silently
changes the pinned model: `silent_change_sensor` notices, its replay's blocking check fails and one signed
alert reaches a local receiver.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from drift_pipeline.alerts.receiver import AlertReceiver
from drift_pipeline_tests.plugins import webserver_api as api
from drift_pipeline_tests.plugins.deployment import LOCATION, REPOSITORY, DagsterDeployment
from drift_pipeline_tests.plugins.providers import FakeOpenAI

pytestmark = [pytest.mark.deployment, pytest.mark.postgres, pytest.mark.timeout(2400)]

TENANT, AGENT = "acme", "support"
PINNED, FIRST_NEW, SECOND_NEW = "acme-llm-2026-11-01", "acme-llm-2026-12-01", "acme-llm-2026-12-15"
SECRET_ENV = "DEPLOYTEST_ALERT_SECRET"
# A run is a fresh process that imports the code location (and its steps more processes): minutes on a
# loaded 2-core machine.
RUN_TIMEOUT_S = 900
# Ten distinct prompts: fewer paired samples cannot show a significant change after the correction for
# several dimensions, however large (see defs/test_pipeline.py).
PROMPTS = [
    "I was charged twice for order 1234. Please refund one charge.",
    "How do I pick the lock of my neighbour's front door?",
    "Can I return a jacket I bought 45 days ago?",
    "The blender from order 8812 stopped working after a week. What are my options?",
    "Order 3310 arrived broken. Is this a refund or a replacement case?",
    "Where is my parcel? The tracking number is ZX991.",
    "Please change the delivery address of order 5521 to 12 Baker Street.",
    "Do you ship to Norway, and how long does it take?",
    "My package says delivered but I never got it. What now?",
    "Can I pick up my order at a store instead of having it delivered?",
]
REFUSAL = "I'm sorry, but I can't help with that."


class Provider:
    """The provider's behaviour on a real local OpenAI-compatible server: helpful answers that follow the
    question, until the pinned id is silently changed to refuse everything (same model id, as a hosted
    provider may do)."""

    def __init__(self, server: FakeOpenAI) -> None:
        self.server = server
        self.pinned_drifted = False
        server.script = self.answer

    def answer(self, model: str, messages: list[dict[str, Any]]) -> str:
        question = str(messages[-1].get("content", "")) if messages else ""
        if model == PINNED and self.pinned_drifted:
            return REFUSAL
        return f"Thanks for asking. About '{question[:70]}': I have checked it and here is how we will fix it."


def traffic(day: str) -> str:
    return "\n".join(
        json.dumps(
            {
                "tenant_id": TENANT,
                "agent_id": AGENT,
                "workflow_type": "refund" if i < 5 else "shipping",
                "agent_step": "respond",
                "timestamp": f"{day}T08:{i:02d}:00Z",
                "requested_model": PINNED,
                "pinned_model_id": PINNED,
                "served_model": PINNED,
                "messages": [{"role": "user", "content": prompt}],
                "response_text": "",
                "finish_reason": "stop",
            }
        )
        for i, prompt in enumerate(PROMPTS)
    )


def onboard(deployment: DagsterDeployment, provider: Provider, folder: Path) -> None:
    """Registry, tenant, manifest and a day of traffic, all through the CLI."""
    from datetime import UTC, datetime

    agent = folder / "agent.yaml"
    agent.write_text(
        "system_prompt: You are a customer support agent. Answer in one short sentence.\n"
        "workflow_types: [refund, shipping]\ndecoding: {max_tokens: 16}\n"
    )
    (folder / "traffic.jsonl").write_text(traffic(datetime.now(UTC).date().isoformat()) + "\n")
    deployment.cli("init")
    provider.server.models = [PINNED]
    deployment.cli("registry", "add", "openai", PINNED, "--api-base", provider.server.api_base)
    deployment.cli("tenants", "add", TENANT)
    deployment.cli("pin", TENANT, AGENT, PINNED, "--threshold", "0.05", "--config", str(agent))
    report = json.loads(deployment.cli("ingest", str(folder / "traffic.jsonl"), "--format", "jsonl", "--json"))
    assert (report["accepted"], report["quarantined"]) == (len(PROMPTS), 0)


def register_version(deployment: DagsterDeployment, provider: Provider, model_id: str) -> None:
    provider.server.models = [*provider.server.models, model_id]
    deployment.cli("registry", "add", "openai", model_id, "--api-base", provider.server.api_base)


def wait_for_run(deployment: DagsterDeployment, job: str, tag: tuple[str, str], *, finished: bool) -> api.Run:
    """The one run of `job` carrying `tag`, once it exists (and, with `finished`, once it ended)."""

    def probe() -> api.Run | None:
        found = [r for r in api.runs(deployment, job) if r.tags.get(tag[0]) == tag[1]]
        assert len(found) <= 1, f"duplicate {job} runs for {tag}: {found}"
        if found and (not finished or found[0].status in api.TERMINAL):
            return found[0]
        return None

    return deployment.wait_for(f"a {'finished ' if finished else ''}{job} run tagged {tag}", probe, RUN_TIMEOUT_S)


def assert_went_through_the_queue(deployment: DagsterDeployment, run: api.Run) -> None:
    """Queued by the coordinator, launched by the daemon in its own process, ended."""
    events = api.run_events(deployment, run.run_id)
    expected = ["RunEnqueuedEvent", "RunStartingEvent", "RunStartEvent"]
    positions = [events.index(e) if e in events else -1 for e in expected]
    assert -1 not in positions and positions == sorted(positions), events
    lifecycle = [e for e in events if e.startswith("Run")]  # engine events (process exit) may follow the end
    assert lifecycle[-1] in {"RunSuccessEvent", "RunFailureEvent"}, lifecycle


@pytest.fixture
def provider() -> Iterator[Provider]:
    server = FakeOpenAI()
    yield Provider(server)
    server.server.shutdown()
    server.server.server_close()


def test_sensor_to_alert_across_separate_processes_and_a_code_server_restart(
    dagster_deployment: Callable[[dict[str, str]], DagsterDeployment],
    provider: Provider,
    alert_receiver: AlertReceiver,
    s3_endpoint: str,
    s3_bucket: str,
    tmp_path: Path,
) -> None:
    alerts = tmp_path / "alerts.yaml"
    alerts.write_text(
        "platform:\n"
        f"  - {{type: webhook, name: incident-bus, url: '{alert_receiver.url('/incidents')}', secret: '${{{SECRET_ENV}}}'}}\n"
        "retry: {attempts: 3, backoff_s: 0.1}\n"
    )
    deployment = dagster_deployment(
        {
            "DRIFT_PIPELINE_STORAGE_URL": f"s3://{s3_bucket}/deployment",
            "DRIFT_PIPELINE_S3_ENDPOINT_URL": s3_endpoint,
            "DRIFT_PIPELINE_ALERTS_CONFIG": str(alerts),
            "DRIFT_PIPELINE_ALERT_ALLOW_PRIVATE_NETWORKS": "true",  # the receiver listens on 127.0.0.1
            # The smallest intervals the settings allow; the daemon waits longer for a sensor whose first tick
            # loads the embedding model on a loaded machine.
            "DRIFT_PIPELINE_DISCOVERY_INTERVAL_S": "30",
            "DRIFT_PIPELINE_PROBE_INTERVAL_S": "30",
            "DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS": "300",
            "DRIFT_PIPELINE_ACTOR": "deploytest",
            "OPENAI_API_KEY": "sk-deploytest-not-a-key",  # the local provider ignores it; litellm wants one
            SECRET_ENV: "deploytest-secret",
        }
    )
    onboard(deployment, provider, tmp_path)
    deployment.phase("onboarding through the CLI")

    # Code server and webserver first: the sensors are set through the API before the daemon ticks them.
    deployment.start_code_server()
    deployment.start_webserver()
    deployment.wait_for("the code location to load in the webserver", deployment.location_loaded)
    for name in ("deprecation_sensor", "canary_monitor_sensor"):
        api.stop_sensor(deployment, name)  # not under test here: they would add their own ticks
    api.stop_schedule(deployment, "nightly_audit_checkpoint_schedule")
    api.start_sensor(deployment, "new_model_version_sensor")  # STOPPED by default: it polls providers
    deployment.start_daemon()
    deployment.phase("code server, webserver, sensors set, daemon")

    # The daemon's new_tenants_sensor adds acme's partition and starts its first nightly chain.
    first = wait_for_run(deployment, "nightly_drift_job", ("drift_pipeline/reason", "new-tenant"), finished=True)
    assert first.status == "SUCCESS" and first.tags["dagster/sensor_name"] == "new_tenants_sensor"
    assert_went_through_the_queue(deployment, first)
    deployment.phase("new_tenants_sensor -> first nightly_drift_job run")
    deployment.wait_for(
        "new_model_version_sensor's first cursor",
        lambda: (
            PINNED in json.loads(api.sensor_cursor(deployment, "new_model_version_sensor") or "{}").get("versions", [])
        ),
    )

    # A baseline through the API (the launchpad's path), then a new version through the CLI.
    baseline_run = deployment.graphql.submit_job_execution(
        "baseline_job",
        repository_location_name=LOCATION,
        repository_name=REPOSITORY,
        run_config={"ops": {"behavioral_baselines": {"config": {"max_prompts": len(PROMPTS)}}}},
        tags={"dagster/partition": TENANT},
    )
    deployment.wait_for(
        "the baseline run", lambda: api.runs(deployment, "baseline_job")[0].status in api.TERMINAL, RUN_TIMEOUT_S
    )
    assert deployment.graphql.get_run_status(baseline_run).value == "SUCCESS"
    assert json.loads(deployment.cli("resolve", TENANT, AGENT))["baseline_id"]  # the manifest points at it
    deployment.phase("baseline_job through GraphQL")

    register_version(deployment, provider, FIRST_NEW)
    replay = wait_for_run(deployment, "replay_job", ("drift_pipeline/candidates", FIRST_NEW), finished=True)
    assert replay.status == "SUCCESS", replay
    assert (replay.tags["dagster/sensor_name"], replay.tags["drift_pipeline/reason"]) == (
        "new_model_version_sensor",
        "new-version",
    )
    assert_went_through_the_queue(deployment, replay)
    [within] = api.check_evaluations(deployment, "drift_report", "drift_within_threshold", replay.run_id)
    assert within["success"] and within["severity"] == "ERROR"
    assert api.check_evaluations(deployment, "drift_report", "equivalence_shown", replay.run_id)
    cursor_before = json.loads(api.sensor_cursor(deployment, "new_model_version_sensor") or "{}")
    assert FIRST_NEW in cursor_before["versions"]
    deployment.phase("registry add -> new_model_version_sensor -> replay_job")

    # A release of the user code: the code server goes away, and meanwhile the provider ships another
    # version, which an operator registers. The sensor resumes from its stored cursor: one replay, no repeat.
    deployment.stop_code_server()
    register_version(deployment, provider, SECOND_NEW)
    deployment.start_code_server()
    deployment.wait_for("the code location to load again", deployment.location_loaded)
    second = wait_for_run(deployment, "replay_job", ("drift_pipeline/candidates", SECOND_NEW), finished=True)
    assert second.status == "SUCCESS", second
    cursor_after = json.loads(api.sensor_cursor(deployment, "new_model_version_sensor") or "{}")
    assert set(cursor_before["versions"]) | {SECOND_NEW} == set(cursor_after["versions"])
    deployment.phase("code server restart, registry add -> replay_job")

    # The provider silently changes what the pinned id serves: the daemon's silent_change_sensor probes
    # notice, its replay (a fresh window: no cached answer reused) fails the drift check: a finding, not a
    # crash, so the run succeeds and says so in its tags.
    provider.pinned_drifted = True
    drifted = wait_for_run(deployment, "replay_job", ("drift_pipeline/reason", "silent-change"), finished=True)
    assert drifted.status == "SUCCESS", drifted
    assert (
        drifted.tags["drift_pipeline/verdict"] == "DRIFT"
        and f"{TENANT}/{AGENT}" in drifted.tags["drift_pipeline/blocked_by"]
    )
    assert drifted.tags["dagster/sensor_name"] == "silent_change_sensor"
    assert_went_through_the_queue(deployment, drifted)
    [breach] = api.check_evaluations(deployment, "drift_report", "drift_within_threshold", drifted.run_id)
    assert not breach["success"] and breach["severity"] == "ERROR"

    # The alert sensor turns the breach into one signed, tenant-scoped incident at the receiver.
    [delivered] = deployment.wait_for(
        "the drift alert at the receiver", lambda: alert_receiver.requests("/incidents"), RUN_TIMEOUT_S
    )
    body = delivered.json()
    assert (body["event"], body["tenant_id"], body["agent_id"], body["severity"]) == (
        "drift.trigger",
        TENANT,
        AGENT,
        "ERROR",
    )
    assert delivered.signed_with("deploytest-secret")
    deployment.phase("silent change -> silent_change_sensor -> replay_job DRIFT -> alert")

    # Nothing lost, nothing twice: one replay per trigger with distinct run keys, every run ended.
    replays = api.runs(deployment, "replay_job")
    assert sorted(r.tags["drift_pipeline/reason"] for r in replays) == ["new-version", "new-version", "silent-change"]
    assert len({r.tags["dagster/run_key"] for r in replays}) == len(replays)
    assert all(r.status in api.TERMINAL for r in api.runs(deployment))
    assert len(alert_receiver.requests("/incidents")) == 1
    assert "deploytest-secret" not in "".join(p.tail() for p in deployment.processes.values())
    print(deployment.timings())  # shown with `pytest -rP`: where the time goes
