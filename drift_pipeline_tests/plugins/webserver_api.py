"""What a deployment test asks the Dagster webserver, as raw GraphQL (the client has no method for these).

Each helper takes a `DagsterDeployment` and returns plain dicts; a GraphQL error union becomes an
AssertionError with its message, so a failing test says what the webserver answered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drift_pipeline_tests.plugins.deployment import LOCATION, REPOSITORY, DagsterDeployment

TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}

_SENSOR = """
query Sensor($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    __typename
    ... on Sensor { id sensorState { status typeSpecificData { ... on SensorData { lastCursor } }
                                     ticks(limit: 50) { status runIds error { message } } } }
    ... on PythonError { message }
  }
}"""
_START_SENSOR = """
mutation Start($selector: SensorSelector!) {
  startSensor(sensorSelector: $selector) {
    __typename ... on Sensor { sensorState { status } } ... on PythonError { message }
  }
}"""
_STOP_SENSOR = """
mutation Stop($id: String!) {
  stopSensor(id: $id) {
    __typename ... on StopSensorMutationResult { instigationState { status } } ... on PythonError { message }
  }
}"""
_SCHEDULE = """
query Schedule($selector: ScheduleSelector!) {
  scheduleOrError(scheduleSelector: $selector) {
    __typename ... on Schedule { id scheduleState { status } } ... on PythonError { message }
  }
}"""
_STOP_SCHEDULE = """
mutation Stop($id: String!) {
  stopRunningSchedule(id: $id) {
    __typename ... on ScheduleStateResult { scheduleState { status } } ... on PythonError { message }
  }
}"""
_RUNS = """
query Runs($filter: RunsFilter) {
  runsOrError(filter: $filter) {
    __typename
    ... on Runs { results { runId jobName status tags { key value } } }
    ... on PythonError { message }
  }
}"""
_EVENTS = """
query Events($runId: ID!, $after: String) {
  logsForRun(runId: $runId, afterCursor: $after) {
    __typename
    ... on EventConnection { cursor hasMore events { __typename ... on MessageEvent { message } } }
    ... on PythonError { message }
  }
}"""
_CHECKS = """
query Checks($check: String!, $asset: AssetKeyInput!) {
  assetCheckExecutions(assetKey: $asset, checkName: $check, limit: 50) {
    runId status evaluation { success severity partition description }
  }
}"""


@dataclass(frozen=True)
class Run:
    run_id: str
    job: str
    status: str
    tags: dict[str, str]


def _ok(data: dict[str, Any], field: str, typename: str) -> dict[str, Any]:
    value = data[field]
    assert value["__typename"] == typename, f"{field}: {value}"
    return value


def _sensor_selector(name: str) -> dict[str, str]:
    return {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "sensorName": name}


def sensor(deployment: DagsterDeployment, name: str) -> dict[str, Any]:
    """The sensor's id, status, cursor and recent ticks (newest first)."""
    return _ok(deployment.query(_SENSOR, {"selector": _sensor_selector(name)}), "sensorOrError", "Sensor")


def sensor_cursor(deployment: DagsterDeployment, name: str) -> str | None:
    data = sensor(deployment, name)["sensorState"]["typeSpecificData"] or {}
    return data.get("lastCursor")


def start_sensor(deployment: DagsterDeployment, name: str) -> None:
    result = deployment.query(_START_SENSOR, {"selector": _sensor_selector(name)})
    assert _ok(result, "startSensor", "Sensor")["sensorState"]["status"] == "RUNNING"


def stop_sensor(deployment: DagsterDeployment, name: str) -> None:
    result = deployment.query(_STOP_SENSOR, {"id": sensor(deployment, name)["id"]})
    state = _ok(result, "stopSensor", "StopSensorMutationResult")["instigationState"]
    assert state["status"] == "STOPPED"


def stop_schedule(deployment: DagsterDeployment, name: str) -> None:
    selector = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "scheduleName": name}
    found = _ok(deployment.query(_SCHEDULE, {"selector": selector}), "scheduleOrError", "Schedule")
    result = deployment.query(_STOP_SCHEDULE, {"id": found["id"]})
    assert _ok(result, "stopRunningSchedule", "ScheduleStateResult")["scheduleState"]["status"] == "STOPPED"


def runs(deployment: DagsterDeployment, job: str | None = None) -> list[Run]:
    """Every run of `job` (all jobs when None), newest first."""
    result = deployment.query(_RUNS, {"filter": {"pipelineName": job} if job else {}})
    return [
        Run(r["runId"], r["jobName"], r["status"], {t["key"]: t["value"] for t in r["tags"]})
        for r in _ok(result, "runsOrError", "Runs")["results"]
    ]


def run_events(deployment: DagsterDeployment, run_id: str) -> list[str]:
    """The run's event types (`RunEnqueuedEvent`, `RunStartEvent`, ...) in order."""
    names: list[str] = []
    after = None
    while True:
        page = _ok(deployment.query(_EVENTS, {"runId": run_id, "after": after}), "logsForRun", "EventConnection")
        names += [e["__typename"] for e in page["events"]]
        if not page["hasMore"]:
            return names
        after = page["cursor"]


def check_evaluations(deployment: DagsterDeployment, asset: str, check: str, run_id: str) -> list[dict[str, Any]]:
    """The evaluations of `check` on `asset` made by the run."""
    result = deployment.query(_CHECKS, {"check": check, "asset": {"path": [asset]}})
    return [e["evaluation"] for e in result["assetCheckExecutions"] if e["runId"] == run_id and e["evaluation"]]
