"""`drift-pipeline audit ...`: verify the hash chain, export for regulatory review."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from drift_pipeline.cli.common import console, open_store, parse_datetime
from drift_pipeline.errors import IntegrityError
from drift_pipeline.persistence import audit as core

group = typer.Typer(help="Verify and export the tamper-evident audit log.", no_args_is_help=True)


@group.command("verify")
def verify() -> None:
    """Check every entry's hash and link; name the first entry that does not match."""
    result = core.verify(open_store())
    if not result.ok:
        raise IntegrityError(
            f"audit entry {result.first_bad_seq} does not match: {result.problem} ({result.checked} entries before it verified)"
        )
    console.print(f"[green]ok[/green]: {result.checked} entries, hash chain intact")


@group.command("export")
def export(
    fmt: Annotated[str, typer.Option("--format", help="csv, jsonl or parquet")] = "jsonl",
    tenant: Annotated[str | None, typer.Option(help="only this tenant's entries")] = None,
    since: Annotated[str | None, typer.Option(help="from this date/time (inclusive, UTC)")] = None,
    until: Annotated[str | None, typer.Option(help="up to this date/time (exclusive, UTC)")] = None,
    output: Annotated[Path | None, typer.Option(help="file to write (stdout for csv/jsonl when omitted)")] = None,
) -> None:
    """Export entries, filtered by tenant and time range."""
    rows = core.entries(
        open_store(), tenant_id=tenant, since=parse_datetime(since, "--since"), until=parse_datetime(until, "--until")
    )
    text = core.export(rows, fmt, output)
    if text is not None:
        print(text, end="")
    else:
        typer.echo(f"wrote {len(rows)} entries to {output}", err=True)


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="audit")
