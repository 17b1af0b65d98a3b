"""Top-up: an inconclusive comparison may replay more of the baseline's prompts, with error rates kept.

A design fixed before any data is seen: look 1 scores the first `first` pairs; if its verdict is
`inconclusive` and the budget allows, look 2 scores up to `budget` pairs (the first look's pairs
included: the replay cache makes them free). Each look runs the whole verdict rule at alpha / 2
(Bonferroni over the two planned looks), so the chance of a false `drift` over both looks stays at most
alpha, and likewise the chance of calling a change of the margin `equivalent`, whatever the looks'
dependence. The report records the design and every look (`top_up`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from drift_pipeline.detection.scoring import ScoreResult
from drift_pipeline.errors import InvalidInputError

LOOKS = 2


@dataclass(frozen=True)
class TopUpPlan:
    """Pairs at the first look and the most pairs a topped-up comparison may use."""

    first: int
    budget: int

    def __post_init__(self) -> None:
        if self.first < 1 or self.budget < self.first:
            raise InvalidInputError(f"top-up needs 1 <= first <= budget, got first {self.first}, budget {self.budget}")


def decide(
    plan: TopUpPlan,
    pairs_for: Callable[[int], pd.DataFrame],
    score: Callable[[pd.DataFrame, float], ScoreResult],
    *,
    alpha: float,
) -> ScoreResult:
    """Score look 1; top an inconclusive one up to the budget; every look at alpha / 2."""
    per_look = alpha / LOOKS
    result = score(pairs_for(plan.first), per_look)
    looks = [_look(result)]
    if result.report["verdict"] == "inconclusive" and plan.budget > result.report["n_pairs"]:
        more = pairs_for(plan.budget)
        if len(more) > result.report["n_pairs"]:  # the baseline may hold fewer prompts than the budget
            result = score(more, per_look)
            looks.append(_look(result))
    result.report["top_up"] = {
        "design": f"{LOOKS} planned looks, Bonferroni: each at alpha/{LOOKS}",
        "alpha": alpha,
        "alpha_per_look": per_look,
        "first": plan.first,
        "budget": plan.budget,
        "looks": looks,
        "pairs_used": result.report["n_pairs"],
    }
    return result


def _look(result: ScoreResult) -> dict[str, object]:
    return {"n_pairs": result.report["n_pairs"], "verdict": result.report["verdict"]}
