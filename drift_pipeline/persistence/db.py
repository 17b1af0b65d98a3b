"""The SQL store: one engine per database URL, serialised write transactions, Alembic upgrades.

SQLite (the embedded default) takes the database write lock at `BEGIN IMMEDIATE`, so two writers
queue instead of failing at commit. PostgreSQL serialises with row locks (`SELECT ... FOR UPDATE` on
the tenant) and a transaction-scoped advisory lock for the audit chain.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, select, text
from sqlalchemy.orm import Session, sessionmaker

from drift_pipeline import files
from drift_pipeline.config import Settings, normalise_database_url
from drift_pipeline.errors import DriftPipelineError
from drift_pipeline.persistence.tables import ChangeCounter

MIGRATIONS = Path(__file__).parent / "alembic"
AUDIT_LOCK_ID = 7_355_608  # arbitrary constant naming the audit chain's advisory lock


class Store:
    """Access to the SQL store. Create with `Store.open()`; use `transaction()` for every write."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        # Write transactions carry an option that makes SQLite take its write lock at BEGIN.
        self._writers = sessionmaker(engine.execution_options(drift_write=True), expire_on_commit=False)

    @classmethod
    def open(cls, url: str | None = None, *, upgrade: bool = True) -> Store:
        """Open (and by default migrate) the store at `url`, or the one the environment names."""
        settings = Settings.from_env()
        url = normalise_database_url(url) if url else settings.database_url
        if url.startswith("sqlite:///"):
            path = Path(url.removeprefix("sqlite:///").split("?", 1)[0])
            if _is_read_only(path):
                return cls._open_read_only(path)
            _private_sqlite_file(path)
        store = cls(_engine(url))
        if upgrade:
            store.upgrade()
        return store

    @classmethod
    def _open_read_only(cls, path: Path) -> Store:
        """An existing SQLite store in a home that cannot be written (a read-only mount, a locked-down copy):
        reads work, no migration runs, and any write fails with the read-only message."""
        # Without a WAL file there is nothing SQLite must recover, so `immutable` lets it read without
        # creating the -shm file it cannot create here.
        mode = "mode=ro" if Path(f"{path}-wal").exists() else "mode=ro&immutable=1"
        store = cls(_engine(f"sqlite:///file:{path}?{mode}&uri=true"))
        if store.schema_revision() != head_revision():
            raise DriftPipelineError(
                f"the store at {path} is read-only and not at this version's schema: open it once where it "
                "can be written (`drift-pipeline init`) to upgrade it"
            )
        return store

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def upgrade(self) -> None:
        """Bring the schema to the newest Alembic revision (no-op when already there)."""
        if self.schema_revision() == head_revision():
            return
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        try:
            with self.engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except Exception as exc:
            fault = describe_storage_fault(exc)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DriftPipelineError(fault or f"cannot initialise the store at {self.engine.url!r}: {first}") from exc

    def schema_revision(self) -> str | None:
        try:
            with self.engine.connect() as conn:
                return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except Exception:
            return None

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A read session (no commit)."""
        with self._sessions() as session:
            yield session

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A write transaction: committed on success, rolled back (nothing stored) on any error."""
        with self._writers.begin() as session:
            yield session

    def lock_audit_chain(self, session: Session) -> None:
        """Serialise audit appends so that two writers never chain to the same predecessor."""
        if self.is_postgres:
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": AUDIT_LOCK_ID})

    def bump_change_counter(self, session: Session) -> int:
        """Tell every runtime cache (in any process) that manifests changed."""
        row = session.execute(select(ChangeCounter).where(ChangeCounter.id == 1).with_for_update()).scalar_one()
        row.value += 1
        return row.value

    def change_counter(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(text("SELECT value FROM change_counter WHERE id = 1")).scalar() or 0)

    def dispose(self) -> None:
        self.engine.dispose()


def describe_storage_fault(exc: BaseException) -> str | None:
    """One line for a full disk or a read-only home/store, whichever layer raised it (OS, SQLite, Arrow);
    None for any other error. Looks through the exception's causes and SQLAlchemy's wrapped DBAPI error."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        where = f" ({current.filename})" if isinstance(current, OSError) and current.filename else ""
        code = current.errno if isinstance(current, OSError) else None
        text_ = str(current).lower()
        if code in _FULL_ERRNOS or any(m in text_ for m in _FULL_MARKERS):
            return f"no space left on the device{where}: free some space and retry (nothing was committed)"
        if "disk i/o error" in text_:  # what SQLite reports when it cannot grow its shared-memory file
            return f"the device reported an I/O error{where}: is the disk full? free some space and retry"
        if code in _READ_ONLY_ERRNOS or any(m in text_ for m in _READ_ONLY_MARKERS):
            return (
                f"cannot write{where}: the home folder or store is read-only "
                "(read-only commands such as `audit verify`, `resolve` and `manifest show` still work)"
            )
        todo.extend([current.__cause__, current.__context__, getattr(current, "orig", None)])
    return None


_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_READ_ONLY_ERRNOS = {errno.EROFS, errno.EACCES, errno.EPERM}
_FULL_MARKERS = ("database or disk is full", "no space left on device", "disk quota exceeded")
_READ_ONLY_MARKERS = ("readonly database", "read-only file system", "permission denied")


@cache
def head_revision() -> str | None:
    """The newest Alembic revision shipped with the code (parsed once per process)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg).get_current_head()


@cache
def _engine(url: str) -> Engine:
    kwargs: dict[str, Any] = {"future": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 60, "check_same_thread": False}
    else:
        kwargs.update(pool_pre_ping=True, pool_size=5, max_overflow=10)
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        _serialise_sqlite_writes(engine)
    return engine


def _is_read_only(path: Path) -> bool:
    """An existing database file that this process cannot write (or whose folder it cannot write)."""
    return path.exists() and not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK))


def _serialise_sqlite_writes(engine: Engine) -> None:
    read_only = "mode=ro" in str(engine.url)

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let SQLAlchemy's begin event issue BEGIN itself
        cur = dbapi_conn.cursor()
        if not read_only:  # switching to WAL is a write
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("drift_write") else "BEGIN")


def _private_sqlite_file(path: Path) -> None:
    """Create the database file owner-only (0600 in a 0700 folder) before SQLite opens it: SQLite makes
    its journal and WAL files with the database file's mode, so they stay private too."""
    if str(path) in ("", ":memory:"):
        return
    try:
        files.private_dirs(path.parent)
        if not files.create_private(path):
            files.tighten(path)  # a database made before this rule (or by an older version)
    except OSError:
        return  # a read-only or missing home: SQLite's own error (or a read-only open) follows
