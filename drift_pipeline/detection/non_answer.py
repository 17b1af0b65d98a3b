"""Non-answer classifier: does a response give no usable answer (deflects, has no view, only disclaims)?

Phrase lists miss the paraphrases a new model version brings ("this is a matter of personal perspective"),
so the classifier is a small multinomial logistic regression over the MiniLM sentence embeddings the
pipeline already computes, trained on `data/non_answer_train.jsonl` (133 hand-written sentences, three
classes: answer, non_answer, refusal; provenance in `data/README.md`). Refusal is its own class so that a
decline is not mistaken for a deflection: the refusal dimension keeps counting declines, this one
deflections. Only the head of a response is embedded: a deflection states itself first, and the head
keeps the cost of long answers bounded.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from drift_pipeline.detection.embeddings import Embedder

TRAINING_SET = Path(__file__).with_name("data") / "non_answer_train.jsonl"
LABELS = ("answer", "non_answer", "refusal")
HEAD_CHARS = 600
# Probability of "non_answer" needed to call a response one: above 1/3 (three classes), below 1/2 so that
# a deflection that is half apology still counts; chosen on the training set, checked on the eval set.
THRESHOLD = 0.45


def training_set(path: Path = TRAINING_SET) -> tuple[list[str], list[str]]:
    """(texts, labels) of the shipped labelled set."""
    texts, labels = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            texts.append(str(row["text"]))
            labels.append(str(row["label"]))
    return texts, labels


def head(text: str) -> str:
    """The part of a response the classifier reads (its opening)."""
    return text.strip()[:HEAD_CHARS]


@functools.cache
def _model_for(embedder: Embedder) -> Any:
    from sklearn.linear_model import LogisticRegression

    texts, labels = training_set()
    model = LogisticRegression(C=4.0, max_iter=2000, class_weight="balanced")
    model.fit(embedder.embed(texts), labels)
    return model


def classifier(embedder: Embedder) -> Any:
    """The fitted classifier for this embedder's model (fitted once per embedder: about a second)."""
    return _model_for(embedder)


def non_answer_probability(texts: Sequence[str], embedder: Embedder) -> np.ndarray:
    """P(non_answer) for each text (its head); empty input gives an empty array."""
    if not texts:
        return np.zeros(0)
    model = classifier(embedder)
    probabilities = model.predict_proba(embedder.embed([head(t) for t in texts]))
    return probabilities[:, list(model.classes_).index("non_answer")]


def predict(texts: Sequence[str], embedder: Embedder) -> list[str]:
    """The most likely label of each text: answer, non_answer or refusal."""
    if not texts:
        return []
    model = classifier(embedder)
    return [str(x) for x in model.predict(embedder.embed([head(t) for t in texts]))]
