"""The main job on the embedded default: the whole story, end to end, on the offline model.

Register an exact model version, pin three tenants' agents to it, ingest their traffic (with some bad
records), then in Dagster: sample, snapshot baselines, replay and score nightly (no drift), stage a
*silent* provider-side update of the offline model, let the sensor notice it, replay and score again
(drift), fail the check and deliver a tenant-scoped alert. Re-running it replays the story.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from rich.console import Console
from rich.table import Table

from drift_pipeline import files
from drift_pipeline.config import Settings
from drift_pipeline.detection.offline import provider as offline_provider
from drift_pipeline.detection.offline import variants
from drift_pipeline.errors import RefusedError
from drift_pipeline.persistence import audit
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.objects import ObjectStore
from drift_pipeline.versioning import manifests, registry, tenants

if TYPE_CHECKING:
    from drift_pipeline.alerts.channels import ChannelConfig
    from drift_pipeline.alerts.receiver import AlertReceiver
    from drift_pipeline.defs.demo.launch import Launcher

DATA = Path(__file__).resolve().parent / "data"
ACTOR = "demo"
MODEL = variants.MODEL_ID
TENANTS = {
    "acme": {
        "contact": "ml-oncall@acme.example",
        "regulated": True,
        "agents": {"support": "acme-support", "extractor": "acme-extractor"},
    },
    "globex": {"contact": "platform@globex.example", "regulated": False, "agents": {"assistant": "globex-assistant"}},
    "initech": {"contact": None, "regulated": False, "consent": False, "agents": {"helpdesk": "initech-helpdesk"}},
}
SILENT_VARIANT = "safety-silent"
DEMO_SECRET = "demo-secret"


@dataclass
class DemoResult:
    ingest: dict[str, Any] = field(default_factory=dict)
    runs: list[str] = field(default_factory=list)
    checks: dict[str, bool] = field(default_factory=dict)
    reports: list[str] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    evidence_bundle: Path | None = None


def setup_registry_and_manifests(store: Store) -> None:
    """Register the offline model as an exact version and pin every demo agent to it (idempotent)."""
    if MODEL not in {v.model_id for v in registry.list_versions(store)}:
        registry.add_version(
            store,
            offline_provider.PROVIDER,
            MODEL,
            aliases=["smollm2"],
            fingerprint=variants.get_variant("base").fingerprint,
            actor=ACTOR,
            reason="demo: the in-process offline model",
        )
    known = {t.tenant_id for t in tenants.list_tenants(store)}
    for tenant_id, spec in TENANTS.items():
        if tenant_id not in known:
            tenants.add_tenant(
                store,
                tenant_id,
                contact=spec["contact"],
                regulated=spec["regulated"],
                sampling_consent=spec.get("consent", True),
                actor=ACTOR,
            )
        for agent_id, config in spec["agents"].items():
            if agent_id not in tenants.known_agents(store).get(tenant_id, set()):
                agent = manifests.AgentConfig.from_file(DATA / "agents" / f"{config}.yaml")
                manifests.pin(
                    store,
                    tenant_id,
                    agent_id,
                    MODEL,
                    threshold=0.05,
                    config=agent,
                    actor=ACTOR,
                    reason="demo onboarding",
                )


def write_traffic(folder: Path, days: list[str]) -> Path:
    """Synthetic traffic for `days` from data/demo/traffic.yaml, plus a few malformed records."""
    templates = yaml.safe_load((DATA / "traffic.yaml").read_text(encoding="utf-8"))
    lines = []
    for d, day in enumerate(days):
        for tenant_id, agents in templates.items():
            for agent_id, prompts in agents.items():
                for i, (workflow, step, text) in enumerate(prompts):
                    for n in range(2):
                        stamp = f"{day}T{8 + i:02d}:{10 * n + d:02d}:00Z"
                        lines.append(
                            json.dumps(
                                _record(tenant_id, agent_id, workflow, step, text.format(n=100 + 7 * i + n + d), stamp)
                            )
                        )
    lines += [
        '{"tenant_id": "acme", "agent_id": "support", "messages": [',  # truncated JSON
        json.dumps(_record("acme", "ghost-agent", "refund", "respond", "Who am I?", f"{days[-1]}T12:00:00Z")),
        json.dumps(
            {
                k: v
                for k, v in _record(
                    "acme", "support", "refund", "respond", "No tenant", f"{days[-1]}T12:01:00Z"
                ).items()
                if k != "tenant_id"
            }
        ),
    ]
    path = folder / "traffic.jsonl"
    files.write_private(path, ("\n".join(lines) + "\n").encode("utf-8"))  # raw traffic: owner-only
    return path


def _record(tenant_id: str, agent_id: str, workflow: str, step: str, text: str, stamp: str) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "agent_id": agent_id,
        "workflow_type": workflow,
        "agent_step": step,
        "timestamp": stamp,
        "requested_model": "smollm2",
        "pinned_model_id": MODEL,
        "served_model": MODEL,
        "messages": [{"role": "user", "content": text}],
        "response_text": "",
        "finish_reason": "stop",
    }


def run(console: Console, *, on_step: Callable[[str], None] | None = None) -> DemoResult:
    """Run the story; returns what happened for the summary and the tests."""
    import dagster as dg

    from drift_pipeline.alerts.receiver import AlertReceiver
    from drift_pipeline.defs.demo.launch import code_location
    from drift_pipeline.traffic.ingest.run import ingest_with_store

    step = on_step or (lambda text: console.rule(f"[bold]{text}"))
    result = DemoResult()
    settings = Settings.from_env()
    store, objects = Store.open(), ObjectStore.from_settings()
    variants.set_variant(MODEL, "base", note="demo start: the model as validated")

    step("1/6  Registry, tenants and manifests")
    setup_registry_and_manifests(store)
    console.print(
        f"  {MODEL} registered; pinned: "
        + ", ".join(f"{m.tenant_id}/{m.agent_id}" for m in manifests.list_current(store))
    )

    step("2/6  Traffic ingestion (bad records are quarantined, never dropped)")
    today = datetime.now(UTC).date()
    days = [(today - timedelta(days=1)).isoformat(), today.isoformat()]
    report = ingest_with_store(str(write_traffic(settings.home / "demo", days)), objects, store, fmt="jsonl")
    result.ingest = report.to_dict()
    console.print(
        f"  read {report.read}, accepted {report.accepted}, quarantined {report.quarantined} {dict(report.reasons)}"
    )

    instance = dg.DagsterInstance.get()
    tenants = sorted(TENANTS)
    instance.add_dynamic_partitions("tenants", [t for t in tenants if not instance.has_dynamic_partition("tenants", t)])
    receiver = AlertReceiver(settings.home / "demo" / "alerts")
    try:
        with code_location(instance) as launcher:
            _dagster_story(console, step, launcher, result, days, receiver)
    finally:
        receiver.close()
    result.reports = sorted(
        objects.uri(f"reports/tenant={t}/day={days[-1]}")
        for t in tenants
        if objects.list_names(f"reports/tenant={t}/day={days[-1]}")
    )
    verified = audit.verify(store, objects)
    if not verified.ok:
        raise RefusedError(f"audit log fails verification: {verified.problem}")
    console.print(f"  audit log: {verified.checked} entries, hash chain intact")
    _anchor_audit_log(console, store, objects, settings.home / "demo", tenants[0])
    result.evidence_bundle = evidence_for_tenant(store, objects, settings.home / "demo", "acme", "support")
    console.print(
        f"  evidence bundle for acme/support, verified offline: {result.evidence_bundle} "
        f"(a tenant runs: drift-pipeline evidence verify BUNDLE --public-key {settings.home / 'demo' / 'audit.pub.pem'})"
    )
    return result


# Expected findings (a DRIFT check is red, its run tagged, not failed) are shown in the tables; a real
# step failure still stops the demo with its error. The jobs run in process (defs/detection/jobs.py): the
# model loads once per run, not per step.
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def _dagster_story(
    console: Console,
    step: Callable[[str], None],
    launcher: Launcher,
    result: DemoResult,
    days: list[str],
    receiver: AlertReceiver,
) -> None:
    """Steps 3-6: named jobs launched on the instance against the code location, as the schedule and sensors do."""
    import dagster as dg

    from drift_pipeline.alerts.router import AlertRouter
    from drift_pipeline.defs.alerts.sensors import alerts_for_run
    from drift_pipeline.defs.detection.jobs import baseline_job, nightly_drift_job, sampling_job
    from drift_pipeline.defs.detection.schedules import nightly_requests
    from drift_pipeline.defs.detection.sensors import silent_change_tick
    from drift_pipeline.defs.partitions import day_tags, key

    store, objects = Store.open(), ObjectStore.from_settings()
    tenants = sorted(TENANTS)

    def execute(requests: list[dg.RunRequest]) -> list[str]:
        finished = launcher.run_all([r.with_replaced_attrs(run_config=QUIET) for r in requests])
        for run in finished:
            result.runs.append(run.run_id)
            if run.error:  # a failed drift check is a finding; a failed step is a bug to show, not to hide
                raise RefusedError(f"Dagster run {run.run_id} failed in {run.error}")
            result.checks.update(run.checks)
        return [run.run_id for run in finished]

    step("3/6  Dagster: sampling_job, stratified and anonymised samples per tenant and day")
    execute(
        [
            dg.RunRequest(job_name=sampling_job.name, partition_key=key(t), tags=day_tags(d))
            for t in tenants
            for d in days
        ]
    )
    console.print("  initech has no sampling consent: its partitions materialize empty, with the reason in metadata")

    step("4/6  Dagster: baseline_job, behavioural baselines (pinned model replayed twice: responses + noise floor)")
    execute([dg.RunRequest(job_name=baseline_job.name, partition_key=key(t), tags=day_tags(days[-1])) for t in tenants])
    for m in manifests.list_current(store):
        console.print(
            f"  {m.tenant_id}/{m.agent_id}: baseline {m.behavioral_baseline_id or '[dim]none (no consent)[/dim]'}"
        )

    step(
        "5/6  nightly_drift_job: sample -> shadow replay -> divergence scores -> drift report -> GX checks (expect: no drift)"
    )
    router = AlertRouter(store, _demo_channels(receiver), actor="sensor:drift_check_alerts")
    # The nightly schedule's own run requests, for today's traffic so far rather than yesterday's.
    # One run per tenant (shards of one): three tenants do not need range runs, and each shows on its own.
    nightly = [
        r.with_replaced_attrs(job_name=nightly_drift_job.name) for r in nightly_requests(tenants, days[-1], size=1)
    ]
    for run_id in execute(nightly):
        alerts_for_run(launcher.instance, run_id, router)  # resolves incidents of earlier demo runs
    _print_checks(console, result, days[-1])
    console.print(
        "  silent-change probe: measuring the logprob tripwire (3 runs) and the reference answers with their"
        " noise floor (two text probes)"
    )
    cursor = silent_change_tick(store, objects, None).cursor

    step(
        f"6/6  Silent provider update ({SILENT_VARIANT}: same model id, same fingerprint) -> sensor -> replay_job -> alert"
    )
    variants.set_variant(MODEL, SILENT_VARIANT, note="demo: staged silent update")
    result.checks.clear()
    tick = silent_change_tick(store, objects, cursor)
    for line in tick.log:
        console.print(f"  sensor: {line}")
    for run_id in execute(tick.run_requests):
        alerts_for_run(launcher.instance, run_id, router)
    _print_checks(console, result, days[-1])
    for alert in receiver.requests("/incidents"):
        body = alert.json()
        result.alerts.append(body)
        summary = (str(body.get("summary") or "").splitlines() or [""])[0][:140]
        console.print(
            f"  [red]ALERT {body.get('severity', '')}[/red] {body.get('tenant_id')}/{body.get('agent_id')}: "
            f"{summary} [dim](HMAC-signed webhook to {receiver.url('/incidents')})[/dim]"
        )


def _anchor_audit_log(console: Console, store: Store, objects: ObjectStore, folder: Path, tenant_id: str) -> None:
    """Sign a checkpoint and write one tenant's proof bundle, then check it offline as the tenant would."""
    from drift_pipeline.persistence import audit_proofs, checkpoints

    cp = checkpoints.create(store, objects)
    bundle_path, key_path = folder / f"audit-{tenant_id}.json", folder / "audit.pub.pem"
    audit_proofs.write_bundle(audit_proofs.tenant_proof_bundle(store, tenant_id, objects=objects), bundle_path)
    files.write_private(key_path, checkpoints.public_pem(checkpoints.load_signing_key().public_key()))
    problems = audit_proofs.verify_tenant_bundle(audit_proofs.read_bundle(bundle_path), [key_path.read_bytes()])
    if problems:
        raise RefusedError(f"the demo's audit proof bundle fails verification: {problems[0]}")
    console.print(
        f"  audit checkpoint: tree size {cp.tree_size}, signed (key {cp.key_id[:12]}...); {tenant_id}'s proof bundle: "
        f"drift-pipeline audit verify-export {bundle_path} --public-key {key_path}"
    )


def evidence_for_tenant(store: Store, objects: ObjectStore, folder: Path, tenant_id: str, agent_id: str) -> Path:
    """Write today's evidence bundle of a tenant agent and check it the way the tenant would: offline,
    against the published audit key."""
    from drift_pipeline.migration import evidence, evidence_bundle
    from drift_pipeline.persistence import checkpoints

    since = datetime.now(UTC) - timedelta(days=30)
    data = evidence.build(store, tenant_id, agent_id, since, objects=objects)
    bundle = folder / f"evidence-{tenant_id}-{agent_id}-{datetime.now(UTC).strftime('%Y%m%dt%H%M%S%f')}"
    evidence_bundle.write_from_store(store, bundle, data, objects)
    key = checkpoints.public_pem(checkpoints.load_signing_key().public_key())
    files.write_private(folder / "audit.pub.pem", key)  # the key a tenant gets out of band
    problems = evidence_bundle.verify_offline(bundle, [key])
    if problems:
        raise RefusedError(f"the demo's evidence bundle does not verify: {problems[0]}")
    return bundle


def _demo_channels(receiver: AlertReceiver) -> ChannelConfig:
    """The local receiver standing in for the platform's incident system: a signed webhook and Slack."""
    from drift_pipeline.alerts.channels import ChannelConfig
    from drift_pipeline.alerts.outbound import OutboundPolicy

    # The demo's receiver listens on 127.0.0.1: the demo allows that address itself, no setting is relaxed.
    return ChannelConfig.from_dict(
        {
            "platform": [
                {"type": "webhook", "name": "incident-bus", "url": receiver.url("/incidents"), "secret": DEMO_SECRET},
                {"type": "slack", "webhook_url": receiver.url("/slack")},
            ],
            "retry": {"attempts": 3, "backoff_s": 0.1},
        },
        outbound=OutboundPolicy(allowed_hosts=(), allow_private_networks=True),
    )


def _print_checks(console: Console, result: DemoResult, day: str) -> None:
    table = Table("check", "partition", "result")
    for name, passed in sorted(result.checks.items()):
        check, partition = name.split("[", 1)
        if passed:
            outcome = "[green]passed[/green]"
        elif check == "equivalence_shown":  # WARN: inconclusive, not an incident
            outcome = "[yellow]INCONCLUSIVE (WARN)[/yellow]"
        else:
            outcome = "[red]DRIFT (ERROR)[/red]"
        table.add_row(check, partition.rstrip("]"), outcome)
    console.print(table)
