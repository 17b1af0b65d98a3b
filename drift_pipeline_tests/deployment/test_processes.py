"""The deployment test's process helpers leave nothing behind and can always stop what they started."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from drift_pipeline_tests.plugins.processes import ManagedProcess, wait_until

# A server that starts a worker of its own (as the code server starts run workers), then waits.
SPAWNING = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
    "print(child.pid, flush=True)\n"
    "time.sleep(600)\n"
)


def _alive(pid: int) -> bool:
    """Running (a zombie, dead but not yet reaped, does not count)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


def test_stop_ends_the_server_and_what_it_spawned(tmp_path: Path) -> None:
    proc = ManagedProcess("spawner", [sys.executable, "-c", SPAWNING], dict(os.environ), tmp_path / "spawner.log")
    proc.start()
    worker = int(
        wait_until("the worker's pid", lambda: proc.log.read_text().split()[-1].isdigit() and proc.tail(), 60).split()[
            -1
        ]
    )
    assert proc.alive and _alive(worker)
    proc.stop(grace_s=10)
    assert not proc.alive
    wait_until("the worker to end with its server", lambda: not _alive(worker), 30)


def test_servers_get_default_interrupt_handling_even_when_the_test_ignores_it(tmp_path: Path) -> None:
    """A test run started in the background ignores SIGINT; Dagster's servers map SIGTERM onto SIGINT's
    handler, so without the reset they would ignore SIGTERM too."""
    script = "import signal; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler, flush=True)"
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        proc = ManagedProcess("probe", [sys.executable, "-c", script], dict(os.environ), tmp_path / "probe.log")
        proc.start()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert proc.popen is not None and proc.popen.wait(timeout=60) == 0
    assert proc.log.read_text().split()[-1] == "True"
