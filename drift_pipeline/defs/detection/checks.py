"""Drift thresholds as Great Expectations checks on `drift_report`, per tenant partition (the day in the run tag).

For every agent's report against its *pinned* model, the GX suite built from the manifest (the tenant's
threshold plus the statistical verdicts, `expectations.py`) decides: a drift fails
`drift_within_threshold` (severity ERROR, red), a dimension whose equivalence within the margin is not yet
shown (inconclusive, near misses included) fails `equivalence_shown` (WARN, amber; not an incident).
Candidate reports are migration readiness, not incidents, so they are shown in metadata but never fail a check.

A drift is an expected finding, not a crash: the ERROR check does not fail the run (no step failure, no stack
trace). The run is tagged instead (`drift_pipeline/verdict`, and `drift_pipeline/blocked_by` with the figures)
and logs one line. Nothing downstream acts on a drifted model because the gates that would (staging review,
canary, promotion) judge the stored reports themselves (`migration/review.py`), not Dagster's run status.
Each result's metadata carries the "alerts" the alert sensor sends, and links (http) to the HTML reports.
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
from drift_pipeline.defs.report_links import report_links
from drift_pipeline.defs.resources import DriftStore, ObjectStorage
from drift_pipeline.detection import expectation_suite, expectations, shadow, wording

VERDICT_TAG = "drift_pipeline/verdict"  # DRIFT | INCONCLUSIVE | EQUIVALENT: filter the Runs page by it
BLOCKED_TAG = "drift_pipeline/blocked_by"  # "drift_within_threshold for acme/extractor: similarity -0.747 (...)"


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
    links: dict[str, str],
) -> dg.AssetCheckResult:
    # The ERROR check fails on drift; the WARN check on anything short of equivalence (drift included).
    failing = [r for r in results if r.severity == severity or (severity == expectation_suite.WARN and r.severity)]
    worst = max((r.observed_value for r in results), default=0.0)
    alert_list = [_alert(r, report) for r in failing if r.severity == severity]  # one alert per finding
    linked = [(str(r.agent_id), links[r.report_uri]) for r in results if r.report_uri in links]
    meta: dict[str, Any] = {
        "tenant_id": tenant_id,
        "day": day,
        "verdict": tenant_verdict(results),  # the same on both checks: the tenant's worst agent
        "largest_significant_effect": wording.metric(worst),
        "how_to_read": dg.MetadataValue.text(wording.OBSERVED_VALUE),
        "thresholds": json.dumps({r.agent_id: r.threshold for r in results}),
        "agents_checked": len(results),
        "failing_agents": ", ".join(sorted(str(r.agent_id) for r in failing)) or "-",
        "alerts": dg.MetadataValue.json(alert_list),
        "reports": dg.MetadataValue.md("\n".join(f"- {a}: [HTML report]({url})" for a, url in linked) or "_none_"),
        **{f"report/{a}": dg.MetadataValue.url(url) for a, url in linked},
    }
    for r in results:
        meta.update(
            {
                f"effect/{tenant_id}/{r.agent_id}/{shadow.PINNED}/{k[len('effect/') :]}": v
                for k, v in r.metadata().items()
                if k.startswith("effect/")
            }
        )
    return dg.AssetCheckResult(
        asset_key="drift_report",
        check_name=check_name,
        passed=not failing,
        severity=dg.AssetCheckSeverity.ERROR if severity == expectation_suite.ERROR else dg.AssetCheckSeverity.WARN,
        description="; ".join(r.description for r in failing) or _passing_description(results, tenant_id),
        metadata=meta,
    )


def _passing_description(results: list[expectations.DriftCheckResult], tenant_id: str) -> str:
    if not results:
        return f"no drift report of a pinned model to check for {tenant_id}"
    verdicts = ", ".join(f"{r.agent_id} {wording.verdict_word(r.severity)}" for r in results)
    return f"no DRIFT for {tenant_id}: {verdicts}"


def tenant_verdict(results: list[expectations.DriftCheckResult]) -> str:
    """DRIFT if any agent drifted, INCONCLUSIVE if any is not yet equivalent, EQUIVALENT, or "no report"."""
    if not results:
        return "no report"
    severities = {r.severity for r in results}
    error, warn = expectation_suite.ERROR, expectation_suite.WARN
    return wording.verdict_word(error if error in severities else warn if warn in severities else None)


def block_message(results: list[expectations.DriftCheckResult]) -> str | None:
    """The run-level message of a drift block, or None: one clause per drifted agent, with its figures."""
    clauses = [
        wording.blocked(
            "drift_within_threshold",
            f"{r.tenant_id}/{r.agent_id}",
            [r.figures[d] for d in r.breached_dimensions if d in r.figures],
        )
        for r in results
        if r.blocking
    ]
    return " | ".join(clauses) or None


def _tag_run(context: dg.AssetCheckExecutionContext, results: list[expectations.DriftCheckResult]) -> None:
    """Say on the run what the checks found: a verdict tag, and for a drift the block with its figures."""
    if not results:
        return
    tags = {VERDICT_TAG: tenant_verdict(results)}
    message = block_message(results)
    if message:
        tags[BLOCKED_TAG] = message
        # An expected finding, told once and plainly: migration and promotion refuse this model until it clears.
        context.log.warning(f"{message}. Not a crash: do not migrate or promote; see the check and its report.")
    context.instance.add_run_tags(context.run.run_id, tags)


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
            description="DRIFT (severity ERROR, red) when an agent's pinned model drifted beyond its tenant's margin and noise floor (GX suite per tenant agent); the run is tagged drift_pipeline/blocked_by instead of failing.",
        ),
        dg.AssetCheckSpec(
            "equivalence_shown",
            asset="drift_report",
            partitions_def=tenants,
            description="INCONCLUSIVE (severity WARN, amber) while equivalence within the tenant's margin is not yet shown for an agent (too few pairs, or a near miss); not an incident.",
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
    everyone: list[expectations.DriftCheckResult] = []
    for tenant_id in ids:
        report = drift_report[drift_report["tenant_id"] == tenant_id] if len(drift_report) else drift_report
        results = _evaluate(report, drift_store, object_storage)
        everyone += results
        links = report_links(object_storage.get(), [r.report_uri for r in results if r.report_uri], context.log)
        for severity, name in ((expectation_suite.ERROR, ERROR_CHECK), (expectation_suite.WARN, WARN_CHECK)):
            if name not in selected:
                continue
            result = _result(results, report, severity, tenant_id, day, name, links)
            yield result if len(ids) == 1 else _for_partition(result, name, tenant_id, targets.get(tenant_id))
    _tag_run(context, everyone)


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
        blocking=False,  # a drift tags the run (drift_pipeline/blocked_by); it is not a crash
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
