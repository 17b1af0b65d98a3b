"""The Great Expectations 1.x suite for a tenant agent, and the dimensions frame it judges.

A drift report's dimensions become a small pandas frame; the tenant's `drift_alert_threshold` (from the
manifest in force) and the report's statistical verdicts become expectations on it. Two tiers:

- **breach** (severity ``ERROR``, *blocking*): a dimension changed significantly (``p_adjusted < alpha``)
  with a practical effect reaching max(tenant threshold, noise floor), or scoring marked it ``drifted``.
  Anything downstream that would act on the candidate (a migration gate, a canary) must stop.
- **near miss** (severity ``WARN``, non-blocking): scoring marked a dimension ``near_miss``, or (the same
  rule as `statistics.py`) a significant change reached half that bar, or a change reached the bar with
  ``p_adjusted`` below ``min(0.1, 5 * alpha)``. Worth a look.
- **equivalence not yet shown** (severity ``WARN``, non-blocking): a dimension's ``1 - 2 alpha`` interval
  (`equivalence_low`/`equivalence_high`) does not lie inside +/- the tenant's threshold (the margin of
  `verdicts.py`). The interval does not depend on the threshold, so this is judged at the manifest's
  threshold in force; a report without intervals never counts as equivalent.

GX is imported lazily (seconds); one ephemeral context serves the whole process (~30-100 ms a validation).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

from drift_pipeline.errors import InvalidInputError

if TYPE_CHECKING:
    import pandas as pd
    from great_expectations.core.batch_definition import BatchDefinition
    from great_expectations.core.expectation_suite import ExpectationSuite

Severity = Literal["ERROR", "WARN"]
ERROR: Severity = "ERROR"
WARN: Severity = "WARN"
DEFAULT_NEAR_MISS_RATIO = 0.5  # statistics.py: significant and >= half the bar
REQUIRED_FIELDS = ("name", "effect", "p_adjusted", "drifted")
_RESULT_FORMAT = {"result_format": "COMPLETE", "unexpected_index_column_names": ["name"]}
_LOCK = threading.Lock()  # the shared GX context is not documented as thread-safe


@dataclass(frozen=True)
class ExpectationOutcome:
    """One expectation's verdict, in plain Python types."""

    key: str
    severity: Severity
    success: bool
    observed_value: float | int | None
    limit: float | None
    failing_dimensions: list[str]
    description: str


def dimensions_frame(
    report: dict[str, Any], alpha: float, near_miss_ratio: float = DEFAULT_NEAR_MISS_RATIO
) -> pd.DataFrame:
    """One row per dimension, with the derived columns the suite's expectations read.

    `practical_effect` is the 0..1 figure compared with the threshold (``|effect|`` when absent). Each
    judged column holds it only for the rows its rule covers (else null; GX does not judge nulls):
    `significant_effect` (p < alpha, at least the noise floor), `near_effect` (p < alpha, at least
    `near_miss_ratio` x noise floor), `loose_effect` (p < min(0.1, 5 alpha), at least the noise floor).
    Gating by the noise floor here and bounding by the threshold in the suite is exactly
    ``effect >= max(threshold, noise floor)``; similarity's noise is already in its effect, so it is not gated.
    """
    import pandas as pd

    rows = [_dimension_row(d, i, alpha, near_miss_ratio) for i, d in enumerate(_dimensions(report))]
    shift = report.get("distribution")
    if isinstance(shift, dict) and shift.get("applicable"):
        # The distribution test has no effect on the threshold's scale: it judges only through `drifted`.
        rows.append({"name": "distribution", "kind": "distribution", "drifted": bool(shift.get("drift"))})
    frame = pd.DataFrame(rows)
    if frame["name"].duplicated().any():
        dupes = sorted(set(frame.loc[frame["name"].duplicated(), "name"]))
        raise InvalidInputError(f"drift report repeats dimension(s) {', '.join(dupes)}")
    return frame


def build_suite(
    tenant_id: str | None,
    agent_id: str | None,
    threshold: float,
    *,
    near_miss_ratio: float = DEFAULT_NEAR_MISS_RATIO,
    include_verdicts: bool = True,
) -> ExpectationSuite:
    """The GX suite for a tenant agent. Each expectation's ``meta`` names its key and severity.

    With `include_verdicts` false (the report was scored at another threshold) only the threshold
    expectations judge the report, so a stale verdict cannot contradict the manifest in force.
    """
    import great_expectations as gx
    import great_expectations.expectations as gxe

    check_threshold(threshold)
    if not 0 < near_miss_ratio <= 1:
        raise InvalidInputError(f"near_miss_ratio must be in (0, 1], got {near_miss_ratio}")
    expectations: list[Any] = [
        gxe.ExpectColumnValuesToBeBetween(
            column="significant_effect",
            max_value=threshold,
            strict_max=True,
            meta={"key": "threshold", "severity": ERROR},
            notes="No significant change reaches the tenant's drift_alert_threshold (and its noise floor).",
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="near_effect",
            max_value=round(threshold * near_miss_ratio, 12),
            strict_max=True,
            meta={"key": "near_threshold", "severity": WARN},
            notes=f"No significant change reaches {near_miss_ratio:.0%} of the threshold.",
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="loose_effect",
            max_value=threshold,
            strict_max=True,
            meta={"key": "almost_significant", "severity": WARN},
            notes="No change reaching the threshold is almost significant (p below min(0.1, 5 alpha)).",
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="equivalence_bound",
            max_value=threshold,
            strict_max=True,
            meta={"key": "equivalence", "severity": WARN},
            notes="Equivalence is shown: every dimension's 1 - 2 alpha interval lies inside +/- the threshold.",
        ),
    ]
    if include_verdicts:
        expectations += [
            gxe.ExpectColumnValuesToBeInSet(
                column="drifted",
                value_set=[False],
                meta={"key": "verdict_drifted", "severity": ERROR},
                notes="Scoring marked no dimension as drifted.",
            ),
            gxe.ExpectColumnValuesToBeInSet(
                column="near_miss",
                value_set=[False],
                meta={"key": "verdict_near_miss", "severity": WARN},
                notes="Scoring marked no dimension as a near miss.",
            ),
        ]
    return gx.ExpectationSuite(name=suite_name(tenant_id, agent_id), expectations=expectations)


def suite_name(tenant_id: str | None, agent_id: str | None) -> str:
    return f"drift.{tenant_id or '_'}.{agent_id or '_'}"


def validate(frame: pd.DataFrame, suite: ExpectationSuite) -> list[ExpectationOutcome]:
    """Run `suite` on `frame` in the process's ephemeral GX context; one outcome per expectation."""
    with _LOCK:
        batch = _batch_definition().get_batch(batch_parameters={"dataframe": frame})
        result = batch.validate(suite, result_format=_RESULT_FORMAT)
    outcomes = []
    for r in result.results:
        if r.exception_info.get("raised_exception"):
            raise InvalidInputError(f"drift check could not evaluate: {r.exception_info.get('exception_message')}")
        config = r.expectation_config
        failing = [str(row["name"]) for row in r.result.get("unexpected_index_list") or []]
        limit = config.kwargs.get("max_value")
        observed = _observed(frame, config.kwargs["column"], limit is not None, r.result)
        outcomes.append(
            ExpectationOutcome(
                key=config.meta["key"],
                severity=config.meta["severity"],
                success=bool(r.success),
                observed_value=observed,
                limit=None if limit is None else float(limit),
                failing_dimensions=failing,
                description=config.notes or config.type,
            )
        )
    return outcomes


@cache
def _batch_definition() -> BatchDefinition:
    # One ephemeral context per process: creating one costs more than a validation.
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,  # never phone home
        progress_bars=ProgressBarsConfig(globally=False),  # a bar per 4-row validation is noise
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    source = context.data_sources.add_pandas("drift_reports")
    return source.add_dataframe_asset("dimensions").add_batch_definition_whole_dataframe("report")


def _dimensions(report: dict[str, Any]) -> list[dict[str, Any]]:
    dims = report.get("dimensions")
    if not isinstance(dims, list) or not dims:
        # An empty report would pass every expectation: a false all-clear, so refuse it.
        raise InvalidInputError("drift report has no dimensions to check")
    return dims


def _dimension_row(dim: Any, index: int, alpha: float, near_miss_ratio: float) -> dict[str, Any]:
    if not isinstance(dim, dict):
        raise InvalidInputError(f"drift report dimension #{index} is not an object")
    missing = [f for f in REQUIRED_FIELDS if dim.get(f) is None]
    if missing:
        raise InvalidInputError(f"drift report dimension #{index} lacks {', '.join(missing)}")
    name = str(dim["name"])
    effect, p_adjusted = _number(dim, "effect", name), _number(dim, "p_adjusted", name)
    practical = _number(dim, "practical_effect", name) if dim.get("practical_effect") is not None else abs(effect)
    noise_floor = _number(dim, "noise_floor", name) if dim.get("noise_floor") is not None else 0.0
    if not 0 <= p_adjusted <= 1:
        raise InvalidInputError(f"drift report dimension {name!r} has p_adjusted {p_adjusted} outside [0, 1]")
    floor = 0.0 if dim.get("kind") == "similarity" else abs(noise_floor)
    significant, loose = p_adjusted < alpha, p_adjusted < min(0.1, 5 * alpha)
    return {
        "name": name,
        "kind": dim.get("kind"),
        "effect": effect,
        "practical_effect": practical,
        "relative_effect": dim.get("relative_effect"),
        "p_adjusted": p_adjusted,
        "noise_floor": noise_floor,
        "drifted": bool(dim["drifted"]),
        "near_miss": bool(dim.get("near_miss", False)),
        "equivalence_bound": _equivalence_bound(dim, name),
        "significant_effect": practical if significant and practical >= floor else None,
        "near_effect": practical if significant and practical >= near_miss_ratio * floor else None,
        "loose_effect": practical if loose and practical >= floor else None,
    }


def _equivalence_bound(dim: dict[str, Any], name: str) -> float:
    """max(|low|, |high|) of the equivalence interval; 1.0 (the whole scale) when the report has none."""
    if dim.get("equivalence_low") is None or dim.get("equivalence_high") is None:
        return 1.0
    return max(abs(_number(dim, "equivalence_low", name)), abs(_number(dim, "equivalence_high", name)))


def _number(dim: dict[str, Any], key: str, name: str) -> float:
    value = dim.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInputError(f"drift report dimension {name!r} has a non-numeric {key}: {value!r}")
    return float(value)


def check_threshold(threshold: float) -> None:
    """InvalidInputError unless `threshold` is a finite positive number."""
    if not isinstance(threshold, int | float) or not math.isfinite(threshold) or threshold <= 0:
        raise InvalidInputError(f"drift threshold must be a positive number, got {threshold!r}")


def _observed(frame: pd.DataFrame, column: str, bounded: bool, result: dict[str, Any]) -> float | int:
    """A bound's observed value is the column's largest judged value (0.0 when none); a verdict's is a count."""
    if bounded:
        values = frame[column].dropna()
        return float(values.max()) if len(values) else 0.0
    return int(result.get("unexpected_count") or 0)  # int(): numpy.int64 breaks Dagster metadata
