"""Paired statistics for drift: tests, effect sizes with confidence intervals, noise floor, Holm/BH.

Vocabulary (every figure that is compared with the threshold is on one 0..1 scale):

- *effect*: the signed change of the mean, candidate minus baseline, divided by the dimension's scale:
  1 for binary dimensions (so it is the absolute rate change) and similarity, the value range for
  bounded continuous ones (tone: 2), and max(|mean_b|, |mean_c|) for unbounded ones (length), which
  makes it a symmetric relative change in [-1, 1]. `ci_low`/`ci_high` are on the same scale.
  `raw_effect` is the change in the dimension's own unit (words, markdown elements, ...).
- *practical effect*: |effect|. The tenant's `drift_alert_threshold` and the noise floor are on this scale.
- A dimension *drifts* when its Holm-adjusted p-value is below alpha AND its practical effect reaches
  max(threshold, noise floor). It is a *near miss* when it is significant but reaches only half that bar,
  or reaches the bar with an adjusted p-value below 5 x alpha (capped at 0.1).
- *noise floor*: the practical effect seen between two replays of the pinned model on the same inputs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from drift_pipeline.errors import InvalidInputError

Correction = Literal["holm", "bh"]


@dataclass(frozen=True)
class DimensionSpec:
    """What the statistics need to know about a dimension."""

    name: str
    kind: str  # binary | continuous | similarity
    span: float | None = None


@dataclass
class DimensionResult:
    """One dimension's verdict; `to_dict` gives the report's entry (schema_version 1.0 keys + extras)."""

    name: str
    kind: str
    n: int
    baseline_value: float | None
    candidate_value: float | None
    effect: float | None
    raw_effect: float | None
    relative_effect: float | None
    practical_effect: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    p_adjusted: float | None
    test: str | None
    noise_floor: float | None
    threshold: float
    drifted: bool = False
    near_miss: bool = False
    direction: str = "none"
    changed_pairs: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {k: _clean(v) for k, v in asdict(self).items()}


@dataclass
class NoiseFloor:
    """How much the pinned model differs from itself: measured on pinned-vs-pinned replay pairs.

    `floors` maps a dimension to its practical effect between two replays of the same model; the
    similarity floor is kept as the full distribution of pinned-vs-pinned similarities, because the
    candidate's similarities are tested against it.
    """

    floors: dict[str, float] = field(default_factory=dict)
    similarities: list[float] = field(default_factory=list)
    n_pairs: int = 0

    @classmethod
    def measure(cls, per_pair: pd.DataFrame, specs: Sequence[DimensionSpec]) -> NoiseFloor:
        """From the per-pair table of pinned-vs-pinned pairs (as produced by `scoring.score_dimensions`)."""
        floors: dict[str, float] = {}
        similarities: list[float] = []
        for spec in specs:
            base, cand = _values(per_pair, spec.name)
            if len(base) == 0:
                continue
            if spec.kind == "similarity":
                similarities = [float(x) for x in cand]
                floors[spec.name] = float(1.0 - cand.mean())
            else:
                floors[spec.name] = practical_effect(spec, base.mean(), cand.mean())
        return cls(floors=floors, similarities=similarities, n_pairs=int(per_pair["pair_id"].nunique()))

    def to_dict(self) -> dict[str, Any]:
        return {"floors": self.floors, "similarities": self.similarities, "n_pairs": self.n_pairs}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NoiseFloor:
        try:
            return cls(
                floors={str(k): float(v) for k, v in dict(data.get("floors", {})).items()},
                similarities=[float(x) for x in data.get("similarities", [])],
                n_pairs=int(data.get("n_pairs", 0)),
            )
        except (TypeError, ValueError, AttributeError) as exc:
            raise InvalidInputError(f"noise floor is malformed: {exc}") from exc


# --- tests -------------------------------------------------------------------------------------------


def mcnemar_exact(baseline: np.ndarray, candidate: np.ndarray) -> float:
    """Two-sided exact McNemar p-value: a binomial test on the discordant pairs."""
    from scipy.stats import binomtest

    b = int(np.sum((baseline == 1) & (candidate == 0)))
    c = int(np.sum((baseline == 0) & (candidate == 1)))
    if b + c == 0:
        return 1.0
    return float(binomtest(c, b + c, 0.5).pvalue)


def wilcoxon_signed_rank(baseline: np.ndarray, candidate: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value on the paired differences (zero differences dropped)."""
    from scipy.stats import wilcoxon

    diffs = candidate - baseline
    if np.count_nonzero(diffs) == 0:
        return 1.0
    return float(wilcoxon(diffs, zero_method="wilcox", alternative="two-sided").pvalue)


def similarity_vs_noise(candidate: np.ndarray, noise: np.ndarray) -> float:
    """One-sided Mann-Whitney p-value that candidate similarities sit below the pinned-vs-pinned ones."""
    from scipy.stats import mannwhitneyu

    if np.all(candidate == candidate[0]) and np.all(noise == candidate[0]):
        return 1.0
    return float(mannwhitneyu(candidate, noise, alternative="less").pvalue)


def bootstrap_ci(
    samples: Sequence[np.ndarray], confidence: float, *, n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap CI of a mean (one sample: paired differences) or a difference of means (two)."""
    from scipy.stats import bootstrap

    samples = [np.asarray(s, dtype=float) for s in samples]
    if len(samples) == 1:
        stat = lambda x, axis=-1: np.mean(x, axis=axis)  # noqa: E731
        point = float(samples[0].mean())
    else:
        stat = lambda x, y, axis=-1: np.mean(x, axis=axis) - np.mean(y, axis=axis)  # noqa: E731
        point = float(samples[0].mean() - samples[1].mean())
    if all(np.ptp(s) == 0 for s in samples) or min(len(s) for s in samples) < 2:
        return point, point  # a constant sample has no sampling spread to resample
    res = bootstrap(
        tuple(samples),
        stat,
        confidence_level=confidence,
        n_resamples=n_resamples,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (family-wise error control)."""
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for rank, idx in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[idx]))
        adjusted[idx] = running
    return adjusted.tolist()


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (false-discovery-rate control), via scipy."""
    from scipy.stats import false_discovery_control

    if len(p_values) == 0:
        return []
    return [float(x) for x in false_discovery_control(np.asarray(p_values, dtype=float), method="bh")]


# --- effects -----------------------------------------------------------------------------------------


def effect_scale(spec: DimensionSpec, baseline_mean: float, candidate_mean: float) -> float:
    """The divisor that puts a dimension's mean change on the 0..1 threshold scale (module docstring)."""
    if spec.kind in ("binary", "similarity"):
        return 1.0
    if spec.span:
        return float(spec.span)
    scale = max(abs(baseline_mean), abs(candidate_mean))
    return float(scale) if scale > 0 else 1.0


def practical_effect(spec: DimensionSpec, baseline_mean: float, candidate_mean: float) -> float:
    """|effect| on the 0..1 scale compared with the threshold (see the module docstring)."""
    return abs(candidate_mean - baseline_mean) / effect_scale(spec, baseline_mean, candidate_mean)


def _values(per_pair: pd.DataFrame, name: str) -> tuple[np.ndarray, np.ndarray]:
    rows = per_pair[per_pair["dimension"] == name]
    rows = rows[rows["baseline_value"].notna() & rows["candidate_value"].notna()]
    return rows["baseline_value"].to_numpy(float), rows["candidate_value"].to_numpy(float)


def _direction(effect: float | None) -> str:
    if effect is None or effect == 0:
        return "none"
    return "up" if effect > 0 else "down"


def _test_one(
    spec: DimensionSpec,
    base: np.ndarray,
    cand: np.ndarray,
    threshold: float,
    alpha: float,
    noise: NoiseFloor | None,
    n_resamples: int,
) -> DimensionResult:
    confidence = 1.0 - alpha  # the CI matches the test level: a 99% interval for alpha = 0.01
    n = len(base)
    floor = noise.floors.get(spec.name) if noise else None
    if spec.kind == "similarity":
        return _test_similarity(spec, cand, threshold, confidence, noise, n_resamples)
    b_mean, c_mean = float(base.mean()), float(cand.mean())
    raw = c_mean - b_mean
    if spec.kind == "binary":
        test, p = "mcnemar-exact", mcnemar_exact(base, cand)
        changed = int(np.sum(base != cand))
    else:
        test, p = "wilcoxon-signed-rank", wilcoxon_signed_rank(base, cand)
        changed = int(np.count_nonzero(cand - base))
    scale = effect_scale(spec, b_mean, c_mean)
    lo, hi = bootstrap_ci([cand - base], confidence, n_resamples=n_resamples) if n_resamples else (math.nan, math.nan)
    return DimensionResult(
        name=spec.name,
        kind=spec.kind,
        n=n,
        baseline_value=b_mean,
        candidate_value=c_mean,
        effect=raw / scale,
        raw_effect=raw,
        relative_effect=None if b_mean == 0 else raw / abs(b_mean),
        practical_effect=abs(raw) / scale,
        ci_low=lo / scale,
        ci_high=hi / scale,
        p_value=p,
        p_adjusted=None,
        test=test,
        noise_floor=floor,
        threshold=threshold,
        direction=_direction(raw),
        changed_pairs=changed,
    )


def _test_similarity(
    spec: DimensionSpec,
    cand: np.ndarray,
    threshold: float,
    confidence: float,
    noise: NoiseFloor | None,
    n_resamples: int,
) -> DimensionResult:
    """Similarity has no paired 'baseline value': it is judged against the pinned model's self-similarity."""
    c_mean = float(cand.mean())
    changed = int(np.sum(cand < 1.0))
    result = DimensionResult(
        name=spec.name,
        kind=spec.kind,
        n=len(cand),
        baseline_value=1.0,
        candidate_value=c_mean,
        effect=c_mean - 1.0,
        raw_effect=c_mean - 1.0,
        relative_effect=c_mean - 1.0,
        practical_effect=1.0 - c_mean,
        ci_low=None,
        ci_high=None,
        p_value=None,
        p_adjusted=None,
        test=None,
        noise_floor=None,
        threshold=threshold,
        direction=_direction(c_mean - 1.0),
        changed_pairs=changed,
    )
    if noise is None or len(noise.similarities) < 2:
        # Without a self-replay of the pinned model there is no reference for "similar enough": sampling
        # noise alone makes texts differ, so the value is reported but not tested (never cry wolf).
        return result
    ref = np.asarray(noise.similarities, dtype=float)
    r_mean = float(ref.mean())
    result.baseline_value = r_mean
    result.effect = result.raw_effect = c_mean - r_mean
    result.relative_effect = None if r_mean == 0 else result.effect / r_mean
    result.practical_effect = max(0.0, r_mean - c_mean)
    if n_resamples:
        result.ci_low, result.ci_high = bootstrap_ci([cand, ref], confidence, n_resamples=n_resamples)
    result.p_value = similarity_vs_noise(cand, ref)
    result.test = "mann-whitney-vs-noise-floor"
    result.noise_floor = float(1.0 - r_mean)
    result.direction = _direction(result.effect)
    return result


def evaluate(
    per_pair: pd.DataFrame,
    specs: Iterable[DimensionSpec],
    *,
    threshold: float,
    alpha: float = 0.01,
    noise_floor: NoiseFloor | None = None,
    correction: Correction = "holm",
    n_resamples: int = 2000,
) -> tuple[list[DimensionResult], list[str]]:
    """Test every dimension, correct for multiple testing, decide drift; returns (results, not applicable).

    `n_resamples` is the bootstrap size of the confidence intervals (0 skips them: the verdict does not
    depend on them, which the power simulations use).
    """
    validate_levels(threshold, alpha)
    results: list[DimensionResult] = []
    not_applicable: list[str] = []
    for spec in specs:
        base, cand = _values(per_pair, spec.name)
        if len(base) == 0:
            not_applicable.append(spec.name)
            continue
        results.append(_test_one(spec, base, cand, threshold, alpha, noise_floor, n_resamples))
    tested = [r for r in results if r.p_value is not None]
    adjust = holm if correction == "holm" else benjamini_hochberg
    for result, p_adj in zip(tested, adjust([r.p_value for r in tested]), strict=True):  # type: ignore[misc]
        result.p_adjusted = p_adj
        _decide(result, alpha)
    return results, not_applicable


def _decide(result: DimensionResult, alpha: float) -> None:
    bar = max(result.threshold, result.noise_floor or 0.0) if result.kind != "similarity" else result.threshold
    effect = result.practical_effect or 0.0
    p = result.p_adjusted if result.p_adjusted is not None else 1.0
    significant = p < alpha
    result.drifted = significant and effect >= bar
    loose = min(0.1, 5 * alpha)
    result.near_miss = not result.drifted and ((significant and effect >= 0.5 * bar) or (p < loose and effect >= bar))


def validate_levels(threshold: float, alpha: float) -> None:
    if not (0.0 < threshold <= 1.0) or math.isnan(threshold):
        raise InvalidInputError(f"threshold must be in (0, 1], got {threshold}")
    if not (0.0 < alpha < 1.0):
        raise InvalidInputError(f"alpha must be in (0, 1), got {alpha}")


def _clean(value: Any) -> Any:
    """JSON-safe: numpy scalars to Python, NaN/inf to None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
