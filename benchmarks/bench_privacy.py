"""PII scrubbing: recall per kind on the labelled probe set, false positives, and scrub throughput.

1. Recall table: every probe of `drift_pipeline_tests/traffic/pii_probes.jsonl` is scrubbed; a positive
   counts as detected when none of its PII substrings survive and its placeholder appears; a negative
   (label NONE) is a false positive when its text changes at all.
2. Throughput: `Scrubber.scrub_row` over realistic traffic rows (LLMDrift prompts and answers, one row
   in ten with a PII sentence appended), the cost ingestion pays per record.

    .venv/bin/python benchmarks/bench_privacy.py --records 10000
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import time
from collections import Counter
from pathlib import Path

from drift_pipeline.traffic.privacy import Scrubber

ROOT = Path(__file__).resolve().parents[1]
PROBES = ROOT / "drift_pipeline_tests" / "traffic" / "pii_probes.jsonl"
FALLBACK_TEXTS = [
    "Is 17077 a prime number? Think step by step and then answer [Yes] or [No].",
    "I'm sorry, I cannot fulfill this request as it goes against ethical and moral standards.",
]


def load_probes() -> list[dict]:
    with PROBES.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def recall_table(scrubber: Scrubber, probes: list[dict]) -> None:
    probes_by_kind: Counter[str] = Counter()
    detected: Counter[str] = Counter()
    negatives: Counter[str] = Counter()
    false_positives: Counter[str] = Counter()
    for probe in probes:
        out, split = scrubber.scrub(probe["text"]), probe.get("split", "tuning")
        if probe["label"] == "NONE":
            negatives[split] += 1
            false_positives[split] += out != probe["text"]
            continue
        hit = probe["placeholder"] in out and not any(s in out for s in probe["pii"])
        for key in (probe["label"], f"all ({split})", "all"):
            probes_by_kind[key] += 1
            detected[key] += hit
    print(f"{'kind':<16} {'probes':>6} {'detected':>8} {'recall':>7}")
    for kind in sorted(probes_by_kind, key=lambda k: (k.startswith("all"), k)):
        n, d = probes_by_kind[kind], detected[kind]
        print(f"{kind:<16} {n:>6} {d:>8} {d / n:>7.2f}")
    for split in sorted(negatives):
        print(f"negatives ({split}) {negatives[split]}, false positives {false_positives[split]}")
    print(f"negatives {negatives.total()}, false positives {false_positives.total()}")


def _llmdrift_texts() -> list[tuple[str, str]]:
    """(prompt, answer) pairs from the LLMDrift CSVs, found in a `shared/data/llmdrift` above this file."""
    for parent in ROOT.parents:
        folder = parent / "shared" / "data" / "llmdrift"
        if folder.is_dir():
            pairs = []
            for name in ("SENSITIVEQ_EVAL.csv", "PRIME_FULL_EVAL.csv"):
                with (folder / name).open(encoding="utf-8") as fh:
                    pairs += [(r["query"], r["answer"] or "") for r in csv.DictReader(fh)]
            return pairs
    return [(t, t) for t in FALLBACK_TEXTS]


def traffic_rows(n: int, probes: list[dict]) -> list[dict]:
    """Rows shaped like ingested traffic; `pii` says whether a probe sentence was appended to the prompt."""
    rng = random.Random(0)
    pairs = _llmdrift_texts()
    pii = [p["text"] for p in probes if p["label"] != "NONE"]
    rows = []
    for i in range(n):
        prompt, answer = pairs[i % len(pairs)]
        injected = rng.random() < 0.1
        if injected:
            prompt = f"{prompt} {rng.choice(pii)}"
        messages = [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": prompt}]
        rows.append(
            {
                "messages": json.dumps(messages),
                "response_text": answer,
                "tool_calls": "null",
                "error": "",
                "pii": injected,
            }
        )
    return rows


def _changed(before: dict, after: dict) -> bool:
    return (
        json.loads(before["messages"]) != json.loads(after["messages"])
        or before["response_text"] != after["response_text"]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=10_000)
    args = parser.parse_args()
    probes = load_probes()
    scrubber = Scrubber()
    recall_table(scrubber, probes)
    rows = traffic_rows(args.records, probes)
    chars = sum(len(r["messages"]) + len(r["response_text"]) for r in rows)
    scrubber.scrub_row(rows[0])  # lazy imports and compiled patterns are not the records' cost
    start, cpu_start = time.perf_counter(), time.process_time()
    scrubbed = [scrubber.scrub_row(row) for row in rows]
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    print(
        f"scrub_row: {len(rows)} records ({chars / len(rows):.0f} chars each) in {seconds:.2f} s wall"
        f" = {len(rows) / seconds:,.0f} records/s; {cpu:.2f} s CPU = {len(rows) / cpu:,.0f} records/s per core"
    )
    clean = [(a, b) for a, b in zip(rows, scrubbed, strict=True) if not a["pii"]]
    with_pii = [(a, b) for a, b in zip(rows, scrubbed, strict=True) if a["pii"]]
    print(
        f"records changed: {sum(_changed(a, b) for a, b in with_pii)} of {len(with_pii)} with a PII sentence;"
        f" {sum(_changed(a, b) for a, b in clean)} of {len(clean)} plain LLMDrift records (false positives)"
    )


if __name__ == "__main__":
    main()
