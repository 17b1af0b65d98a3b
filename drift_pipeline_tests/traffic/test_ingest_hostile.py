"""Ingestion is total: poison records are quarantined with a reason and never stop their chunk; commit
markers and ledger markers are recognised strictly; records are identified by their full content."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from drift_pipeline.persistence.objects import BAD_COMMITS, ObjectStore
from drift_pipeline.traffic.ingest import fields
from drift_pipeline.traffic.ingest.run import ingest, read_quarantine
from drift_pipeline.traffic.records import read_traffic


def _good(i: int, **changes: object) -> dict:
    record = {
        "tenant_id": "acme",
        "agent_id": "support",
        "timestamp": f"2024-05-01T10:{i // 60 % 60:02d}:{i % 60:02d}Z",
        "messages": [{"role": "user", "content": f"question {i}"}],
        "response_text": f"answer {i}",
        "prompt_tokens": 5,
    }
    return record | changes


def _write(path: Path, lines: list[bytes]) -> str:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return str(path)


POISON: dict[str, tuple[bytes, str]] = {
    "huge tokens": (json.dumps(_good(100, completion_tokens=10**30)).encode(), "out_of_range"),
    "negative tokens": (json.dumps(_good(101, prompt_tokens=-100)).encode(), "out_of_range"),
    "latency inf": (json.dumps(_good(102, latency_ms="inf")).encode(), "out_of_range"),
    "latency -5": (json.dumps(_good(103, latency_ms=-5)).encode(), "out_of_range"),
    "latency NaN literal": (json.dumps(_good(104)).encode()[:-1] + b', "latency_ms": NaN}', "not_json"),
    "latency beyond float": (json.dumps(_good(105, latency_ms=10**400)).encode(), "out_of_range"),
    "year 9999 at -01:00": (json.dumps(_good(106, timestamp="9999-12-31T23:59:59-01:00")).encode(), "bad_timestamp"),
    "year 1": (json.dumps(_good(107, timestamp="0001-01-01T00:00:00+01:00")).encode(), "bad_timestamp"),
    "epoch 1e300": (json.dumps(_good(108, timestamp=1e300)).encode(), "bad_timestamp"),
    "content parts [1,2,{}]": (
        json.dumps(_good(109, messages=[{"role": "user", "content": [1, 2, {}]}])).encode(),
        "wrong_type",
    ),
    "100k-deep nesting": (b'{"tenant_id": "acme", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "too_deep"),
    "deep messages string": (json.dumps(_good(110, messages="[" * 50_000 + "]" * 50_000)).encode(), "too_deep"),
    "deep JSON inside a content string": (
        json.dumps(_good(115, messages=[{"role": "user", "content": "[" * 50_000 + "]" * 50_000}])).encode(),
        "too_deep",
    ),
    "lone surrogate": (json.dumps(_good(111)).encode()[:-1] + b', "response_text": "\\ud800"}', "bad_encoding"),
    "agent with newline": (json.dumps(_good(112, agent_id="support\n")).encode(), "invalid_agent"),
    "tools not a list": (json.dumps(_good(113, tools={"a": 1})).encode(), "wrong_type"),
    "huge integer literal": (
        json.dumps(_good(114)).encode()[:-1] + b', "prompt_tokens": ' + b"9" * 5000 + b"}",
        "not_json",
    ),
}


def test_poison_records_are_quarantined_and_never_stop_their_chunk(tmp_path: Path, local_objects: ObjectStore):
    lines = [json.dumps(_good(0)).encode()]
    for i, (line, _) in enumerate(POISON.values()):
        lines += [line, json.dumps(_good(i + 1)).encode()]  # a good record after every poison one
    report = ingest(_write(tmp_path / "poison.jsonl", lines), local_objects, chunk_size=1000, max_record_bytes=10**6)
    expected: dict[str, int] = {}
    for _, reason in POISON.values():
        expected[reason] = expected.get(reason, 0) + 1
    assert (report.read, report.accepted, report.quarantined) == (len(lines), len(POISON) + 1, len(POISON))
    assert dict(report.reasons) == expected
    assert len(read_traffic(local_objects, "acme")) == len(POISON) + 1
    assert len(read_quarantine(local_objects)) == len(POISON)
    again = ingest(_write(tmp_path / "poison.jsonl", lines), local_objects)  # a rerun is not stuck either
    assert (again.read, again.written, again.duplicates) == (report.read, 0, report.accepted)


def test_depth_scan_ignores_brackets_inside_strings():
    assert not fields.json_too_deep(json.dumps({"text": "[" * 500 + '\\"{' * 100}), 64)
    assert fields.json_too_deep("[" * 65 + "]" * 65, 64)
    assert not fields.json_too_deep("[" * 64 + "]" * 64, 64)
    assert fields.loads('{"a": [[1]]}') == {"a": [[1]]}


def test_a_different_response_is_another_record_an_exact_copy_is_not(tmp_path: Path, local_objects: ObjectStore):
    first, other_response, other_tokens = (
        _good(1),
        _good(1, response_text="a different answer"),
        _good(1, prompt_tokens=9),
    )
    lines = [json.dumps(r).encode() for r in (first, other_response, other_tokens, first)]
    report = ingest(_write(tmp_path / "near.jsonl", lines), local_objects)
    assert (report.accepted, report.written, report.duplicates) == (4, 3, 1)
    stored = read_traffic(local_objects, "acme")
    assert sorted(stored["response_text"]) == ["a different answer", "answer 1", "answer 1"]


def _marker_folder(objects: ObjectStore) -> Path:
    return Path(objects.full_path("traffic/tenant=acme/day=2024-05-01/_commits"))


def test_a_leftover_temporary_marker_is_never_a_commit(tmp_path: Path, local_objects: ObjectStore):
    ref = local_objects.write_batch("traffic", "acme", "2024-05-01", pd.DataFrame({"record_id": ["a"]}), batch_id="b1")
    folder = _marker_folder(local_objects)
    # A complete marker still under its temporary name: what a kill between fsync and rename leaves.
    (folder / ".tmp-0123abcd-b1.json").write_bytes((folder / "b1.json").read_bytes())
    (folder / ".tmp-4567-b2.json").write_bytes(b'{"batch_id": "b2", "fi')  # and a half-written one
    assert [r.batch_id for r in local_objects.list_batches("traffic", "acme")] == [ref.batch_id]
    assert list(local_objects.read_batches("traffic", "acme")["record_id"]) == ["a"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b'{"batch_id": "b1", "file": "b1.parq', "unreadable marker"),
        (b"\xff\xfe", "unreadable marker"),
        (b"[]", "not a JSON object"),
        (json.dumps({"batch_id": "b1", "file": "../../../etc/passwd", "format": "jsonl"}).encode(), "unexpected data"),
        (json.dumps({"batch_id": "other", "file": "b1.jsonl"}).encode(), "another batch"),
    ],
)
def test_a_bad_marker_is_quarantined_with_its_reason_and_the_day_still_ingests(
    tmp_path: Path, local_objects: ObjectStore, content: bytes, reason: str
):
    folder = _marker_folder(local_objects)
    folder.mkdir(parents=True)
    (folder / "b1.json").write_bytes(content)
    assert local_objects.read_batches("traffic", "acme").empty  # skipped, not fatal
    bad = folder.parent / BAD_COMMITS
    assert (bad / "b1.json").read_bytes() == content and not (folder / "b1.json").exists()
    assert reason in json.loads((bad / "b1.json.reason.json").read_text())["reason"]
    report = ingest(_write(tmp_path / "day.jsonl", [json.dumps(_good(i)).encode() for i in range(3)]), local_objects)
    assert (report.read, report.written) == (3, 3) and len(read_traffic(local_objects, "acme")) == 3


def test_a_damaged_chunk_is_redone_on_rerun_without_duplicates(tmp_path: Path, local_objects: ObjectStore):
    src = _write(tmp_path / "log.jsonl", [json.dumps(_good(i)).encode() for i in range(30)])
    ingest(src, local_objects, chunk_size=10)
    ledger = next(Path(local_objects.full_path("_ingest")).iterdir())
    (ledger / "chunk-000001.json").write_bytes(b'{"read": 1')  # a truncated ledger marker
    [marker] = [m for m in _marker_folder(local_objects).iterdir() if m.name.endswith("000002.json")]
    marker.write_bytes(b"{")  # and a truncated commit marker of the last chunk
    report = ingest(src, local_objects, chunk_size=10)
    assert (report.read, report.accepted, report.resumed_chunks) == (30, 30, 1)
    stored = local_objects.read_batches("traffic", "acme")  # every committed row, no deduplication on read
    assert len(stored) == 30 and stored["record_id"].is_unique


def test_rewriting_a_batch_never_breaks_the_committed_one(local_objects: ObjectStore):
    """The data file is named by its digest: a crash after rewriting data leaves the old commit readable."""
    first = local_objects.write_batch("traffic", "acme", "2024-05-01", pd.DataFrame({"record_id": ["a"]}), batch_id="b")
    local_objects.write_bytes(f"{first.path.rsplit('-', 1)[0]}-{'0' * 16}.parquet", b"half of a new batch")
    assert list(local_objects.read_batches("traffic", "acme")["record_id"]) == ["a"]
    second = local_objects.write_batch(
        "traffic", "acme", "2024-05-01", pd.DataFrame({"record_id": ["b"]}), batch_id="b"
    )
    assert second.path != first.path and not local_objects.exists(first.path)
    assert list(local_objects.read_batches("traffic", "acme")["record_id"]) == ["b"]


def test_unicode_line_separators_inside_a_record_survive_the_quarantine(tmp_path: Path, local_objects: ObjectStore):
    """Found by the fuzz test: JSONL batches were split with splitlines(), which also splits at U+0085."""
    lines = [
        b'{"\\u0085": null}',
        json.dumps({"tenant_id": "acme", "note": "a\u2028b\x85c"}, ensure_ascii=False).encode(),
    ]
    report = ingest(_write(tmp_path / "nel.jsonl", lines), local_objects)
    assert report.quarantined == 2 and len(read_quarantine(local_objects)) == 2
