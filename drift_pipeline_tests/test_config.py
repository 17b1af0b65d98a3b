"""Settings: one typed object for every DRIFT_PIPELINE_* variable, documented in one table."""

from __future__ import annotations

from pathlib import Path

import pytest

from drift_pipeline.config import Settings
from drift_pipeline.errors import InvalidInputError

DOCS = Path(__file__).resolve().parents[1] / "docs" / "operations.md"


def test_every_setting_is_documented_in_the_operations_table() -> None:
    text = DOCS.read_text(encoding="utf-8")
    missing = [name for name in Settings.model_fields if f"`DRIFT_PIPELINE_{name.upper()}`" not in text]
    assert not missing, f"add these to the settings table in docs/operations.md: {missing}"


def test_defaults_live_under_the_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(f"DRIFT_PIPELINE_{name.upper()}", raising=False)
    monkeypatch.setenv("DRIFT_PIPELINE_HOME", str(tmp_path / "h"))
    settings = Settings.from_env()
    assert settings.database_url == f"sqlite:///{tmp_path / 'h' / 'drift.db'}"
    assert settings.storage_url == str(tmp_path / "h" / "data")


def test_postgres_urls_get_the_psycopg2_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFT_PIPELINE_DATABASE_URL", "postgresql://u@h/db")
    assert Settings.from_env().database_url == "postgresql+psycopg2://u@h/db"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DRIFT_PIPELINE_LLM_THREADS", "many"),
        ("DRIFT_PIPELINE_DEPRECATION_NOTICE_DAYS", "0"),
        ("DRIFT_PIPELINE_STORAGE_OPTIONS", "{"),
    ],
)
def test_a_malformed_value_is_one_line_naming_the_variable(
    name: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(InvalidInputError) as err:
        Settings.from_env()
    assert name in str(err.value) and "\n" not in str(err.value)
