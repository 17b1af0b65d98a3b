"""Embedding in the background while the caller does other work: same vectors, errors surfaced, cancellable."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from drift_pipeline.detection.embeddings import Backend, Embedder

DIM = 8


class GatedEncoder:
    """Deterministic vectors; each `encode` waits for `gate` and records the thread and the texts."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.seen: list[str] = []
        self.threads: set[str] = set()
        self.fail: Exception | None = None

    def encode(self, texts: Sequence[str], **_: Any) -> np.ndarray:
        self.entered.set()
        assert self.gate.wait(30), "the test never opened the gate"
        if self.fail is not None:
            raise self.fail
        self.threads.add(threading.current_thread().name)
        self.seen.extend(texts)
        rows = [np.random.default_rng(sum(map(ord, t))).normal(size=DIM) for t in texts]
        return np.asarray(rows, dtype=np.float32)


def embedder(encoder: GatedEncoder) -> Embedder:
    return Embedder(backend=Backend("test/gated/dim=8", lambda: encoder, DIM), batch_size=2)


LEFT = ["same", "refund sent", "order shipped", "cannot help", "try again later"]
RIGHT = ["same", "refund issued", "order delayed", "happy to help", "try again later!"]


def test_a_prefetch_runs_beside_the_caller_and_gives_the_same_similarities() -> None:
    encoder = GatedEncoder()
    fetched = embedder(encoder)
    fetched.prefetch_pairs(LEFT, RIGHT)  # returns at once: the encoder is still waiting for the gate
    assert encoder.entered.wait(10) and not encoder.seen
    encoder.gate.set()
    sims = fetched.pair_similarity(LEFT, RIGHT)

    plain_encoder = GatedEncoder()
    plain_encoder.gate.set()
    np.testing.assert_array_equal(sims, embedder(plain_encoder).pair_similarity(LEFT, RIGHT))
    assert sorted(encoder.seen) == sorted(LEFT[1:] + RIGHT[1:])  # each differing text once, equal pair never
    assert encoder.threads == {"embedding-prefetch"} and fetched.texts_embedded == 8


def test_a_failed_prefetch_fails_the_next_embed_once() -> None:
    encoder = GatedEncoder()
    encoder.fail = RuntimeError("encoder broke")
    encoder.gate.set()
    fetched = embedder(encoder)
    fetched.prefetch_pairs(LEFT, RIGHT)
    with pytest.raises(RuntimeError, match="encoder broke"):
        fetched.embed(["refund sent"])
    encoder.fail = None
    assert fetched.embed(["refund sent"]).shape == (1, DIM)


def test_cancel_stops_a_prefetch_after_the_batch_in_hand_and_keeps_it() -> None:
    encoder = GatedEncoder()
    fetched = embedder(encoder)
    fetched.prefetch_pairs(LEFT, RIGHT)
    assert encoder.entered.wait(10)
    canceller = threading.Thread(target=fetched.prefetch.cancel)
    canceller.start()
    deadline = time.monotonic() + 10
    while not fetched.prefetch._cancel.is_set() and time.monotonic() < deadline:
        time.sleep(0.01)
    encoder.gate.set()  # the batch in hand finishes; the next is never started
    canceller.join(10)
    assert not canceller.is_alive() and len(encoder.seen) == 2 and fetched.texts_embedded == 2
    fetched.embed(LEFT[1:] + RIGHT[1:])  # the rest is embedded on demand, the first batch is not redone
    assert sorted(encoder.seen) == sorted(LEFT[1:] + RIGHT[1:])


def test_prefetches_run_one_after_the_other_and_embed_each_text_once() -> None:
    encoder = GatedEncoder()
    fetched = embedder(encoder)
    fetched.prefetch_pairs(LEFT, RIGHT)  # compare starts one, scoring another on the same pairs
    fetched.prefetch_pairs(LEFT, RIGHT)
    assert encoder.entered.wait(10)
    encoder.gate.set()  # were both running, both would be inside encode now and embed every text twice
    fetched.embed([])
    assert sorted(encoder.seen) == sorted(LEFT[1:] + RIGHT[1:])
