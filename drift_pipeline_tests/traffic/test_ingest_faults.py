"""Fault tests: `kill -9` an ingest at random points (fixed seeds), rerun, and count exactly.

After any number of kills and one finishing run: accepted + quarantined == read, every distinct record
is stored exactly once (no duplicate rows, no gaps) and every poison line exactly once in the quarantine.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from drift_pipeline.persistence.objects import ObjectStore
from drift_pipeline.traffic.ingest.run import ingest, read_quarantine

ROOT = Path(__file__).resolve().parents[2]
N_LINES, CHUNK = 400, 25
# The child prints one line per finished chunk, so a kill can be aimed at a chunk and then a random
# moment inside the next one (while data files, commit markers or the ledger are being written).
_CHILD = """
import sys
from drift_pipeline.persistence.objects import ObjectStore
from drift_pipeline.traffic.ingest.run import ingest
objects = ObjectStore(sys.argv[2], {})
ingest(sys.argv[1], objects, chunk_size=int(sys.argv[3]), on_progress=lambda n: print("chunk", flush=True))
print("done", flush=True)
"""


def _source(path: Path) -> tuple[str, int, int, int]:
    """A log over two tenants and three days with poison lines and exact copies.

    Returns (path, good lines, distinct good records, poison lines).
    """
    rng = random.Random(7)
    lines, good, poison, distinct = [], 0, 0, set()
    for i in range(N_LINES):
        if i % 17 == 5:
            lines.append('{"tenant_id": "acme", "oops"' if i % 2 else json.dumps({"tenant_id": "acme", "x": 1}))
            poison += 1
            continue
        j = rng.randrange(i + 1) if i % 11 == 3 else i  # now and then an exact copy of an earlier record
        record = {
            "tenant_id": ("acme", "globex")[j % 2],
            "agent_id": "support",
            "timestamp": f"2024-05-0{1 + j % 3}T10:{j // 60 % 60:02d}:{j % 60:02d}Z",
            "messages": [{"role": "user", "content": f"question {_letters(j)}"}],
            "response_text": f"answer {_letters(j)}",
        }
        lines.append(json.dumps(record))
        distinct.add(j)
        good += 1
    path.write_text("\n".join(lines) + "\n")
    return str(path), good, len(distinct), poison


def _letters(n: int) -> str:
    # Digit-free texts: the scrubber's phone matcher is the costly part, and this test is about kills.
    return "".join(chr(ord("a") + int(d)) for d in str(n))


def _killed_run(source: str, storage: str, rng: random.Random) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, source, storage, str(CHUNK)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert child.stdout is not None
    aim = rng.randrange(N_LINES // CHUNK)
    for _ in range(aim):
        if child.stdout.readline() in ("done\n", ""):
            break
    time.sleep(rng.uniform(0, 0.08))
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=60)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kill_9_at_random_points_then_rerun_counts_exactly(tmp_path: Path, seed: int):
    source, good, distinct, poison = _source(tmp_path / "log.jsonl")
    storage = str(tmp_path / "objects")
    rng = random.Random(seed)
    for _ in range(2):
        _killed_run(source, storage, rng)
    objects = ObjectStore(storage, {})
    report = ingest(source, objects, chunk_size=CHUNK)

    assert report.resumed_chunks > 0  # the killed runs had committed work (the aim is one finished chunk or more)
    assert (report.read, report.accepted, report.quarantined) == (N_LINES, good, poison)
    assert report.accepted + report.quarantined == report.read
    rows = [objects.read_batches("traffic", tenant) for tenant in ("acme", "globex")]
    stored = [record_id for frame in rows for record_id in frame["record_id"]]  # every committed row
    assert len(stored) == len(set(stored)) == distinct
    assert len(read_quarantine(objects)) == poison
    leftovers = list(Path(storage).rglob("_bad_commits"))
    assert leftovers == []  # kills leave temporary names, never a marker that has to be quarantined
