"""Store fixtures: a migrated store on SQLite and on the real PostgreSQL server, isolated per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from drift_pipeline.persistence import append_only
from drift_pipeline.persistence.db import Store

PG_ADMIN_URL = os.environ.get("DRIFT_PIPELINE_TEST_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database on the real server for this test session; dropped afterwards.

    There is deliberately no skip: CI must fail when PostgreSQL is unreachable.
    """
    name = f"drift_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    Store.open(url)  # migrate once per session
    yield url
    from drift_pipeline.persistence.db import _engine

    _engine(url).dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate_postgres(store: Store) -> None:
    with store.engine.begin() as conn:
        names = [t for t in _store_tables() if t != "alembic_version"]
        conn.execute(text("TRUNCATE " + ", ".join(f'"{n}"' for n in names) + " RESTART IDENTITY CASCADE"))
        conn.execute(text("INSERT INTO change_counter (id, value) VALUES (1, 0)"))


def _store_tables() -> list[str]:
    from drift_pipeline.persistence.tables import Base

    return [t.name for t in Base.metadata.sorted_tables]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated, empty store: every test using it runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield Store.open(f"sqlite:///{tmp_path / 'drift.db'}")
        return
    pg = Store.open(request.getfixturevalue("postgres_url"))
    _truncate_postgres(pg)
    yield pg


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Store:
    """SQLite only, for tests whose subject is not the storage backend."""
    return Store.open(f"sqlite:///{tmp_path / 'drift.db'}")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated DRIFT_PIPELINE_HOME (embedded SQLite store and local object storage)."""
    monkeypatch.setenv("DRIFT_PIPELINE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DRIFT_PIPELINE_DATABASE_URL", raising=False)
    monkeypatch.delenv("DRIFT_PIPELINE_STORAGE_URL", raising=False)
    return tmp_path / "home"


@contextmanager
def _as_dba(store: Store) -> Iterator[None]:
    with store.engine.begin() as conn:
        append_only.drop(conn)
    try:
        yield
    finally:  # the PostgreSQL database is shared by the session's tests: put the triggers back
        with store.engine.begin() as conn:
            append_only.install(conn)


@pytest.fixture
def dba() -> Callable[[Store], AbstractContextManager[None]]:
    """`with dba(store): ...` tampers as an insider with owner rights would: the append-only triggers are
    dropped for the block (and reinstalled after), so detection is what is left to catch it."""
    return _as_dba
