"""Hostile tenant and agent ids in traffic: quarantined with a reason, never a folder, never outside the root."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drift_pipeline.cli.app import main
from drift_pipeline.persistence.objects import ObjectStore
from drift_pipeline.traffic.capture import TrafficCapture
from drift_pipeline.traffic.ingest.run import read_quarantine

BAD_TENANTS = ["acme\n", "a..b", "../acme", "acme/../globex", "Acme", "acme\\x"]
BAD_AGENTS = ["support\n", "../support", "a/b", "sup port"]


def _record(tenant: str, agent: str, i: int) -> dict[str, object]:
    return {
        "tenant_id": tenant,
        "agent_id": agent,
        "timestamp": f"2024-05-01T10:00:{i:02d}Z",
        "messages": [{"role": "user", "content": f"question {i}"}],
        "response_text": f"answer {i}",
    }


def test_ingest_without_agent_checks_quarantines_hostile_ids(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`ingest --no-check-agents` once created `traffic/tenant=acme\\n/`: each hostile id is quarantined."""
    records = [_record("acme", "support", 0)]
    records += [_record(t, "support", i) for i, t in enumerate(BAD_TENANTS, 1)]
    records += [_record("acme", a, i) for i, a in enumerate(BAD_AGENTS, 20)]
    source = tmp_path / "traffic.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    monkeypatch.setattr("sys.argv", ["drift-pipeline", "ingest", str(source), "--no-check-agents", "--json"])
    try:
        main()
    except SystemExit as exc:
        assert not exc.code, capsys.readouterr()
    report = json.loads(capsys.readouterr().out)
    assert (report["read"], report["accepted"], report["quarantined"]) == (len(records), 1, len(records) - 1)

    objects = ObjectStore(str(home / "data"), {})
    assert objects.list_tenants("traffic") == ["acme"]
    reasons = read_quarantine(objects)["reason"].value_counts().to_dict()
    assert reasons == {"invalid_tenant": len(BAD_TENANTS), "invalid_agent": len(BAD_AGENTS)}
    names = [p.name for p in home.rglob("*")]
    assert not [n for n in names if any(c in n for c in "\n\\ ") or ".." in n or "Acme" in n]


def test_capture_quarantines_a_hostile_agent_under_its_tenant(local_objects: ObjectStore) -> None:
    capture = TrafficCapture(local_objects, flush_interval=0.01)
    for agent in ("support", "../support\n"):
        metadata = {"tenant_id": "acme", "agent_id": agent, "pinned_model_id": "m-1"}
        kwargs = {"messages": [{"role": "user", "content": "hi"}], "litellm_params": {"metadata": metadata}}
        capture._capture(kwargs, None, None, None, None)
    assert capture.close()
    assert local_objects.read_batches("traffic", "acme")["agent_id"].tolist() == ["support"]
    quarantined = local_objects.read_batches("quarantine", "acme")
    assert quarantined["reason"].tolist() == ["invalid_agent"]
