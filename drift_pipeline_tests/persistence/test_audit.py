"""Audit log: hash chain, tamper detection that names the first bad entry, filtered exports."""

import itertools
import json
from datetime import timedelta

import pandas as pd
import pytest
from sqlalchemy import text, update

from drift_pipeline.errors import InvalidInputError
from drift_pipeline.persistence import audit
from drift_pipeline.persistence.tables import AuditEntry
from drift_pipeline.versioning import manifests, registry, tenants


@pytest.fixture
def history(store):
    registry.add_version(store, "openai", "m-1", actor="alice")
    for tenant in ("acme", "globex"):
        tenants.add_tenant(store, tenant, actor="alice")
        manifests.pin(store, tenant, "support", "m-1", actor="bob")
    return store


def test_chain_verifies_and_links_each_entry_to_its_predecessor(history):
    rows = audit.entries(history)
    assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1))
    assert rows[0]["prev_hash"] == audit.GENESIS
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(rows))
    result = audit.verify(history)
    assert result.ok and result.checked == len(rows)


def test_an_edited_entry_is_named(history, dba):
    with dba(history), history.transaction() as s:
        s.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(actor="mallory"))
    result = audit.verify(history)
    assert (result.ok, result.first_bad_seq, result.checked) == (False, 3, 2)
    assert "edited" in result.problem


def test_a_deleted_or_reordered_entry_is_named(history, dba):
    with dba(history), history.transaction() as s:
        s.execute(text("DELETE FROM audit_log WHERE seq = 2"))
    result = audit.verify(history)
    assert (result.ok, result.first_bad_seq) == (False, 3)


def test_swapped_rows_are_detected(history, dba):
    rows = audit.entries(history)
    a, b = rows[1], rows[2]
    with dba(history), history.transaction() as s:  # swap content of 2 and 3 but keep their seq numbers
        for src, dst in ((a, b["seq"]), (b, a["seq"])):
            s.execute(
                update(AuditEntry)
                .where(AuditEntry.seq == dst)
                .values(action=src["action"], subject=src["subject"], hash=src["hash"], prev_hash=src["prev_hash"])
            )
    result = audit.verify(history)
    assert not result.ok and result.first_bad_seq == 2


def test_export_filters_by_tenant_and_time_in_every_format(history, tmp_path):
    all_rows = audit.entries(history)
    acme = audit.entries(history, tenant_id="acme")
    assert acme and all(r["tenant_id"] == "acme" for r in acme)
    cut = pd.Timestamp(all_rows[-1]["ts"]).to_pydatetime()
    assert [r["seq"] for r in audit.entries(history, since=cut)] == [all_rows[-1]["seq"]]
    assert audit.entries(history, until=cut - timedelta(days=1)) == []

    csv_text = audit.export(acme, "csv", None)
    assert pd.read_csv(__import__("io").StringIO(csv_text))["seq"].tolist() == [r["seq"] for r in acme]
    jsonl = [json.loads(line) for line in audit.export(acme, "jsonl", None).splitlines()]
    assert json.loads(jsonl[-1]["after"])["tenant_id"] == "acme"
    out = tmp_path / "audit.parquet"
    audit.export(acme, "parquet", out)
    assert pd.read_parquet(out)["hash"].tolist() == [r["hash"] for r in acme]
    with pytest.raises(InvalidInputError):
        audit.export(acme, "xml", None)
