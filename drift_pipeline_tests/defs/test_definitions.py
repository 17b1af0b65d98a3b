"""The Dagster code location loads, and both instance configs (SQLite, PostgreSQL) are valid and work."""

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import create_engine, make_url, text

from drift_pipeline_tests.plugins.persistence import PG_ADMIN_URL

ROOT = Path(__file__).resolve().parents[2]
ASSETS = {"sampled_inputs", "behavioral_baselines", "shadow_replays", "divergence_scores", "drift_report"}
CHECKS = {("drift_report", "drift_within_threshold"), ("drift_report", "equivalence_shown")}
JOBS = {"nightly_drift_job", "replay_job", "sampling_job", "baseline_job", "audit_checkpoint_job"}
SENSORS = {
    "canary_monitor_sensor",
    "new_model_version_sensor",
    "silent_change_sensor",
    "deprecation_sensor",
    "new_tenants_sensor",
    "drift_check_alerts",
    "drift_check_failure_alerts",
}
SCHEDULES = {"nightly_drift_schedule", "hourly_drift_schedule", "nightly_audit_checkpoint_schedule"}


def test_every_definition_loads(home: Path) -> None:
    from drift_pipeline.definitions import defs

    loaded = defs
    dg.Definitions.validate_loadable(loaded)
    repo = loaded.get_repository_def()
    assert {k.to_user_string() for k in loaded.resolve_all_asset_keys()} == ASSETS
    assert {
        (spec.asset_key.to_user_string(), spec.name)
        for checks in loaded.asset_checks or []
        for spec in checks.check_specs
    } == CHECKS
    assert {j.name for j in loaded.resolve_all_job_defs()} >= JOBS
    # Supersets: other definitions may join; none of these may go missing.
    assert {s.name for s in repo.sensor_defs} >= SENSORS
    assert {s.name for s in repo.schedule_defs} >= SCHEDULES
    assert set(repo.get_top_level_resources()) >= {"drift_store", "object_storage", "io_manager"}
    # The replay job carries the whole chain and its checks run with it.
    replay = loaded.resolve_job_def("replay_job")
    assert {k.to_user_string() for k in replay.asset_layer.executable_asset_keys} == {
        "shadow_replays",
        "divergence_scores",
        "drift_report",
    }
    assert {c.name for c in replay.asset_layer.asset_graph.asset_check_keys} >= {n for _, n in CHECKS}


def _load_instance_config(folder: Path) -> dict:
    from dagster._core.instance.config import dagster_instance_config

    config, _ = dagster_instance_config(str(folder), "dagster.yaml")
    return config


def test_sqlite_instance_config_loads_and_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """dagster.yaml validates, and an instance built from it (as `make ui` does) stores partitions on SQLite."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.chdir(tmp_path)  # a relative base_dir, if any, resolves here and not in the repo
    config = _load_instance_config(home)
    assert "sqlite" in config["storage"]
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        assert type(instance.run_storage).__name__ == "SqliteRunStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        instance.add_dynamic_partitions("tenants", ["acme", "globex"])
        assert instance.get_dynamic_partitions("tenants") == ["acme", "globex"]
    finally:
        instance.dispose()
    assert list(tmp_path.rglob("runs.db"))  # the SQLite files landed in this test's folders


@pytest.fixture
def dagster_pg_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """DAGSTER_PG_* for a fresh database on the local server (dropped afterwards)."""
    name = f"dagster_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN_URL)
    for key, value in {
        "DAGSTER_PG_HOST": url.host or "127.0.0.1",
        "DAGSTER_PG_USER": url.username or "postgres",
        "DAGSTER_PG_PASSWORD": url.password or "",
        "DAGSTER_PG_DB": name,
        "DAGSTER_PG_PORT": str(url.port or 5432),
        "DAGSTER_MAX_CONCURRENT_RUNS": "8",
    }.items():
        monkeypatch.setenv(key, value)
    yield name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_postgres_instance_config_loads_and_works(tmp_path: Path, dagster_pg_env: str) -> None:
    """deploy/dagster.postgres.yaml, every setting from the environment, against the real server."""
    shutil.copy(ROOT / "deploy" / "dagster.postgres.yaml", tmp_path / "dagster.yaml")
    config = _load_instance_config(tmp_path)
    assert config["storage"]["postgres"]["postgres_db"]["scheme"] == "postgresql+psycopg2"
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    try:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        instance.add_dynamic_partitions("tenants", ["acme", "initech"])
        assert sorted(instance.get_dynamic_partitions("tenants")) == ["acme", "initech"]
    finally:
        instance.dispose()
    # It really went to the fresh database, not to a local file.
    engine = create_engine(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{dagster_pg_env}")
    try:
        with engine.connect() as conn:
            keys = conn.execute(text("SELECT partition FROM dynamic_partitions ORDER BY partition")).scalars().all()
    finally:
        engine.dispose()
    assert keys == ["acme", "initech"]


def test_dagster_cli_validates_the_code_location(tmp_path: Path) -> None:
    """What `dagster dev` loads: the workspace's code location, validated by Dagster's own CLI."""
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "DRIFT_PIPELINE_HOME": str(tmp_path / "home"),
    }
    (tmp_path / "dagster").mkdir()
    dagster = Path(sys.executable).with_name("dagster")
    proc = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Validation successful for code location drift_pipeline" in proc.stdout + proc.stderr


def test_demo_command_has_help(tmp_path: Path) -> None:
    """`make demo` runs `drift-pipeline demo`; the full story takes minutes, so only its entry point is run."""
    env = {**os.environ, "DRIFT_PIPELINE_HOME": str(tmp_path / "home")}
    cli = Path(sys.executable).with_name("drift-pipeline")
    proc = subprocess.run([str(cli), "demo", "--help"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "demo" in proc.stdout and "Usage" in proc.stdout
    assert not (tmp_path / "home").exists()  # --help writes nothing


def test_what_runs_on_its_own_in_a_fresh_deployment(home: Path) -> None:
    """Decided in docs/operations.md ("On by default"): the nightly chain, hourly tenants, new versions."""
    from drift_pipeline.definitions import defs

    repo = defs.get_repository_def()
    running = {s.name for s in [*repo.schedule_defs, *repo.sensor_defs] if _default_running(s)}
    assert running == SCHEDULES | SENSORS


def _default_running(definition: dg.ScheduleDefinition | dg.SensorDefinition) -> bool:
    status = definition.default_status
    return status in (dg.DefaultScheduleStatus.RUNNING, dg.DefaultSensorStatus.RUNNING)


def test_lineage_is_one_group_so_the_ui_draws_it_open(home: Path) -> None:
    """Dagster's UI draws groups as boxes (collapsed until opened) only when there is more than one."""
    from drift_pipeline.definitions import defs

    groups = {spec.group_name for spec in defs.resolve_all_asset_specs()}
    assert groups == {"drift_pipeline"}


def test_launchpad_configs_explain_every_field_and_decide_nothing(home: Path) -> None:
    """Every job config field has a description; ids and the signed decision have no default (explicit choice)."""
    from drift_pipeline.defs.detection.assets import BaselineConfig
    from drift_pipeline.defs.migration.jobs import ReadinessConfig, ReviewConfig, StagingConfig
    from drift_pipeline.defs.traffic.assets import SamplingConfig

    for config in (BaselineConfig, SamplingConfig, StagingConfig, ReviewConfig, ReadinessConfig):
        for name, field in config.model_fields.items():
            assert field.description and len(field.description) > 20, f"{config.__name__}.{name}"
    for config in (StagingConfig, ReviewConfig):
        assert config.model_fields["migration_id"].is_required()
        assert "migrate status" in (config.model_fields["migration_id"].description or "")
    review = ReviewConfig.model_fields
    assert review["signed_approval"].is_required() and "approve" not in review  # the decision is signed, not a box
    assert "sign-approval" in (review["signed_approval"].description or "")
    assert "reviewers list" in (review["signed_approval"].description or "")
    assert not BaselineConfig.model_fields["rebuild"].default  # never replaces a baseline unless asked
