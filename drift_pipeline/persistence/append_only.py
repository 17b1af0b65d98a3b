"""Append-only audit tables: triggers that reject UPDATE and DELETE, on PostgreSQL (plpgsql) and SQLite.

Installed by Alembic revision 0002. They stop the application (and anyone using its role) from quietly
rewriting history; a database owner can still drop them, which is why the Merkle checkpoints exist (see
docs/audit.md). On PostgreSQL the grants do the rest: the application role gets INSERT and SELECT only, so
it can neither TRUNCATE nor drop a trigger.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

APPEND_ONLY_TABLES = ("audit_log", "audit_checkpoints", "audit_signing_keys")
_PG_FUNCTION = "drift_audit_append_only"


def install(conn: Connection) -> None:
    """Create the triggers (idempotent)."""
    for statement in _install_statements(conn.dialect.name):
        conn.execute(text(statement))


def drop(conn: Connection) -> None:
    """Remove the triggers (migration downgrade; tests acting as a DBA who tampers)."""
    for statement in _drop_statements(conn.dialect.name):
        conn.execute(text(statement))


def _install_statements(dialect: str) -> list[str]:
    if dialect == "postgresql":
        statements = [
            f"CREATE OR REPLACE FUNCTION {_PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP "
            "USING ERRCODE = 'insufficient_privilege'; END; $$"
        ]
        for table in APPEND_ONLY_TABLES:
            statements += [
                f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}",
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {_PG_FUNCTION}()",
            ]
        return statements
    statements = []
    for table in APPEND_ONLY_TABLES:
        for op in ("UPDATE", "DELETE"):
            name = f"{table}_no_{op.lower()}"
            statements.append(
                f"CREATE TRIGGER IF NOT EXISTS {name} BEFORE {op} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {op} refused'); END"
            )
    return statements


def _drop_statements(dialect: str) -> list[str]:
    if dialect == "postgresql":
        return [f"DROP TRIGGER IF EXISTS {t}_append_only ON {t}" for t in APPEND_ONLY_TABLES] + [
            f"DROP FUNCTION IF EXISTS {_PG_FUNCTION}()"
        ]
    return [f"DROP TRIGGER IF EXISTS {t}_no_{op}" for t in APPEND_ONLY_TABLES for op in ("update", "delete")]
