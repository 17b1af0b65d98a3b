"""Top-up: an inconclusive first look replays more of the baseline, each look at alpha / 2."""

from __future__ import annotations

import pandas as pd
import pytest

from drift_pipeline.detection import top_up
from drift_pipeline.detection.scoring import score_pairs
from drift_pipeline.errors import InvalidInputError
from drift_pipeline_tests.plugins.scoring import answers

NO_SIMILARITY = ["refusal", "length", "reasoning", "formatting", "tone", "instruction_following"]


def unchanged_pairs(prime: pd.DataFrame) -> pd.DataFrame:
    """A deterministic model replaying its own PRIME answers: identical pairs."""
    gpt4 = answers(prime, "gpt-4-0314")
    return pd.DataFrame(
        {
            "pair_id": gpt4["id"].astype(str),
            "prompt": gpt4["query"],
            "baseline_text": gpt4["answer"],
            "candidate_text": gpt4["answer"],
        }
    )


def test_an_inconclusive_first_look_is_topped_up_to_equivalence(prime):
    pairs = unchanged_pairs(prime)
    asked: list[int] = []

    def pairs_for(n: int) -> pd.DataFrame:
        asked.append(n)
        return pairs.head(n)

    def score(frame: pd.DataFrame, alpha: float):
        return score_pairs(frame, baseline="a", candidate="a", threshold=0.05, alpha=alpha, dimensions=NO_SIMILARITY)

    result = top_up.decide(top_up.TopUpPlan(first=60, budget=400), pairs_for, score, alpha=0.01)
    design = result.report["top_up"]
    assert asked == [60, 400]
    assert [look["verdict"] for look in design["looks"]] == ["inconclusive", "equivalent"]
    assert result.report["verdict"] == "equivalent" and design["pairs_used"] == 400
    assert result.report["alpha"] == design["alpha_per_look"] == 0.005  # both looks at alpha / 2

    enough = top_up.decide(top_up.TopUpPlan(first=300, budget=400), pairs_for, score, alpha=0.01)
    assert [look["n_pairs"] for look in enough.report["top_up"]["looks"]] == [300]  # decided: no top-up


def test_a_plan_must_be_ordered():
    with pytest.raises(InvalidInputError, match="first <= budget"):
        top_up.TopUpPlan(first=200, budget=100)
