"""The issue's attacks through the real CLI (`main()`), on SQLite and PostgreSQL: a forged report file, a fake or
foreign baseline, a trailing-space self-approval. Each is one line and exit 1, changes nothing, and is audited."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import update

from drift_pipeline.migration import promotion, review, states
from drift_pipeline.persistence import audit, reports
from drift_pipeline.persistence.tables import StoredReport
from drift_pipeline.versioning import manifests
from drift_pipeline_tests.plugins.migration import FakeStagingRunner, add_baseline, drift_report

FORGED = '{"dimensions":[],"drift_detected":false,"n_pairs":1}'


@pytest.fixture
def cli(pinned_store, tmp_path, monkeypatch, run_cli):
    """Run `drift-pipeline ARGS` against the test's store (SQLite or PostgreSQL); returns (code, out, err)."""
    monkeypatch.setenv("DRIFT_PIPELINE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DRIFT_PIPELINE_DATABASE_URL", pinned_store.engine.url.render_as_string(hide_password=False))
    monkeypatch.delenv("DRIFT_PIPELINE_STORAGE_URL", raising=False)

    def run(*args: str, who: str = "alice") -> tuple[int, str, str]:
        monkeypatch.setenv("DRIFT_PIPELINE_ACTOR", who)
        return run_cli(*args)

    return run


def _refused(result: tuple[int, str, str], message: str) -> None:
    code, _, err = result
    assert code == 1 and len(err.strip().splitlines()) == 1 and message in err, err


def test_a_forged_report_file_never_stages_approves_or_answers(cli, pinned_store, tmp_path):
    forged = tmp_path / "f.json"
    forged.write_text(FORGED)
    code, out, _ = cli("migrate", "propose", "acme", "support", "m-2", "--report", str(forged))
    assert code == 0 and "external, unverified" in out
    assert cli("migrate", "stage", "1", "--report", str(forged))[0] == 0
    m = states.get(pinned_store, 1)
    assert m.state == "proposed" and "review" not in m.details  # acme is not regulated: this used to auto-approve
    assert [a["origin"] for a in m.details["attachments"]] == ["external, unverified"] * 2
    _refused(cli("migrate", "canary", "1", "--share", "0.1"), "is proposed: cannot move to canary")

    out_file = tmp_path / "ev.json"
    code, out, _ = cli(
        "evidence", "acme", "support", "--since", "2020-01-01", "--report", str(forged), "--output", str(out_file)
    )
    data = json.loads(out_file.read_text())
    assert code == 0 and data["answer"]["verdict"] != "equivalent" and data["drift_report"] is None
    assert data["attachments"][0]["origin"] == "external, unverified"

    foreign = tmp_path / "globex.json"
    foreign.write_text(json.dumps({**drift_report("m-1", "m-2"), "tenant_id": "globex"}))
    _refused(cli("migrate", "stage", "1", "--report", str(foreign)), "tenant_id 'globex', not 'acme'")
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({**drift_report("m-1", "m-2"), "n_pairs": 0}))
    _refused(cli("evidence", "acme", "support", "--since", "2020-01-01", "--report", str(empty)), "no paired replays")
    refusals = [e["action"] for e in audit.entries(pinned_store, tenant_id="acme") if e["action"].endswith("refused")]
    assert refusals == ["migration.attach_refused", "evidence.refused"]


def test_an_edited_stored_report_is_refused_for_evidence_and_approval(cli, pinned_store, tmp_path):
    with pinned_store.transaction() as session:
        nightly = reports.record(
            pinned_store, session, kind="drift", tenant_id="acme", agent_id="support", model_id="m-1",
            body={**drift_report("m-1", "m-1", drifted=("refusal",)), "tenant_id": "acme"}, actor="nightly",
        )  # fmt: skip
    code, out, _ = cli("evidence", "acme", "support", "--since", "2020-01-01")
    assert code == 0 and json.loads(out)["answer"]["verdict"] == "not equivalent"
    with pinned_store.transaction() as session:  # the insider turns the drift into a pass
        forged = {**drift_report("m-1", "m-1"), "tenant_id": "acme"}
        session.execute(
            update(StoredReport)
            .where(StoredReport.report_id == nightly.report_id)
            .values(body=forged, sha256=reports.content_hash(forged))
        )
    _refused(cli("evidence", "acme", "support", "--since", "2020-01-01"), "does not match the hash the audit log")

    m = review.propose(pinned_store, "acme", "support", "m-2", actor="alice")
    m = review.run_staging(pinned_store, m.id, FakeStagingRunner(drifted=("refusal",)), actor="alice")
    assert m.state == "review"
    with pinned_store.transaction() as session:
        staged = {**drift_report("m-1", "m-2"), "tenant_id": "acme", "agent_id": "support"}
        session.execute(
            update(StoredReport).where(StoredReport.report_id == m.details["staging"]["report_id"]).values(body=staged)
        )
    key = tmp_path / "bob.pem"
    assert cli("reviewers", "add", "bob", "--generate-key", "--private-key-out", str(key), who="admin")[0] == 0
    approve = ("migrate", "approve", str(m.id), "--reviewer", "bob", "--key", str(key), "--reason", "looks fine")
    _refused(cli(*approve, who="bob"), "content does not match its stored hash")
    assert states.get(pinned_store, m.id).state == "review"


def test_promotion_needs_the_candidates_own_baseline(cli, pinned_store):
    m = review.propose(pinned_store, "acme", "support", "m-2", actor="alice")
    m = review.run_staging(pinned_store, m.id, FakeStagingRunner(), actor="alice")
    promotion.start_canary(pinned_store, m.id, 0.5, actor="alice")
    add_baseline(pinned_store, "bl-acme-m-2", "acme", "support", "m-2")
    add_baseline(pinned_store, "bl-bank-m-2", "bank", "support", "m-2")
    revision = manifests.current(pinned_store, "acme", "support").revision
    for fake, why in (
        ("fake-baseline-xyz", "does not exist"),
        ("bl-bank-m-2", "is of bank/support on m-2"),
        ("bl-m-1-0", "is of acme/support on m-1"),  # the pinned model's baseline, not the candidate's
    ):
        _refused(cli("migrate", "promote", str(m.id), "--baseline-id", fake), why)
        assert states.get(pinned_store, m.id).state == "canary"
        assert manifests.current(pinned_store, "acme", "support").revision == revision
    assert len(audit.entries(pinned_store, tenant_id="acme", action_prefix="migration.promote_refused")) == 3
    assert cli("migrate", "promote", str(m.id), "--baseline-id", "bl-acme-m-2")[0] == 0
    assert manifests.current(pinned_store, "acme", "support").behavioral_baseline_id == "bl-acme-m-2"


def test_pin_baseline_must_exist_and_be_this_agents_and_models(cli, pinned_store):
    revision = manifests.current(pinned_store, "acme", "support").revision
    _refused(cli("pin", "acme", "support", "m-1", "--baseline", "nope"), "baseline 'nope' does not exist")
    _refused(cli("pin", "acme", "support", "m-1", "--baseline", "bl-bank-m-1-0"), "belongs to bank/support")
    assert manifests.current(pinned_store, "acme", "support").revision == revision
    assert len(audit.entries(pinned_store, tenant_id="acme", action_prefix="manifest.pin_refused")) == 2
    assert cli("pin", "acme", "support", "m-1", "--baseline", "bl-m-1-0")[0] == 0


def test_trailing_space_self_approval_is_refused(cli, pinned_store, tmp_path):
    mallory, carol = tmp_path / "mallory.pem", tmp_path / "carol.pem"
    assert cli("reviewers", "add", "mallory", "--generate-key", "--private-key-out", str(mallory), who="admin")[0] == 0
    assert cli("reviewers", "add", "Carol", "--generate-key", "--private-key-out", str(carol), who="admin")[0] == 0
    _refused(
        cli("reviewers", "add", "CAROL", "--generate-key", "--private-key-out", str(tmp_path / "c2.pem")), "already"
    )
    assert not (tmp_path / "c2.pem").exists()
    assert cli("migrate", "propose", "bank", "support", "m-2", who="mallory")[0] == 0
    review.run_staging(pinned_store, 1, FakeStagingRunner(), actor="mallory")
    for name in ("mallory ", "Mallory"):
        _refused(
            cli(
                "migrate", "approve", "1", "--reviewer", name, "--key", str(mallory), "--reason", "mine", who="mallory "
            ),
            "cannot approve it",
        )
    _refused(
        cli("migrate", "approve", "1", "--reviewer", "carol", "--key", str(mallory), "--reason", "x"), "not the key"
    )
    signed = tmp_path / "approval.json"
    assert (
        cli(
            "migrate",
            "sign-approval",
            "1",
            "--reviewer",
            "carol",
            "--key",
            str(carol),
            "--reason",
            "clean",
            "--output",
            str(signed),
        )[0]
        == 0
    )
    tampered = tmp_path / "tampered.json"
    data = json.loads(signed.read_text())
    tampered.write_text(json.dumps({**data, "statement": {**data["statement"], "reason": "other"}}))
    _refused(cli("migrate", "approve", "1", "--approval", str(tampered)), "does not verify")
    assert states.get(pinned_store, 1).state == "review"
    assert len(audit.entries(pinned_store, tenant_id="bank", action_prefix="migration.review_refused")) == 3
    code, out, _ = cli("migrate", "approve", "1", "--approval", str(signed))
    assert code == 0 and "is approved" in out
    assert states.get(pinned_store, 1).details["review"]["reviewer"] == "carol"
