"""Nothing unscrubbed at rest: ingest records full of PII (accepted and quarantined), then search every
file under the home folder and the object storage (local and S3) for it."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from drift_pipeline.cli.app import app
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.objects import ObjectStore
from drift_pipeline.traffic.capture import StorageSink
from drift_pipeline.traffic.ingest.run import ingest, read_quarantine
from drift_pipeline.traffic.records import TrafficRecord, read_traffic
from drift_pipeline.versioning import tenants

EMAIL, PHONE, CARD, IBAN = "jane.doe@example.com", "650-253-0000", "4111 1111 1111 1111", "GB82 WEST 1234 5698 7654 32"
CUSTOM = "ACME-123456"  # matched only by the tenant's own pattern
NEEDLES = [EMAIL, PHONE, CARD, CARD.replace(" ", ""), IBAN, "GB82WEST", CUSTOM]
TENANT_PATTERNS = {"acme": {"account": r"ACME-\d{6}"}}
TEXT = f"hi, mail me at {EMAIL} or call +1 {PHONE}; card {CARD}; iban {IBAN}"


def _lines() -> list[bytes]:
    base = {"tenant_id": "acme", "agent_id": "support", "timestamp": "2024-05-01T10:00:00Z"}
    accepted = [
        base | {"messages": [{"role": "user", "content": TEXT}], "response_text": f"noted {CUSTOM}"},
        base
        | {
            "timestamp": "2024-05-01T10:00:01Z",
            "messages": [{"role": "system", "content": f"user is {EMAIL}"}, {"role": "user", "content": "hello"}],
            "tool_calls": [{"function": {"name": "pay", "arguments": json.dumps({"iban": IBAN})}}],
            "error": f"rate limited for {EMAIL}",
            "workflow_type": f"refund for {EMAIL}",
        },
    ]
    quarantined = [
        {k: v for k, v in accepted[0].items() if k != "timestamp"},  # the example: no timestamp
        base | {"timestamp": EMAIL, "prompt": TEXT},  # the bad value itself goes into the detail
        base | {"prompt": "x", "prompt_tokens": f"call {PHONE}"},
    ]
    lines = [json.dumps(r).encode() for r in accepted + quarantined]
    escaped = json.dumps(base | {"prompt": TEXT}).replace("@", "\\u0040").replace('"timestamp"', '"ts"')
    lines += [
        escaped.encode(),  # JSON-escaped PII in a quarantined record
        f'{{"tenant_id": "acme", "prompt": "{TEXT}"'.encode(),  # not JSON
        f'{{"tenant_id": "acme", "prompt": "{TEXT} \xff"}}'.encode("latin-1"),  # not UTF-8
    ]
    return lines


def _files_containing_pii(files: dict[str, bytes]) -> list[str]:
    found = []
    for name, data in files.items():
        texts = [data.decode("utf-8", "replace")]
        if name.endswith(".parquet"):  # compressed columns: search the decoded values too
            texts.append(pd.read_parquet(io.BytesIO(data)).to_json(force_ascii=False))
        found += [f"{name}: {needle}" for needle in NEEDLES for text in texts if needle in text]
    return found


def _local_files(*roots: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for root in roots for p in root.rglob("*") if p.is_file()}


def test_cli_ingest_leaves_no_pii_under_the_home_folder(home: Path, tmp_path: Path):
    store = Store.open()  # the home's own database: the tenant's pattern is read from it
    tenants.add_tenant(store, "acme", actor="test", pii_patterns=TENANT_PATTERNS["acme"])
    store.dispose()
    source = tmp_path / "pii.jsonl"
    source.write_bytes(b"\n".join(_lines()) + b"\n")
    result = CliRunner().invoke(app, ["ingest", str(source), "--json", "--no-check-agents"])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout.strip().splitlines()[-1])
    assert (counts["read"], counts["accepted"], counts["quarantined"]) == (8, 2, 6)
    files = _local_files(home)
    assert any(name.endswith(".parquet") for name in files) and any(name.endswith(".jsonl") for name in files)
    assert _files_containing_pii(files) == []
    objects = ObjectStore(str(home / "data"), {})
    stored = read_traffic(objects, "acme")
    assert "<EMAIL>" in stored["messages"].iloc[0] and "<IBAN>" in stored["tool_calls"].iloc[1]
    quarantine = read_quarantine(objects)
    assert set(quarantine.columns) >= {"reason", "detail", "excerpt"} and "raw" not in quarantine.columns
    assert quarantine["excerpt"].str.contains("<EMAIL>").sum() >= 4  # excerpts kept, scrubbed


@pytest.mark.parametrize("where", ["local", "s3"])
def test_ingest_and_capture_leave_no_pii_in_object_storage(where: str, tmp_path: Path, request: pytest.FixtureRequest):
    objects: ObjectStore = request.getfixturevalue(f"{where}_objects")
    source = tmp_path / "pii.jsonl"
    source.write_bytes(b"\n".join(_lines()) + b"\n")
    report = ingest(str(source), objects, pii_patterns=TENANT_PATTERNS)
    assert (report.read, report.accepted, report.quarantined) == (8, 2, 6)
    captured = TrafficRecord(
        "acme", "support", "2024-05-02T00:00:00+00:00", json.dumps([{"role": "user", "content": TEXT}])
    )
    StorageSink(objects, pii_patterns=lambda tenant: TENANT_PATTERNS.get(tenant)).write([captured])
    files = _object_files(objects)
    assert len(files) >= 6
    assert _files_containing_pii(files) == []


def _object_files(objects: ObjectStore) -> dict[str, bytes]:
    found: Any = objects.fs.find(objects.root)
    return {str(path): objects.fs.cat_file(path) for path in found}
