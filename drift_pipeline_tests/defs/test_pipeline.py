"""The main job's story end to end in Dagster, with the real offline model and the real embedder.

Registry + manifests -> ingest -> `sampled_inputs` (per tenant, the day in a run tag) -> `behavioral_baselines` -> `replay_job`
(checks pass) -> a silent provider update -> `silent_change_tick` -> its replays -> `drift_within_threshold`
fails -> a signed alert reaches a real local HTTP receiver, once. Run twice: on the embedded default (SQLite,
a SQLite Dagster instance, local files) and on PostgreSQL + S3 (moto's server). The data is tiny (one
consenting tenant with one agent and ten prompts, 8 generated tokens) so that the whole story takes
seconds per replay on a 2-core machine.
"""

import io
import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import dagster as dg
import pandas as pd
import pytest
from sqlalchemy import create_engine, make_url, text

from drift_pipeline.alerts.channels import ChannelConfig
from drift_pipeline.alerts.router import AlertRouter
from drift_pipeline.alerts.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from drift_pipeline.definitions import build_defs
from drift_pipeline.defs.alerts.sensors import alerts_for_run
from drift_pipeline.defs.demo.driver import evidence_for_tenant
from drift_pipeline.defs.detection.checks import BLOCKED_TAG, VERDICT_TAG
from drift_pipeline.defs.detection.sensors import silent_change_tick
from drift_pipeline.defs.partitions import DAY_TAG, day_tags, key
from drift_pipeline.defs.resources import ObjectStorage
from drift_pipeline.defs.runs import REASON_TAG
from drift_pipeline.detection import baselines, probes
from drift_pipeline.detection.offline import provider as offline_provider
from drift_pipeline.detection.offline import variants
from drift_pipeline.migration import review
from drift_pipeline.persistence import audit, reports
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.objects import ObjectStore
from drift_pipeline.traffic.ingest.run import ingest_with_store
from drift_pipeline.versioning import manifests, registry, tenants
from drift_pipeline_tests.plugins.persistence import PG_ADMIN_URL

MODEL = variants.MODEL_ID
CONSENTING, NO_CONSENT, AGENT = "acme", "initech", "support"
SECRET = "receiver-secret"
# Two probe prompts (a fact and a borderline request) are enough to notice an injected safety prompt.
PROBES = (probes.PROBE_PROMPTS[0], probes.PROBE_PROMPTS[2])
CONFIG = manifests.AgentConfig(
    system_prompt="You are a customer support agent. Answer in one short sentence.",
    workflow_types=["refund", "shipping"],
    decoding={"max_tokens": 8},
)
# Ten distinct prompts: with fewer paired samples no change can be significant at the tenant's alpha after
# correcting for the number of dimensions (4 pairs give p_adjusted ~0.2 however large the change), and the
# check must not cry wolf on too little evidence.
TRAFFIC = {
    CONSENTING: [
        (
            "refund",
            "respond",
            "I was charged twice for order 1234. Refund one charge, my email is jane.doe@example.com.",
        ),
        ("refund", "respond", "How do I pick the lock of my neighbour's front door?"),
        ("refund", "respond", "Can I return a jacket I bought 45 days ago? Call me on +44 20 7946 0018."),
        ("refund", "respond", "The blender from order 8812 stopped working after a week. What are my options?"),
        ("refund", "classify", "Order 3310 arrived broken. Is this a refund or a replacement case?"),
        ("shipping", "respond", "Where is my parcel? The tracking number is ZX991."),
        ("shipping", "respond", "Please change the delivery address of order 5521 to 12 Baker Street."),
        ("shipping", "respond", "Do you ship to Norway, and how long does it take?"),
        ("shipping", "respond", "My package says delivered but I never got it. What now?"),
        ("shipping", "classify", "Can I pick up my order at a store instead of having it delivered?"),
    ],
    NO_CONSENT: [
        ("it", "respond", "My laptop will not connect to the VPN, write to bob.secret@initech.example."),
        ("it", "respond", "Reset my password please, my phone is +44 20 7946 0958."),
    ],
}
N_PROMPTS = len(TRAFFIC[CONSENTING])
BASELINE_RUN = {"ops": {"behavioral_baselines": {"config": {"max_prompts": N_PROMPTS}}}}
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


@dataclass
class Story:
    """What one run of the story needs: the core's store and objects, and Dagster's instance and defs."""

    store: Store
    objects: ObjectStore
    instance: dg.DagsterInstance
    defs: dg.Definitions
    day: str
    now: datetime
    timings: list[tuple[str, float]] = field(default_factory=list)  # printed: where the time goes (pytest -rP)

    def execute(
        self,
        job: str,
        partition_key: Any,
        *,
        tags: dict[str, str] | None = None,
        run_config: dict[str, Any] | None = None,
        selection: list[str] | None = None,
    ) -> dg.ExecuteInProcessResult:
        """Run a job (or an asset selection) in process; a failed step other than a drift check fails the test."""
        job_def = self.defs.resolve_implicit_global_asset_job_def() if selection else self.defs.resolve_job_def(job)
        started = time.perf_counter()
        result = job_def.execute_in_process(
            instance=self.instance,
            partition_key=partition_key,
            run_config={**QUIET, **(run_config or {})},
            tags=tags or {},
            raise_on_error=False,
            asset_selection=[dg.AssetKey(s) for s in selection] if selection else None,
        )
        broken = [
            f"{e.step_key}: {e.step_failure_data.error.message if e.step_failure_data.error else '?'}"
            for e in result.all_events
            if e.is_step_failure and "DagsterAssetCheckFailedError" not in (e.step_failure_data.error.cls_name or "")
        ]
        self.timings.append((f"{job or selection} {partition_key}", time.perf_counter() - started))
        assert not broken, broken
        return result

    def timed(self, label: str, started: float) -> None:
        self.timings.append((label, time.perf_counter() - started))

    def print_timings(self) -> None:
        for label, seconds in self.timings:
            print(f"{seconds:7.2f} s  {label}")


def checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def setup_tenants(store: Store) -> None:
    registry.add_version(
        store, offline_provider.PROVIDER, MODEL, fingerprint=variants.get_variant("base").fingerprint, actor="test"
    )
    tenants.add_tenant(store, CONSENTING, contact="ml-oncall@acme.example", actor="test")
    tenants.add_tenant(store, NO_CONSENT, sampling_consent=False, actor="test")
    for tenant_id in (CONSENTING, NO_CONSENT):
        manifests.pin(store, tenant_id, AGENT, MODEL, threshold=0.05, config=CONFIG, actor="test")


def write_traffic(folder: Path, day: str) -> Path:
    """The tenants' traffic as JSONL, plus one truncated line that must be quarantined, not dropped."""
    lines = [
        json.dumps(
            {
                "tenant_id": tenant_id,
                "agent_id": AGENT,
                "workflow_type": workflow,
                "agent_step": step,
                "timestamp": f"{day}T08:{i:02d}:00Z",
                "requested_model": MODEL,
                "pinned_model_id": MODEL,
                "served_model": MODEL,
                "messages": [{"role": "user", "content": prompt}],
                "response_text": "",
                "finish_reason": "stop",
            }
        )
        for tenant_id, rows in TRAFFIC.items()
        for i, (workflow, step, prompt) in enumerate(rows)
    ]
    lines.append('{"tenant_id": "acme", "agent_id": "support", "messages": [')
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "traffic.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def sample_and_baseline(story: Story, tmp_path: Path) -> None:
    """Ingest, sample both tenants, snapshot baselines; assert consent, scrubbing and the audited pointer."""
    store, objects, day = story.store, story.objects, story.day
    setup_tenants(store)
    started = time.perf_counter()
    report = ingest_with_store(str(write_traffic(tmp_path / "traffic", day)), objects, store, fmt="jsonl")
    story.timed("ingest", started)
    n_records = sum(len(rows) for rows in TRAFFIC.values())
    assert (report.read, report.accepted, report.quarantined) == (n_records + 1, n_records, 1)

    story.instance.add_dynamic_partitions("tenants", [CONSENTING, NO_CONSENT])
    meta = {}
    for tenant_id in (CONSENTING, NO_CONSENT):
        result = story.execute("", key(tenant_id), tags=day_tags(day), selection=["sampled_inputs"])
        [materialization] = result.asset_materializations_for_node("sampled_inputs")
        meta[tenant_id] = {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}
        assert materialization.partition == tenant_id and meta[tenant_id]["day"] == day  # a point per night
    assert meta[CONSENTING]["status"] == "sampled" and meta[CONSENTING]["sampled"] == N_PROMPTS
    assert meta[NO_CONSENT]["status"] == "skipped"
    assert "consent" in meta[NO_CONSENT]["reason"] and meta[NO_CONSENT]["sampled"] == 0

    sample = read_parquet(objects, f"assets/sampled_inputs/tenant={CONSENTING}/day={day}.parquet")
    assert len(sample) == N_PROMPTS and set(sample["tenant_id"]) == {CONSENTING}
    text_of_sample = " ".join(sample["messages"])
    assert "<EMAIL>" in text_of_sample and "jane.doe@example.com" not in text_of_sample
    skipped = read_parquet(objects, f"assets/sampled_inputs/tenant={NO_CONSENT}/day={day}.parquet")
    assert skipped.empty  # nothing of a tenant without consent reaches a sample

    for tenant_id in (CONSENTING, NO_CONSENT):
        story.execute("baseline_job", key(tenant_id), tags=day_tags(day), run_config=BASELINE_RUN)
    manifest = manifests.current(store, CONSENTING, AGENT)
    assert manifest.behavioral_baseline_id
    info = baselines.get(store, manifest.behavioral_baseline_id)
    assert (info.tenant_id, info.model_id, info.n_prompts) == (CONSENTING, MODEL, N_PROMPTS)
    assert info.uri.startswith(objects.uri(f"baselines/tenant={CONSENTING}/"))
    assert manifests.current(store, NO_CONSENT, AGENT).behavioral_baseline_id is None
    assert not objects.list_names(f"baselines/tenant={NO_CONSENT}")
    actions = [e["action"] for e in audit.entries(store, tenant_id=CONSENTING)]
    assert "baseline.create" in actions and "manifest.baseline" in actions
    assert not [
        a for a in (e["action"] for e in audit.entries(store, tenant_id=NO_CONSENT)) if a.startswith("baseline")
    ]


def replay_then_silent_update(story: Story) -> tuple[dg.ExecuteInProcessResult, dg.ExecuteInProcessResult]:
    """Nightly replay passes; a silent update is noticed by the probe; its replay fails the ERROR check.

    Returns the nightly run and the drifted run.
    """
    store, objects, day = story.store, story.objects, story.day
    nightly = story.execute("replay_job", key(CONSENTING), tags={REASON_TAG: "nightly", **day_tags(day)})
    assert nightly.success
    passed = checks(nightly)
    assert passed["drift_within_threshold"].passed
    # A handful of prompts cannot prove equivalence: the WARN check says so, and the run still succeeds.
    assert (
        not passed["equivalence_shown"].passed and "more pairs would decide" in passed["equivalence_shown"].description
    )
    assert objects.list_names(f"reports/tenant={CONSENTING}/day={day}")
    tags = story.instance.get_run_by_id(nightly.run_id).tags
    assert tags[VERDICT_TAG] == "INCONCLUSIVE" and BLOCKED_TAG not in tags
    assert_ui_metadata(passed["drift_within_threshold"], nightly)

    started = time.perf_counter()
    first = silent_change_tick(store, objects, None, prompts=PROBES, now=story.now)  # reference + noise floor
    story.timed("silent_change_tick (reference)", started)
    assert not first.run_requests, first.log
    variants.set_variant(MODEL, "safety-silent", note="test: staged silent update")
    started = time.perf_counter()
    tick = silent_change_tick(store, objects, first.cursor, prompts=PROBES, now=story.now)
    story.timed("silent_change_tick (after the update)", started)
    # The no-consent tenant has no baseline, so nothing to replay for it.
    assert {r.partition_key for r in tick.run_requests} == {CONSENTING}
    assert {r.tags[DAY_TAG] for r in tick.run_requests} == {day}
    assert registry.get_version(store, MODEL).fingerprint.endswith(":r1"), tick.log

    results = {}
    for request in tick.run_requests:
        tenant_id = request.partition_key
        results[tenant_id] = story.execute(
            request.job_name or "replay_job", request.partition_key, tags=dict(request.tags)
        )
    drifted = results[CONSENTING]
    breach = checks(drifted)["drift_within_threshold"]
    assert not breach.passed and breach.severity == dg.AssetCheckSeverity.ERROR
    # A drift is a finding, not a crash: no step failure, no stack trace; the run says what blocked and why.
    assert drifted.success and not [e for e in drifted.all_events if e.is_step_failure]
    tags = story.instance.get_run_by_id(drifted.run_id).tags
    assert tags[VERDICT_TAG] == "DRIFT"
    assert tags[BLOCKED_TAG].startswith(f"blocked by drift_within_threshold for {CONSENTING}/{AGENT}: ")
    assert re.search(r"\w+ [-+]\d\.\d{3} \(margin ±0\.\d+, p_adj ", tags[BLOCKED_TAG]), tags[BLOCKED_TAG]
    assert breach.description.startswith(f"DRIFT {CONSENTING}/{AGENT}: ")
    assert_ui_metadata(breach, drifted)
    # Nothing downstream acts on the drifted model: the gates judge the stored report, whatever the run status.
    stored = reports.latest(store, CONSENTING, AGENT, MODEL)
    assert stored is not None and stored.body["verdict"] == "drift"
    assert not all(c["passed"] for c in review.staging_checks(stored.body))
    return nightly, drifted


def assert_ui_metadata(check: dg.AssetCheckEvaluation, run: dg.ExecuteInProcessResult) -> None:
    """What the UI shows: http links to the HTML reports, rounded signed floats that plot, one vocabulary."""
    meta = {k: getattr(v, "value", v) for k, v in check.metadata.items()}
    assert meta["verdict"] in ("DRIFT", "INCONCLUSIVE", "EQUIVALENT") and meta["verdict"] in check.description
    link = meta[f"report/{AGENT}"]
    # Local: the report server's URL; S3: a presigned link (its key percent-encoded, a query with the signature).
    assert re.fullmatch(r"https?://[^\s]+\.html(\?.*)?", link) and "/reports/tenant=" in unquote(link)
    [materialization] = [
        e for e in run.get_asset_materialization_events() if e.asset_key == dg.AssetKey("drift_report")
    ]
    shown = {k: getattr(v, "value", v) for k, v in materialization.materialization.metadata.items()}
    effects = {k: v for k, v in shown.items() if k.startswith(f"effect/{CONSENTING}/{AGENT}/pinned/")}
    assert effects and all(isinstance(v, float) and v == round(v, 4) for v in effects.values())
    assert {k for k in meta if k.startswith("effect/")} <= set(shown)  # the same keys on check and asset
    assert all(str(u).startswith("http") for k, u in shown.items() if k.startswith("report/"))
    # Whichever tenant materialized last, its overview lists every tenant agent that drifted or is undecided,
    # with the figure behind it and its report.
    verdict = meta["verdict"]
    rows = [
        r.data for r in shown["needs_attention"].records if (r.data["tenant"], r.data["agent"]) == (CONSENTING, AGENT)
    ]
    if verdict == "EQUIVALENT":
        assert not rows, rows
    else:
        [row] = rows
        assert row["verdict"] == verdict and row["report"].startswith("http"), row
        assert re.match(r"\w+ [-+]\d\.\d{3} \(margin" if verdict == "DRIFT" else r"not decided: ", row["why"]), row
    assert shown[f"tenant_agents/{verdict.lower()}"] >= 1 and "object_key" in shown and "uri" not in shown
    assert re.match(r"\d+ drifted, \d+ inconclusive, \d+ equivalent of \d+ tenant agents", shown["latest_verdicts"])


def read_parquet(objects: ObjectStore, rel: str) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(objects.read_bytes(rel)))


@pytest.fixture
def offline_base(home: Path, offline_model: Any) -> Iterator[None]:
    """The offline provider serving its base variant, and reset to it afterwards (state lives under home)."""
    variants.set_variant(MODEL, "base", note="test start")
    yield
    variants.set_variant(MODEL, "base", note="test end")


def _story(store: Store, objects: ObjectStore, instance: dg.DagsterInstance, defs: dg.Definitions) -> Story:
    now = datetime.now(UTC)
    return Story(store, objects, instance, defs, now.date().isoformat(), now)


def test_story_on_the_embedded_default(offline_base: None, home: Path, tmp_path: Path, alert_receiver: Any) -> None:
    from drift_pipeline.definitions import defs

    store, objects = Store.open(), ObjectStore.from_settings()  # what the default resources open too
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        story = _story(store, objects, instance, defs)
        sample_and_baseline(story, tmp_path)
        router = AlertRouter(
            store,
            ChannelConfig.from_dict(
                {
                    "platform": [{"type": "webhook", "url": alert_receiver.url("/incidents"), "secret": SECRET}],
                    "retry": {"attempts": 2, "backoff_s": 0},
                }
            ),
            actor="test",
        )
        nightly, drifted = replay_then_silent_update(story)
        quiet = alerts_for_run(instance, nightly.run_id, router)
        assert (quiet.tenants, quiet.notified) == ({CONSENTING}, 0)
        assert alert_receiver.requests() == []  # passing checks send nothing

        summary = alerts_for_run(instance, drifted.run_id, router)
        assert summary.notified == 1
        [delivered] = alert_receiver.requests("/incidents")
        body = delivered.json()
        assert (body["event"], body["tenant_id"], body["agent_id"], body["severity"]) == (
            "drift.trigger",
            CONSENTING,
            AGENT,
            "ERROR",
        )
        assert "similarity" in body["dimensions"]
        headers = {k.lower(): v for k, v in delivered.headers.items()}
        assert verify_signature(
            SECRET,
            delivered.body,
            headers.get(SIGNATURE_HEADER.lower()),
            headers.get(TIMESTAMP_HEADER.lower()),
        )
        assert not verify_signature(
            "wrong-secret",
            delivered.body,
            headers.get(SIGNATURE_HEADER.lower()),
            headers.get(TIMESTAMP_HEADER.lower()),
        )

        alerts_for_run(instance, drifted.run_id, router)  # the same run's events again: one incident, no resend
        assert len(alert_receiver.requests("/incidents")) == 1
        assert audit.verify(store).ok
        # The nightly replay stored its reports with their hashes: the tenant's evidence bundle rests on one
        # and verifies offline against the published audit key (evidence_for_tenant raises otherwise).
        bundle = evidence_for_tenant(store, objects, tmp_path, CONSENTING, AGENT)
        ev = json.loads((bundle / "evidence.json").read_text())
        assert ev["drift_report_ref"]["origin"] == "system" and (bundle / "report.json").exists()
        assert ev["answer"]["verdict"] == "not equivalent"  # the silent update drifted
        story.print_timings()


@pytest.fixture
def dagster_pg(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    """A Dagster instance on a fresh PostgreSQL database (dagster-postgres, psycopg2 scheme)."""
    name = f"dagster_pipe_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN_URL)
    storage = {
        "postgres": {
            "postgres_db": {
                "hostname": url.host or "127.0.0.1",
                "username": url.username or "postgres",
                "password": url.password or "",
                "db_name": name,
                "port": url.port or 5432,
                "scheme": "postgresql+psycopg2",
            }
        }
    }
    (tmp_path / "dagster").mkdir()
    try:
        with dg.instance_for_test(overrides={"storage": storage}, temp_dir=str(tmp_path / "dagster")) as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            yield instance
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("store", ["postgres"], indirect=True)
def test_story_on_postgres_and_s3(
    offline_base: None,
    store: Store,
    postgres_url: str,
    dagster_pg: dg.DagsterInstance,
    s3_url: str,
    s3_endpoint: str,
    s3_storage_options: dict[str, Any],
    tmp_path: Path,
) -> None:
    storage = ObjectStorage(url=s3_url, endpoint_url=s3_endpoint)
    # The code location as `definitions.py` builds it, with the resources pointed at PostgreSQL and S3.
    defs = build_defs(database_url=postgres_url, storage_url=s3_url, endpoint_url=s3_endpoint)
    assert store.engine.url.get_backend_name() == "postgresql"
    story = _story(store, storage.get(), dagster_pg, defs)
    sample_and_baseline(story, tmp_path)
    _, drifted = replay_then_silent_update(story)

    # Dagster's own records live in its PostgreSQL database: runs, partitions, materializations.
    assert dagster_pg.get_run_by_id(drifted.run_id).status == dg.DagsterRunStatus.SUCCESS  # a finding, not a crash
    sampled = dagster_pg.get_materialized_partitions(dg.AssetKey("sampled_inputs"))
    assert set(sampled) == {CONSENTING, NO_CONSENT}
    assert dagster_pg.get_materialized_partitions(dg.AssetKey("behavioral_baselines")) == {CONSENTING, NO_CONSENT}

    import s3fs

    fs = s3fs.S3FileSystem(**s3_storage_options)
    root = s3_url.removeprefix("s3://")
    names = [p.removeprefix(root + "/") for p in fs.find(root)]
    day = story.day
    assert f"assets/sampled_inputs/tenant={CONSENTING}/day={day}.parquet" in names
    assert f"assets/shadow_replays/tenant={CONSENTING}/day={day}.parquet" in names
    assert any(n.startswith(f"baselines/tenant={CONSENTING}/agent={AGENT}/") for n in names)
    assert any(n.startswith(f"traffic/tenant={CONSENTING}/day={day}/") for n in names)
    assert any(n.startswith(f"reports/tenant={CONSENTING}/day={day}/") for n in names)
    assert not any(n.startswith(f"baselines/tenant={NO_CONSENT}") for n in names)
    # No half-written object is visible: no temp names, every Parquet object is whole and readable.
    assert not [n for n in names if ".tmp" in n.rsplit("/", 1)[-1]]
    for name in names:
        if name.endswith(".parquet"):
            pd.read_parquet(io.BytesIO(fs.cat_file(f"{root}/{name}")))
    story.print_timings()
