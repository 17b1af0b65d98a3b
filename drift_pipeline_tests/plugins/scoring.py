"""Fixtures for the scoring tests: the real embedding model (loaded once per session) and LLMDrift data."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

# The real recorded GPT-4/GPT-3.5 generations live in the read-only shared/ folder beside the checkout.
LLMDRIFT = Path(
    os.environ.get("DRIFT_PIPELINE_LLMDRIFT_DIR")
    or Path(__file__).resolve().parents[3] / "shared" / "data" / "llmdrift"
)


@pytest.fixture(scope="session")
def embedder():
    """An Embedder on the real all-MiniLM-L6-v2 model with a session-wide cache."""
    from drift_pipeline.detection.embeddings import Embedder, load_model

    return Embedder(model=load_model())


@pytest.fixture(scope="session")
def llmdrift_dir() -> Path:
    if not (LLMDRIFT / "SENSITIVEQ_EVAL.csv").exists():
        pytest.fail(f"LLMDrift data not found under {LLMDRIFT}")
    return LLMDRIFT


@pytest.fixture(scope="session")
def sensitiveq(llmdrift_dir: Path) -> pd.DataFrame:
    return pd.read_csv(llmdrift_dir / "SENSITIVEQ_EVAL.csv")


@pytest.fixture(scope="session")
def prime(llmdrift_dir: Path) -> pd.DataFrame:
    return pd.read_csv(llmdrift_dir / "PRIME_FULL_EVAL.csv")


def answers(frame: pd.DataFrame, model: str) -> pd.DataFrame:
    """id, query, answer of one model, sorted by id."""
    rows = frame[frame["model"].str.endswith(model)].sort_values("id")
    return rows[["id", "query", "answer"]].fillna("").reset_index(drop=True)


def per_pair_table(name: str, kind: str, base: Any, cand: Any) -> pd.DataFrame:
    """The long per-pair table `statistics.evaluate` reads, for one dimension."""
    return pd.DataFrame(
        {
            "pair_id": [str(i) for i in range(len(base))],
            "dimension": name,
            "kind": kind,
            "baseline_value": np.asarray(base, float),
            "candidate_value": np.asarray(cand, float),
        }
    )
