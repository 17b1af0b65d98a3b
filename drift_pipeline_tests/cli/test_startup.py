"""The CLI starts without the heavy libraries: a command imports only what it uses (cli/lazy.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Libraries that cost seconds to import; no command that does not need them may load them.
HEAVY = ("torch", "transformers", "sentence_transformers", "litellm", "great_expectations", "dagster")
# The harness prints which of the watched modules are loaded once the code under test has run.
PROBE = """
import json, sys
watched = {watched!r}
try:
    {code}
except SystemExit:
    pass
print(json.dumps(sorted(m for m in watched if m in sys.modules)), file=sys.stderr)
"""


def loaded_after(code: str, *args: str, watched: tuple[str, ...] = HEAVY, cwd: Path | None = None) -> list[str]:
    """Run `code` in a fresh interpreter (argv = args) and return which `watched` modules it imported."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "40"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(watched=watched, code=code), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
        check=False,
    )
    assert done.stderr.strip(), done.stdout
    return json.loads(done.stderr.strip().splitlines()[-1])


def test_importing_the_cli_loads_no_heavy_library_nor_the_store():
    assert loaded_after("import drift_pipeline.cli.app", watched=(*HEAVY, "sqlalchemy", "pandas")) == []


def test_help_loads_no_heavy_library_and_no_command_module():
    commands = tuple(f"drift_pipeline.cli.{module}" for module in ("compare", "migrate", "registry", "ingest"))
    watched = (*HEAVY, "sqlalchemy", "pandas", *commands)
    assert loaded_after("from drift_pipeline.cli.app import main; main()", "--help", watched=watched) == []


def test_help_lists_each_commands_own_summary(monkeypatch: pytest.MonkeyPatch):
    """`--help` lists placeholders carrying `SUMMARIES`; with every command loaded it must read the same."""
    from typer.core import TyperGroup
    from typer.testing import CliRunner

    from drift_pipeline.cli.app import app
    from drift_pipeline.cli.lazy import LazyGroup

    listed = CliRunner().invoke(app, ["--help"])
    monkeypatch.setattr(LazyGroup, "format_help", TyperGroup.format_help)  # no placeholders: real commands
    loaded = CliRunner().invoke(app, ["--help"])
    assert listed.exit_code == loaded.exit_code == 0
    assert "scan-aliases" in listed.output
    assert listed.output == loaded.output


def test_a_command_loads_only_its_own_module():
    loaded = loaded_after(
        "from drift_pipeline.cli.app import main; main()",
        "plan",
        "--threshold",
        "0.05",
        watched=(*HEAVY, "sqlalchemy", "drift_pipeline.cli.migrate", "drift_pipeline.cli.audit"),
    )
    assert loaded == []


def test_a_mistyped_command_is_still_suggested(run_cli):
    code, _, err = run_cli("compar")
    assert code == 2 and "Did you mean 'compare'" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_compare_with_cached_embeddings_loads_no_model_library(run_cli, llmdrift_dir, tmp_path):
    """Once every text is in the embedding cache, `compare` neither imports torch nor the classifier's
    scikit-learn (the non-answer fit ships with the package)."""
    cache = tmp_path / "embeddings.npz"
    args = ["compare", str(llmdrift_dir / "SENSITIVEQ_EVAL.csv"), "--format", "llmdrift", "--baseline", "gpt-4-0314"]
    args += ["--candidate", "gpt-4-0613", "--embedding-cache", str(cache)]
    code, _, err = run_cli(*args, "--output", str(tmp_path / "first.json"))
    assert code == 0, err
    loaded = loaded_after(
        "from drift_pipeline.cli.app import main; main()",
        *args,
        "--output",
        str(tmp_path / "second.json"),
        watched=(*HEAVY, "sklearn", "sqlalchemy"),
    )
    assert loaded == []
    first, second = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("first", "second"))
    assert first["verdict"] == second["verdict"] and first["dimensions"] == second["dimensions"]


def test_the_lazy_command_map_names_exactly_what_each_module_registers():
    """A command a module registers but `COMMANDS` lacks would be unreachable: the map must follow the modules."""
    import importlib
    import pkgutil

    import typer
    import typer.main

    from drift_pipeline import cli
    from drift_pipeline.cli.app import COMMANDS, SUMMARIES

    assert SUMMARIES.keys() == COMMANDS.keys()  # else `--help` imports the module of the one left out
    groups = {m.name for m in pkgutil.iter_modules(cli.__path__) if m.name not in ("app", "common", "lazy")}
    assert groups == set(COMMANDS.values())  # every command module is reachable through the map
    for module_name in groups:
        holder = typer.Typer()
        importlib.import_module(f"drift_pipeline.cli.{module_name}").register(holder)
        registered = set(typer.main.get_group(holder).commands)
        assert registered == {name for name, module in COMMANDS.items() if module == module_name}, module_name
