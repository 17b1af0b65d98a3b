"""`drift-pipeline migrate ...`, `rollback`, `scan-aliases`: migration steps and the way back."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from drift_pipeline.cli.common import actor, console, open_store, parse_date, print_json
from drift_pipeline.errors import InvalidInputError, RefusedError
from drift_pipeline.migration import approvals, forced, promotion, review, reviewers, states
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
ReportFile = Annotated[
    Path | None,
    typer.Option(help="a drift report file from elsewhere: attached as 'external, unverified', never relied on"),
]
ReviewerName = Annotated[str | None, typer.Option(help="your registered reviewer name (`reviewers list`)")]
KeyFile = Annotated[Path | None, typer.Option(help="your Ed25519 private key (PEM), from `reviewers add`")]
Expect = Annotated[
    int | None, typer.Option("--expect-version", help="refuse if the migration changed since you read this version")
]


@migrate.command("propose")
def propose(
    tenant_id: Annotated[str, typer.Argument(help="tenant")],
    agent_id: Annotated[str, typer.Argument(help="agent")],
    model_id: Annotated[str, typer.Argument(help="candidate: an exact registered version")],
    reason: Reason = "",
    report: ReportFile = None,
) -> None:
    """Open a migration of the agent's current pin to MODEL_ID (then `migrate stage` replays it)."""
    store = open_store()
    m = review.propose(store, tenant_id, agent_id, model_id, actor=actor(), reason=reason)
    console.print(
        f"migration [bold]{m.id}[/bold] proposed: {tenant_id}/{agent_id} {m.from_model_id} -> {m.to_model_id}"
    )
    if report is not None:
        _attach(store, m.id, report)


@migrate.command("stage")
def stage(
    migration_id: MigrationId,
    report: ReportFile = None,
    expect_version: Expect = None,
) -> None:
    """Run the staging replay of the workflow suite against the candidate; its report is stored with its hash.

    With --report the file is only attached (external, unverified) and no replay runs.
    """
    store = open_store()
    if report is not None:
        _attach(store, migration_id, report)
        return
    objects = ObjectStore.from_settings()
    runner = _replay_runner(store, objects)
    _print_state(
        review.run_staging(store, migration_id, runner, actor=actor(), expected_version=expect_version, objects=objects)
    )


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
    reviewer: ReviewerName = None,
    key: KeyFile = None,
    reason: Annotated[str, typer.Option(help="why (signed with the approval; required with --key)")] = "",
    approval: Annotated[
        Path | None, typer.Option(help="a signed approval from `migrate sign-approval` (instead of --reviewer/--key)")
    ] = None,
    expect_version: Expect = None,
) -> None:
    """Approve after review with a signed statement: sign here (--reviewer NAME --key FILE --reason ...) or
    hand in one signed elsewhere (--approval FILE). Regulated tenants: not by the proposer."""
    store = open_store()
    if approval is not None:
        if reviewer or key:
            raise InvalidInputError("give either --approval FILE or --reviewer and --key, not both")
        signed = approvals.load_signed(approval)
    else:
        signed = _sign(store, migration_id, reviewer, key, reason)
    objects = ObjectStore.from_settings()
    _print_state(review.approve(store, migration_id, signed, expected_version=expect_version, objects=objects))


@migrate.command("sign-approval")
def sign_approval(
    migration_id: MigrationId,
    reviewer: ReviewerName = None,
    key: KeyFile = None,
    reason: Annotated[str, typer.Option(help="why (required; part of what is signed)")] = "",
    reject: Annotated[bool, typer.Option("--reject", help="sign a rejection instead (for the Dagster job)")] = False,
    output: Annotated[Path | None, typer.Option(help="write the signed approval here (default: stdout)")] = None,
) -> None:
    """Sign an approval of the migration's staged report without applying it (for `migrate approve
    --approval FILE` or the Dagster approval job's `signed_approval` field)."""
    signed = _sign(open_store(), migration_id, reviewer, key, reason, decision="rejected" if reject else "approved")
    text = json.dumps(signed, indent=2, sort_keys=True)
    if output is None:
        print(text)
        return
    output.write_text(text + "\n", encoding="utf-8")
    console.print(
        f"signed approval of migration {migration_id} by {signed['statement']['reviewer']} written to {output}"
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
        str | None,
        typer.Option(
            help="use this existing baseline of the candidate (same tenant agent) instead of snapshotting one"
        ),
    ] = None,
    reason: Reason = "",
    expect_version: Expect = None,
) -> None:
    """Pin the candidate in a new manifest revision with its new baseline."""
    store = open_store()
    objects = ObjectStore.from_settings()
    creator = (lambda _manifest, _migration: baseline_id) if baseline_id else _baseline_creator(store, objects)
    _print_state(
        promotion.promote(
            store, migration_id, creator, actor=actor(), reason=reason, expected_version=expect_version, objects=objects
        )
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


def _attach(store: Store, migration_id: int, path: Path) -> None:
    found = review.attach(store, migration_id, path, actor=actor())
    console.print(
        f"{path.name} attached to migration {migration_id} as [bold]{found['origin']}[/bold] "
        f"(sha256 {found['sha256'][:16]}...): shown to reviewers, never approves or promotes; "
        f"`migrate stage {migration_id}` runs the staging replay"
    )


def _sign(
    store: Store, migration_id: int, reviewer: str | None, key: Path | None, reason: str, decision: str = "approved"
) -> dict[str, Any]:
    """The reviewer's signed statement over the migration as it stands in review (its stored staging report)."""
    if not reviewer or key is None:
        raise InvalidInputError("a signed approval needs --reviewer NAME and --key FILE (or --approval FILE)")
    private = reviewers.load_private_key(key)
    registered = reviewers.get(store, reviewer)
    if reviewers.key_id(private.public_key()) != registered.key_id:
        raise RefusedError(f"{key} is not the key registered for reviewer {registered.name!r}")
    info = states.get(store, migration_id)
    staged = review.verified_staging(store, info)
    body = approvals.statement(
        review.subject(info, staged.sha256), decision=decision, reviewer=registered.name, reason=reason
    )
    return approvals.sign(body, private)


def _replay_runner(store: Store, objects: ObjectStore) -> review.StagingRunner:
    """Replay the agent's workflow suite against the candidate now (the offline model runs in-process)."""
    from drift_pipeline.migration import staging

    return staging.ReplayStagingRunner(store, objects, progress=True)


def _baseline_creator(store: Store, objects: ObjectStore) -> promotion.BaselineCreator:
    """Snapshot the candidate's baseline on the staging suite now."""
    from drift_pipeline.migration import staging

    return staging.StagingBaselineCreator(store, objects, actor=actor(), progress=True)


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
