"""Reports bound to their origin: stored with their hash, verified on use, edits caught (SQLite and PostgreSQL)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import update

from drift_pipeline.errors import IntegrityError, InvalidInputError, RefusedError
from drift_pipeline.persistence import audit, reports
from drift_pipeline.persistence.objects import ObjectStore
from drift_pipeline.persistence.tables import StoredReport
from drift_pipeline_tests.plugins.migration import drift_report


def _record(store, body, objects=None, tenant_id="acme", model_id="m-2"):
    with store.transaction() as session:
        return reports.record(
            store, session, kind="drift", tenant_id=tenant_id, agent_id="support", model_id=model_id, body=body,
            actor="nightly", objects=objects,
        )  # fmt: skip


def _set(store, report_id, **values):
    """An insider with database access edits the row."""
    with store.transaction() as session:
        session.execute(update(StoredReport).where(StoredReport.report_id == report_id).values(**values))


@pytest.fixture
def objects(tmp_path):
    return ObjectStore(str(tmp_path / "objects"))


def test_a_recorded_report_verifies_and_is_anchored_in_the_audit_log(store, objects):
    body = drift_report("m-1", "m-2")
    info = _record(store, body, objects)
    assert info.sha256 == reports.content_hash(body) and info.body == json.loads(reports.canonical_json(body))
    again = reports.verify(store, info.report_id, tenant_id="acme", agent_id="support", model_id="m-2", objects=objects)
    assert again.sha256 == info.sha256
    [entry] = audit.entries(store, action_prefix=reports.RECORDED)
    assert (entry["tenant_id"], entry["after"]["sha256"]) == ("acme", info.sha256)
    assert objects.read_bytes(reports.object_path("acme", info.report_id)) == reports.canonical_json(body)
    assert reports.latest(store, "acme", "support", "m-2").report_id == info.report_id
    assert reports.latest(store, "acme", "support", "m-1") is None


def test_an_edited_row_is_caught_even_with_its_hash_recomputed(store, objects):
    info = _record(store, drift_report("m-1", "m-2", drifted=("refusal",)), objects)
    forged = {**info.body, "drift_detected": False, "dimensions": []}
    _set(store, info.report_id, body=forged)
    with pytest.raises(IntegrityError, match="content does not match its stored hash"):
        reports.verify(store, info.report_id, tenant_id="acme", agent_id="support")
    _set(store, info.report_id, sha256=reports.content_hash(forged))  # the insider recomputes the hash too
    with pytest.raises(IntegrityError, match="does not match the hash the audit log recorded"):
        reports.verify(store, info.report_id, tenant_id="acme", agent_id="support")


def test_an_edited_object_copy_is_caught(store, objects):
    info = _record(store, drift_report("m-1", "m-2"), objects)
    objects.write_bytes(reports.object_path("acme", info.report_id), b'{"dimensions":[]}')
    with pytest.raises(IntegrityError, match="object-storage copy"):
        reports.verify(store, info.report_id, tenant_id="acme", agent_id="support", objects=objects)


def test_reports_of_another_subject_or_without_pairs_are_refused(store):
    info = _record(store, drift_report("m-1", "m-2"))
    with pytest.raises(RefusedError, match="belongs to acme/support, not globex/support"):
        reports.verify(store, info.report_id, tenant_id="globex", agent_id="support")
    with pytest.raises(RefusedError, match="is about 'm-2', not 'm-3'"):
        reports.verify(store, info.report_id, tenant_id="acme", agent_id="support", model_id="m-3")
    with pytest.raises(IntegrityError, match="not the report that was referenced"):
        reports.verify(store, info.report_id, tenant_id="acme", agent_id="support", expected_sha256="0" * 64)
    cases = [
        ({**drift_report("m-1", "m-2"), "n_pairs": 0}, RefusedError, "no paired replays"),
        ({**drift_report("m-1", "m-2"), "tenant_id": "globex"}, RefusedError, "tenant_id 'globex', not 'acme'"),
        (drift_report("m-1", "m-3"), RefusedError, "about model 'm-3', not 'm-2'"),
        ({"dimensions": []}, InvalidInputError, "not a drift report"),
    ]
    for body, error, message in cases:
        with pytest.raises(error, match=message):
            _record(store, body)
    assert len(audit.entries(store, action_prefix=reports.RECORDED)) == 1  # nothing stored by a refusal


def test_a_file_is_only_an_external_unverified_attachment(tmp_path):
    path = tmp_path / "f.json"
    path.write_text('{"dimensions":[],"drift_detected":false,"n_pairs":1}')
    found = reports.external_attachment(path, "acme", "support", None)
    assert found["origin"] == "external, unverified" and found["sha256"] == reports.content_hash(found["report"])
    path.write_text('{"dimensions":[],"drift_detected":false,"n_pairs":0}')
    with pytest.raises(RefusedError, match="no paired replays"):
        reports.external_attachment(path, "acme", "support", None)
    path.write_text("not json")
    with pytest.raises(InvalidInputError, match="cannot read drift report"):
        reports.external_attachment(path, "acme", "support", None)
