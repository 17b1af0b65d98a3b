"""Alembic 0002_audit_merkle: a log written before it keeps verifying, new entries join each tenant's
sub-chain after its old ones, the tables match the models, and a downgrade removes the triggers."""

from pathlib import Path

import pytest
import sqlalchemy.exc
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import text

from drift_pipeline.persistence import audit
from drift_pipeline.persistence.db import MIGRATIONS, Store, head_revision
from drift_pipeline.persistence.tables import Base
from drift_pipeline.versioning import registry, tenants


def _alembic(store: Store, target: str, down: bool = False) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, target)


def test_the_schema_matches_the_models(store):
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_an_old_log_keeps_verifying_and_new_entries_chain_after_it(tmp_path: Path):
    store = Store(Store.open(f"sqlite:///{tmp_path / 'old.db'}", upgrade=False).engine)
    _alembic(store, "0001")
    legacy = [  # two entries as revision 0001 wrote them: no tenant sub-chain fields in their hash
        {"seq": 1, "tenant_id": None, "subject": "m-0"},
        {"seq": 2, "tenant_id": "acme", "subject": "acme"},
    ]
    prev = audit.GENESIS
    with store.engine.begin() as conn:
        for row in legacy:
            body = {**row, "ts": "2026-11-30T00:00:00.000000+00:00", "actor": "old", "action": "old.thing"}
            body |= {"before": None, "after": None, "reason": "", "prev_hash": prev}
            body["hash"] = prev = audit.row_hash(body)
            conn.execute(
                text(
                    "INSERT INTO audit_log (seq, ts, actor, action, tenant_id, subject, before, after, reason, "
                    "prev_hash, hash) VALUES (:seq, :ts, :actor, :action, :tenant_id, :subject, NULL, NULL, "
                    ":reason, :prev_hash, :hash)"
                ),
                {**body, "ts": "2026-11-30 00:00:00.000000"},
            )
    store.upgrade()
    assert store.schema_revision() == head_revision()  # 0002_audit_merkle and everything after it
    assert audit.verify(store).ok
    tenants.add_tenant(store, "acme", actor="new")
    registry.add_version(store, "openai", "m-1", actor="new")
    rows = audit.all_rows(store)
    assert [(r["tenant_seq"], r["tenant_prev_hash"]) for r in rows if r["tenant_id"] == "acme"] == [
        (None, None),
        (2, rows[1]["hash"]),  # numbered after acme's old entry and linked to it
    ]
    assert audit.verify(store).ok
    _alembic(store, "0001", down=True)
    with store.engine.begin() as conn:  # no trigger left behind
        conn.execute(text("DELETE FROM audit_log WHERE seq = 4"))


def test_the_trigger_names_the_table_and_the_operation(store):
    registry.add_version(store, "openai", "m-1", actor="alice")
    refused = pytest.raises(sqlalchemy.exc.DatabaseError, match="audit_log is append-only: DELETE refused")
    with refused, store.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log"))
