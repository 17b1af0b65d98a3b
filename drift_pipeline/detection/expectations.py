"""Drift checks as Great Expectations 1.x suites: one suite per tenant and agent, plain-Python results.

A drift report's dimensions become a small pandas frame; the tenant's `drift_alert_threshold` (from the
manifest in force) and the report's statistical verdicts become expectations on it. Two tiers:

- **breach** (severity ``ERROR``, *blocking*): a dimension changed significantly (``p_adjusted < alpha``)
  with a practical effect reaching max(tenant threshold, noise floor), or scoring marked it ``drifted``.
  Anything downstream that would act on the candidate (a migration gate, a canary) must stop.
- **near miss** (severity ``WARN``, non-blocking): scoring marked a dimension ``near_miss``, or (the same
  rule as `statistics.py`) a significant change reached half that bar, or a change reached the bar with
  ``p_adjusted`` below ``min(0.1, 5 * alpha)``. Worth a look.

`check_report()` returns a `DriftCheckResult` that carries everything a Dagster ``AssetCheckResult``
needs (``passed``, ``severity``, ``metadata()``, ``description``) without importing Dagster here.
GX is imported lazily (seconds); one ephemeral context serves the whole process (~30-100 ms a validation).
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from drift_pipeline.errors import InvalidInputError, NotFoundError

if TYPE_CHECKING:
    import pandas as pd
    from great_expectations.core.batch_definition import BatchDefinition
    from great_expectations.core.expectation_suite import ExpectationSuite

    from drift_pipeline.persistence.db import Store

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


@dataclass(frozen=True)
class DriftCheckResult:
    """The verdict of one drift report against one tenant agent's suite.

    `severity` is ``"ERROR"`` for a breach (block downstream actions), ``"WARN"`` for a near miss and
    ``None`` when clean (then `passed` is true).
    """

    tenant_id: str | None
    agent_id: str | None
    suite_name: str
    passed: bool
    severity: Severity | None
    threshold: float
    alpha: float
    observed_value: float
    breached_dimensions: list[str]
    near_miss_dimensions: list[str]
    expectations: list[ExpectationOutcome]
    dimension_effects: dict[str, float]
    report_uri: str | None
    description: str
    notes: list[str] = field(default_factory=list)

    @property
    def blocking(self) -> bool:
        """True for a breach: a downstream step that would act on this result must not run."""
        return self.severity == ERROR

    @property
    def failing_dimensions(self) -> list[str]:
        """Every dimension that failed any expectation, breaches first."""
        return self.breached_dimensions + [d for d in self.near_miss_dimensions if d not in self.breached_dimensions]

    def metadata(self) -> dict[str, Any]:
        """JSON-safe metadata for an AssetCheckResult: floats plot over time in the Dagster UI."""
        meta: dict[str, Any] = {
            "observed_value": self.observed_value,
            "threshold": self.threshold,
            "alpha": self.alpha,
            "severity": self.severity or "PASS",
            "breached_dimensions": ", ".join(self.breached_dimensions) or "-",
            "near_miss_dimensions": ", ".join(self.near_miss_dimensions) or "-",
            "expectations": {
                e.key: {
                    "severity": e.severity,
                    "success": e.success,
                    "observed_value": e.observed_value,
                    "limit": e.limit,
                    "failing": e.failing_dimensions,
                }
                for e in self.expectations
            },
            "suite": self.suite_name,
        }
        meta.update({f"effect/{name}": value for name, value in self.dimension_effects.items()})
        if self.report_uri:
            meta["report"] = self.report_uri
        return meta


def manifest_threshold(store: Store, tenant_id: str, agent_id: str) -> float:
    """The `drift_alert_threshold` of the manifest revision in force for a tenant agent."""
    from drift_pipeline.versioning import manifests

    return float(manifests.current(store, tenant_id, agent_id).drift_alert_threshold)


def load_report(source: dict[str, Any] | str | Path) -> dict[str, Any]:
    """A drift report as a dict, from a dict or a JSON file; one-line error when it is not one."""
    if isinstance(source, dict):
        return source
    path = Path(source)
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise NotFoundError(f"drift report {str(path)!r} does not exist") from exc
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"drift report {str(path)!r} is not readable JSON: {exc}") from exc
    if not isinstance(report, dict):
        raise InvalidInputError(f"drift report {str(path)!r} is not a JSON object")
    return report


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

    _check_threshold(threshold)
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


def check_report(
    report: dict[str, Any] | str | Path,
    threshold: float | None = None,
    *,
    report_uri: str | None = None,
    near_miss_ratio: float = DEFAULT_NEAR_MISS_RATIO,
) -> DriftCheckResult:
    """Validate a drift report's dimensions against the tenant agent's suite.

    `threshold` is the manifest's `drift_alert_threshold` (see `manifest_threshold`); without it the
    report's own threshold is used. `report_uri` (a path or URL) is carried into the metadata.
    """
    if report_uri is None and not isinstance(report, dict):
        report_uri = str(report)
    data = load_report(report)
    alpha = _alpha(data)
    report_threshold = data.get("threshold")
    if threshold is None:
        if not isinstance(report_threshold, int | float):
            raise InvalidInputError("drift report has no numeric 'threshold' and none was given")
        threshold = float(report_threshold)
    _check_threshold(threshold)
    notes = []
    same_threshold = isinstance(report_threshold, int | float) and math.isclose(report_threshold, threshold)
    if not same_threshold:
        notes.append(
            f"report scored at threshold {report_threshold}, manifest now {threshold}: "
            "judged on the manifest's threshold only, not on scoring's verdicts"
        )
    frame = dimensions_frame(data, alpha, near_miss_ratio)
    tenant_id, agent_id = data.get("tenant_id"), data.get("agent_id")
    suite = build_suite(
        tenant_id, agent_id, threshold, near_miss_ratio=near_miss_ratio, include_verdicts=same_threshold
    )
    outcomes = validate(frame, suite)
    return _summarise(data, frame, suite.name, threshold, alpha, outcomes, report_uri, notes)


def check_report_for_manifest(
    store: Store, report: dict[str, Any] | str | Path, *, report_uri: str | None = None
) -> DriftCheckResult:
    """`check_report` with the threshold of the manifest in force for the report's tenant and agent."""
    data = load_report(report)
    tenant_id, agent_id = data.get("tenant_id"), data.get("agent_id")
    if not tenant_id or not agent_id:
        raise InvalidInputError("drift report names no tenant_id/agent_id, so no manifest applies")
    if report_uri is None and not isinstance(report, dict):
        report_uri = str(report)
    return check_report(data, manifest_threshold(store, tenant_id, agent_id), report_uri=report_uri)


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


def _summarise(
    data: dict[str, Any],
    frame: pd.DataFrame,
    name: str,
    threshold: float,
    alpha: float,
    outcomes: list[ExpectationOutcome],
    report_uri: str | None,
    notes: list[str],
) -> DriftCheckResult:
    failed = [o for o in outcomes if not o.success]
    breached = _unique(d for o in failed if o.severity == ERROR for d in o.failing_dimensions)
    near = _unique(d for o in failed if o.severity == WARN for d in o.failing_dimensions if d not in breached)
    severity: Severity | None = ERROR if breached else WARN if failed else None
    significant = frame["significant_effect"].dropna()
    observed = float(significant.max()) if len(significant) else 0.0
    effects = {str(n): float(e) for n, e in zip(frame["name"], frame["practical_effect"], strict=True)}
    result = DriftCheckResult(
        tenant_id=data.get("tenant_id"),
        agent_id=data.get("agent_id"),
        suite_name=name,
        passed=not failed,
        severity=severity,
        threshold=threshold,
        alpha=alpha,
        observed_value=observed,
        breached_dimensions=breached,
        near_miss_dimensions=near,
        expectations=outcomes,
        dimension_effects=effects,
        report_uri=report_uri,
        description="",
        notes=notes,
    )
    return _with_description(result, frame)


def _with_description(result: DriftCheckResult, frame: pd.DataFrame) -> DriftCheckResult:
    from dataclasses import replace

    by_name = frame.set_index("name")
    who = f"{result.tenant_id or '?'}/{result.agent_id or '?'}"

    def explain(names: list[str]) -> str:
        return ", ".join(
            f"{n} |effect| {by_name.at[n, 'practical_effect']:.3g} (p_adj {by_name.at[n, 'p_adjusted']:.2g})"
            for n in names
        )

    if result.severity == ERROR:
        text = f"BREACH {who}: {explain(result.breached_dimensions)} beyond threshold {result.threshold:g}"
        if result.near_miss_dimensions:
            text += f"; near miss: {explain(result.near_miss_dimensions)}"
        text += ". Blocking: do not migrate or promote."
    elif result.severity == WARN:
        text = f"NEAR MISS {who}: {explain(result.near_miss_dimensions)} close to threshold {result.threshold:g}."
    else:
        text = f"OK {who}: {len(frame)} dimension(s) within threshold {result.threshold:g} at alpha {result.alpha:g}."
    if result.notes:
        text += " Note: " + "; ".join(result.notes) + "."
    return replace(result, description=text)


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
        "significant_effect": practical if significant and practical >= floor else None,
        "near_effect": practical if significant and practical >= near_miss_ratio * floor else None,
        "loose_effect": practical if loose and practical >= floor else None,
    }


def _number(dim: dict[str, Any], key: str, name: str) -> float:
    value = dim.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInputError(f"drift report dimension {name!r} has a non-numeric {key}: {value!r}")
    return float(value)


def _alpha(report: dict[str, Any]) -> float:
    alpha = report.get("alpha")
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
        raise InvalidInputError(f"drift report has no valid 'alpha' in (0, 1): {alpha!r}")
    return float(alpha)


def _check_threshold(threshold: float) -> None:
    if not isinstance(threshold, int | float) or not math.isfinite(threshold) or threshold <= 0:
        raise InvalidInputError(f"drift threshold must be a positive number, got {threshold!r}")


def _observed(frame: pd.DataFrame, column: str, bounded: bool, result: dict[str, Any]) -> float | int:
    """A bound's observed value is the column's largest judged value (0.0 when none); a verdict's is a count."""
    if bounded:
        values = frame[column].dropna()
        return float(values.max()) if len(values) else 0.0
    return int(result.get("unexpected_count") or 0)  # int(): numpy.int64 breaks Dagster metadata


def _unique(items: Any) -> list[str]:
    return list(dict.fromkeys(items))
