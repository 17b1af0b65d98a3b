"""Drift checks: judge a drift report with its tenant agent's suite (`expectation_suite`), in plain Python.

`check_report()` returns a `DriftCheckResult` that carries everything a Dagster ``AssetCheckResult``
needs (``passed``, ``severity``, ``metadata()``, ``description``) without importing Dagster here. A
breach (severity ``ERROR``) blocks anything downstream that would act on the candidate; a near miss
(``WARN``) does not.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drift_pipeline.detection import wording
from drift_pipeline.detection.expectation_suite import (
    DEFAULT_NEAR_MISS_RATIO,
    ERROR,
    WARN,
    ExpectationOutcome,
    Severity,
    build_suite,
    check_threshold,
    dimensions_frame,
    validate,
)
from drift_pipeline.errors import InvalidInputError, NotFoundError

if TYPE_CHECKING:
    import pandas as pd

    from drift_pipeline.persistence.db import Store


@dataclass(frozen=True)
class DriftCheckResult:
    """The verdict of one drift report against one tenant agent's suite.

    `severity` is ``"ERROR"`` for a breach (block downstream actions), ``"WARN"`` for a near miss or a
    dimension whose equivalence is not yet shown (inconclusive), and ``None`` when every dimension is shown
    equivalent within the threshold (then `passed` is true).
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
    unproven_dimensions: list[str]  # equivalence within the threshold not (yet) shown
    expectations: list[ExpectationOutcome]
    dimension_effects: dict[str, float]
    report_uri: str | None
    description: str
    notes: list[str] = field(default_factory=list)
    # Per failing dimension, its figure in words (`wording.figure`): "similarity -0.747 (margin ±0.05, p_adj 0.001)".
    figures: dict[str, str] = field(default_factory=dict)

    @property
    def blocking(self) -> bool:
        """True for a breach: a downstream step that would act on this result must not run."""
        return self.severity == ERROR

    @property
    def failing_dimensions(self) -> list[str]:
        """Every dimension that failed any expectation, breaches first."""
        rest = [d for d in self.near_miss_dimensions + self.unproven_dimensions if d not in self.breached_dimensions]
        return self.breached_dimensions + list(dict.fromkeys(rest))

    def metadata(self) -> dict[str, Any]:
        """JSON-safe metadata for an AssetCheckResult: rounded floats that plot over time in the Dagster UI."""
        meta: dict[str, Any] = {
            "verdict": wording.verdict_word(self.severity),
            "largest_significant_effect": wording.metric(self.observed_value),
            "threshold": self.threshold,
            "alpha": self.alpha,
            "severity": self.severity or "PASS",
            "drifted_dimensions": ", ".join(self.breached_dimensions) or "-",
            "near_miss_dimensions": ", ".join(self.near_miss_dimensions) or "-",
            "not_yet_equivalent": ", ".join(self.unproven_dimensions) or "-",
            # Bounds report the largest judged effect, verdict expectations how many dimensions they flag.
            "expectations": {
                e.key: {
                    "severity": e.severity,
                    "success": e.success,
                    ("largest_effect" if e.limit is not None else "dimensions_flagged"): e.observed_value,
                    "limit": e.limit,
                    "failing": e.failing_dimensions,
                }
                for e in self.expectations
            },
            "suite": self.suite_name,
        }
        meta.update({f"effect/{n}": wording.metric(v) for n, v in self.dimension_effects.items() if math.isfinite(v)})
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
    check_threshold(threshold)
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
    near = _unique(
        d
        for o in failed
        if o.severity == WARN and o.key != "equivalence"
        for d in o.failing_dimensions
        if d not in breached
    )
    unproven = _unique(d for o in failed if o.key == "equivalence" for d in o.failing_dimensions if d not in breached)
    severity: Severity | None = ERROR if breached else WARN if failed else None
    significant = frame["significant_effect"].dropna()
    observed = float(significant.max()) if len(significant) else 0.0
    # Signed, like the report and the drift_report metadata: the direction is part of the finding.
    effects = {
        str(n): float(e) for n, e in zip(frame["name"], frame.get("effect", frame["practical_effect"]), strict=True)
    }
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
        unproven_dimensions=unproven,
        expectations=outcomes,
        dimension_effects=effects,
        report_uri=report_uri,
        description="",
        notes=notes,
    )
    return _with_description(result, frame)


def _with_description(result: DriftCheckResult, frame: pd.DataFrame) -> DriftCheckResult:
    """The one-paragraph finding, in the report's words (DRIFT / INCONCLUSIVE / EQUIVALENT, `wording`)."""
    by_name = frame.set_index("name")
    who = f"{result.tenant_id or '?'}/{result.agent_id or '?'}"

    def explain(names: list[str], near: bool = False) -> str:
        parts = []
        for n in names:
            text = dimension_figure(by_name, n, result.threshold)
            if near and n in by_name.index and by_name.at[n, "kind"] != "distribution":
                row = by_name.loc[n]
                text += " " + wording.near_miss_reason(
                    float(row["practical_effect"]), result.threshold, float(row["p_adjusted"]), result.alpha
                )
            parts.append(text)
        return "; ".join(parts)

    interval = f"{1 - 2 * result.alpha:.0%}"
    if result.severity == ERROR:
        text = f"DRIFT {who}: {explain(result.breached_dimensions)}, beyond the margin and the noise floor"
        if result.near_miss_dimensions:
            text += f"; near miss: {explain(result.near_miss_dimensions, near=True)}"
        text += ". Blocking: do not migrate or promote."
    elif result.near_miss_dimensions:
        text = f"INCONCLUSIVE {who} (near miss): {explain(result.near_miss_dimensions, near=True)}."
        if result.unproven_dimensions:
            text += f" Equivalence not yet shown for {', '.join(result.unproven_dimensions)}."
    elif result.severity == WARN:
        text = (
            f"INCONCLUSIVE {who}: no drift, but the {interval} interval of "
            f"{', '.join(result.unproven_dimensions)} is not inside {wording.margin(result.threshold)}; "
            "more pairs would decide."
        )
    else:
        text = (
            f"EQUIVALENT {who}: {len(frame)} dimension(s) within {wording.margin(result.threshold)} "
            f"({interval} intervals, alpha {result.alpha:g})."
        )
    if result.notes:
        text += " Note: " + "; ".join(result.notes) + "."
    figures = {n: dimension_figure(by_name, n, result.threshold) for n in result.failing_dimensions}
    return replace(result, description=text, figures=figures)


def dimension_figure(by_name: pd.DataFrame, name: str, threshold: float) -> str:
    """`wording.figure` for one row of the dimensions frame (the distribution test has no effect)."""
    if name not in by_name.index or by_name.at[name, "kind"] == "distribution":
        return f"{name} (difference shown by the distribution test)"
    row = by_name.loc[name]
    return wording.figure(name, float(row["effect"]), threshold, float(row["p_adjusted"]))


def _alpha(report: dict[str, Any]) -> float:
    alpha = report.get("alpha")
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
        raise InvalidInputError(f"drift report has no valid 'alpha' in (0, 1): {alpha!r}")
    return float(alpha)


def _unique(items: Any) -> list[str]:
    return list(dict.fromkeys(items))
