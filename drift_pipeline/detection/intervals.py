"""Confidence intervals that stay honest at small n and on degenerate data, and the p-values they imply.

Every interval here is a set of effects (candidate minus baseline, on the report's 0..1 scale) that covers
the true effect with probability at least `1 - alpha`, also when every pair is identical:

- **paired proportions** (binary dimensions): Tango's score interval for the difference of two paired
  proportions (Tango 1998). It needs no discordant pair to be non-degenerate: ten identical pairs give
  about +/-0.35 at alpha 0.02, two hundred give +/-0.026.
- **paired means** (continuous dimensions): a Student-t interval on the per-pair scaled differences,
  intersected with the *change-share bound* [-U_down*M, +U_up*M], where U_down / U_up are Clopper-Pearson
  upper bounds of the shares of pairs that moved down / up and M the largest possible per-pair change. A
  mean can only move through pairs that changed, so when few did the bound is tight where the t-interval
  says nothing (zero variance is no evidence of zero spread). The parts split alpha (90 % to the t part,
  5 % to each share bound), so the intersection keeps the level.
- **similarity against the noise floor**: Welch's interval for mean(candidate) - mean(pinned self-
  similarity), intersected with the same change-share bound on each side (a similarity below 1 is a
  change).

The p-value for "no change" is the inversion of the same interval (the smallest alpha at which it
excludes 0), so a verdict can never rest on an interval and a test that disagree.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

T_SHARE = 0.9  # share of alpha spent on the t/Welch part; the change-share bound gets the rest
SAME = 1e-6  # per-pair changes smaller than this are float noise (identical texts embed to 1 +/- 1e-7)


@dataclass(frozen=True)
class Interval:
    """A confidence interval for an effect, with the p-value of "effect = 0" from the same construction."""

    low: float
    high: float
    p_value: float

    def inside(self, margin: float) -> bool:
        """Equivalence at `margin`: the whole interval lies strictly within (-margin, +margin)."""
        return -margin < self.low and self.high < margin

    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


# --- paired proportions ---------------------------------------------------------------------------------


def tango_interval(n10: float, n01: float, n: float, alpha: float) -> Interval:
    """Two-sided `1 - alpha` score interval for p_candidate - p_baseline from a paired 2x2 table.

    `n10`: pairs with baseline 1 and candidate 0; `n01`: baseline 0, candidate 1; `n`: all pairs. Counts
    may be fractional (sample-size projections scale them).
    """
    if n <= 0:
        return Interval(-1.0, 1.0, 1.0)
    # scipy.special's functions are what scipy.stats' norm/t/beta ppf and sf compute, bit for bit, without
    # their ~0.5 ms of argument checking per call (a report makes hundreds) and without importing scipy.stats.
    from scipy.special import ndtr, ndtri

    z = float(ndtri(1 - alpha / 2))
    point = (n01 - n10) / n
    score = _tango_score(n10, n01, n)
    lo = -1.0 if score(-1.0 + 1e-12) <= z else _decreasing_root(lambda d: score(d) - z, -1.0 + 1e-12, point)
    hi = 1.0 if score(1.0 - 1e-12) >= -z else _decreasing_root(lambda d: score(d) + z, point, 1.0 - 1e-12)
    z0 = score(0.0)
    return Interval(float(lo), float(hi), float(2 * ndtr(-abs(z0))))


def _decreasing_root(f: Callable[[float], float], low: float, high: float, tolerance: float = 1e-13) -> float:
    """The root of a decreasing `f` with f(low) >= 0 >= f(high), by bisection to `tolerance`.

    Hand-written instead of scipy.optimize.brentq: importing scipy.optimize costs ~0.7-0.9 s per process
    (a third of a 100-pair `compare`), and the score is monotone, so bisection is exact enough in ~45 steps.
    """
    while high - low > tolerance:
        middle = (low + high) / 2
        if f(middle) > 0:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def _tango_score(n10: float, n01: float, n: float) -> Callable[[float], float]:
    """Z(delta): the score statistic for H0 p_c - p_b = delta (decreasing in delta)."""

    def score(delta: float) -> float:
        # Restricted MLE of the (baseline 1, candidate 0) cell probability under the null delta.
        b = n10 + n01 - delta * (2 * n + n10 - n01)
        q = (b + math.sqrt(max(0.0, b * b + 8 * n * n10 * delta * (1 - delta)))) / (4 * n)
        variance = n * (2 * q + delta * (1 - delta))
        diff = n01 - n10 - n * delta
        if variance <= 0:
            return 0.0 if diff == 0 else math.copysign(math.inf, diff)
        return diff / math.sqrt(variance)

    return score


# --- paired means and similarity --------------------------------------------------------------------------


def change_share_bound(changed: float, n: float, alpha: float) -> float:
    """One-sided `1 - alpha` Clopper-Pearson upper bound of the share of pairs that changed."""
    if n <= 0:
        return 1.0
    if changed >= n:
        return 1.0
    from scipy.special import betaincinv

    return float(betaincinv(changed + 1, n - changed, 1 - alpha))


@dataclass(frozen=True)
class PairedProportions:
    """A binary dimension's paired table: `n10` pairs went 1 -> 0, `n01` went 0 -> 1, of `n`."""

    n10: float
    n01: float
    n: float

    @classmethod
    def from_values(cls, baseline: np.ndarray, candidate: np.ndarray) -> PairedProportions:
        b, c = baseline.astype(bool), candidate.astype(bool)
        return cls(float(np.sum(b & ~c)), float(np.sum(~b & c)), float(len(b)))

    @property
    def point(self) -> float:
        return (self.n01 - self.n10) / self.n if self.n else 0.0

    def interval(self, alpha: float) -> Interval:
        return tango_interval(self.n10, self.n01, self.n, alpha)

    def scaled(self, n: float) -> PairedProportions:
        """The same table at `n` pairs (same shares): what more pairs of the same kind would show."""
        k = n / self.n if self.n else 0.0
        return PairedProportions(self.n10 * k, self.n01 * k, n)


@dataclass(frozen=True)
class PairedMeans:
    """Per-pair scaled differences of a continuous dimension, summarised; `bound` is the largest |x_i|."""

    mean: float
    sd: float
    n: float
    down: float  # pairs that moved down
    up: float  # pairs that moved up
    bound: float = 1.0

    @classmethod
    def from_values(cls, x: np.ndarray, *, bound: float = 1.0) -> PairedMeans:
        n = len(x)
        sd = float(np.std(x, ddof=1)) if n > 1 else math.inf
        return cls(
            float(np.mean(x)) if n else 0.0, sd, float(n), float(np.sum(x < -SAME)), float(np.sum(x > SAME)), bound
        )

    @property
    def point(self) -> float:
        return self.mean

    def interval(self, alpha: float) -> Interval:
        n = self.n
        if n <= 0:
            return Interval(-self.bound, self.bound, 1.0)
        # The mean can fall only through pairs that moved down and rise only through pairs that moved up.
        share_alpha = alpha * (1 - T_SHARE) / 2
        low_cap = -change_share_bound(self.down, n, share_alpha) * self.bound
        high_cap = change_share_bound(self.up, n, share_alpha) * self.bound
        if self.sd <= 1e-12 * max(1.0, abs(self.mean)) and abs(self.mean) > SAME:
            # Every pair moved by the same amount: the mean is at least that amount times the Clopper-Pearson
            # lower bound of the share of pairs that move (all n of n here), and at most that amount.
            low, high = sorted((self.mean * (alpha / 2) ** (1 / n), self.mean))
            return Interval(low, high, min(1.0, 2 * 0.5**n))
        lo, hi, p = _t_interval(self.mean, self.sd, n, alpha * T_SHARE)
        return _intersect(lo, hi, low_cap, high_cap, min(1.0, p / T_SHARE))

    def scaled(self, n: float) -> PairedMeans:
        k = n / self.n if self.n else 0.0
        return PairedMeans(self.mean, self.sd, n, self.down * k, self.up * k, self.bound)


@dataclass(frozen=True)
class SimilarityGap:
    """Candidate similarities against the pinned model's self-similarities (both in [0, 1])."""

    c_mean: float
    c_var: float
    nc: float
    c_changed: float
    r_mean: float
    r_var: float
    nr: float
    r_changed: float

    @classmethod
    def from_values(cls, candidate: np.ndarray, reference: np.ndarray) -> SimilarityGap:
        def var(a: np.ndarray) -> float:
            return float(a.var(ddof=1)) if len(a) > 1 else math.inf

        return cls(
            float(candidate.mean()) if len(candidate) else 0.0,
            var(candidate),
            float(len(candidate)),
            float(np.sum(candidate < 1 - SAME)),
            float(reference.mean()) if len(reference) else 0.0,
            var(reference),
            float(len(reference)),
            float(np.sum(reference < 1 - SAME)),
        )

    @property
    def point(self) -> float:
        return self.c_mean - self.r_mean

    @property
    def n(self) -> float:
        return self.nc

    def interval(self, alpha: float) -> Interval:
        if self.nc <= 0 or self.nr <= 0:
            return Interval(-1.0, 1.0, 1.0)
        share_alpha = alpha * (1 - T_SHARE) / 2
        # mean(c) >= 1 - share_c and mean(r) <= 1, so the difference is >= -share_c; likewise <= share_r.
        low_cap = -change_share_bound(self.c_changed, self.nc, share_alpha)
        high_cap = change_share_bound(self.r_changed, self.nr, share_alpha)
        lo, hi, p = _welch_interval(self, alpha * T_SHARE)
        return _intersect(lo, hi, low_cap, high_cap, min(1.0, p / T_SHARE))

    def scaled(self, n: float) -> SimilarityGap:
        """More pairs of both kinds: the candidate's and, in proportion, the pinned self-replays."""
        k = n / self.nc if self.nc else 0.0
        return SimilarityGap(
            self.c_mean, self.c_var, n, self.c_changed * k, self.r_mean, self.r_var, self.nr * k, self.r_changed * k
        )


def _t_interval(mean: float, sd: float, n: int, alpha: float) -> tuple[float, float, float]:
    from scipy.special import stdtr, stdtrit

    if n < 2 or not math.isfinite(sd):
        return -math.inf, math.inf, 1.0
    if sd <= 1e-12 * max(1.0, abs(mean)):
        # No spread is no evidence of no spread: the change-share bound alone limits the mean.
        return -math.inf, math.inf, 1.0
    se = sd / math.sqrt(n)
    half = float(stdtrit(n - 1, 1 - alpha / 2)) * se
    return mean - half, mean + half, float(2 * stdtr(n - 1, -abs(mean) / se))


def _welch_interval(gap: SimilarityGap, alpha: float) -> tuple[float, float, float]:
    from scipy.special import stdtr, stdtrit

    if gap.nc < 2 or gap.nr < 2:
        return -math.inf, math.inf, 1.0
    diff = gap.point
    vc, vr = gap.c_var / gap.nc, gap.r_var / gap.nr
    se = math.sqrt(vc + vr)
    if se <= 1e-12:
        # No spread on either side is no evidence of no spread: the change-share bounds alone limit it.
        return -math.inf, math.inf, 1.0 if abs(diff) <= 1e-12 else min(1.0, 2 * 0.5 ** min(gap.nc, gap.nr))
    dof = (vc + vr) ** 2 / ((vc**2 / (gap.nc - 1) if vc else 0) + (vr**2 / (gap.nr - 1) if vr else 0))
    half = float(stdtrit(dof, 1 - alpha / 2)) * se
    return diff - half, diff + half, float(2 * stdtr(dof, -abs(diff) / se))


def _intersect(lo: float, hi: float, cap_lo: float, cap_hi: float, p: float) -> Interval:
    low, high = max(lo, cap_lo), min(hi, cap_hi)
    if low > high:  # the parts disagree (a rare miss of one of them): keep the t part, which moved
        low, high = lo, hi
    return Interval(float(low), float(high), float(p))
