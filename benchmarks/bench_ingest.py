"""Ingest throughput with scrubbing before the first write: records per second, by kind of text.

Two synthetic JSONL logs (chat-like prose, and number-heavy text where the phone matcher does the most
work) and, when present, the real LLMDrift PRIME file (4,000 rows, many numbers). Each is ingested into
a fresh local store; the time includes reading, validation, scrubbing and writing the batches.

    .venv/bin/python benchmarks/bench_ingest.py [--records 5000]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from drift_pipeline.persistence.objects import ObjectStore
from drift_pipeline.traffic.ingest.run import ingest

LLMDRIFT = Path(
    os.environ.get("DRIFT_PIPELINE_LLMDRIFT_DIR") or Path(__file__).resolve().parents[2] / "shared/data/llmdrift"
)
PROSE = "Could you help me change the delivery address on my last order? I moved to a new flat last week."
NUMBERS = "Is 17077 a prime number? 17077 / 7 = 2439.57, / 11 = 1552.45, / 13 = 1313.6; order 4432-118 of 2024-05-01."


def _log(folder: Path, name: str, text: str, n: int) -> Path:
    path = folder / f"{name}.jsonl"
    with path.open("w") as fh:
        for i in range(n):
            record = {
                "tenant_id": "acme",
                "agent_id": "support",
                "timestamp": f"2024-05-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z",
                "messages": [{"role": "user", "content": text}],
                "response_text": f"{text} ({i})",
            }
            fh.write(json.dumps(record) + "\n")
    return path


def _time(source: Path, fmt: str, **kwargs: str) -> tuple[int, float]:
    with tempfile.TemporaryDirectory() as root:
        start = time.perf_counter()
        report = ingest(str(source), ObjectStore(root, {}), fmt=fmt, **kwargs)
        return report.read, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5000)
    args = parser.parse_args()
    table = Table(title="ingest throughput (scrubbed before writing)")
    for column in ("input", "records", "seconds", "records/s"):
        table.add_column(column, justify="right" if column != "input" else "left")
    with tempfile.TemporaryDirectory() as folder:
        runs = [
            ("prose (JSONL)", _log(Path(folder), "prose", PROSE, args.records), "jsonl", {}),
            ("number-heavy (JSONL)", _log(Path(folder), "numbers", NUMBERS, args.records), "jsonl", {}),
        ]
        prime = LLMDRIFT / "PRIME_FULL_EVAL.csv"
        if prime.exists():
            runs.append(("LLMDrift PRIME (CSV)", prime, "llmdrift", {"tenant": "research", "agent": "prime"}))
        for label, source, fmt, kwargs in runs:
            n, seconds = _time(source, fmt, **kwargs)
            table.add_row(label, str(n), f"{seconds:.1f}", f"{n / seconds:.0f}")
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
