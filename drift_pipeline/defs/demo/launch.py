"""Launching the demo's runs the way production does: named jobs, created against the code location.

The demo loads the `drift_pipeline` code location as `make ui` and the daemon do (a managed code server
for `drift_pipeline.definitions`, the location name of `workspace.yaml`), creates each run from a
`RunRequest` with its remote origin, and hands it to the instance's run launcher (DefaultRunLauncher: a
process per run). The runs therefore show in the UI exactly like scheduled ones: on the Overview
timeline, on their job's page, re-executable from the UI.

Runs are launched directly rather than queued: the QueuedRunCoordinator needs the daemon, and a daemon
would also tick the sensors the demo drives step by step. The demo keeps the instance's run limit itself.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from drift_pipeline.errors import RefusedError

if TYPE_CHECKING:
    import dagster as dg
    from dagster._core.workspace.context import WorkspaceProcessContext

LOCATION = "drift_pipeline"  # the location name in workspace.yaml: runs must match what the UI loads
MODULE = "drift_pipeline.definitions"
MAX_IN_FLIGHT = 2  # dagster.yaml's max_concurrent_runs: a 2-core machine
RUN_TIMEOUT_S = 1800.0
POLL_S = 0.5
CHECK_FAILED = "DagsterAssetCheckFailedError"


@dataclass
class Finished:
    """A finished run: its id, status, check results and (when a step broke) the error that is not a finding."""

    run_id: str
    status: str
    checks: dict[str, bool] = field(default_factory=dict)
    error: str | None = None


@dataclass
class Launcher:
    """Creates runs of the code location's jobs from run requests and launches them on the instance."""

    instance: dg.DagsterInstance
    context: WorkspaceProcessContext

    def create(self, request: dg.RunRequest) -> str:
        """The run of `request` (job, partition, tags, optional asset subset) as the daemon would create it."""
        from dagster._core.definitions.selector import JobSubsetSelector

        from drift_pipeline.definitions import defs

        job_name = request.job_name or ""
        resolved = request.with_resolved_tags_and_config(defs.resolve_job_def(job_name), [], self.instance)
        location = self.context.create_request_context().get_code_location(LOCATION)
        (repository,) = location.get_repositories().values()
        selector = JobSubsetSelector(
            location_name=LOCATION,
            repository_name=repository.name,
            job_name=job_name,
            op_selection=None,
            asset_selection=resolved.asset_selection,
        )
        remote_job = location.get_job(selector)
        plan = location.get_execution_plan(
            remote_job, resolved.run_config, step_keys_to_execute=None, known_state=None, instance=self.instance
        )
        run = self.instance.create_run(
            job_name=job_name,
            run_id=None,
            run_config=resolved.run_config,
            resolved_op_selection=remote_job.resolved_op_selection,
            step_keys_to_execute=None,
            status=None,
            op_selection=None,
            root_run_id=None,
            parent_run_id=None,
            tags={**(remote_job.run_tags or {}), **resolved.tags},
            job_snapshot=remote_job.job_snapshot,
            execution_plan_snapshot=plan.execution_plan_snapshot,
            parent_job_snapshot=remote_job.parent_job_snapshot,
            remote_job_origin=remote_job.get_remote_origin(),
            job_code_origin=remote_job.get_python_origin(),
            asset_selection=frozenset(resolved.asset_selection) if resolved.asset_selection is not None else None,
            asset_check_selection=None,
            asset_graph=repository.asset_graph,
        )
        return run.run_id

    def run_all(self, requests: Sequence[dg.RunRequest]) -> list[Finished]:
        """Launch every request (at most MAX_IN_FLIGHT at a time) and wait for all of them, in request order."""
        pending = [self.create(r) for r in requests]  # all visible (NOT_STARTED) before the first one starts
        order = list(pending)
        try:
            done = self._launch_and_wait(pending)
        except BaseException:
            # Stopped (Ctrl-C, an error): runs never launched would sit in the UI as "not started" for ever.
            for run_id in pending:
                run = self.instance.get_run_by_id(run_id)
                if run is not None:
                    self.instance.report_run_canceled(run, message="the demo stopped before launching this run")
            raise
        return [done[run_id] for run_id in order]

    def _launch_and_wait(self, pending: list[str]) -> dict[str, Finished]:
        in_flight: list[str] = []
        done: dict[str, Finished] = {}
        deadline = time.monotonic() + RUN_TIMEOUT_S * max(1, len(pending))
        while pending or in_flight:
            while pending and len(in_flight) < MAX_IN_FLIGHT:
                run_id = pending[0]
                self.instance.launch_run(run_id, self.context.create_request_context())
                in_flight.append(pending.pop(0))
            time.sleep(POLL_S)
            for run_id in list(in_flight):
                run = self.instance.get_run_by_id(run_id)
                if run is not None and run.is_finished:
                    in_flight.remove(run_id)
                    done[run_id] = self.finished(run_id)
            if time.monotonic() > deadline:
                raise RefusedError(f"Dagster runs {', '.join(in_flight)} did not finish in time")
        return done

    def finished(self, run_id: str) -> Finished:
        """Read a finished run's outcome from the event log, like the UI does."""
        import dagster as dg

        run = self.instance.get_run_by_id(run_id)
        result = Finished(run_id=run_id, status=run.status.value if run else "UNKNOWN")
        for record in self._events(run_id, dg.DagsterEventType.ASSET_CHECK_EVALUATION):
            evaluation = record.event_log_entry.dagster_event.event_specific_data
            result.checks[f"{evaluation.check_name}[{evaluation.partition}]"] = evaluation.passed
        for record in self._events(run_id, dg.DagsterEventType.STEP_FAILURE):
            event = record.event_log_entry.dagster_event
            error = event.step_failure_data.error
            if error is None or CHECK_FAILED not in (error.cls_name or ""):  # a failed drift check is a finding
                result.error = f"{event.step_key}: {error.message.strip() if error else 'unknown error'}"
                return result
        if result.status == dg.DagsterRunStatus.FAILURE.value and not self._check_failed(run_id):
            failures = self._events(run_id, dg.DagsterEventType.RUN_FAILURE)
            message = failures[-1].event_log_entry.dagster_event.message if failures else None
            result.error = message or "the run failed before any step ran"
        return result

    def _check_failed(self, run_id: str) -> bool:
        import dagster as dg

        return any(
            CHECK_FAILED in (r.event_log_entry.dagster_event.step_failure_data.error.cls_name or "")
            for r in self._events(run_id, dg.DagsterEventType.STEP_FAILURE)
            if r.event_log_entry.dagster_event.step_failure_data.error
        )

    def _events(self, run_id: str, event_type: Any) -> list[Any]:
        return list(self.instance.get_records_for_run(run_id, of_type=event_type).records)


@contextmanager
def code_location(instance: dg.DagsterInstance) -> Iterator[Launcher]:
    """The `drift_pipeline` code location served by a managed code server for the duration of the block."""
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import ModuleTarget

    target = ModuleTarget(module_name=MODULE, attribute=None, working_directory=None, location_name=LOCATION)
    # The code server's start/stop lines would interleave with the demo's story; its warnings still show.
    with WorkspaceProcessContext(instance, target, code_server_log_level="WARNING") as context:
        errors = context.create_request_context().get_code_location_error(LOCATION)
        if errors is not None:
            raise RefusedError(f"the code location {LOCATION} does not load: {errors.message.strip()}")
        yield Launcher(instance, context)
