"""Settings from the environment: where the embedded store lives and which database/storage to use."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOME = ".drift-pipeline"


@dataclass(frozen=True)
class Settings:
    """Resolved settings. `database_url` and `storage_url` default to files under `home`."""

    home: Path
    database_url: str
    storage_url: str

    @classmethod
    def from_env(cls) -> Settings:
        home = Path(os.environ.get("DRIFT_PIPELINE_HOME", DEFAULT_HOME)).resolve()
        database_url = os.environ.get("DRIFT_PIPELINE_DATABASE_URL") or f"sqlite:///{home / 'drift.db'}"
        storage_url = os.environ.get("DRIFT_PIPELINE_STORAGE_URL") or str(home / "data")
        return cls(home=home, database_url=normalise_database_url(database_url), storage_url=storage_url)


def normalise_database_url(url: str) -> str:
    """Pin the Postgres driver to psycopg2: SQLAlchemy 2.1 maps a bare `postgresql://` to psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url
