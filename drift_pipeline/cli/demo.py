"""`drift-pipeline demo`: the main job on the embedded default (SQLite, local files, offline models)."""

from __future__ import annotations

import time

import typer

from drift_pipeline.cli.common import console


def demo() -> None:
    """Run the whole story on the offline model: pin, ingest, sample, baseline, replay, a silent update, drift, alert."""
    from drift_pipeline.defs.demo import driver as core

    started = time.monotonic()
    result = core.run(console)
    console.rule("[bold green]done")
    console.print(
        f"  {len(result.runs)} Dagster runs in {time.monotonic() - started:.0f} s; drift reports (JSON + HTML):"
    )
    for uri in result.reports:
        console.print(f"    {uri}")
    console.print(
        "  Explore runs, partitions, checks and metadata plots in the UI: [bold]make ui[/bold] then open http://127.0.0.1:3000"
    )


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
