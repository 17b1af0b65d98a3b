"""Paired tests, multiple-testing corrections, effect scales and the drift decision."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from drift_pipeline.detection.statistics import (
    DimensionSpec,
    NoiseFloor,
    benjamini_hochberg,
    evaluate,
    holm,
)
from drift_pipeline.errors import InvalidInputError
from drift_pipeline_tests.plugins.scoring import per_pair_table as table

REFUSAL = DimensionSpec("refusal", "binary")
LENGTH = DimensionSpec("length", "continuous")


def test_holm_matches_hand_computation():
    # sorted p: .005 .01 .03 .04 -> x4 x3 x2 x1 = .02 .03 .06 .04 -> running max .02 .03 .06 .06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_benjamini_hochberg_matches_hand_computation():
    # sorted p: .01 .02 .03 .5 -> x4/1 x4/2 x4/3 x4/4 = .04 .04 .04 .5 (step-up minimum)
    assert benjamini_hochberg([0.02, 0.5, 0.01, 0.03]) == pytest.approx([0.04, 0.5, 0.04, 0.04])


def test_identical_values_never_drift():
    per_pair = pd.concat(
        [table("refusal", "binary", [0, 1] * 50, [0, 1] * 50), table("length", "continuous", range(100), range(100))]
    )
    results, not_applicable = evaluate(per_pair, [REFUSAL, LENGTH], threshold=0.05)
    assert not_applicable == []
    assert all(not r.drifted and not r.near_miss and r.p_value == 1.0 for r in results)


def test_significant_but_below_threshold_is_equivalent_or_a_near_miss_never_drift():
    base = [0] * 2000
    cand = [1] * 40 + [0] * 1960  # +2 points, p ~ 1e-10
    (result,), _ = evaluate(table("refusal", "binary", base, cand), [REFUSAL], threshold=0.03)
    assert result.p_adjusted < 1e-6
    assert result.effect == pytest.approx(0.02)
    # Real but small: its 98 % interval lies inside +/-0.03, so it is equivalent at that margin.
    assert result.verdict == "equivalent" and not result.drifted and not result.near_miss
    assert -0.03 < result.equivalence_low < 0.02 < result.equivalence_high < 0.03
    (tighter,), _ = evaluate(table("refusal", "binary", base, cand), [REFUSAL], threshold=0.025)
    assert tighter.verdict == "inconclusive" and tighter.near_miss and not tighter.drifted


def test_noise_floor_raises_the_bar():
    base = [0] * 400
    cand = [1] * 40 + [0] * 360  # +10 points
    per_pair = table("refusal", "binary", base, cand)
    (result,), _ = evaluate(per_pair, [REFUSAL], threshold=0.05)
    assert result.drifted
    noise = NoiseFloor(floors={"refusal": 0.12})
    (result,), _ = evaluate(per_pair, [REFUSAL], threshold=0.05, noise_floor=noise)
    assert not result.drifted and result.noise_floor == 0.12


def test_continuous_effect_is_symmetric_relative_change():
    (result,), _ = evaluate(table("length", "continuous", [100.0] * 30, [50.0] * 30), [LENGTH], threshold=0.2)
    assert result.effect == pytest.approx(-0.5)
    assert result.raw_effect == pytest.approx(-50)
    assert result.relative_effect == pytest.approx(-0.5)
    assert result.drifted and result.direction == "down"


def test_dimension_without_values_is_not_applicable():
    per_pair = table("refusal", "binary", [0, 1], [0, 1])
    per_pair.loc[:, ["baseline_value", "candidate_value"]] = np.nan
    results, not_applicable = evaluate(per_pair, [REFUSAL], threshold=0.05)
    assert results == [] and not_applicable == ["refusal"]


def test_noise_floor_round_trips_and_measures():
    per_pair = pd.concat(
        [
            table("refusal", "binary", [0] * 50, [1] * 2 + [0] * 48),
            table("similarity", "similarity", [1.0] * 50, [0.9] * 50),
        ]
    )
    floor = NoiseFloor.measure(per_pair, [REFUSAL, DimensionSpec("similarity", "similarity", 1.0)])
    assert floor.floors["refusal"] == pytest.approx(0.04)
    assert floor.floors["similarity"] == pytest.approx(0.1)
    assert NoiseFloor.from_dict(floor.to_dict()) == floor


@pytest.mark.parametrize(("threshold", "alpha"), [(0.0, 0.01), (1.5, 0.01), (0.05, 0.0), (0.05, 1.0)])
def test_levels_are_validated(threshold, alpha):
    with pytest.raises(InvalidInputError):
        evaluate(table("refusal", "binary", [0], [0]), [REFUSAL], threshold=threshold, alpha=alpha)
