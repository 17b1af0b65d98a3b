"""One vocabulary and one number format for everything a person reads: checks, metadata, alerts, reports.

The words are the report's verdicts (`verdicts.py`): DRIFT, INCONCLUSIVE, EQUIVALENT. Effects are shown
signed (the direction matters: similarity -0.138 is a drop) on the report's 0..1 scale, rounded to three
decimals, always beside the margin they are judged against and the corrected p-value, e.g.
``similarity -0.138 (margin ±0.05, p_adj 0.013)``. Numeric metadata goes through `metric` so plots get
plain rounded floats, never strings or 17-digit noise.
"""

from __future__ import annotations

import math

DRIFT, INCONCLUSIVE, EQUIVALENT = "DRIFT", "INCONCLUSIVE", "EQUIVALENT"
VERDICTS = (DRIFT, INCONCLUSIVE, EQUIVALENT)
# A check's severity as a verdict: ERROR is a drift, WARN a comparison that decides nothing yet.
SEVERITY_VERDICT = {"ERROR": DRIFT, "WARN": INCONCLUSIVE, None: EQUIVALENT}
EFFECT_DECIMALS = 3
METRIC_DECIMALS = 4  # metadata plots: enough to see a trend, no float noise
OBSERVED_VALUE = (
    "largest_significant_effect: the largest |effect| (0..1 scale) among dimensions whose change is "
    "significant after correction (p_adj < alpha) and at least their noise floor; 0 when none is. "
    "The check fails (DRIFT) when it reaches the margin."
)


def verdict_word(severity: str | None) -> str:
    """DRIFT / INCONCLUSIVE / EQUIVALENT for a check severity (ERROR / WARN / none)."""
    return SEVERITY_VERDICT[severity]


def signed(value: float, decimals: int = EFFECT_DECIMALS) -> str:
    """``-0.138``, ``+0.160``, ``0.000``: the sign always shown, except for a zero after rounding."""
    if not math.isfinite(value):
        return str(value)
    text = f"{value:+.{decimals}f}"
    return text[1:] if float(text) == 0 else text


def p_value(value: float) -> str:
    """A p-value to two significant figures (``0.013``, ``2.1e-05``)."""
    return f"{value:.2g}"


def margin(value: float) -> str:
    return f"±{value:g}"


def figure(name: str, effect: float, threshold: float, p_adjusted: float | None = None) -> str:
    """``similarity -0.138 (margin ±0.05, p_adj 0.013)``: one dimension's change as people read it."""
    tail = f", p_adj {p_value(p_adjusted)}" if p_adjusted is not None else ""
    return f"{name} {signed(effect)} (margin {margin(threshold)}{tail})"


def near_miss_reason(practical: float, threshold: float, p_adjusted: float, alpha: float) -> str:
    """Why a near miss is not a drift, without calling a value far past the margin "close to" it."""
    if practical >= threshold:
        if p_adjusted >= alpha:
            return f"beyond the margin but not significant after correction (p_adj >= alpha {alpha:g})"
        return "beyond the margin but within the noise floor of the pinned model"
    return f"significant, at {practical / threshold:.0%} of the margin"


def blocked(check_name: str, who: str, figures: list[str]) -> str:
    """The run-level message of a drift block: what blocked, for whom, and by how much."""
    return f"blocked by {check_name} for {who}: {'; '.join(figures)}"


def metric(value: float, decimals: int = METRIC_DECIMALS) -> float:
    """A rounded float for metadata that Dagster plots (``-0.1387``), never a string."""
    return round(float(value), decimals) + 0.0  # + 0.0 turns -0.0 into 0.0
