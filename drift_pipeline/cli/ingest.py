"""`drift-pipeline ingest PATH_OR_URL`: load existing logs into the traffic store, quarantining bad records."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from drift_pipeline.cli.common import console, open_store


def register(app: typer.Typer) -> None:
    """Add the `ingest` command to the main app."""
    app.command("ingest")(ingest)


def ingest(
    source: Annotated[str, typer.Argument(help="a local file or an s3:// URL")],
    fmt: Annotated[str, typer.Option("--format", help="jsonl, parquet, csv or llmdrift")] = "jsonl",
    tenant: Annotated[str | None, typer.Option(help="tenant of records that name none (required for llmdrift)")] = None,
    agent: Annotated[str | None, typer.Option(help="agent of records that name none (required for llmdrift)")] = None,
    check_agents: Annotated[
        bool, typer.Option("--check-agents/--no-check-agents", help="quarantine records of agents without a manifest")
    ] = True,
    as_json: Annotated[
        bool, typer.Option("--json", help="print one JSON line: read, accepted, quarantined, ...")
    ] = False,
) -> None:
    """Ingest JSONL, Parquet, CSV or LLMDrift CSV logs; every bad record is quarantined with its reason."""
    from drift_pipeline.persistence.objects import ObjectStore
    from drift_pipeline.traffic.ingest.run import ingest_with_store

    objects = ObjectStore.from_settings()
    store = open_store()  # also without --check-agents: the tenants' own PII patterns are scrubbed before writing
    kwargs = {"fmt": fmt, "tenant": tenant, "agent": agent, "check_agents": check_agents}
    if as_json:
        report = ingest_with_store(source, objects, store, **kwargs)
        print(json.dumps(report.to_dict(), sort_keys=False))
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(f"ingesting {source}", total=None)
        report = ingest_with_store(source, objects, store, on_progress=lambda n: progress.advance(task, n), **kwargs)
    _print_summary(report.to_dict(), objects.url)


def _print_summary(data: dict, storage_url: str) -> None:
    from rich.table import Table

    table = Table(title=f"ingested {data['source']} ({data['format']})", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("read", str(data["read"]))
    table.add_row(
        "[green]accepted[/green]", f"{data['accepted']} ({data['written']} new, {data['duplicates']} already stored)"
    )
    table.add_row("[yellow]quarantined[/yellow]", str(data["quarantined"]))
    for reason, count in data["reasons"].items():
        table.add_row(f"  {reason}", str(count))
    for tenant, count in data["tenants"].items():
        table.add_row(f"tenant {tenant}", str(count))
    if data["resumed_chunks"]:
        table.add_row("resumed chunks", f"{data['resumed_chunks']} of {data['chunks']}")
    console.print(table)
    console.print(f"stored under {storage_url}", style="dim")
