"""Owner-only files: under umask 022 the home folder, the database and every object are 0700/0600."""

from __future__ import annotations

import http.client
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from drift_pipeline import files
from drift_pipeline.alerts.receiver import AlertReceiver
from drift_pipeline.cli.app import main
from drift_pipeline.detection import probes, report
from drift_pipeline.detection.offline import variants
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.objects import ObjectStore


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The common default umask, under which a plain open() or mkdir() makes world-readable files."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    monkeypatch.setattr("sys.argv", ["drift-pipeline", *args])
    try:
        main()
    except SystemExit as exc:
        assert not exc.code, capsys.readouterr()
    return capsys.readouterr().out


def loose_modes(folder: Path) -> dict[str, str]:
    """Every path under `folder` (itself included) whose mode is not 0700 (folders) or 0600 (files)."""
    found = {}
    for path in [folder, *folder.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if mode != (0o700 if path.is_dir() else 0o600):
            found[str(path.relative_to(folder.parent))] = oct(mode)
    return found


def test_a_small_run_leaves_only_owner_only_files_under_umask_022(
    umask_022: None, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """init, register, pin, ingest (accepted + quarantined), audit export, a probe reference, a report, the
    offline provider's state and the demo receiver: then list every file under the home and check its mode."""
    source = tmp_path / "traffic.jsonl"
    good = {
        "tenant_id": "acme",
        "agent_id": "support",
        "timestamp": "2024-05-01T10:00:00Z",
        "messages": [{"role": "user", "content": "mail me at jane.doe@example.com"}],
        "response_text": "ok",
    }
    source.write_text(json.dumps(good) + "\n" + json.dumps({**good, "timestamp": None}) + "\n", encoding="utf-8")
    cli(monkeypatch, capsys, "init")
    cli(monkeypatch, capsys, "tenants", "add", "acme")
    cli(monkeypatch, capsys, "registry", "add", "openai", "gpt-4o-2024-08-06")
    cli(monkeypatch, capsys, "pin", "acme", "support", "gpt-4o-2024-08-06")
    counts = json.loads(cli(monkeypatch, capsys, "ingest", str(source), "--json"))
    assert (counts["accepted"], counts["quarantined"]) == (1, 1)
    cli(monkeypatch, capsys, "audit", "export", "--format", "jsonl", "--output", str(home / "exports" / "audit.jsonl"))

    objects = ObjectStore(str(home / "data"), {})
    probes.save_reference(objects, probes.ProbeReference("meta-llama/Llama-3", ["pong"], "fp", 0.0, 0.0, "now"))
    report.write_json({"drift_detected": False}, home / "reports" / "r.json")
    variants.set_variant(variants.MODEL_ID, "base", note="test")
    receiver = AlertReceiver(home / "demo" / "alerts")
    try:
        connection = http.client.HTTPConnection(*receiver.server.server_address[:2])
        connection.request("POST", "/hook/../../../../escaped", body=b'{"x": 1}')
        assert connection.getresponse().status == 202
    finally:
        receiver.close()

    names = {p.name for p in home.rglob("*")}
    assert {"drift.db", "traffic", "quarantine", "probes", "audit.jsonl", "r.json", variants.STATE_FILE} <= names
    assert [p.name for p in (home / "demo" / "alerts").iterdir()] == ["alert-001-hook-escaped.json"]
    assert loose_modes(home) == {}


def test_an_existing_world_readable_database_is_tightened_on_open(umask_022: None, tmp_path: Path) -> None:
    db = tmp_path / "old" / "drift.db"
    db.parent.mkdir()
    Store.open(f"sqlite:///{db}")
    db.chmod(0o644)  # what an earlier version left behind
    Store.open(f"sqlite:///{db}")
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


def test_private_helpers_ignore_the_umask_and_leave_existing_folders_alone(umask_022: None, tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    files.write_private(tmp_path / "a" / "b" / "c.bin", b"x")
    assert loose_modes(tmp_path / "a") == {}
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755  # not ours to change
    assert not [p for p in (tmp_path / "a" / "b").iterdir() if p.name.startswith(".tmp-")]
    os.umask(0o000)  # even a wide-open umask
    files.write_private(tmp_path / "d" / "e.bin", b"y")
    assert loose_modes(tmp_path / "d") == {}
