"""Distribution-level semantic test: did the candidate's responses come from another distribution?

A paired two-sample test on the response embeddings, in the spirit of "Model Equality Testing" (Gao,
Liang, Guestrin, ICLR 2025): the statistic is the unbiased squared MMD of the baseline and the candidate
embeddings (Gaussian kernel on unit vectors, i.e. a function of cosine, median-heuristic bandwidth) or the
energy distance (kernel -||a - b||). The null is paired-aware: under "nothing changed" the baseline and the
candidate response of one prompt are exchangeable, so each permutation swaps them within pairs, which is a
sign flip of that pair's row. With h_ij = k(x_i,x_j) + k(y_i,y_j) - k(x_i,y_j) - k(y_i,x_j) the statistic
is sum_{i!=j} s_i s_j h_ij / (n(n-1)) for signs s (all +1 observed), so the Gram matrix is computed once
and every permutation is one row of a matrix product.

A pair whose two texts are equal has h_ij = 0 for every j: it adds nothing and is never embedded, so the
cost is that of the `similarity` dimension (and its cache is shared).

Guarantee: a permutation test controls false positives at its level under exchangeability; it can show a
difference, never equivalence (a large p-value is no evidence of sameness). It therefore only ever adds a
`drift`; equivalence rests on the interval-based dimensions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from drift_pipeline.errors import InvalidInputError

Kernel = Literal["gaussian", "energy"]
TEST_NAME = "paired-mmd-permutation"
DEFAULT_PERMUTATIONS = 2000
DEFAULT_SEED = 0
_BLOCK = 512  # permutations per matrix product: bounds memory at n = thousands of pairs
# Changed pairs beyond this are subsampled (seeded): the Gram matrix of 2 x 2,000 rows is 128 MB and a
# permutation block a few seconds; a uniform subsample of pairs keeps the within-pair swap null exact.
MAX_TESTED_PAIRS = 2000


@dataclass(frozen=True)
class DistributionTest:
    """One paired two-sample test; `p_adjusted` and `drift` are set by the caller's multiple-testing rule."""

    test: str
    kernel: str
    statistic: float
    p_value: float
    n: int
    changed_pairs: int
    pairs_tested: int
    permutations: int
    exact: bool
    seed: int
    bandwidth: float | None
    min_attainable_p: float
    p_adjusted: float | None = None
    drift: bool = False
    guarantee: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def gram(points: np.ndarray, kernel: Kernel) -> tuple[np.ndarray, float | None]:
    """Kernel matrix of the rows of `points` and the bandwidth used (None for the energy kernel)."""
    sq = np.sum(points * points, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * points @ points.T, 0.0)
    if kernel == "energy":
        return -np.sqrt(d2), None
    if kernel != "gaussian":
        raise InvalidInputError(f"unknown kernel {kernel!r} (use gaussian or energy)")
    off = d2[~np.eye(len(points), dtype=bool)]
    positive = off[off > 0]
    # Median heuristic: exp(-d^2 / median d^2). All points equal: any bandwidth gives h = 0 anyway.
    median = float(np.median(positive)) if positive.size else 1.0
    return np.exp(-d2 / median), float(np.sqrt(median / 2.0))


def pair_kernel(baseline: np.ndarray, candidate: np.ndarray, kernel: Kernel) -> tuple[np.ndarray, float | None]:
    """The n x n matrix h with zero diagonal (the U-statistic's core) and the bandwidth."""
    m = len(baseline)
    k, bandwidth = gram(np.vstack([baseline, candidate]).astype(np.float64), kernel)
    kxx, kyy, kxy = k[:m, :m], k[m:, m:], k[:m, m:]
    h = kxx + kyy - kxy - kxy.T
    np.fill_diagonal(h, 0.0)
    return h, bandwidth


def sign_vectors(m: int, permutations: int, seed: int) -> tuple[np.ndarray, bool]:
    """All 2^m sign vectors when that is at most `permutations` (an exact test), else random ones."""
    if m <= 20 and 2**m <= permutations:
        codes = np.arange(2**m)[:, None] >> np.arange(m)[None, :] & 1
        return 1.0 - 2.0 * codes, True
    rng = np.random.default_rng(seed)
    return rng.choice(np.array([-1.0, 1.0]), size=(permutations, m)), False


def paired_test(
    baseline: np.ndarray,
    candidate: np.ndarray,
    *,
    same: Sequence[bool] | None = None,
    kernel: Kernel = "gaussian",
    permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = DEFAULT_SEED,
) -> DistributionTest:
    """Paired MMD (or energy) permutation test of baseline rows against candidate rows (row i = pair i).

    `same[i]` marks pairs whose texts are equal: they are kept in n but need no embedding (rows may be
    anything). The p-value is exact over all 2^m within-pair swaps of the m changed pairs when that is at
    most `permutations`, else (1 + #{T_b >= T}) / (1 + B) over B random swaps: valid at any B.
    """
    n = len(baseline)
    if len(candidate) != n:
        raise InvalidInputError(f"paired test needs equal sample sizes, got {n} and {len(candidate)}")
    if permutations < 1:
        raise InvalidInputError(f"permutations must be >= 1, got {permutations}")
    keep = np.ones(n, dtype=bool) if same is None else ~np.asarray(same, dtype=bool)
    m = int(keep.sum())
    if m < 2 or n < 2:
        return _result(kernel, 0.0, 1.0, (n, m, m), permutations, True, seed, None, 1.0)
    rows = np.flatnonzero(keep)
    if m > MAX_TESTED_PAIRS:
        rows = np.sort(np.random.default_rng(seed).choice(rows, MAX_TESTED_PAIRS, replace=False))
    k = len(rows)
    h, bandwidth = pair_kernel(np.asarray(baseline)[rows], np.asarray(candidate)[rows], kernel)
    observed = float(h.sum())
    signs, exact = sign_vectors(k, permutations, seed)
    tolerance = 1e-9 * max(1.0, abs(observed))  # float ties count as "at least as large": conservative
    hits = 0
    for start in range(0, len(signs), _BLOCK):
        block = signs[start : start + _BLOCK]
        hits += int(np.sum(np.einsum("bi,bi->b", block @ h, block) >= observed - tolerance))
    p = hits / len(signs) if exact else (1 + hits) / (1 + len(signs))
    # s and -s give the same statistic, so at most half of the 2^m swaps are distinct.
    floor = 2.0 ** (1 - k) if exact else 1.0 / (1 + len(signs))
    # The U-statistic over all n pairs (equal pairs add 0); a subsample's sum is scaled up to all m.
    statistic = observed * (m * (m - 1)) / (k * (k - 1)) / (n * (n - 1))
    return _result(kernel, statistic, p, (n, m, k), len(signs), exact, seed, bandwidth, floor)


def _result(
    kernel: str,
    statistic: float,
    p: float,
    sizes: tuple[int, int, int],
    permutations: int,
    exact: bool,
    seed: int,
    bandwidth: float | None,
    floor: float,
) -> DistributionTest:
    return DistributionTest(
        test=TEST_NAME if kernel == "gaussian" else "paired-energy-permutation",
        kernel=kernel,
        statistic=float(statistic),
        p_value=float(min(1.0, p)),
        n=sizes[0],
        changed_pairs=sizes[1],
        pairs_tested=sizes[2],
        permutations=permutations,
        exact=exact,
        seed=seed,
        bandwidth=bandwidth,
        min_attainable_p=float(min(1.0, floor)),
    )


def decide(test: DistributionTest, *, p_adjusted: float, alpha: float, tests: int) -> DistributionTest:
    """The test's contribution to the report: drift when significant after the report's Holm correction."""
    from dataclasses import replace

    guarantee = (
        f"permutation test (within-pair swaps, {'exact' if test.exact else f'{test.permutations} random'}, "
        f"seed {test.seed}), Holm over {tests} tests at alpha {alpha:g}: at most alpha chance of a false drift "
        "when baseline and candidate responses are exchangeable; a large p-value shows no equivalence"
    )
    return replace(test, p_adjusted=float(p_adjusted), drift=bool(p_adjusted < alpha), guarantee=guarantee)


def embed_pairs(embedder: Any, left: Sequence[str], right: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[bool]]:
    """Embeddings of the pairs whose texts differ (equal pairs get zero rows: they add nothing)."""
    same = [a == b for a, b in zip(left, right, strict=True)]
    differ = [i for i, s in enumerate(same) if not s]
    base = np.zeros((len(left), 1), dtype=np.float64)
    cand = np.zeros((len(left), 1), dtype=np.float64)
    if differ:
        vectors = embedder.embed([left[i] for i in differ] + [right[i] for i in differ]).astype(np.float64)
        base = np.zeros((len(left), vectors.shape[1]))
        cand = np.zeros_like(base)
        base[differ], cand[differ] = vectors[: len(differ)], vectors[len(differ) :]
    return base, cand, same


def for_pairs(
    left: Sequence[str],
    right: Sequence[str],
    embedder: Any,
    *,
    kernel: Kernel = "gaussian",
    permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = DEFAULT_SEED,
) -> DistributionTest:
    """Embed the changed pairs (through the shared cache) and run the paired test."""
    base, cand, same = embed_pairs(embedder, left, right)
    return paired_test(base, cand, same=same, kernel=kernel, permutations=permutations, seed=seed)


def not_applicable(reason: str) -> dict[str, Any]:
    """The report's `distribution` entry when the test was not run, with the reason in words."""
    return {"test": TEST_NAME, "applicable": False, "reason": reason, "drift": False}
