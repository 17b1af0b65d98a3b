"""Three-way verdicts: honest intervals at small n and on identical pairs, TOST, pairs needed, coherence."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drift_pipeline.detection import verdicts
from drift_pipeline.detection.intervals import PairedMeans, PairedProportions, SimilarityGap, tango_interval
from drift_pipeline.detection.statistics import DimensionSpec, NoiseFloor, evaluate
from drift_pipeline_tests.plugins.scoring import per_pair_table as table

REFUSAL = DimensionSpec("refusal", "binary")
LENGTH = DimensionSpec("length", "continuous")
TONE = DimensionSpec("tone", "continuous", span=2.0)
SIMILARITY = DimensionSpec("similarity", "similarity")


def identical(n: int) -> pd.DataFrame:
    values = np.arange(n) % 7 + 1.0
    return pd.concat(
        [
            table("refusal", "binary", np.arange(n) % 2, np.arange(n) % 2),
            table("length", "continuous", values * 10, values * 10),
            table("tone", "continuous", values / 10, values / 10),
        ]
    )


def test_ten_identical_pairs_are_inconclusive_not_equivalent() -> None:
    results, _ = evaluate(identical(10), [REFUSAL, LENGTH, TONE], threshold=0.05)
    assert {r.verdict for r in results} == {"inconclusive"}
    for r in results:
        assert r.equivalence_low < -0.05 and r.equivalence_high > 0.05  # never collapses to [0, 0]
        assert r.pairs_needed is not None and 10 < r.pairs_needed <= 400


def test_three_hundred_identical_pairs_are_equivalent() -> None:
    results, _ = evaluate(identical(300), [REFUSAL, LENGTH, TONE], threshold=0.05)
    assert {r.verdict for r in results} == {"equivalent"}
    assert verdicts.overall(r.verdict for r in results) == "equivalent"


def test_identical_binary_pairs_reach_equivalence_within_two_hundred_at_margin_five_points() -> None:
    needed = verdicts.pairs_needed(PairedProportions(0, 0, 10), alpha=0.01, margin=0.05, bar=0.05, tests=1)
    assert needed is not None and needed <= 200
    assert PairedProportions(0, 0, needed).interval(0.02).inside(0.05)
    assert not PairedProportions(0, 0, int(needed * 0.9)).interval(0.02).inside(0.05)


def test_tango_p_value_is_mcnemars_score_test() -> None:
    iv = tango_interval(0, 10, 40, 0.05)
    assert iv.p_value == pytest.approx(math.erfc(math.sqrt(10) / math.sqrt(2)))
    assert iv.low > 0 and iv.excludes_zero()
    assert tango_interval(5, 5, 40, 0.05).p_value == pytest.approx(1.0)


def test_tango_covers_at_least_its_level_on_small_samples() -> None:
    rng = np.random.default_rng(3)
    misses = 0
    for _ in range(400):
        base = rng.random(30) < 0.3
        cand = np.where(rng.random(30) < 0.1, ~base, base)  # true difference 0.1 * (0.7 - 0.3) = 0.04
        misses += not (tango_interval(np.sum(base & ~cand), np.sum(~base & cand), 30, 0.1).low <= 0.04)
    assert misses / 400 <= 0.05 + 0.03  # one-sided miss at most alpha/2 plus Monte Carlo slack


def test_a_shift_shared_by_every_pair_is_significant_and_bounded() -> None:
    iv = PairedMeans.from_values(np.full(50, 0.3)).interval(0.02)
    assert 0 < iv.low <= 0.3 <= iv.high + 1e-12 and iv.p_value < 1e-10


def test_similarity_needs_changed_pairs_to_move() -> None:
    assert SimilarityGap.from_values(np.ones(10), np.ones(10)).interval(0.02).low < -0.05
    assert SimilarityGap.from_values(np.ones(300), np.ones(300)).interval(0.02).inside(0.05)


def test_true_effect_at_the_margin_is_rarely_called_equivalent() -> None:
    """The TOST guarantee: a change exactly at the margin is called equivalent at most alpha of the time."""
    rng = np.random.default_rng(5)
    calls = 0
    runs = 300
    for _ in range(runs):
        base = rng.random(400) < 0.2
        cand = base.copy()
        flip = rng.choice(np.flatnonzero(~base), size=int(0.05 * 400), replace=False)
        cand[flip] = True  # +5 points exactly: the margin
        (r,), _ = evaluate(table("refusal", "binary", base, cand), [REFUSAL], threshold=0.05, alpha=0.05)
        calls += r.verdict == "equivalent"
    assert calls / runs <= 0.05


def test_a_noise_floor_wider_than_the_margin_says_so() -> None:
    noise = NoiseFloor(floors={"tone": 0.08}, n_pairs=300)
    (r,), _ = evaluate(identical(300), [TONE], threshold=0.05, noise_floor=noise)
    assert r.verdict == "inconclusive" and "cannot be shown" in r.verdict_reason


def test_similarity_without_a_noise_floor_is_untested_and_does_not_decide() -> None:
    per_pair = table("similarity", "similarity", np.ones(300), np.ones(300))
    (r,), _ = evaluate(per_pair, [SIMILARITY], threshold=0.05)
    assert r.verdict == "untested" and r.p_value is None
    assert verdicts.overall([]) == "inconclusive"


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(2, 400),
    ones=st.floats(0, 1),
    up=st.floats(0, 0.3),
    down=st.floats(0, 0.3),
    margin=st.sampled_from([0.02, 0.05, 0.1]),
)
def test_verdicts_are_coherent_with_their_intervals(n: int, ones: float, up: float, down: float, margin: float) -> None:
    base = (np.arange(n) < ones * n).astype(float)
    cand = base.copy()
    cand[(base == 0) & (np.arange(n) % 10 < up * 10)] = 1
    cand[(base == 1) & (np.arange(n) % 10 < down * 10)] = 0
    (r,), _ = evaluate(table("refusal", "binary", base, cand), [REFUSAL], threshold=margin)
    significant = r.ci_low > 0 or r.ci_high < 0
    assert significant == (r.p_adjusted < 0.01)  # the interval and the test never disagree
    if r.verdict == "equivalent":
        assert -margin < r.equivalence_low <= r.effect <= r.equivalence_high < margin
    if r.verdict == "drift":
        assert significant and abs(r.effect) >= margin
    assert not (r.drifted and r.verdict == "equivalent")


@pytest.mark.parametrize(
    ("n10", "n01", "n", "alpha"), [(1, 8, 44, 0.05), (0, 10, 40, 0.02), (3, 3, 12, 0.1), (7.5, 0.5, 200, 0.01)]
)
def test_tango_bounds_are_the_roots_scipy_finds(n10: float, n01: float, n: float, alpha: float) -> None:
    """The hand-written bisection (no scipy.optimize import at run time) finds brentq's roots."""
    from scipy.optimize import brentq
    from scipy.special import ndtri

    from drift_pipeline.detection.intervals import _tango_score

    score, z = _tango_score(n10, n01, n), float(ndtri(1 - alpha / 2))
    iv, point = tango_interval(n10, n01, n, alpha), (n01 - n10) / n
    assert iv.low == pytest.approx(brentq(lambda d: score(d) - z, -1 + 1e-12, point), abs=1e-10)
    assert iv.high == pytest.approx(brentq(lambda d: score(d) + z, point, 1 - 1e-12), abs=1e-10)
