"""`drift-pipeline ingest PATH_OR_URL`: load existing logs into the traffic store, quarantining bad records."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from drift_pipeline.cli.common import console, open_store


def register(app: typer.Typer) -> None:
    """Add the `ingest` command to the main app."""
    app.command("ingest")(ingest)
    app.command("otlp-receiver")(otlp_receiver)


def ingest(
    source: Annotated[str, typer.Argument(help="a local file or an s3:// URL")],
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="jsonl, parquet, csv, llmdrift, or an import: otlp, langfuse, langsmith, openai-batch, litellm",
        ),
    ] = "jsonl",
    tenant: Annotated[str | None, typer.Option(help="tenant of records that name none (required for llmdrift)")] = None,
    agent: Annotated[str | None, typer.Option(help="agent of records that name none (required for llmdrift)")] = None,
    check_agents: Annotated[
        bool, typer.Option("--check-agents/--no-check-agents", help="quarantine records of agents without a manifest")
    ] = True,
    batch_input: Annotated[
        str | None, typer.Option(help="openai-batch: the batch input (requests) file paired with SOURCE")
    ] = None,
    tenant_attribute: Annotated[
        str | None, typer.Option(help="import formats: the attribute/metadata key naming the tenant")
    ] = None,
    agent_attribute: Annotated[str | None, typer.Option(help="import formats: the key naming the agent")] = None,
    workflow_attribute: Annotated[str | None, typer.Option(help="import formats: the key naming the workflow")] = None,
    step_attribute: Annotated[str | None, typer.Option(help="import formats: the key naming the agent step")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="print one JSON line: read, accepted, quarantined, ...")
    ] = False,
) -> None:
    """Ingest logs (JSONL, Parquet, CSV, LLMDrift CSV) or traffic other tools recorded (OTLP traces,
    Langfuse, LangSmith, OpenAI Batch, LiteLLM proxy logs); every bad record is quarantined with its
    reason, and spans or runs that are not model calls are skipped and counted."""
    from drift_pipeline.persistence.objects import ObjectStore
    from drift_pipeline.traffic.ingest.imports import ImportOptions
    from drift_pipeline.traffic.ingest.mapping import AttributeMapping
    from drift_pipeline.traffic.ingest.run import ingest_with_store

    objects = ObjectStore.from_settings()
    store = open_store()  # also without --check-agents: the tenants' own PII patterns are scrubbed before writing
    mapping = AttributeMapping.with_overrides(tenant_attribute, agent_attribute, workflow_attribute, step_attribute)
    kwargs = {
        "fmt": fmt,
        "tenant": tenant,
        "agent": agent,
        "check_agents": check_agents,
        "import_options": ImportOptions(mapping=mapping, batch_input=batch_input),
    }
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
    if data["skipped"]:
        table.add_row("skipped (not model calls)", str(data["skipped"]))
        for reason, count in data["skip_reasons"].items():
            table.add_row(f"  {reason}", str(count))
    for tenant, count in data["tenants"].items():
        table.add_row(f"tenant {tenant}", str(count))
    if data["resumed_chunks"]:
        table.add_row("resumed chunks", f"{data['resumed_chunks']} of {data['chunks']}")
    console.print(table)
    console.print(f"stored under {storage_url}", style="dim")


def otlp_receiver(
    port: Annotated[int, typer.Option(help="port to listen on (4318 is OTLP/HTTP's default)")] = 4318,
    host: Annotated[str, typer.Option(help="address to bind; 0.0.0.0 only behind a trusted network")] = "127.0.0.1",
    tenant: Annotated[str | None, typer.Option(help="tenant of spans that name none")] = None,
    agent: Annotated[str | None, typer.Option(help="agent of spans that name none")] = None,
    check_agents: Annotated[
        bool, typer.Option("--check-agents/--no-check-agents", help="quarantine spans of agents without a manifest")
    ] = True,
    tenant_attribute: Annotated[str | None, typer.Option(help="the span/resource attribute naming the tenant")] = None,
    agent_attribute: Annotated[str | None, typer.Option(help="the attribute naming the agent")] = None,
    max_body_mb: Annotated[int, typer.Option(help="largest request body accepted, in MiB")] = 16,
) -> None:
    """Receive OTLP/HTTP traces (POST /v1/traces, protobuf or JSON) from a Collector or an SDK exporter and
    ingest each request's LLM spans as they arrive. Stop with Ctrl-C."""
    from drift_pipeline.traffic.ingest.mapping import AttributeMapping
    from drift_pipeline.traffic.otlp_receiver import OtlpReceiver, store_sink

    sink = store_sink(tenant=tenant, agent=agent, store=open_store(), check_agents=check_agents)
    mapping = AttributeMapping.with_overrides(tenant_attribute, agent_attribute)
    server = OtlpReceiver((host, port), sink, mapping, max_body_bytes=max_body_mb * 1024 * 1024)
    console.print(f"receiving OTLP traces at {server.url} (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    console.print(f"stopped after {server.requests} requests")
