"""The CLI under faults: a CI gate's exit code, unparsable files, a full disk and a read-only home.

Each fault gets one line on stderr and exit 1, never a traceback; read-only commands keep working on a
read-only home. Mounts (a read-only bind mount, a 1 MiB tmpfs) need root; without it the read-only home
falls back to permissions and the disk-full store test is skipped (`/dev/full` still covers exports).
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ALIAS_CALL = 'import litellm\nlitellm.completion(model="gpt-4o", messages=[])\n'


@pytest.fixture
def cli(home, run_cli):
    return run_cli


def _one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ------------------------------------------------------------------------------------ scan-aliases


def test_scan_aliases_exits_1_through_the_console_script_when_it_finds_an_alias(cli, tmp_path):
    """`main()` once dropped the command's exit code: a CI gate built on it never failed."""
    (tmp_path / "app.py").write_text(ALIAS_CALL)
    code, out, _ = cli("scan-aliases", str(tmp_path), "--no-registry")
    assert code == 1 and "1 alias call(s)" in out
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "ok.py").write_text('litellm.completion(model="gpt-4o-2024-08-06", messages=[])\n')
    assert cli("scan-aliases", str(clean), "--no-registry")[0] == 0


@pytest.mark.parametrize(
    "source",
    [
        "x = " + "-" * 100_000 + "1\n",  # the parser gives up with MemoryError
        "x = " + "(" * 5000 + ")" * 5000 + "\n",  # too many nested parentheses
        "def broken(:\n",
        "\udcff",  # not UTF-8
    ],
    ids=["deep-unary", "deep-parens", "syntax", "bytes"],
)
def test_one_pathological_file_is_reported_and_the_scan_goes_on(cli, tmp_path, source):
    (tmp_path / "a_bad.py").write_bytes(source.encode("utf-8", "surrogateescape"))
    (tmp_path / "z_app.py").write_text(ALIAS_CALL)
    code, out, err = cli("scan-aliases", str(tmp_path), "--no-registry", "--json")
    assert code == 1 and "Traceback" not in err
    data = json.loads(out)
    assert [f["path"] for f in data["findings"]] == [str(tmp_path / "z_app.py")]
    assert [s["path"] for s in data["skipped"]] == [str(tmp_path / "a_bad.py")]
    assert data["files_scanned"] == 1


# ------------------------------------------------------------------------------- read-only home


@contextlib.contextmanager
def _read_only(folder: Path) -> Iterator[None]:
    """Make `folder` read-only for this process: a read-only bind mount as root, permissions otherwise."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [folder, *folder.rglob("*")]}
        for p in modes:
            p.chmod(modes[p] & ~0o222)
        try:
            yield
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
        return
    mounted = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True).returncode == 0
    if not mounted or subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)]).returncode != 0:
        if mounted:
            subprocess.run(["umount", "-l", str(folder)], check=True)
        pytest.skip("cannot mount a read-only folder here")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def _populate(cli) -> None:
    assert cli("registry", "add", "openai", "m-1")[0] == 0
    assert cli("tenants", "add", "acme")[0] == 0
    assert cli("pin", "acme", "support", "m-1", "--reason", "first pin")[0] == 0


def test_read_only_commands_work_on_a_read_only_home(cli, home, tmp_path):
    _populate(cli)
    export = tmp_path / "elsewhere" / "audit.jsonl"
    export.parent.mkdir()
    with _read_only(home):
        code, out, err = cli("audit", "verify")
        assert code == 0 and "intact" in out, err
        code, out, err = cli("resolve", "acme", "support")
        assert code == 0 and json.loads(out)["model_id"] == "m-1", err
        code, out, err = cli("manifest", "show", "acme", "support", "--json")
        assert code == 0 and json.loads(out)["pinned_model_id"] == "m-1", err
        code, out, err = cli("audit", "export", "--format", "jsonl", "--output", str(export))
        assert code == 0, err
        assert {json.loads(line)["action"] for line in export.read_text().splitlines()} >= {"manifest.pin"}
        code, _, err = cli("tenants", "add", "globex")
        assert code == 1 and "read-only" in _one_line_error(err)
    assert cli("tenants", "add", "globex")[0] == 0  # writable again: nothing was left half-done


# --------------------------------------------------------------------------------------- disk full


def test_an_export_to_a_full_disk_is_one_line(cli):
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    _populate(cli)
    code, _, err = cli("audit", "export", "--format", "jsonl", "--output", "/dev/full")
    assert code == 1 and "no space left" in _one_line_error(err)
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode), "a device is written in place, never renamed over"


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (root only)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)]).returncode:
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_full_disk_under_the_store_is_one_line_and_loses_nothing(cli, monkeypatch, tiny_disk):
    monkeypatch.setenv("DRIFT_PIPELINE_HOME", str(tiny_disk / "home"))
    _populate(cli)
    with (tiny_disk / "filler").open("wb") as filler, contextlib.suppress(OSError):
        while True:
            filler.write(b"\0" * 65536)
            filler.flush()
    code, _, err = cli("pin", "acme", "support", "m-1", "--reason", "x" * 200_000)
    assert code == 1
    line = _one_line_error(err)
    assert "no space left" in line or "is the disk full?" in line
    (tiny_disk / "filler").unlink()
    code, out, _ = cli("audit", "verify")
    assert code == 0 and "intact" in out
    code, out, _ = cli("manifest", "show", "acme", "support", "--history", "--json")
    assert [m["revision"] for m in json.loads(out)] == [1]


# ---------------------------------------------------------------------------------- any arguments

_WORDS = ["pin", "resolve", "manifest", "show", "audit", "export", "verify", "registry", "list", "tenants", "add",
          "scan-aliases", "plan", "--json", "--threshold", "--config", "--format", "--since", "--bogus", "acme",
          "m-1", "0.05", "nan", "-1", "1e309", "../../x", "a\nb", "", "--help"]  # fmt: skip


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(_WORDS) | st.text(max_size=6), min_size=1, max_size=5))
def test_any_arguments_end_in_a_clean_exit_code_never_a_traceback(cli, args):
    """Whatever a user types: exit 0, 1 (refused) or 2 (usage), and at most one line on stderr."""
    code, _, err = cli(*args)
    assert code in (0, 1, 2) and "Traceback" not in err
    assert len(err.strip().splitlines()) <= 1, err
