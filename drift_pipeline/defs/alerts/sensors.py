"""Alert sensors: after each run, the drift checks' findings become tenant-scoped incidents.

The rule (which failures alert, which incidents a passing check resolves) is `alerts.incidents`; these
sensors only read Dagster's check evaluations.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import dagster as dg
from dagster import DagsterEventType

from drift_pipeline.alerts.channels import load_channel_config
from drift_pipeline.alerts.incidents import AlertSummary, CheckEvaluation, alerts_for_checks
from drift_pipeline.alerts.router import AlertRouter
from drift_pipeline.defs.resources import DriftStore

ACTOR_ALERTS = "sensor:drift_check_alerts"
DRIFT_CHECKS = ("drift_within_threshold", "equivalence_shown")


def alerts_for_run(instance: dg.DagsterInstance, run_id: str, router: AlertRouter) -> AlertSummary:
    """Alert the failing drift checks of the run and resolve what its passing ones end (`alerts.incidents`)."""
    return alerts_for_checks(router, _drift_check_evaluations(instance, run_id), run_id=run_id)


def _drift_check_evaluations(instance: dg.DagsterInstance, run_id: str) -> Iterator[CheckEvaluation]:
    """The run's drift-check evaluations, read from the metadata `defs/checks.py` writes."""
    for record in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = record.dagster_event.event_specific_data  # type: ignore[union-attr]
        if evaluation.check_name not in DRIFT_CHECKS:
            continue
        meta = evaluation.metadata or {}
        entries = _json_value(meta.get("alerts")) or []
        tenant_id = _text_value(meta.get("tenant_id")) or next((e.get("tenant_id") for e in entries), None)
        if not tenant_id:
            continue
        thresholds = _json_value(meta.get("thresholds"))
        yield CheckEvaluation(
            check_name=evaluation.check_name,
            tenant_id=tenant_id,
            passed=evaluation.passed,
            alerts=entries,
            checked_agents=frozenset(thresholds) if isinstance(thresholds, dict) else None,
        )


def _json_value(value: Any) -> Any:
    raw = getattr(value, "value", value)
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return None
    return raw


def _text_value(value: Any) -> str | None:
    raw = getattr(value, "value", value)
    return str(raw) if raw else None


def _send_run_alerts(context: dg.RunStatusSensorContext, drift_store: DriftStore) -> None:
    # Returns nothing: a run status sensor that matched a run may not also return a SkipReason (Dagster
    # fails the tick, and the sensor then retries that run for ever, so no later run is ever alerted).
    store = drift_store.get()
    router = AlertRouter(store, load_channel_config(), actor=ACTOR_ALERTS)
    summary = alerts_for_run(context.instance, context.dagster_run.run_id, router)
    for line in summary.outcomes or ["no drift check ran in this run"]:
        context.log.info(line)


@dg.run_status_sensor(
    name="drift_check_alerts",
    run_status=dg.DagsterRunStatus.SUCCESS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After a successful run: tenant-scoped alerts for failed drift checks (a DRIFT on drift_within_threshold, ERROR, is a finding and does not fail its run; an INCONCLUSIVE WARN is not an incident), and resolution for agents whose checks passed.",
)
def drift_check_alerts(context: dg.RunStatusSensorContext, drift_store: DriftStore) -> None:
    _send_run_alerts(context, drift_store)


@dg.run_failure_sensor(
    name="drift_check_failure_alerts",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After a failed run (a step broke after the checks ran): the same tenant-scoped alerts for its failed drift checks, so a crash never swallows a finding.",
)
def drift_check_failure_alerts(context: dg.RunFailureSensorContext, drift_store: DriftStore) -> None:
    _send_run_alerts(context, drift_store)
