"""The labelled evaluation set in benchmarks/eval_set: well formed, and the detectors hold up on it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from drift_pipeline.detection.decisions import extract, prompt_spec
from drift_pipeline.detection.dimensions.non_answer import non_answers
from drift_pipeline.detection.embeddings import Backend, Embedder
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


def test_shipped_non_answer_classifier_is_the_fit_of_the_training_set(rows, sensitiveq, embedder):
    """The coefficients in data/ are what fitting the training set gives now and decide like scikit-learn on
    real answers (a stale or hand-edited file fails here; regenerate as data/README.md says), and the numpy
    prediction is scikit-learn's arithmetic bit for bit."""
    from sklearn.linear_model import LogisticRegression

    from drift_pipeline.detection import non_answer

    shipped = non_answer.shipped(embedder.cache.model_name)
    assert shipped is not None, "data/non_answer_classifier.json does not match the training set"
    texts, labels = training_set()
    reference = LogisticRegression(C=4.0, max_iter=2000, class_weight="balanced").fit(embedder.embed(texts), labels)
    x = embedder.embed([non_answer.head(t) for t in [*sensitiveq["answer"].fillna(""), *(r["response"] for r in rows)]])
    assert shipped.classes == tuple(reference.classes_)
    assert np.allclose(shipped.coef, reference.coef_, atol=1e-4)
    assert np.allclose(shipped.intercept, reference.intercept_, atol=1e-4)
    assert np.allclose(shipped.predict_proba(x), reference.predict_proba(x), atol=1e-5)
    assert shipped.predict(x) == list(reference.predict(x))
    refit = non_answer.LinearSoftmax(shipped.classes, reference.coef_, reference.intercept_)
    assert np.array_equal(refit.predict_proba(x), reference.predict_proba(x))


def test_non_answer_classifier_is_fitted_for_an_embedding_model_it_was_not_shipped_for(embedder):
    from drift_pipeline.detection import non_answer

    assert non_answer.shipped("another-model") is None
    other = Embedder(model=embedder.model, backend=Backend("another-model", lambda: embedder.model, 384))
    fitted = non_answer.classifier(other)
    assert fitted is not non_answer.shipped(embedder.cache.model_name)
    assert non_answer.predict(["I have no personal opinions; it depends on your values."], other) == ["non_answer"]


def test_backends_within_the_error_budget_use_the_shipped_fit(embedder):
    """bf16 (torch, OpenVINO) and fp32 (ONNX, OpenVINO) vectors are within the budget of the reference's: no refit (and no scikit-learn)."""
    from drift_pipeline.detection import embeddings, non_answer

    shipped = non_answer.shipped(embeddings.LOCAL_BACKEND_ID)
    for name in ("torch-bf16", "openvino", "openvino-bf16", "onnx"):
        other = Embedder(model=embedder.model, backend=Backend(embeddings.minilm_id(name), lambda: embedder.model, 384))
        assert non_answer.classifier(other) is shipped, name
    int8 = Embedder(model=embedder.model, backend=Backend(embeddings.minilm_id("onnx-int8"), lambda: None, 384))
    assert non_answer.shipped(int8.cache.model_name) is None  # outside the budget: refitted on first use
