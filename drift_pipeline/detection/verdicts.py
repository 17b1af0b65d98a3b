"""Three-way verdicts, drift, equivalent or inconclusive, from one decision rule over intervals.

Per dimension, with margin delta = the tenant's `drift_alert_threshold`:

- **drift**: the change is significant after Holm across the tested dimensions (its interval at the
  Holm-adjusted level excludes 0) *and* |effect| reaches max(threshold, noise floor);
- **equivalent**: two one-sided tests (TOST) at level alpha: the `1 - 2 alpha` interval lies inside
  (-delta, +delta). Intersection-union: the overall "equivalent" needs every dimension equivalent, so it
  keeps level alpha without any correction across dimensions;
- **inconclusive**: neither. The result says why, and how many pairs of the same kind would likely
  decide (`pairs_needed`).

Drift and equivalent exclude each other: drift needs |effect| >= delta, equivalence an interval that holds
the point effect inside (-delta, delta). Overall: `drift` if any dimension drifts, `equivalent` only if
every tested dimension is equivalent, else `inconclusive`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from drift_pipeline.detection.intervals import Interval

Verdict = Literal["drift", "equivalent", "inconclusive"]
VERDICTS: tuple[Verdict, ...] = ("drift", "equivalent", "inconclusive")
MAX_PLANNED_PAIRS = 1_000_000


class Evidence(Protocol):
    """What a dimension's data says: a point effect, intervals at any level, and the same at more pairs."""

    @property
    def point(self) -> float: ...

    @property
    def n(self) -> float: ...

    def interval(self, alpha: float) -> Interval: ...

    def scaled(self, n: float) -> Evidence: ...


@dataclass(frozen=True)
class Decision:
    """One dimension's verdict with both intervals it rests on."""

    verdict: Verdict
    reason: str
    drift_interval: Interval  # at the Holm-adjusted level: excludes 0 exactly when significant
    equivalence_interval: Interval  # at 1 - 2 alpha: inside (-margin, margin) exactly when equivalent
    pairs_needed: int | None


def decide(
    evidence: Evidence, *, p_adjusted: float, alpha: float, margin: float, bar: float, floor: float | None, tests: int
) -> Decision:
    """The verdict of one tested dimension (`bar` = max(threshold, noise floor) for drift)."""
    p = evidence.interval(alpha).p_value
    level = alpha * p / p_adjusted if p_adjusted > 0 else alpha  # the Holm step this dimension was tested at
    drift_iv = evidence.interval(min(level, alpha))
    equiv_iv = evidence.interval(2 * alpha)
    point = evidence.point
    if not math.isfinite(point):
        return Decision("inconclusive", "the effect is not a number", drift_iv, equiv_iv, None)
    if p_adjusted < alpha and abs(point) >= bar:
        reason = f"significant (p_adj {p_adjusted:.2g} < {alpha:g}) and |effect| {abs(point):.3f} >= {bar:.3f}"
        return Decision("drift", reason, drift_iv, equiv_iv, None)
    if floor is not None and floor >= margin:
        reason = f"the noise floor {floor:.3f} is at least the margin {margin:g}: equivalence at this margin cannot be shown for this workload"
        return Decision("inconclusive", reason, drift_iv, equiv_iv, None)
    if equiv_iv.inside(margin):
        reason = f"{1 - 2 * alpha:.0%} interval [{equiv_iv.low:+.3f}, {equiv_iv.high:+.3f}] inside +/-{margin:g}"
        return Decision("equivalent", reason, drift_iv, equiv_iv, None)
    reason = f"{1 - 2 * alpha:.0%} interval [{equiv_iv.low:+.3f}, {equiv_iv.high:+.3f}] not inside +/-{margin:g} with {int(evidence.n)} pairs"
    needed = pairs_needed(evidence, alpha=alpha, margin=margin, bar=bar, tests=tests)
    if needed is not None:
        reason += f"; about {needed} pairs would likely decide"
    return Decision("inconclusive", reason, drift_iv, equiv_iv, needed)


def overall(verdicts: Iterable[Verdict]) -> Verdict:
    """`drift` if any dimension drifts, `equivalent` only if every tested one is (and there is one)."""
    seen = list(verdicts)
    if "drift" in seen:
        return "drift"
    return "equivalent" if seen and all(v == "equivalent" for v in seen) else "inconclusive"


def pairs_needed(evidence: Evidence, *, alpha: float, margin: float, bar: float, tests: int) -> int | None:
    """Pairs of the same kind (same shares, same spread) at which the verdict would likely be decided.

    Equivalence is projected when the point effect is inside the margin, drift when it reaches the bar
    (at a Bonferroni level alpha / tests, a little stricter than Holm); None when neither can happen.
    """
    point = evidence.point
    if not math.isfinite(point):
        return None

    def decided(n: float) -> bool:
        more = evidence.scaled(n)
        if abs(point) >= bar:
            return more.interval(alpha / max(1, tests)).excludes_zero()
        return abs(point) < margin and more.interval(2 * alpha).inside(margin)

    if abs(point) >= margin and abs(point) < bar:
        return None  # beyond the margin but under the noise floor: more pairs decide nothing here
    low, high = max(1, int(evidence.n)), max(2, int(evidence.n))
    while not decided(high):
        if high >= MAX_PLANNED_PAIRS:
            return None
        low, high = high, min(MAX_PLANNED_PAIRS, high * 2)
    while high - low > max(1, low // 50):  # 2 % resolution is plenty for a plan
        mid = (low + high) // 2
        low, high = (low, mid) if decided(mid) else (mid, high)
    return high


def plan(
    margin: float, *, alpha: float = 0.01, changed_share: float = 0.0, spread: float = 0.0
) -> dict[str, int | None]:
    """Pairs a baseline needs to show equivalence at `margin`, per kind of dimension, for a model that
    changes `changed_share` of its pairs in both directions alike with per-pair spread `spread` (0..1 scale).

    `changed_share=0` is a deterministic, unchanged model: the fewest pairs that can ever prove equivalence.
    """
    from drift_pipeline.detection.intervals import PairedMeans, PairedProportions

    half = changed_share / 2
    kinds: dict[str, Evidence] = {
        "binary": PairedProportions(half, half, 1.0),
        "continuous": PairedMeans(0.0, spread, 2.0, 2 * half, 2 * half),
    }
    return {kind: pairs_needed(ev, alpha=alpha, margin=margin, bar=margin, tests=1) for kind, ev in kinds.items()}


def unproven_dimensions(report: Mapping[str, Any]) -> list[str]:
    """Tested dimensions of a stored drift report whose own interval is not inside +/-margin.

    For reports read back from files and stores: the intervals are re-checked, a verdict string alone
    proves nothing (a missing, non-finite or too wide interval counts as unproven).
    """
    margin = report.get("margin", report.get("threshold"))
    unproven = []
    for dim in report.get("dimensions") or []:
        if dim.get("p_value") is None:
            continue  # descriptive, untested
        numbers = (dim.get("equivalence_low"), dim.get("equivalence_high"), margin)
        finite = all(isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) for x in numbers)
        low, high = numbers[0], numbers[1]
        if not (finite and dim.get("verdict") == "equivalent" and -margin < low <= high < margin):  # type: ignore[operator]
            unproven.append(str(dim.get("name")))
    return unproven


def shows_equivalence(report: Mapping[str, Any]) -> bool:
    """A stored report proves equivalence: verdict `equivalent`, tested dimensions, every interval inside."""
    tested = [d for d in report.get("dimensions") or [] if d.get("p_value") is not None]
    return report.get("verdict") == "equivalent" and bool(tested) and not unproven_dimensions(report)
