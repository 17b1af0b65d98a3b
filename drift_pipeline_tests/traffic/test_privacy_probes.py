"""Recall and false positives of PII scrubbing on the labelled probe set `pii_probes.jsonl`.

Each positive probe is a realistic sentence with its label (the kind of PII), the placeholder it must
get and the PII substrings that must not survive; each negative (label NONE) must come back unchanged.
`split` says how a probe was written: `tuning` probes (the 45 kinds of issue 12 and the formats that
already worked) were written before the detectors were extended and used while extending them;
`holdout` probes were written afterwards and never tuned on. `benchmarks/bench_privacy.py` prints
the same figures as a table (docs/traffic.md).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from drift_pipeline.traffic.privacy import Scrubber, scrub_text

PROBES = [json.loads(line) for line in (Path(__file__).parent / "pii_probes.jsonl").read_text("utf-8").splitlines()]
POSITIVES = [p for p in PROBES if p["label"] != "NONE"]
NEGATIVES = [p for p in PROBES if p["label"] == "NONE"]

# The kinds issue 12 found slipping through, plus what already worked; each needs several probes.
KINDS = {
    "EMAIL", "PHONE", "CARD", "IBAN", "SSN", "NATIONAL_ID", "IP", "OPENAI_KEY", "ANTHROPIC_KEY",
    "AWS_KEY", "GITHUB_TOKEN", "JWT", "PRIVATE_KEY", "OTHER_SECRET", "NAME", "ADDRESS", "DOB",
}  # fmt: skip
# Validated kinds (checksums, library parsers, vendor formats) must stay near-perfect; the cue-based
# heuristics for names, addresses and dates of birth are allowed to miss more.
HEURISTIC = {"NAME", "ADDRESS", "DOB"}
MIN_RECALL = {kind: 0.8 if kind in HEURISTIC else 0.9 for kind in KINDS}
MAX_FALSE_POSITIVES = 3  # of the negatives; today 2 (a loopback address, `Mr. Robot`), see docs/traffic.md


def _detected(probe: dict, scrubbed: str) -> bool:
    return probe["placeholder"] in scrubbed and not any(pii in scrubbed for pii in probe["pii"])


def test_probe_set_covers_every_kind_with_several_probes():
    per_kind = Counter(p["label"] for p in POSITIVES)
    assert len(POSITIVES) >= 45 and len(NEGATIVES) >= 30
    assert set(per_kind) == KINDS
    assert all(per_kind[k] >= 2 for k in KINDS - {"PRIVATE_KEY", "IP"}), per_kind
    assert all(pii in p["text"] for p in POSITIVES for pii in p["pii"])  # the labels are about the text


def test_recall_per_kind_meets_its_threshold():
    scrubber = Scrubber()
    total: Counter[str] = Counter()
    found: Counter[str] = Counter()
    for probe in POSITIVES:
        total[probe["label"]] += 1
        found[probe["label"]] += _detected(probe, scrubber.scrub(probe["text"]))
    recall = {kind: found[kind] / total[kind] for kind in total}
    below = {kind: f"{found[kind]}/{total[kind]}" for kind in total if recall[kind] < MIN_RECALL[kind]}
    assert not below, f"recall below threshold: {below}"


def test_false_positives_on_negatives_stay_within_the_bound():
    changed = [(p["text"], out) for p in NEGATIVES if (out := scrub_text(p["text"])) != p["text"]]
    assert len(changed) <= MAX_FALSE_POSITIVES, changed


@pytest.mark.parametrize("probe", POSITIVES, ids=[f"{p['label']}-{i}" for i, p in enumerate(POSITIVES)])
def test_no_probe_pii_survives_scrubbing(probe: dict):
    scrubbed = scrub_text(probe["text"])
    assert not [pii for pii in probe["pii"] if pii in scrubbed], scrubbed


def test_scrubbing_is_deterministic_and_idempotent():
    once = [scrub_text(p["text"]) for p in PROBES]
    assert [Scrubber().scrub(p["text"]) for p in PROBES] == once  # a fresh scrubber, same output
    assert [scrub_text(text) for text in once] == once  # placeholders are never taken for PII


def _strings(value: object) -> list[str]:
    """Every string inside a JSON value, JSON-in-a-string (tool-call arguments) decoded too."""
    if isinstance(value, str):
        try:
            decoded = json.loads(value)
        except ValueError:
            return [value]
        return [value, *_strings(decoded)] if isinstance(decoded, (list, dict)) else [value]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    return []


def test_probes_inside_records_are_scrubbed_in_every_field():
    scrubber = Scrubber()
    for probe in POSITIVES:
        messages = json.dumps([{"role": "user", "content": [{"type": "text", "text": probe["text"]}]}])
        tool_calls = json.dumps([{"function": {"name": "note", "arguments": json.dumps({"text": probe["text"]})}}])
        row = scrubber.scrub_row({"messages": messages, "tool_calls": tool_calls, "response_text": probe["text"]})
        texts = _strings(row["messages"]) + _strings(row["tool_calls"]) + [row["response_text"]]
        assert len(texts) >= 5
        assert not [pii for pii in probe["pii"] for t in texts if pii in t], probe["text"]


def test_probes_in_raw_json_lines_are_scrubbed_as_text_and_stay_json():
    """A quarantined line is scrubbed as text: escapes (`\\n`, `\\"`) must not hide PII nor break the JSON."""
    for probe in POSITIVES:
        line = json.dumps({"messages": [{"role": "user", "content": probe["text"]}], "response_text": probe["text"]})
        scrubbed = scrub_text(line)
        decoded = json.loads(scrubbed)
        texts = [decoded["messages"][0]["content"], decoded["response_text"]]
        assert not [pii for pii in probe["pii"] for t in texts if pii in t], scrubbed
    for probe in NEGATIVES[:20]:
        line = json.dumps({"content": probe["text"]})
        assert json.loads(scrub_text(line))  # still JSON, whatever was replaced


def test_real_llm_traffic_is_left_alone(sensitiveq: pd.DataFrame, prime: pd.DataFrame):
    """LLMDrift prompts and answers hold no PII (arithmetic, refusals, explanations): nothing changes."""
    frame = pd.concat([sensitiveq, prime.head(400)])
    texts = [t for t in [*frame["query"], *frame["answer"]] if isinstance(t, str)]
    scrubber = Scrubber()
    changed = [t for t in texts if scrubber.scrub(t) != t]
    assert len(changed) <= len(texts) // 200, changed[:5]  # at most 0.5%; none today (of all 8,800 either)
