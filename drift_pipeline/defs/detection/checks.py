"""Drift thresholds as Great Expectations checks on `drift_report`, per tenant partition (the day in the run tag).

For every agent's report against its *pinned* model, the GX suite built from the manifest (the tenant's
threshold plus the statistical verdicts, `expectations.py`) decides: a breach fails
`drift_within_threshold` (ERROR, blocking: nothing downstream acts on a drifted model), a dimension whose
equivalence within the margin is not yet shown (inconclusive, near misses included) fails
`equivalence_shown` (WARN, the run still succeeds, no incident). Candidate reports are migration readiness, not
incidents, so they are shown in metadata but never fail a check. Each result's metadata carries the
"alerts" the alert sensor sends.
"""

import json
from collections.abc import Iterator
from typing import Any

import dagster as dg
import pandas as pd
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)

from drift_pipeline.alerts.events import episode_key
from drift_pipeline.defs.partitions import run_day, tenant_ids, tenants
from drift_pipeline.defs.resources import DriftStore, ObjectStorage
from drift_pipeline.detection import expectation_suite, expectations, shadow


def _evaluate(
    report: pd.DataFrame, drift_store: DriftStore, object_storage: ObjectStorage
) -> list[expectations.DriftCheckResult]:
    if report.empty:
        return []
    store, objects = drift_store.get(), object_storage.get()
    pinned = report[report["role"] == shadow.PINNED]
    return [
        expectations.check_report_for_manifest(store, shadow.read_report(objects, uri), report_uri=uri)
        for uri in sorted(set(pinned["report_uri"]))
    ]


def _result(
    results: list[expectations.DriftCheckResult],
    report: pd.DataFrame,
    severity: str,
    tenant_id: str,
    day: str,
    check_name: str,
) -> dg.AssetCheckResult:
    # The ERROR check fails on drift; the WARN check on anything short of equivalence (drift included).
    failing = [r for r in results if r.severity == severity or (severity == expectation_suite.WARN and r.severity)]
    worst = max((r.observed_value for r in results), default=0.0)
    alert_list = [_alert(r, report) for r in failing if r.severity == severity]  # one alert per finding
    meta: dict[str, Any] = {
        "tenant_id": tenant_id,
        "day": day,
        "observed_value": float(worst),
        "thresholds": json.dumps({r.agent_id: r.threshold for r in results}),
        "agents_checked": len(results),
        "failing_agents": ", ".join(sorted(str(r.agent_id) for r in failing)) or "-",
        "alerts": dg.MetadataValue.json(alert_list),
        "reports": dg.MetadataValue.md(
            "\n".join(f"- {r.agent_id}: [{r.report_uri}]({r.report_uri})" for r in results) or "_none_"
        ),
    }
    for r in results:
        meta.update({f"{r.agent_id}/{k}": v for k, v in r.metadata().items() if k.startswith("effect/")})
    return dg.AssetCheckResult(
        asset_key="drift_report",
        check_name=check_name,
        passed=not failing,
        severity=dg.AssetCheckSeverity.ERROR if severity == expectation_suite.ERROR else dg.AssetCheckSeverity.WARN,
        description="; ".join(r.description for r in failing) or "every agent within its tenant's threshold",
        metadata=meta,
    )


def _alert(result: expectations.DriftCheckResult, report: pd.DataFrame) -> dict[str, Any]:
    rows = report[report["report_uri"] == result.report_uri]
    episode = episode_key(str(rows["model_id"].iloc[0]), str(rows["baseline_id"].iloc[0])) if len(rows) else "unknown"
    return {
        "tenant_id": result.tenant_id,
        "agent_id": result.agent_id,
        "episode": episode,
        "severity": result.severity,
        "summary": result.description,
        "report_uri": result.report_uri,
        "dimensions": result.failing_dimensions,
    }


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(
            "drift_within_threshold",
            asset="drift_report",
            partitions_def=tenants,
            blocking=True,
            description="ERROR when an agent's pinned model drifted beyond its tenant's threshold and noise floor (GX suite per tenant agent).",
        ),
        dg.AssetCheckSpec(
            "equivalence_shown",
            asset="drift_report",
            partitions_def=tenants,
            description="WARN while equivalence within the tenant's margin is not yet shown for an agent (inconclusive: too few pairs, or a near miss); not an incident.",
        ),
    ],
    ins={"drift_report": dg.AssetIn("drift_report")},
    can_subset=True,  # a shard run yields per-partition evaluations instead of the check outputs
)
def drift_checks(
    context: dg.AssetCheckExecutionContext,
    drift_report: pd.DataFrame,
    drift_store: DriftStore,
    object_storage: ObjectStorage,
) -> Iterator[dg.AssetCheckResult | dg.AssetCheckEvaluation]:
    day = run_day(context.instance, context.run)
    ids = tenant_ids(context)
    selected = {key.name for key in context.selected_asset_check_keys}
    # A shard run evaluates many tenant partitions in one step: each evaluation names its partition itself.
    targets = _materializations(context) if len(ids) > 1 else {}
    for tenant_id in ids:
        report = drift_report[drift_report["tenant_id"] == tenant_id] if len(drift_report) else drift_report
        results = _evaluate(report, drift_store, object_storage)
        for severity, name in ((expectation_suite.ERROR, ERROR_CHECK), (expectation_suite.WARN, WARN_CHECK)):
            if name not in selected:
                continue
            result = _result(results, report, severity, tenant_id, day, name)
            yield result if len(ids) == 1 else _for_partition(result, name, tenant_id, targets.get(tenant_id))


ERROR_CHECK, WARN_CHECK = "drift_within_threshold", "equivalence_shown"


def _for_partition(
    result: dg.AssetCheckResult,
    name: str,
    tenant_id: str,
    target: AssetCheckEvaluationTargetMaterializationData | None,
) -> dg.AssetCheckEvaluation:
    """The check result as an evaluation of one tenant partition (what a single-partition run records)."""
    return dg.AssetCheckEvaluation(
        asset_key=dg.AssetKey("drift_report"),
        check_name=name,
        passed=result.passed,
        metadata=result.metadata,
        target_materialization_data=target,
        severity=result.severity,
        description=result.description,
        blocking=name == ERROR_CHECK,
        partition=tenant_id,
    )


def _materializations(
    context: dg.AssetCheckExecutionContext,
) -> dict[str, AssetCheckEvaluationTargetMaterializationData]:
    """This run's `drift_report` materialization per tenant partition, for the UI's link from check to data."""
    records = context.instance.get_records_for_run(
        context.run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
    ).records
    found = {}
    for record in records:
        event = record.event_log_entry.dagster_event
        if event and event.asset_key == dg.AssetKey("drift_report") and event.partition:
            found[event.partition] = AssetCheckEvaluationTargetMaterializationData(
                storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
            )
    return found
