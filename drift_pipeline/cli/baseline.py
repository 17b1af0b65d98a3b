"""`drift-pipeline baseline ...`: build behavioural baselines from traffic already stored."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from drift_pipeline.cli.common import actor, console, open_store, parse_date, print_json

group = typer.Typer(help="Build behavioural baselines from stored traffic.", no_args_is_help=True)


@group.command("from-traffic")
def from_traffic(
    tenant: Annotated[str, typer.Argument(help="tenant id")],
    agent: Annotated[str, typer.Argument(help="agent id (needs a manifest: `drift-pipeline pin`)")],
    since: Annotated[str, typer.Option(help="first day of traffic to sample (YYYY-MM-DD)")],
    until: Annotated[str | None, typer.Option(help="last day, included (default: today, UTC)")] = None,
    max_prompts: Annotated[int, typer.Option(min=2, max=10_000, help="canonical prompts to replay")] = 32,
    as_json: Annotated[bool, typer.Option("--json", help="print the baseline as JSON")] = False,
) -> None:
    """Sample the agent's stored traffic day by day (stratified, deduplicated, scrubbed) and build its
    baseline on the pinned model: imported traces become a baseline in one step."""
    from drift_pipeline.detection.traffic_baselines import baseline_from_traffic
    from drift_pipeline.persistence.objects import ObjectStore

    first = parse_date(since, "--since")
    last = parse_date(until, "--until") or datetime.now(UTC).date()
    assert first is not None

    def report_day(day: str, result) -> None:  # noqa: ANN001 (sampling.SampleResult, imported lazily)
        if not as_json and result.status == "sampled":
            console.print(f"{day}: {len(result.frame)} sampled of {result.n_input}")

    info = baseline_from_traffic(
        open_store(),
        ObjectStore.from_settings(),
        tenant,
        agent,
        first,
        last,
        max_prompts=max_prompts,
        actor=actor(),
        progress=not as_json,
        on_day=report_day,
    )
    if as_json:
        print_json({"baseline_id": info.baseline_id, "model_id": info.model_id, "n_prompts": info.n_prompts})
        return
    console.print(
        f"[green]baseline[/green] {info.baseline_id} for {tenant}/{agent} on {info.model_id}: "
        f"{info.n_prompts} prompts; the manifest now points at it"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="baseline")
