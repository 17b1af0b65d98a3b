"""The paired distribution-level test: vectorised permutations equal the naive swaps, level under the null,
power under a shift, and its place in `score_pairs` on real LLMDrift outputs with the real embedder."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from drift_pipeline.detection import distribution as dist
from drift_pipeline.detection.scoring import score_pairs
from drift_pipeline.errors import InvalidInputError
from drift_pipeline_tests.plugins.scoring import answers


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def naive_statistic(x: np.ndarray, y: np.ndarray, kernel: dist.Kernel, bandwidth_from: np.ndarray) -> float:
    """Unbiased paired MMD^2 written out pair by pair (the definition the matrix form must equal)."""
    k, _ = dist.gram(bandwidth_from, kernel)
    n = len(x)
    index = {tuple(v): i for i, v in enumerate(bandwidth_from)}

    def kk(a: np.ndarray, b: np.ndarray) -> float:
        return float(k[index[tuple(a)], index[tuple(b)]])

    total = sum(
        kk(x[i], x[j]) + kk(y[i], y[j]) - kk(x[i], y[j]) - kk(y[i], x[j]) for i in range(n) for j in range(n) if i != j
    )
    return total / (n * (n - 1))


@pytest.mark.parametrize("kernel", ["gaussian", "energy"])
def test_exact_p_value_equals_brute_force_over_every_within_pair_swap(kernel: dist.Kernel) -> None:
    rng = np.random.default_rng(3)
    x = unit(rng.normal(size=(7, 5)))
    y = unit(rng.normal(size=(7, 5)) + 0.8)
    pooled = np.vstack([x, y])
    observed = naive_statistic(x, y, kernel, pooled)
    swapped = []
    for flips in itertools.product([False, True], repeat=7):
        f = np.array(flips)
        xs, ys = np.where(f[:, None], y, x), np.where(f[:, None], x, y)
        swapped.append(naive_statistic(xs, ys, kernel, pooled))
    expected = np.mean(np.array(swapped) >= observed - 1e-12)
    result = dist.paired_test(x, y, kernel=kernel, permutations=1000)
    assert result.exact and result.permutations == 128
    assert result.statistic == pytest.approx(observed)
    assert result.p_value == pytest.approx(expected)
    assert result.min_attainable_p == pytest.approx(2**-6)


def test_level_holds_under_exchangeable_pairs_and_a_shift_is_found() -> None:
    rng = np.random.default_rng(11)
    rejections = 0
    runs = 150
    for _ in range(runs):
        prompts = rng.normal(size=(30, 8))  # each prompt's own centre: pairs are correlated, as real ones are
        x = unit(prompts + 0.5 * rng.normal(size=(30, 8)))
        y = unit(prompts + 0.5 * rng.normal(size=(30, 8)))
        rejections += dist.paired_test(x, y, permutations=199, seed=int(rng.integers(1 << 30))).p_value <= 0.05
    assert rejections / runs <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / runs)
    prompts = rng.normal(size=(30, 8))
    x = unit(prompts + 0.5 * rng.normal(size=(30, 8)))
    y = unit(prompts + 0.5 * rng.normal(size=(30, 8)) + np.eye(8)[0] * 1.5)  # every candidate moved one way
    shifted = dist.paired_test(x, y, permutations=999)
    assert not shifted.exact and shifted.p_value == pytest.approx(1 / 1000)


def test_equal_pairs_add_nothing_and_bad_input_is_refused() -> None:
    rng = np.random.default_rng(5)
    x = unit(rng.normal(size=(6, 4)))
    same = dist.paired_test(x, x.copy(), same=[True] * 6)
    assert same.p_value == 1.0 and same.statistic == 0.0 and same.changed_pairs == 0
    y = x.copy()
    y[:3] = unit(rng.normal(size=(3, 4)))
    partly = dist.paired_test(x, y, same=[False] * 3 + [True] * 3, permutations=100)
    alone = dist.paired_test(x[:3], y[:3], permutations=100)
    assert partly.changed_pairs == 3 and partly.p_value == pytest.approx(alone.p_value)
    # Equal pairs count in n (the statistic is over all pairs) but not in the permutation distribution.
    assert partly.statistic == pytest.approx(alone.statistic * (3 * 2) / (6 * 5))
    capped = dist.paired_test(x, y, same=[False] * 3 + [True] * 3, permutations=100)
    assert capped.pairs_tested == 3
    with pytest.raises(InvalidInputError):
        dist.paired_test(x, y[:5])
    with pytest.raises(InvalidInputError):
        dist.paired_test(x, y, permutations=0)
    with pytest.raises(InvalidInputError):
        dist.paired_test(x, y, kernel="cubic")  # type: ignore[arg-type]


def test_many_changed_pairs_are_subsampled_with_the_statistic_scaled(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(8)
    x, y = unit(rng.normal(size=(40, 4))), unit(rng.normal(size=(40, 4)) + 2 * np.eye(4)[0])
    full = dist.paired_test(x, y, permutations=50)
    monkeypatch.setattr(dist, "MAX_TESTED_PAIRS", 20)
    sub = dist.paired_test(x, y, permutations=50)
    assert (full.pairs_tested, sub.pairs_tested, sub.changed_pairs, sub.n) == (40, 20, 40, 40)
    assert full.statistic > 0.1 and sub.statistic == pytest.approx(full.statistic, rel=0.35)  # same figure, estimated


def _pairs(base: pd.DataFrame, candidate: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {"pair_id": base["id"].astype(str), "prompt": base["query"], "baseline_text": base["answer"],
         "candidate_text": candidate}
    )  # fmt: skip


def test_score_pairs_reports_the_distribution_test_on_real_outputs(sensitiveq, embedder) -> None:
    base = answers(sensitiveq, "gpt-4-0314")
    cand = answers(sensitiveq, "gpt-4-0613")
    drifted = score_pairs(_pairs(base, cand["answer"].tolist()), baseline="a", candidate="b", threshold=0.05,
                          embedder=embedder)  # fmt: skip
    shift = drifted.report["distribution"]
    assert shift["applicable"] and shift["drift"] and shift["n"] == 100
    assert shift["p_adjusted"] >= shift["p_value"] and shift["p_value"] < 0.01
    assert "no equivalence" in shift["guarantee"]
    assert drifted.report["verdict"] == "drift" and "tests" in drifted.report["guarantee"]

    same = score_pairs(_pairs(base, base["answer"].tolist()), baseline="a", candidate="a", threshold=0.05,
                       embedder=embedder)  # fmt: skip
    assert same.report["distribution"]["p_value"] == 1.0 and not same.report["distribution"]["drift"]
    assert not same.drift_detected

    refusal_only = score_pairs(_pairs(base, cand["answer"].tolist()), baseline="a", candidate="b", threshold=0.05,
                               embedder=embedder, dimensions=["refusal"])  # fmt: skip
    assert refusal_only.report["distribution"] == dist.not_applicable("similarity dimension not selected")
    off = score_pairs(_pairs(base, cand["answer"].tolist()), baseline="a", candidate="b", threshold=0.05,
                      embedder=embedder, distribution_permutations=0)  # fmt: skip
    assert not off.report["distribution"]["applicable"] and "turned off" in off.report["distribution"]["reason"]
