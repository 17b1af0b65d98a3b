"""A real multi-process Dagster deployment for tests: code server, daemon and webserver as OS processes.

`DagsterDeployment` starts `dagster code-server start` (gRPC), `dagster-daemon run` and `dagster-webserver`
on a PostgreSQL-backed instance derived from `deploy/dagster.postgres.yaml`, each in its own process group
with its output in a log file (`plugins/processes.py`: every process group ever started, run workers
included as children of the code server, is killed at teardown, at interpreter exit, and, for the direct
children, when the test process itself dies). Ports are chosen free; readiness is polled, never slept.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import create_engine, make_url, text

from drift_pipeline_tests.plugins.persistence import PG_ADMIN_URL
from drift_pipeline_tests.plugins.processes import ROOT, ManagedProcess, T, free_port, port_open, wait_until

BIN = Path(sys.executable).parent
LOCATION = "drift_pipeline"
REPOSITORY = "__repository__"
# A loaded 2-core machine shared with other test sessions: imports alone can take half a minute.
START_TIMEOUT_S = float(os.environ.get("DRIFT_PIPELINE_TEST_START_TIMEOUT", "240"))


@dataclass
class DagsterDeployment:
    """The three Dagster processes on one PostgreSQL instance, plus the environment the CLI shares."""

    folder: Path
    env: dict[str, str]
    code_port: int = field(default_factory=free_port)
    web_port: int = field(default_factory=free_port)
    processes: dict[str, ManagedProcess] = field(default_factory=dict)
    phases: list[tuple[str, float]] = field(default_factory=list)  # (what, seconds since the last phase)
    _client: Any = None
    _phase_started: float = field(default_factory=time.monotonic)

    def phase(self, label: str) -> None:
        """Note that `label` just ended, for `timings()` (where a slow deployment test spends its time)."""
        now = time.monotonic()
        self.phases.append((label, now - self._phase_started))
        self._phase_started = now

    def timings(self) -> str:
        return "\n".join(f"{seconds:7.1f} s  {label}" for label, seconds in self.phases)

    @property
    def dagster_home(self) -> Path:
        return Path(self.env["DAGSTER_HOME"])

    def _process(self, name: str, argv: list[str]) -> ManagedProcess:
        proc = ManagedProcess(name, argv, self.env, self.folder / "logs" / f"{name}.log")
        self.processes[name] = proc
        proc.start()
        return proc

    def start_code_server(self) -> None:
        """`dagster code-server start` on `code_port`; ready when the webserver could load from it."""
        self._process(
            "code-server",
            [
                str(BIN / "dagster"),
                "code-server",
                "start",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.code_port),
                "-m",
                "drift_pipeline.definitions",
                "--location-name",
                LOCATION,
            ],
        )
        self.wait_for("the code server's port", lambda: self._check_alive("code-server") and port_open(self.code_port))

    def stop_code_server(self, grace_s: float = 20) -> None:
        self.processes["code-server"].stop(grace_s)

    def start_webserver(self) -> None:
        self._process(
            "webserver",
            [
                str(BIN / "dagster-webserver"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.web_port),
                "-w",
                str(self.dagster_home / "workspace.yaml"),
            ],
        )
        self.wait_for("the webserver", lambda: self._check_alive("webserver") and self._http_ok("/server_info"))

    def start_daemon(self) -> None:
        self._process("daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(self.dagster_home / "workspace.yaml")])
        wanted = {"SENSOR", "QUEUED_RUN_COORDINATOR", "SCHEDULER"}
        self.wait_for(
            "the daemon's heartbeats", lambda: self._check_alive("daemon") and wanted <= self.healthy_daemons()
        )

    def wait_for(self, what: str, probe: Callable[[], T | None], timeout_s: float = START_TIMEOUT_S) -> T:
        return wait_until(what, probe, timeout_s)

    def _check_alive(self, name: str) -> bool:
        proc = self.processes[name]
        if not proc.alive:
            pytest.fail(f"{name} exited with code {proc.popen.returncode if proc.popen else '?'}:\n{proc.tail()}")
        return True

    def _http_ok(self, path: str) -> bool:
        return httpx.get(f"http://127.0.0.1:{self.web_port}{path}", timeout=5).status_code == 200

    @property
    def graphql(self) -> Any:
        """`dagster_graphql.DagsterGraphQLClient` on the webserver."""
        if self._client is None:
            from dagster_graphql import DagsterGraphQLClient

            self._client = DagsterGraphQLClient("127.0.0.1", port_number=self.web_port, timeout=60)
        return self._client

    def query(self, document: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """A raw GraphQL query or mutation through the client (for what it has no method for)."""
        return self.graphql._execute(document, variables or {})

    def location_loaded(self) -> bool:
        data = self.query(
            "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
            "locationOrLoadError { __typename } } } } }"
        )
        for entry in data["workspaceOrError"].get("locationEntries", []):
            if entry["name"] == LOCATION:
                return (
                    entry["loadStatus"] == "LOADED"
                    and entry["locationOrLoadError"]["__typename"] == "RepositoryLocation"
                )
        return False

    def healthy_daemons(self) -> set[str]:
        data = self.query("{ instance { daemonHealth { allDaemonStatuses { daemonType healthy required } } } }")
        statuses = data["instance"]["daemonHealth"]["allDaemonStatuses"]
        return {s["daemonType"] for s in statuses if s["healthy"]}

    def cli(self, *args: str, timeout_s: float = START_TIMEOUT_S) -> str:
        """`drift-pipeline *args` as a subprocess in the deployment's environment; fails the test on non-zero."""
        done = subprocess.run(
            [str(BIN / "drift-pipeline"), *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        assert done.returncode == 0, (
            f"drift-pipeline {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
        )
        return done.stdout

    def logs(self) -> str:
        return "\n".join(f"----- {p.name} ({p.log}) -----\n{p.tail()}" for p in self.processes.values())

    def stop_all(self) -> None:
        for proc in reversed(list(self.processes.values())):
            proc.stop(grace_s=10)


def instance_yaml(deploy_yaml: Path) -> dict[str, Any]:
    """The deployment's instance config, with the run launcher made explicit (a run per process)."""
    config = yaml.safe_load(deploy_yaml.read_text(encoding="utf-8"))
    config["run_launcher"] = {"module": "dagster._core.launcher", "class": "DefaultRunLauncher"}
    return config


def workspace_yaml(code_port: int) -> dict[str, Any]:
    return {"load_from": [{"grpc_server": {"host": "127.0.0.1", "port": code_port, "location_name": LOCATION}}]}


@contextlib.contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    """A new database on the test PostgreSQL server (no skip: unreachable fails); dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def deployment_env(dagster_db: str, store_db: str, folder: Path, extra: dict[str, str]) -> dict[str, str]:
    """The environment every process and CLI call shares: instance, store, offline models."""
    pg = make_url(PG_ADMIN_URL)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIFT_PIPELINE_", "DAGSTER_"))}
    env.update(
        {
            "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
            "DAGSTER_HOME": str(folder / "dagster_home"),
            "DAGSTER_PG_HOST": pg.host or "127.0.0.1",
            "DAGSTER_PG_PORT": str(pg.port or 5432),
            "DAGSTER_PG_USER": pg.username or "postgres",
            "DAGSTER_PG_PASSWORD": pg.password or "",
            "DAGSTER_PG_DB": dagster_db,
            "DAGSTER_MAX_CONCURRENT_RUNS": "2",
            "DRIFT_PIPELINE_HOME": str(folder / "drift_home"),
            "DRIFT_PIPELINE_DATABASE_URL": pg.set(database=store_db).render_as_string(hide_password=False),
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "COLUMNS": "200",  # the CLI's tables in the logs stay readable whatever the caller's terminal
            **extra,
        }
    )
    return env


@pytest.fixture
def dagster_deployment(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., DagsterDeployment]]:
    """`dagster_deployment(extra_env)` -> a `DagsterDeployment` with its databases and config written.

    Nothing is started yet (the test decides the order); everything started is stopped at teardown, and
    the processes' logs are attached to a failing test's report.
    """
    stack = contextlib.ExitStack()
    made: list[DagsterDeployment] = []

    def make(extra_env: dict[str, str]) -> DagsterDeployment:
        dagster_db = stack.enter_context(fresh_database("dp_deploy_dagster"))
        store_db = stack.enter_context(fresh_database("dp_deploy_store"))
        folder = tmp_path / f"deployment{len(made)}"
        deployment = DagsterDeployment(folder, deployment_env(dagster_db, store_db, folder, extra_env))
        home = deployment.dagster_home
        home.mkdir(parents=True)
        (home / "dagster.yaml").write_text(yaml.safe_dump(instance_yaml(ROOT / "deploy" / "dagster.postgres.yaml")))
        (home / "workspace.yaml").write_text(yaml.safe_dump(workspace_yaml(deployment.code_port)))
        made.append(deployment)
        request.node.stash[_DEPLOYMENTS] = made
        return deployment

    with stack:
        try:
            yield make
        finally:
            for deployment in made:  # before the databases are dropped: the servers hold connections
                deployment.stop_all()


_DEPLOYMENTS = pytest.StashKey[list[DagsterDeployment]]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failing deployment test shows the tail of every server's log."""
    outcome = yield
    report = outcome.get_result()
    deployments = item.stash.get(_DEPLOYMENTS, [])
    if report.failed and deployments:
        for deployment in deployments:
            report.sections.append((f"dagster deployment logs ({deployment.folder})", deployment.logs()))
