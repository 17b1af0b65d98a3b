"""Server processes for tests: free ports, readiness polling, and process groups that never outlive the test.

Each `ManagedProcess` runs in its own session (process group) with its output in a log file. Every group
ever started (with whatever its server spawned) is killed at `stop()`, at interpreter exit, and, for the
direct children, when the test process itself dies (Linux parent-death signal).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOG_TAIL_CHARS = 6000
T = TypeVar("T")

_LIVE_GROUPS: set[int] = set()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS picks it; the server binds it moments later)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_until(what: str, probe: Callable[[], T | None], timeout_s: float, *, every_s: float = 1.0) -> T:
    """Poll `probe` until it returns something truthy; fail the test with `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = probe()
            if value:
                return value
        except AssertionError:  # a broken expectation (a duplicate run) fails now, not at the timeout
            raise
        except Exception as exc:  # a server still starting refuses connections: keep polling
            last_error = exc
        time.sleep(every_s)
    pytest.fail(
        f"timed out after {timeout_s:.0f} s waiting for {what}" + (f" (last error: {last_error})" if last_error else "")
    )


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:  # not a libc platform: teardown and atexit still stop everything
        return None


# Looked up in the parent: between fork and exec the child should do as little as possible.
_LIBC = _libc()


def _child_setup() -> None:
    """In the child, before exec: default SIGINT/SIGTERM, and SIGTERM when the test process dies.

    A test run started in the background (`pytest &`, CI wrappers) inherits an ignored SIGINT, and Dagster's
    servers map SIGTERM onto SIGINT's handler: without the reset they would ignore both, and only SIGKILL
    (which leaves their own children behind) would stop them. Linux ties the parent-death signal to the
    thread that started the child: the servers are started from the test's main thread.
    """
    if _LIBC is None:
        return
    _LIBC.signal(signal.SIGINT, 0)  # SIG_DFL
    _LIBC.signal(signal.SIGTERM, 0)
    with contextlib.suppress(AttributeError):
        _LIBC.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG (Linux)


def _kill_group(pgid: int, grace_s: float) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after `grace_s`."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            _LIVE_GROUPS.discard(pgid)
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    _LIVE_GROUPS.discard(pgid)


@atexit.register
def _kill_leftovers() -> None:
    for pgid in list(_LIVE_GROUPS):
        _kill_group(pgid, grace_s=2)


@dataclass
class ManagedProcess:
    """One server process in its own session (process group), its output appended to `log`."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            out.write(f"\n=== start {' '.join(self.argv)}\n".encode())
            out.flush()
            self.popen = subprocess.Popen(  # the log file is inherited: the child keeps writing after we close ours
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_child_setup,
            )
        _LIVE_GROUPS.add(self.popen.pid)

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, grace_s: float = 20) -> None:
        """Stop the whole process group (the server and everything it spawned)."""
        if self.popen is not None:
            _kill_group(self.popen.pid, grace_s)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=5)

    def tail(self) -> str:
        if not self.log.exists():
            return "(no output)"
        data = self.log.read_bytes()[-LOG_TAIL_CHARS:]
        return data.decode("utf-8", "replace")
