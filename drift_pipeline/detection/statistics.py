"""Paired statistics: effects with honest intervals (`intervals`), Holm/BH, noise floor, three-way verdicts.

Vocabulary (every figure that is compared with the threshold is on one 0..1 scale):

- *effect*: the mean of the per-pair changes (`pair_effects`), candidate minus baseline: the absolute
  change for binary dimensions (so the rate change) and similarity, the change divided by the value
  range for bounded continuous ones (tone: 2), and each pair's symmetric relative change
  (c - b) / max(|b|, |c|) for unbounded ones (length), so every effect lies in [-1, 1]. Intervals are on the same scale: `ci_low`/`ci_high`
  at the dimension's Holm-adjusted level (it excludes 0 exactly when the change is significant) and
  `equivalence_low`/`equivalence_high` at 1 - 2 alpha (the TOST interval compared with +/-margin).
  `raw_effect` is the change in the dimension's own unit (words, markdown elements, ...).
- *practical effect*: |effect|. The tenant's `drift_alert_threshold` and the noise floor are on this scale.
- *verdict*: `drift`, `equivalent` or `inconclusive` by the rule in `verdicts` (margin = threshold).
  An inconclusive dimension is a *near miss* (the WARN check) when it is significant but reaches only
  half the drift bar, or reaches the bar with an adjusted p-value below 5 x alpha (capped at 0.1).
- *noise floor*: the practical effect seen between two replays of the pinned model on the same inputs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from drift_pipeline.detection import verdicts
from drift_pipeline.detection.intervals import PairedMeans, PairedProportions, SimilarityGap
from drift_pipeline.detection.verdicts import Evidence
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
    """One dimension's verdict; `to_dict` gives the report's entry (docs/architecture.md, "Drift report")."""

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
    verdict: str = "inconclusive"  # drift | equivalent | inconclusive (verdicts.py); "untested" when descriptive
    verdict_reason: str = ""
    margin: float | None = None
    equivalence_low: float | None = None
    equivalence_high: float | None = None
    pairs_needed: int | None = None

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
                floors[spec.name] = abs(float(pair_effects(spec, base, cand).mean()))
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


# --- multiple testing ----------------------------------------------------------------------------------


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (family-wise error control).

    Hand-written on purpose: statsmodels' `multipletests` runs a full `gc.collect()` on every call, which
    costs 60 ms to a second in a process holding models, and scoring calls this once per comparison.
    """
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(len(p))
    running = 0.0
    for rank, idx in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[idx]))
        adjusted[idx] = running
    return adjusted.tolist()


def adjust_p(p_values: Sequence[float], correction: Correction) -> list[float]:
    """Adjusted p-values under the report's correction (Holm or Benjamini-Hochberg)."""
    return holm(p_values) if correction == "holm" else benjamini_hochberg(p_values)


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (false-discovery-rate control), via scipy."""
    from scipy.stats import false_discovery_control

    if len(p_values) == 0:
        return []
    return [float(x) for x in false_discovery_control(np.asarray(p_values, dtype=float), method="bh")]


# --- effects -----------------------------------------------------------------------------------------


def pair_effects(spec: DimensionSpec, baseline: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Each pair's change on the 0..1 threshold scale (module docstring); the effect is their mean.

    Unbounded dimensions use each pair's symmetric relative change, (c - b) / max(|b|, |c|), in [-1, 1]:
    one very long answer cannot swamp a hundred ordinary ones, and the interval needs no plug-in bound.
    """
    diff = candidate - baseline
    if spec.kind in ("binary", "similarity"):
        return diff
    if spec.span:
        return diff / spec.span
    larger = np.maximum(np.abs(baseline), np.abs(candidate))
    return np.divide(diff, larger, out=np.zeros_like(diff, dtype=float), where=larger > 0)


def _values(per_pair: pd.DataFrame, name: str) -> tuple[np.ndarray, np.ndarray]:
    # Masks on numpy arrays: selecting rows of the whole frame copied its string columns once per dimension.
    mask = (per_pair["dimension"] == name).to_numpy(bool)
    base, cand = per_pair["baseline_value"].to_numpy(float)[mask], per_pair["candidate_value"].to_numpy(float)[mask]
    applies = ~(np.isnan(base) | np.isnan(cand))
    return base[applies], cand[applies]


def _direction(effect: float | None) -> str:
    if effect is None or effect == 0:
        return "none"
    return "up" if effect > 0 else "down"


def _evidence(spec: DimensionSpec, base: np.ndarray, cand: np.ndarray, noise: NoiseFloor | None) -> Evidence | None:
    """What the pairs say about this dimension's effect on the 0..1 scale; None when it cannot be tested."""
    if spec.kind == "binary":
        return PairedProportions.from_values(base, cand)
    if spec.kind == "similarity":
        if noise is None or len(noise.similarities) < 2:
            # Without a self-replay of the pinned model there is no reference for "similar enough": sampling
            # noise alone makes texts differ, so the value is reported but not tested (never cry wolf).
            return None
        return SimilarityGap.from_values(cand, np.asarray(noise.similarities, dtype=float))
    return PairedMeans.from_values(pair_effects(spec, base, cand))  # every per-pair change lies in [-1, 1]


TESTS = {"binary": "tango-score", "continuous": "t-with-change-share-bound", "similarity": "welch-vs-noise-floor"}


def _describe(
    spec: DimensionSpec, base: np.ndarray, cand: np.ndarray, threshold: float, noise: NoiseFloor | None
) -> DimensionResult:
    """The descriptive figures of one dimension (means, effects, changed pairs); the verdict comes later."""
    floor = noise.floors.get(spec.name) if noise else None
    if spec.kind == "similarity":
        c_mean = float(cand.mean())
        ref = np.asarray(noise.similarities, dtype=float) if noise and len(noise.similarities) >= 2 else None
        r_mean = float(ref.mean()) if ref is not None else 1.0
        effect = c_mean - r_mean
        return DimensionResult(
            name=spec.name, kind=spec.kind, n=len(cand), baseline_value=r_mean, candidate_value=c_mean,
            effect=effect, raw_effect=effect, relative_effect=None if r_mean == 0 else effect / r_mean,
            practical_effect=max(0.0, r_mean - c_mean) if ref is not None else 1.0 - c_mean,
            ci_low=None, ci_high=None, p_value=None, p_adjusted=None, test=None,
            noise_floor=float(1.0 - r_mean) if ref is not None else None, threshold=threshold,
            direction=_direction(effect), changed_pairs=int(np.sum(cand < 1.0)),
        )  # fmt: skip
    b_mean, c_mean = float(base.mean()), float(cand.mean())
    raw = c_mean - b_mean
    effect = float(pair_effects(spec, base, cand).mean())
    return DimensionResult(
        name=spec.name, kind=spec.kind, n=len(base), baseline_value=b_mean, candidate_value=c_mean,
        effect=effect, raw_effect=raw, relative_effect=None if b_mean == 0 else raw / abs(b_mean),
        practical_effect=abs(effect), ci_low=None, ci_high=None, p_value=None, p_adjusted=None,
        test=None, noise_floor=floor, threshold=threshold, direction=_direction(raw),
        changed_pairs=int(np.sum(base != cand)),
    )  # fmt: skip


def evaluate(
    per_pair: pd.DataFrame,
    specs: Iterable[DimensionSpec],
    *,
    threshold: float,
    alpha: float = 0.01,
    noise_floor: NoiseFloor | None = None,
    correction: Correction = "holm",
    extra_p_values: Sequence[float] = (),
) -> tuple[list[DimensionResult], list[str]]:
    """Test every dimension, correct for multiple testing, give each its verdict; returns (results, not applicable).

    The margin of equivalence is the threshold (the tenant's `drift_alert_threshold`); see `verdicts`.
    `extra_p_values` are further drift-only tests of the same report (the distribution test): they join
    the correction's family, so the family-wise guarantee covers them too.
    """
    validate_levels(threshold, alpha)
    results: list[DimensionResult] = []
    evidence: list[Evidence | None] = []
    not_applicable: list[str] = []
    for spec in specs:
        base, cand = _values(per_pair, spec.name)
        if len(base) == 0:
            not_applicable.append(spec.name)
            continue
        results.append(_describe(spec, base, cand, threshold, noise_floor))
        evidence.append(_evidence(spec, base, cand, noise_floor))
    tested = [(r, e) for r, e in zip(results, evidence, strict=True) if e is not None]
    for result, ev in tested:
        result.p_value = ev.interval(alpha).p_value
        result.test = TESTS[result.kind]
    family = adjust_p([r.p_value for r, _ in tested] + list(extra_p_values), correction)  # type: ignore[misc]
    for (result, ev), p_adj in zip(tested, family[: len(tested)], strict=True):
        result.p_adjusted = p_adj
        _decide(result, ev, alpha, len(family))
    for result in results:
        if result.p_value is None:
            result.verdict, result.verdict_reason = "untested", "no noise floor to test similarity against"
    return results, not_applicable


def _decide(result: DimensionResult, evidence: Evidence, alpha: float, tests: int) -> None:
    floor = result.noise_floor if result.kind != "similarity" else None
    bar = max(result.threshold, floor or 0.0)
    p = result.p_adjusted if result.p_adjusted is not None else 1.0
    decision = verdicts.decide(
        evidence, p_adjusted=p, alpha=alpha, margin=result.threshold, bar=bar, floor=floor, tests=tests
    )
    result.verdict, result.verdict_reason = decision.verdict, decision.reason
    result.drifted = decision.verdict == "drift"
    result.ci_low, result.ci_high = decision.drift_interval.low, decision.drift_interval.high
    result.equivalence_low, result.equivalence_high = (
        decision.equivalence_interval.low,
        decision.equivalence_interval.high,
    )
    result.margin, result.pairs_needed = result.threshold, decision.pairs_needed
    effect = result.practical_effect or 0.0
    loose = min(0.1, 5 * alpha)
    significant = p < alpha
    # A near miss (the WARN check) is close to drift without being it; equivalence rules it out.
    result.near_miss = decision.verdict == "inconclusive" and (
        (significant and effect >= 0.5 * bar) or (p < loose and effect >= bar)
    )


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
