"""The labelled evaluation set in benchmarks/eval_set: well formed, and the detectors hold up on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drift_pipeline.detection.decisions import extract, prompt_spec
from drift_pipeline.detection.dimensions.non_answer import non_answers
from drift_pipeline.detection.non_answer import training_set

EVAL_SET = Path(__file__).resolve().parents[2] / "benchmarks" / "eval_set"
LABELS = {"refusal", "non_answer", "decision", "formatting"}


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    found = []
    for path in sorted(EVAL_SET.glob("*.jsonl")):
        if not path.name.endswith("_raw.jsonl"):
            found += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return found


def test_eval_set_is_labelled_per_response_and_disjoint_from_training(rows):
    assert len(rows) >= 200 and {r["source"].split("/")[0] for r in rows} == {"llmdrift", "offline", "synthetic"}
    assert all(set(r["labels"]) == LABELS and r["response"] is not None for r in rows)
    assert not any(r["labels"]["refusal"] and r["labels"]["non_answer"] for r in rows)  # one class each
    assert len({r["id"] for r in rows}) == len(rows)
    training, _ = training_set()
    assert not set(training) & {r["response"].strip() for r in rows}
    assert (EVAL_SET / "README.md").exists()


def test_extracted_decisions_are_the_labelled_ones(rows):
    checked = [
        (extract(spec, r["response"]), r["labels"]["decision"]) for r in rows if (spec := prompt_spec(r["prompt"]))
    ]
    found = [(got, want) for got, want in checked if got is not None]
    assert len(checked) >= 100
    assert sum(got == want for got, want in found) / len(found) >= 0.95  # precision
    assert len(found) / sum(want is not None for _, want in checked) >= 0.8  # coverage


def test_non_answer_classifier_generalises_to_unseen_wordings(rows, embedder):
    survey = [r for r in rows if r["source"] == "synthetic/survey"]
    predicted = non_answers([(r["response"], None, prompt_spec(r["prompt"])) for r in survey], embedder)
    truth = [r["labels"]["non_answer"] for r in survey]
    hits = sum(bool(p) and t for p, t in zip(predicted, truth, strict=True))
    assert hits / sum(predicted) >= 0.9 and hits / sum(truth) >= 0.7
