"""The evidence bundle: written by `evidence --bundle`, checked offline by `evidence verify` (SQLite and PostgreSQL).

The store is only used to produce the bundle; `evidence verify` runs with the database URL pointing nowhere.
Every tampering a tenant could meet (an edited report, a dropped approval or audit entry, a replaced key) is one
line and exit 1.
"""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from drift_pipeline.migration import evidence_bundle, promotion, review, reviewers
from drift_pipeline.persistence import audit_proofs, checkpoints, reports
from drift_pipeline_tests.plugins.migration import FakeBaselineCreator, FakeStagingRunner, drift_report, signed_approval


@pytest.fixture
def cli(pinned_store, tmp_path, monkeypatch, run_cli):
    monkeypatch.setenv("DRIFT_PIPELINE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DRIFT_PIPELINE_DATABASE_URL", pinned_store.engine.url.render_as_string(hide_password=False))
    monkeypatch.delenv("DRIFT_PIPELINE_STORAGE_URL", raising=False)
    monkeypatch.delenv("DRIFT_PIPELINE_AUDIT_SIGNING_KEY", raising=False)

    return run_cli


@pytest.fixture
def bundle(cli, pinned_store, tmp_path, monkeypatch):
    """bank/support migrated m-1 -> m-2 with carol's signed approval, then an equivalent nightly report of m-2."""
    m = review.propose(pinned_store, "bank", "support", "m-2", actor="alice")
    m = review.run_staging(pinned_store, m.id, FakeStagingRunner(), actor="alice")
    review.approve(pinned_store, m.id, signed_approval(pinned_store, m.id, "carol"))
    promotion.start_canary(pinned_store, m.id, 0.2, actor="alice")
    promotion.promote(pinned_store, m.id, FakeBaselineCreator(pinned_store), actor="alice")
    with pinned_store.transaction() as session:
        body = {**drift_report("m-2", "m-2"), "tenant_id": "bank", "agent_id": "support"}
        reports.record(
            pinned_store, session, kind="drift", tenant_id="bank", agent_id="support", model_id="m-2", body=body,
            actor="nightly",
        )  # fmt: skip
    folder = tmp_path / "bundle"
    code, out, err = cli("evidence", "bank", "support", "--since", "2020-01-01", "--output", str(tmp_path / "ev.json"),
                         "--bundle", str(folder))  # fmt: skip
    assert code == 0, err
    assert "equivalent" in out
    key = tmp_path / "audit.pub.pem"
    key.write_bytes(checkpoints.public_pem(checkpoints.load_signing_key().public_key()))
    monkeypatch.setenv("DRIFT_PIPELINE_DATABASE_URL", "postgresql+psycopg2://nobody@127.0.0.1:1/none")  # offline
    return folder, key


def _copy(folder, tmp_path, name):
    target = tmp_path / name
    shutil.copytree(folder, target)
    return target


def _rewrite(folder, name, edit):
    """Edit one file and re-hash it in BUNDLE.json (a forger who knows the format)."""
    path = folder / name
    data = json.loads(path.read_text())
    edit(data)
    raw = (
        reports.canonical_json(data)
        if name == evidence_bundle.REPORT
        else (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()
    )
    path.write_bytes(raw)
    index = json.loads((folder / evidence_bundle.INDEX).read_text())
    index["files"][name] = hashlib.sha256(raw).hexdigest()
    (folder / evidence_bundle.INDEX).write_text(json.dumps(index))


def _refused(result, message):
    code, _, err = result
    assert code == 1 and len(err.strip().splitlines()) == 1 and message in err, err


def test_a_bundle_verifies_offline(cli, bundle):
    folder, key = bundle
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(["evidence.json", "report.json", "approvals.json", "audit.json", "audit_public_key.pem",
                            "BUNDLE.json"])  # fmt: skip
    [approval] = json.loads((folder / "approvals.json").read_text())
    assert approval["approval"]["statement"]["reviewer"] == "carol"
    code, out, err = cli("evidence", "verify", str(folder), "--public-key", str(key))
    assert code == 0 and "verified" in out and "equivalent" in out, err


def test_tampered_bundles_are_refused(cli, bundle, tmp_path):
    folder, key = bundle

    def check(name, edit, message):
        target = _copy(folder, tmp_path, name)
        edit(target)
        _refused(cli("evidence", "verify", str(target), "--public-key", str(key)), message)

    check("raw-edit", lambda f: (f / "report.json").write_text("{}"), "changed after the bundle was written")
    check(
        "report",
        lambda f: _rewrite(f, "report.json", lambda d: d.update(n_pairs=4000)),
        "not the report the evidence references",
    )
    check(
        "approval",
        lambda f: _rewrite(f, "approvals.json", lambda d: d.clear()),
        "missing from approvals.json",
    )
    check(
        "signature",
        lambda f: _rewrite(f, "approvals.json", lambda d: d[0]["approval"]["statement"].update(reason="other")),
        "does not verify with the reviewer's public key",
    )
    check(
        "audit",
        lambda f: _rewrite(f, "audit.json", lambda d: d["entries"].pop(0)),
        "audit:",
    )

    def forge_consistently(f):  # report, evidence and index all agree: the answer and the audit log do not
        def drift(d):
            d["dimensions"][0].update(drifted=True, equivalence_low=0.1, equivalence_high=0.3)

        _rewrite(f, "report.json", drift)
        forged = json.loads((f / "report.json").read_text())

        def point_at_forgery(d):
            d["drift_report"] = forged
            d["drift_report_ref"]["sha256"] = reports.content_hash(forged)

        _rewrite(f, "evidence.json", point_at_forgery)
        assert evidence_bundle.verify(f, [key.read_bytes()], audit_proofs.verify_tenant_bundle) == [
            "the answer is 'equivalent' but the report's intervals do not show equivalence",
            "the drift report's hash is not in the tenant's proven audit entries",
        ]

    check("verdict", forge_consistently, "intervals do not show equivalence (and 1 more problem(s))")


def test_a_missing_or_wrong_public_key_is_refused(cli, bundle, tmp_path):
    folder, _ = bundle
    _refused(cli("evidence", "verify", str(folder)), "needs --public-key")
    other = tmp_path / "other.pem"
    other.write_bytes(reviewers.public_pem(Ed25519PrivateKey.generate().public_key()))
    _refused(cli("evidence", "verify", str(folder), "--public-key", str(other)), "not the one you trust")
    _refused(cli("evidence", "verify", str(tmp_path / "nowhere"), "--public-key", str(other)), "not an evidence bundle")
