"""Equivalence evidence (JSON + HTML) and the migrate/rollback/evidence CLI end to end."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import typer
from typer.testing import CliRunner

from drift_pipeline.cli import evidence as evidence_cli
from drift_pipeline.cli import migrate
from drift_pipeline.cli import reviewers as reviewers_cli
from drift_pipeline.errors import DriftPipelineError, RefusedError
from drift_pipeline.migration import evidence, promotion, review, states
from drift_pipeline.persistence import reports
from drift_pipeline.persistence.tables import Baseline
from drift_pipeline.versioning import manifests, registry, tenants
from drift_pipeline_tests.plugins.migration import FakeStagingRunner, add_baseline, drift_report


def test_evidence_answers_with_tests_history_and_audit(pinned_store, staging_ok, baseline_creator):
    then = datetime.now(UTC)
    with pinned_store.transaction() as session:
        session.add(Baseline(baseline_id="bl-m-2-1", tenant_id="acme", agent_id="support", model_id="m-2",
                             uri="file:///b", n_prompts=120, summary={"refusal": 0.05}, created_at=then))  # fmt: skip
    m = review.propose(pinned_store, "acme", "support", "m-2", actor="alice")
    review.run_staging(pinned_store, m.id, staging_ok, actor="alice")
    promotion.start_canary(pinned_store, m.id, 0.1, actor="alice")
    promotion.promote(pinned_store, m.id, baseline_creator, actor="alice")
    registry.set_alias(pinned_store, "m-latest", "m-3", actor="sensor")

    report = {**drift_report("m-2", "m-2", drifted=("refusal",)), "tenant_id": "acme", "agent_id": "support"}
    stored = _stored(pinned_store, report, "m-2")
    ev = evidence.build(pinned_store, "acme", "support", then)
    assert ev["drift_report_ref"] == stored.reference() and ev["drift_report"] == report
    assert ev["answer"]["verdict"] == "not equivalent" and ev["answer"]["summary"] == "drift detected in refusal"
    assert ev["answer"]["notes"] == ["the pin changed since then: m-1 (revision 2) -> m-2 (revision 3)"]
    assert (ev["validated"]["pinned_model_id"], ev["current"]["pinned_model_id"]) == ("m-1", "m-2")
    assert ev["baseline"]["n_prompts"] == 120 and ev["baseline"]["found"]
    refusal = next(t for t in ev["tests"] if t["name"] == "refusal")
    assert (refusal["equivalence_low"], refusal["equivalence_high"], refusal["verdict"]) == (0.12, 0.28, "drift")
    assert [(a["alias"], a["model_id"]) for a in ev["version_history"]["aliases"]] == [
        ("m-latest", "m-2"),
        ("m-latest", "m-3"),
    ]
    assert [r["revision"] for r in ev["version_history"]["manifest_revisions"]] == [1, 2, 3]
    actions = [a["action"] for a in ev["audit_trail"]]
    assert actions[0] == "migration.proposed" and "manifest.promote" in actions and "tenant.add" not in actions
    assert ev["audit_chain"]["ok"] and ev["migrations"][0]["state"] == "promoted"
    json.dumps(ev)  # a compliance file: plain JSON

    html = evidence.render_html(ev)
    assert "NOT EQUIVALENT" in html and "drift detected in refusal" in html and "[0.12, 0.28]" in html
    assert "<script" not in html


def test_evidence_is_equivalent_only_on_a_current_equivalent_report_of_the_pinned_model(pinned_store):
    now = datetime.now(UTC)
    ev = evidence.build(pinned_store, "acme", "support", now - timedelta(days=1))
    assert ev["answer"]["verdict"] == "inconclusive" and "no drift report" in ev["answer"]["summary"]
    assert ev["tests"] == [] and ev["drift_report"] is None

    def answer(report, **kwargs):
        _stored(pinned_store, {**report, "tenant_id": "acme", "agent_id": "support"}, report["candidate"])
        return evidence.build(pinned_store, "acme", "support", now, **kwargs)["answer"]

    ok = answer(drift_report("m-1", "m-1"))
    assert ok["verdict"] == "equivalent" and "within +/-0.05 over 400 paired replays" in ok["summary"]
    assert ok["report_age_hours"] < 1
    few = answer(drift_report("m-1", "m-1", equivalent=False, n_pairs=7))
    assert few["verdict"] == "inconclusive" and "about 900 pairs" in few["summary"]
    stale = answer({**drift_report("m-1", "m-1"), "generated_at": (now - timedelta(days=5)).isoformat()})
    assert stale["verdict"] == "inconclusive" and "5 day(s) old" in stale["summary"]
    other = _stored(pinned_store, drift_report("m-0", "m-2"), "m-2")
    with pytest.raises(RefusedError, match="is about 'm-2', not 'm-1'"):
        evidence.build(pinned_store, "acme", "support", now, report_id=other.report_id)
    # A verdict string alone proves nothing: the interval must lie inside the margin.
    lying = drift_report("m-1", "m-1")
    lying["dimensions"][0] = {**lying["dimensions"][0], "equivalence_low": -0.2, "equivalence_high": 0.2}
    assert answer(lying)["verdict"] == "inconclusive"
    assert answer(drift_report("m-1", "m-1", drifted=("length",)))["verdict"] == "not equivalent"


@pytest.mark.parametrize(
    ("report", "error"),
    [
        ({**drift_report("m-1", "m-1"), "tenant_id": "bank"}, "for tenant_id 'bank', not 'acme'"),
        ({"n_pairs": 3}, "not a drift report"),
        ({**drift_report("m-1", "m-1"), "n_pairs": None}, "no paired replays"),
        ({**drift_report("m-1", "m-1"), "n_pairs": 0}, "no paired replays"),
        ({**drift_report("m-1", "m-1"), "margin": 1.5}, r"margin must be in \(0, 1\]"),
    ],
)
def test_evidence_refuses_reports_it_cannot_rest_on(pinned_store, report, error):
    with pytest.raises(DriftPipelineError, match=error):
        stored = _stored(pinned_store, report, "m-1")
        evidence.build(pinned_store, "acme", "support", datetime.now(UTC), report_id=stored.report_id)


def _stored(store, body, model_id, tenant_id="acme"):
    """A report as the nightly replay stores it (with its hash, audited)."""
    with store.transaction() as session:
        return reports.record(
            store,
            session,
            kind="drift",
            tenant_id=tenant_id,
            agent_id="support",
            model_id=model_id,
            body=body,
            actor="nightly",
        )


def _app() -> typer.Typer:
    app = typer.Typer()
    for group in (migrate, reviewers_cli, evidence_cli):
        group.register(app)
    return app


def test_cli_migration_rollback_and_evidence(home, tmp_path, monkeypatch):
    from drift_pipeline.persistence.db import Store

    store = Store.open()
    for model in ("m-1", "m-2"):
        registry.add_version(store, "offline", model, actor="setup")
    tenants.add_tenant(store, "bank", regulated=True, actor="setup")
    manifests.pin(store, "bank", "support", "m-1", actor="setup")
    add_baseline(store, "bl-m-2", "bank", "support", "m-2")
    report = tmp_path / "staging.json"
    report.write_text(json.dumps(drift_report("m-1", "m-2")))
    cli = CliRunner()

    def run(*args: str, who: str = "alice") -> str:
        monkeypatch.setenv("DRIFT_PIPELINE_ACTOR", who)
        result = cli.invoke(_app(), list(args))
        assert result.exit_code == 0, (args, result.output, result.exception)
        return result.stdout

    attached = run("migrate", "propose", "bank", "support", "m-2", "--report", str(report))
    assert "as external, unverified" in attached and states.get(store, 1).state == "proposed"
    review.run_staging(store, 1, FakeStagingRunner(), actor="alice")  # the system's own staging replay
    refused = cli.invoke(_app(), ["migrate", "promote", "1", "--baseline-id", "bl-2"])
    assert isinstance(refused.exception, DriftPipelineError) and "is review: cannot move to promoted" in str(
        refused.exception
    )
    key = tmp_path / "carol.pem"
    run("reviewers", "add", "Carol", "--generate-key", "--private-key-out", str(key), who="admin")
    assert key.stat().st_mode & 0o777 == 0o600
    run(
        "migrate", "approve", "1", "--reviewer", "carol", "--key", str(key), "--reason", "reviewed staging", who="carol"
    )
    assert "10% of sessions on m-2" in run("migrate", "canary", "1", "--share", "0.1")
    status = json.loads(run("migrate", "status", "bank", "--json"))
    assert status[0]["state"] == "canary" and status[0]["next_steps"] == ["promoted", "aborted", "rolled_back"]
    assert "is promoted" in run("migrate", "promote", "1", "--baseline-id", "bl-m-2")
    assert manifests.current(store, "bank", "support").behavioral_baseline_id == "bl-m-2"
    assert "done" in run("rollback", "bank", "support") and "no-op" in run("rollback", "bank", "support")

    out, html = tmp_path / "evidence.json", tmp_path / "evidence.html"
    run("evidence", "bank", "support", "--since", "2020-01-01", "--output", str(out), "--html", str(html))
    data = json.loads(out.read_text())
    assert data["answer"]["verdict"] == "inconclusive" and data["current"]["pinned_model_id"] == "m-1"
    assert "manifest.rollback" in [a["action"] for a in data["audit_trail"]] and html.read_text().startswith(
        "<!doctype html>"
    )
    bad = cli.invoke(_app(), ["migrate", "stage", "1"])
    assert isinstance(bad.exception, DriftPipelineError)
