"""Migrations end to end with the real adapters: staging replay and baseline snapshots on the offline model.

The offline provider serves exactly one model id (SmolLM2), so the *legacy* version the tenant starts on is
an `openai/...` version whose registry entry carries litellm's `mock_response` (a fixed answer, no
network), and the candidate is the real offline model: every staging replay, score and new baseline of the
candidate is real inference and real embeddings.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from drift_pipeline.detection import baselines
from drift_pipeline.detection.offline import variants
from drift_pipeline.errors import RefusedError
from drift_pipeline.migration import promotion, review, staging, states
from drift_pipeline.migration.rollback import rollback
from drift_pipeline.persistence import audit
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.objects import ObjectStore
from drift_pipeline.traffic.records import TrafficRecord
from drift_pipeline.versioning import manifests, registry, tenants
from drift_pipeline_tests.plugins.migration import signed_approval

LEGACY = "acme-legacy-0301"
OFFLINE = variants.MODEL_ID
REFUSER = "acme-guarded-0101"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup_order",
            "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
        },
    }
]


def _sample() -> pd.DataFrame:
    """Four anonymised records of two workflows, one of them a multi-step conversation with the tool."""
    convs = [
        ("refunds", "triage", [{"role": "user", "content": "Where is my refund?"}]),
        ("refunds", "answer", [{"role": "user", "content": "Say thanks to the customer."}]),
        ("orders", "triage", [{"role": "user", "content": "Name a colour."}]),
        (
            "orders",
            "lookup",
            [
                {"role": "user", "content": "Check order <ORDER_ID>."},
                {"role": "assistant", "content": "Let me look that up."},
                {"role": "user", "content": "Is it shipped?"},
            ],
        ),
    ]
    rows = [
        TrafficRecord(
            tenant_id="acme",
            agent_id="support",
            timestamp=f"2026-11-20T07:00:{i:02d}+00:00",
            workflow_type=wf,
            agent_step=step,
            messages=json.dumps(msgs),
            tools=json.dumps(TOOLS),
            pinned_model_id=LEGACY,
        ).to_row()
        for i, (wf, step, msgs) in enumerate(convs)
    ]
    return pd.DataFrame(rows)


def _world(store: Store, tmp_path: Path, embedder: Any) -> tuple[ObjectStore, str]:
    """acme (regulated) pins support to the legacy version with a baseline built from the sample."""
    registry.add_version(
        store, "openai", LEGACY, actor="setup", litellm_params={"mock_response": "Thank you for contacting support."}
    )
    registry.add_version(store, "offline", OFFLINE, actor="setup")
    tenants.add_tenant(store, "acme", actor="setup", regulated=True)
    config = manifests.AgentConfig(system_prompt="You are a support agent.", tools=TOOLS, decoding={"max_tokens": 8})
    manifest = manifests.pin(store, "acme", "support", LEGACY, actor="setup", config=config)
    objects = ObjectStore(str(tmp_path / "objects"))
    bl = baselines.build_baseline(store, objects, manifest, _sample(), embedder=embedder, actor="setup")
    return objects, bl.baseline_id


def _adapters(store: Store, objects: ObjectStore, embedder: Any) -> tuple[Any, Any]:
    runner = staging.ReplayStagingRunner(store, objects, embedder=embedder)
    return runner, staging.StagingBaselineCreator(store, objects, actor="bob", embedder=embedder)


def _promote_offline(store: Store, objects: ObjectStore, embedder: Any) -> states.MigrationInfo:
    runner, creator = _adapters(store, objects, embedder)
    m = review.propose(store, "acme", "support", OFFLINE, actor="alice", reason="legacy is retiring")
    m = review.run_staging(store, m.id, runner, actor="alice", objects=objects)
    assert m.state == "review"  # regulated: a human decides whatever the verdict
    m = review.approve(store, m.id, signed_approval(store, m.id, "bob"), expected_version=m.version, objects=objects)
    m = promotion.start_canary(store, m.id, 0.1, actor="bob")
    m = promotion.start_canary(store, m.id, 0.5, actor="bob")
    return promotion.promote(store, m.id, creator, actor="bob", reason="canary healthy")


def _actions(store: Store) -> list[str]:
    return [e["action"] for e in audit.entries(store, tenant_id="acme")]


@pytest.mark.usefixtures("offline_model")
def test_full_migration_with_real_staging_and_baseline(store, tmp_path, embedder) -> None:
    objects, legacy_baseline = _world(store, tmp_path, embedder)
    start = manifests.current(store, "acme", "support").revision

    m = _promote_offline(store, objects, embedder)

    assert m.state == "promoted"
    report = m.details["staging"]["report"]
    assert report["candidate"] == OFFLINE and report["n_pairs"] == 4
    assert report["suite_baseline_id"] == legacy_baseline
    assert report["control"] == {
        "model_id": LEGACY,
        "assessed": True,
        "drift_detected": False,
        "drifted": [],
        "n_pairs": 4,
    }
    assert report["replay"]["requests"] == 8 and report["replay"]["failed"] == 0
    prefix = objects.uri("reports/tenant=acme/staging/support/")
    assert report["report_uri"].startswith(prefix) and report["html_uri"].startswith(prefix)
    stored = json.loads(objects.read_bytes(report["report_uri"][len(objects.url) + 1 :]))
    assert stored["candidate"] == OFFLINE and len(stored["dimensions"]) == len(report["dimensions"])
    assert b"Drift report" in objects.read_bytes(report["html_uri"][len(objects.url) + 1 :])

    # The new baseline: the candidate's answers on the staging suite, written once by the promotion.
    now = manifests.current(store, "acme", "support")
    assert (now.pinned_model_id, now.behavioral_baseline_id) == (OFFLINE, m.details["baseline_id"])
    assert now.revision == start + 1  # the baseline snapshot itself wrote no manifest revision
    new = baselines.get(store, now.behavioral_baseline_id)
    assert new.model_id == OFFLINE and new.n_prompts == 4 and new.baseline_id != legacy_baseline
    frame = baselines.load_frame(objects, new)
    suite = baselines.load_frame(objects, baselines.get(store, legacy_baseline))
    assert set(frame["record_id"]) == set(suite["record_id"])
    assert frame["response_text"].str.len().gt(0).all()
    assert not frame["response_text"].eq("Thank you for contacting support.").any()

    transitions = [(t["from"], t["to"]) for t in m.details["transitions"]]
    assert transitions == [
        ("proposed", "staging"),
        ("staging", "review"),
        ("review", "approved"),
        ("approved", "canary"),
        ("canary", "canary"),
        ("canary", "promoted"),
    ]
    actions = _actions(store)
    for action in ("staging", "review", "approved", "canary", "promoted"):
        assert f"migration.{action}" in actions
    assert actions.count("manifest.promote") == 1 and actions.count("baseline.create") == 2
    assert audit.verify(store).ok


@pytest.mark.usefixtures("offline_model")
def test_aborted_canary_then_rollback(store, tmp_path, embedder) -> None:
    objects, legacy_baseline = _world(store, tmp_path, embedder)
    promoted = _promote_offline(store, objects, embedder)
    registry.add_version(
        store,
        "openai",
        REFUSER,
        actor="setup",
        litellm_params={"mock_response": "I'm sorry, but I can't help with that."},
    )
    runner, _ = _adapters(store, objects, embedder)
    m = review.propose(store, "acme", "support", REFUSER, actor="alice")
    m = review.run_staging(store, m.id, runner, actor="alice")
    report = m.details["staging"]["report"]
    assert report["suite_baseline_id"] == promoted.details["baseline_id"]
    assert report["control"]["model_id"] == OFFLINE and report["control"]["drift_detected"] is False
    refusal = next(d for d in report["dimensions"] if d["name"] == "refusal")
    assert refusal["candidate_value"] == 1.0 > refusal["baseline_value"]  # the candidate always refuses
    signed = signed_approval(store, m.id, "bob", reason="accepting a stricter model, watch the canary")
    m = review.approve(store, m.id, signed)
    m = promotion.start_canary(store, m.id, 0.2, actor="bob")

    alerts: list[dict[str, Any]] = []
    for _ in range(10):  # live outcomes: the canary slice refuses far more often than the pinned one
        live = [{"route": "pinned", "refusal": i % 20 == 0} for i in range(400)] + [
            {"route": "canary", "refusal": i % 2 == 0} for i in range(100)
        ]
        verdict = promotion.observe(store, m.id, live, alert=alerts.append)
        if verdict.aborted:
            break
    assert verdict.aborted and states.active_canary(store, "acme", "support") is None
    assert [a["kind"] for a in alerts] == ["canary_aborted"]

    result = rollback(store, "acme", "support", actor="carol", reason="incident: back to legacy")
    assert result.changed and promoted.id in result.closed_migrations
    now = manifests.current(store, "acme", "support")
    assert (now.pinned_model_id, now.behavioral_baseline_id) == (LEGACY, legacy_baseline)
    assert states.get(store, promoted.id).state == "rolled_back" and states.get(store, m.id).state == "aborted"

    again = rollback(store, "acme", "support", actor="carol")
    assert not again.changed and manifests.current(store, "acme", "support").revision == now.revision
    actions = _actions(store)
    for action in ("migration.aborted", "migration.rolled_back", "manifest.rollback"):
        assert actions.count(action) == 1
    assert audit.verify(store).ok


@pytest.mark.usefixtures("offline_model")
def test_staging_fails_cleanly_when_no_prompt_replays(store, tmp_path, embedder) -> None:
    objects, _ = _world(store, tmp_path, embedder)
    registry.add_version(store, "offline", "smollm2-unserved", actor="setup")  # the provider refuses this id
    runner, _ = _adapters(store, objects, embedder)
    m = review.propose(store, "acme", "support", "smollm2-unserved", actor="alice")
    with pytest.raises(RefusedError, match=r"produced no pairs: .*serves only"):
        review.run_staging(store, m.id, runner, actor="alice")
    back = states.get(store, m.id)
    assert back.state == "proposed" and "produced no pairs" in back.details["staging_error"]


@pytest.mark.usefixtures("offline_model")
def test_dagster_jobs_stage_review_and_assess_readiness(store, tmp_path, embedder) -> None:
    import dagster as dg

    from drift_pipeline.definitions import defs
    from drift_pipeline.defs.resources import DriftStore, ObjectStorage

    objects, _ = _world(store, tmp_path, embedder)
    d = defs
    resources = {
        "drift_store": DriftStore(database_url=store.engine.url.render_as_string(hide_password=False)),
        "object_storage": ObjectStorage(url=objects.url),
    }
    m = review.propose(store, "acme", "support", OFFLINE, actor="alice")
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:

        def run(name: str, op: str, config: dict[str, Any]) -> dg.ExecuteInProcessResult:
            job = d.resolve_job_def(name)
            return job.execute_in_process(
                run_config={"ops": {op: {"config": config}}}, instance=instance, resources=resources
            )

        staged = run("staging_replay_job", "stage_migration", {"migration_id": m.id})
        assert staged.success and staged.output_for_node("stage_migration")["state"] == "review"
        assert states.get(store, m.id).details["staging"]["report"]["candidate"] == OFFLINE
        stage_output = next(e for e in staged.events_for_node("stage_migration") if e.is_successful_output)
        link = stage_output.step_output_data.metadata["report"].value  # http(s), never a local path
        assert link.startswith("http://127.0.0.1:3080/reports/tenant=acme/staging/") and link.endswith(".html")

        def signed(who: str, decision: str = "approved", mid: int = m.id, reason: str = "mine") -> str:
            return json.dumps(signed_approval(store, mid, who, reason=reason, decision=decision))

        with pytest.raises(Exception, match="cannot approve it"):
            run("approve_migration_job", "review_migration", {"migration_id": m.id, "signed_approval": signed("alice")})
        with pytest.raises(Exception, match="the approval is not signed"):
            unsigned = json.dumps({"statement": json.loads(signed("bob"))["statement"]})
            run("approve_migration_job", "review_migration", {"migration_id": m.id, "signed_approval": unsigned})
        rejected = run(
            "approve_migration_job",
            "review_migration",
            {"migration_id": m.id, "signed_approval": signed("bob", "rejected")},
        )
        assert rejected.output_for_node("review_migration")["state"] == "rejected"

        registry.deprecate(store, LEGACY, sunset=date.today() - timedelta(days=1), successor=OFFLINE, actor="setup")
        assessed = run("readiness_job", "assess_readiness", {"on": date.today().isoformat()})
        [row] = assessed.output_for_node("assess_readiness")
        forced = states.get(store, row["migration_id"])
        assert forced.details["forced"] and forced.state == "review" and forced.id != m.id
        assert row["readiness"] == forced.readiness and forced.readiness in ("ready", "not ready")
        output = next(e for e in assessed.events_for_node("assess_readiness") if e.is_successful_output)
        meta = output.step_output_data.metadata
        assert meta["forced_opened"].value == 1 and "acme/support" in meta["readiness"].value

        approved = run(
            "approve_migration_job",
            "review_migration",
            {"migration_id": forced.id, "signed_approval": signed("bob", mid=forced.id, reason="sunset passed")},
        )
        assert approved.output_for_node("review_migration")["state"] == "approved"
    reviews = audit.entries(store, tenant_id="acme", action_prefix="migration.")
    assert [e["actor"] for e in reviews if e["action"] in ("migration.rejected", "migration.approved")] == [
        "reviewer:bob",
        "reviewer:bob",
    ]
    assert audit.verify(store).ok
