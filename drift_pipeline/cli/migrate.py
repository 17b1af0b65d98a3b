"""`drift-pipeline migrate ...`, `rollback`, `evidence`, `scan-aliases`: migration steps and the way back."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from drift_pipeline.cli.common import actor, console, open_store, parse_date, parse_datetime, print_json
from drift_pipeline.errors import InvalidInputError
from drift_pipeline.migration import evidence, forced, promotion, review, states
from drift_pipeline.migration.rollback import rollback
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.objects import ObjectStore
from drift_pipeline.versioning import alias_scan

migrate = typer.Typer(
    help="Move a tenant agent to a new model version through staging, review, canary and promotion.",
    no_args_is_help=True,
)

MigrationId = Annotated[int, typer.Argument(help="migration id (see `migrate status`)")]
Reason = Annotated[str, typer.Option(help="why, for the audit log")]
Expect = Annotated[
    int | None, typer.Option("--expect-version", help="refuse if the migration changed since you read this version")
]


@migrate.command("propose")
def propose(
    tenant_id: Annotated[str, typer.Argument(help="tenant")],
    agent_id: Annotated[str, typer.Argument(help="agent")],
    model_id: Annotated[str, typer.Argument(help="candidate: an exact registered version")],
    reason: Reason = "",
    report: Annotated[
        Path | None, typer.Option(help="drift report of the candidate's staging replay: stage at once")
    ] = None,
) -> None:
    """Open a migration of the agent's current pin to MODEL_ID."""
    store = open_store()
    m = review.propose(store, tenant_id, agent_id, model_id, actor=actor(), reason=reason)
    console.print(
        f"migration [bold]{m.id}[/bold] proposed: {tenant_id}/{agent_id} {m.from_model_id} -> {m.to_model_id}"
    )
    if report is not None:
        _print_state(review.run_staging(store, m.id, _report_runner(report), actor=actor()))


@migrate.command("stage")
def stage(
    migration_id: MigrationId,
    report: Annotated[
        Path | None,
        typer.Option(help="drift report (JSON) of the candidate's replay instead of replaying the suite now"),
    ] = None,
    expect_version: Expect = None,
) -> None:
    """Run (or record) the staging replay of the workflow suite against the candidate."""
    store = open_store()
    runner = _report_runner(report) if report else _replay_runner(store)
    _print_state(review.run_staging(store, migration_id, runner, actor=actor(), expected_version=expect_version))


@migrate.command("status")
def status(
    tenant_id: Annotated[str | None, typer.Argument(help="tenant (all when omitted)")] = None,
    agent_id: Annotated[str | None, typer.Argument(help="agent")] = None,
    show_all: Annotated[bool, typer.Option("--all", help="include closed migrations")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """List migrations with their state, readiness and allowed next steps."""
    rows = states.list_migrations(open_store(), tenant_id, agent_id, open_only=not show_all)
    if as_json:
        print_json([m.to_dict() for m in rows])
        return
    table = Table("id", "tenant/agent", "from -> to", "state", "share", "readiness", "next", "ver", title="Migrations")
    for m in rows:
        table.add_row(
            str(m.id),
            f"{m.tenant_id}/{m.agent_id}",
            f"{m.from_model_id} -> {m.to_model_id}",
            m.state,
            f"{m.canary_share:.0%}" if m.state == "canary" else "",
            m.readiness,
            ", ".join(m.next_steps),
            str(m.version),
        )
    console.print(table if rows else "no migrations" + ("" if show_all else " open (--all shows closed ones)"))


@migrate.command("approve")
def approve(
    migration_id: MigrationId,
    reason: Annotated[str, typer.Option(help="why (required)")],
    expect_version: Expect = None,
) -> None:
    """Approve after review; you ($DRIFT_PIPELINE_ACTOR) are recorded as the reviewer."""
    _print_state(
        review.approve(open_store(), migration_id, reviewer=actor(), reason=reason, expected_version=expect_version)
    )


@migrate.command("reject")
def reject(
    migration_id: MigrationId,
    reason: Annotated[str, typer.Option(help="why (required)")],
    expect_version: Expect = None,
) -> None:
    """Reject after review."""
    _print_state(
        review.reject(open_store(), migration_id, reviewer=actor(), reason=reason, expected_version=expect_version)
    )


@migrate.command("canary")
def canary(
    migration_id: MigrationId,
    share: Annotated[float, typer.Option(help="share of sessions routed to the candidate, in (0, 1]; only grows")],
    reason: Reason = "",
    expect_version: Expect = None,
) -> None:
    """Start the canary, or raise its share."""
    _print_state(
        promotion.start_canary(
            open_store(), migration_id, share, actor=actor(), reason=reason, expected_version=expect_version
        )
    )


@migrate.command("promote")
def promote(
    migration_id: MigrationId,
    baseline_id: Annotated[
        str | None, typer.Option(help="use this already built baseline of the candidate instead of snapshotting one")
    ] = None,
    reason: Reason = "",
    expect_version: Expect = None,
) -> None:
    """Pin the candidate in a new manifest revision with its new baseline."""
    store = open_store()
    creator = (lambda _manifest, _migration: baseline_id) if baseline_id else _baseline_creator(store)
    _print_state(
        promotion.promote(store, migration_id, creator, actor=actor(), reason=reason, expected_version=expect_version)
    )


@migrate.command("abort")
def abort(
    migration_id: MigrationId,
    reason: Annotated[str, typer.Option(help="why (required)")],
    expect_version: Expect = None,
) -> None:
    """Abort at any open step (an active canary stops routing at once)."""
    _print_state(
        promotion.abort(open_store(), migration_id, actor=actor(), reason=reason, expected_version=expect_version)
    )


@migrate.command("readiness")
def readiness(
    on: Annotated[str | None, typer.Option("--date", help="as of (YYYY-MM-DD, default today)")] = None,
    horizon: Annotated[int, typer.Option(help="days ahead to look for sunsets")] = 90,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Agents pinned to versions past or near their sunset, with their migration readiness."""
    rows = forced.readiness_report(open_store(), parse_date(on, "--date") or date.today(), horizon_days=horizon)
    if as_json:
        print_json(rows)
        return
    table = Table(
        "tenant/agent", "model", "sunset", "days left", "successor", "migration", "readiness", title="Readiness"
    )
    for r in rows:
        days = r["days_left"]
        table.add_row(
            f"{r['tenant_id']}/{r['agent_id']}",
            r["model_id"],
            r["sunset_date"],
            f"[red]{days}[/red]" if days < 0 else str(days),
            r["successor_id"] or "-",
            f"{r['migration_id']} ({r['migration_state']})" if r["migration_id"] else "-",
            r["readiness"],
        )
    console.print(table)


def rollback_cmd(
    tenant_id: Annotated[str, typer.Argument(help="tenant")],
    agent_id: Annotated[str, typer.Argument(help="agent")],
    to: Annotated[
        int | None, typer.Option("--to", help="manifest revision to restore (default: last known-good)")
    ] = None,
    reason: Reason = "",
) -> None:
    """Restore the last known-good pin and baseline; stops an in-flight canary. Idempotent."""
    result = rollback(open_store(), tenant_id, agent_id, actor=actor(), to_revision=to, reason=reason)
    console.print(("[green]done[/green] " if result.changed else "[yellow]no-op[/yellow] ") + result.message)


def evidence_cmd(
    tenant_id: Annotated[str, typer.Argument(help="tenant")],
    agent_id: Annotated[str, typer.Argument(help="agent")],
    since: Annotated[str, typer.Option(help="the validation date to compare with (YYYY-MM-DD or ISO time)")],
    report: Annotated[
        Path | None, typer.Option(help="a drift report JSON to use instead of the newest stored one")
    ] = None,
    max_age_days: Annotated[int, typer.Option(help="a stored report older than this is not today's evidence")] = 2,
    output: Annotated[Path | None, typer.Option(help="write the evidence JSON here (default: stdout)")] = None,
    html: Annotated[Path | None, typer.Option(help="also write an HTML report here")] = None,
) -> None:
    """Is the model on this tenant's data today equivalent to the one validated then? (JSON + HTML)

    Without --report the newest stored drift report of the pinned model is used; only a current,
    equivalent one answers `equivalent`.
    """
    from drift_pipeline.detection import shadow
    from drift_pipeline.persistence.objects import ObjectStore

    when = parse_datetime(since, "--since")
    assert when is not None
    if max_age_days < 1:
        raise InvalidInputError("--max-age-days must be at least 1")
    objects = ObjectStore.from_settings()
    data = evidence.build(
        open_store(),
        tenant_id,
        agent_id,
        when,
        report=evidence.load_report(report) if report else None,
        find_report=lambda t, a, m: shadow.latest_report(objects, t, a, m),
        max_age=timedelta(days=max_age_days),
    )
    if html is not None:
        evidence.write_html(data, html)
    if output is None:
        print(json.dumps(data, indent=2, sort_keys=True, default=str))
        return
    evidence.write_json(data, output)
    answer = data["answer"]
    console.print(f"[bold]{answer['verdict']}[/bold]: {answer['summary']}")
    for note in answer["notes"]:
        console.print(f"[yellow]note:[/yellow] {note}")
    console.print(f"evidence written to {output}" + (f" and {html}" if html else ""))


def scan_aliases(
    path: Annotated[Path, typer.Argument(help="file or directory of Python code")],
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    use_registry: Annotated[
        bool, typer.Option("--registry/--no-registry", help="also flag aliases registered in the store")
    ] = True,
) -> None:
    """List model calls that name an alias instead of an exact version. Exit 1 when any is found (for CI)."""
    aliases, exact = _registry_names() if use_registry else ({}, set())
    result = alias_scan.scan(path, registry_aliases=aliases, exact_versions=exact)
    if as_json:
        print_json(result.to_dict())
    else:
        _print_scan(result)
    if result.findings:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(migrate, name="migrate")
    app.command("rollback")(rollback_cmd)
    app.command("evidence")(evidence_cmd)
    app.command("scan-aliases")(scan_aliases)


# ------------------------------------------------------------------------------------------- helpers


def _print_state(m: states.MigrationInfo) -> None:
    extra = ""
    if m.state == "canary":
        extra = f" ({m.canary_share:.0%} of sessions on {m.to_model_id})"
    elif m.state in ("review", "approved") and "staging" in m.details:
        failed = [c["name"] for c in m.details["staging"]["checks"] if not c["passed"]]
        extra = " (staging passed)" if not failed else f" (staging failed: {', '.join(failed)})"
    nxt = ", ".join(m.next_steps) or "none"
    console.print(f"migration [bold]{m.id}[/bold] is [bold]{m.state}[/bold]{extra}; next: {nxt}")


def _report_runner(path: Path) -> review.StagingRunner:
    report = evidence.load_report(path)

    def runner(manifest: Any, candidate: Any) -> dict[str, Any]:
        if report.get("candidate") not in (None, candidate.model_id):
            raise InvalidInputError(
                f"{path} is a report for {report.get('candidate')!r}, not the candidate {candidate.model_id!r}"
            )
        return report

    return runner


def _replay_runner(store: Store) -> review.StagingRunner:
    """Replay the agent's workflow suite against the candidate now (the offline model runs in-process)."""
    from drift_pipeline.migration import staging

    return staging.ReplayStagingRunner(store, ObjectStore.from_settings(), progress=True)


def _baseline_creator(store: Store) -> promotion.BaselineCreator:
    """Snapshot the candidate's baseline on the staging suite now."""
    from drift_pipeline.migration import staging

    return staging.StagingBaselineCreator(store, ObjectStore.from_settings(), actor=actor(), progress=True)


def _registry_names() -> tuple[dict[str, str], set[str]]:
    from drift_pipeline.versioning import registry

    store = open_store()
    return registry.aliases(store), {v.model_id for v in registry.list_versions(store)}


def _print_scan(result: alias_scan.ScanResult) -> None:
    if result.findings:
        table = Table("file:line", "call", "model", "why", "resolves to", title="Model calls by alias")
        for f in result.findings:
            table.add_row(f"{f.path}:{f.line}", f.call, f.model, f.kind, f.resolves_to or "")
        console.print(table)
    console.print(
        f"{len(result.findings)} alias call(s) in {result.files_scanned} file(s); {result.model_calls} model call(s) seen, "
        f"{len(result.dynamic)} with a model that is not a literal"
    )
    for s in result.skipped:
        console.print(f"[yellow]skipped[/yellow] {s['path']}: {s['reason']}")
