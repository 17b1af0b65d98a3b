"""Fixture for running the `drift-pipeline` console script in-process, as a user would."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from drift_pipeline.cli.app import main

CliRun = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> CliRun:
    """`run_cli(*args)` -> (exit code, stdout, stderr) of `drift-pipeline *args` through `main()`."""

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr("sys.argv", ["drift-pipeline", *args])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return code, out, err

    return run
