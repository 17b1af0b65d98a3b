"""Non-answer classifier: does a response give no usable answer (deflects, has no view, only disclaims)?

Phrase lists miss the paraphrases a new model version brings ("this is a matter of personal perspective"),
so the classifier is a small multinomial logistic regression over the MiniLM sentence embeddings the
pipeline already computes, trained on `data/non_answer_train.jsonl` (133 hand-written sentences, three
classes: answer, non_answer, refusal; provenance in `data/README.md`). Refusal is its own class so that a
decline is not mistaken for a deflection: the refusal dimension keeps counting declines, this one
deflections. Only the head of a response is embedded: a deflection states itself first, and the head
keeps the cost of long answers bounded.

The fit for the default embedding model ships as `data/non_answer_classifier.json` (coefficients, bound
to the model name and the training set's sha256): predicting is one matrix product in numpy, so a run
neither imports scikit-learn (~1 s) nor embeds the training set. Any other model is fitted at run time.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from drift_pipeline.detection.embeddings import Embedder

TRAINING_SET = Path(__file__).with_name("data") / "non_answer_train.jsonl"
SHIPPED = Path(__file__).with_name("data") / "non_answer_classifier.json"
LABELS = ("answer", "non_answer", "refusal")
HEAD_CHARS = 600
# Probability of "non_answer" needed to call a response one: above 1/3 (three classes), below 1/2 so that
# a deflection that is half apology still counts; chosen on the training set, checked on the eval set.
THRESHOLD = 0.45


@dataclass(frozen=True)
class LinearSoftmax:
    """A fitted multinomial logistic regression: the same arithmetic as scikit-learn's `predict_proba`."""

    classes: tuple[str, ...]
    coef: np.ndarray  # (classes, features)
    intercept: np.ndarray  # (classes,)

    def decision(self, x: np.ndarray) -> np.ndarray:
        return x @ self.coef.T + self.intercept

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        scores = self.decision(x)
        scores -= scores.max(axis=1).reshape(-1, 1)  # shifted as scikit-learn does: no overflow, same bits
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=1).reshape(-1, 1)
        return scores

    def predict(self, x: np.ndarray) -> list[str]:
        return [self.classes[i] for i in self.decision(x).argmax(axis=1)]

    def to_json(self, embedding_model: str) -> str:
        """The shipped form: JSON floats round-trip exactly (shortest repr), and the file stays reviewable."""
        return json.dumps(
            {
                "embedding_model": embedding_model,
                "training_sha256": training_digest(),
                "classes": list(self.classes),
                "dtype": str(self.coef.dtype),
                "coef": self.coef.tolist(),
                "intercept": self.intercept.tolist(),
            }
        )


def training_set(path: Path = TRAINING_SET) -> tuple[list[str], list[str]]:
    """(texts, labels) of the shipped labelled set."""
    texts, labels = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            texts.append(str(row["text"]))
            labels.append(str(row["label"]))
    return texts, labels


def training_digest(path: Path = TRAINING_SET) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def head(text: str) -> str:
    """The part of a response the classifier reads (its opening)."""
    return text.strip()[:HEAD_CHARS]


def fit(embedder: Embedder) -> LinearSoftmax:
    """Fit the classifier on the training set with this embedder (scikit-learn, about a second)."""
    from sklearn.linear_model import LogisticRegression

    texts, labels = training_set()
    model = LogisticRegression(C=4.0, max_iter=2000, class_weight="balanced")
    model.fit(embedder.embed(texts), labels)
    return LinearSoftmax(tuple(str(c) for c in model.classes_), model.coef_, model.intercept_)


@functools.cache
def shipped(embedding_model: str) -> LinearSoftmax | None:
    """The shipped fit when it was made for this model and the current training set, else None."""
    data = json.loads(SHIPPED.read_text(encoding="utf-8")) if SHIPPED.exists() else {}
    if data.get("embedding_model") != embedding_model or data.get("training_sha256") != training_digest():
        return None
    dtype = np.dtype(data["dtype"])
    return LinearSoftmax(
        tuple(data["classes"]), np.asarray(data["coef"], dtype=dtype), np.asarray(data["intercept"], dtype=dtype)
    )


@functools.cache
def _fitted(embedder: Embedder) -> LinearSoftmax:
    return fit(embedder)


def classifier(embedder: Embedder) -> LinearSoftmax:
    """The classifier for this embedder's model: the shipped fit, else one fitted once per embedder."""
    from drift_pipeline.detection.embeddings import scale_of

    # A backend within the error budget of the reference (bf16, ONNX fp32) uses the reference's fit.
    return shipped(scale_of(embedder.cache.model_name)) or _fitted(embedder)


def write_shipped(embedder: Embedder, path: Path = SHIPPED) -> None:
    """Refit and write the shipped classifier (after editing the training set; see data/README.md)."""
    path.write_text(fit(embedder).to_json(embedder.cache.model_name) + "\n", encoding="utf-8")


def non_answer_probability(texts: Sequence[str], embedder: Embedder) -> np.ndarray:
    """P(non_answer) for each text (its head); empty input gives an empty array."""
    if not texts:
        return np.zeros(0)
    model = classifier(embedder)
    probabilities = model.predict_proba(embedder.embed([head(t) for t in texts]))
    return probabilities[:, model.classes.index("non_answer")]


def predict(texts: Sequence[str], embedder: Embedder) -> list[str]:
    """The most likely label of each text: answer, non_answer or refusal."""
    if not texts:
        return []
    return classifier(embedder).predict(embedder.embed([head(t) for t in texts]))
