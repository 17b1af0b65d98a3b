"""`drift-pipeline registry ...`: exact model versions, aliases and their history, usage."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from drift_pipeline.cli.common import actor, console, open_store, parse_date, print_json
from drift_pipeline.versioning import registry as core

group = typer.Typer(help="Register exact model versions, move aliases, deprecate versions.", no_args_is_help=True)


@group.command("add")
def add(
    provider: Annotated[str, typer.Argument(help="litellm provider, e.g. openai, anthropic, offline")],
    model_id: Annotated[str, typer.Argument(help="exact version id, e.g. gpt-4o-2024-08-06 (never an alias)")],
    alias: Annotated[
        list[str] | None, typer.Option("--alias", help="alias that resolves to this version (repeatable)")
    ] = None,
    release_date: Annotated[str | None, typer.Option(help="release date, YYYY-MM-DD")] = None,
    fingerprint: Annotated[str | None, typer.Option(help="checkpoint hash or provider system fingerprint")] = None,
    sunset: Annotated[str | None, typer.Option(help="sunset date, YYYY-MM-DD (marks it deprecated)")] = None,
    successor: Annotated[str | None, typer.Option(help="registered version that replaces it")] = None,
    api_base: Annotated[str | None, typer.Option(help="OpenAI-compatible endpoint (vLLM, llama.cpp, Ollama)")] = None,
    reason: Annotated[str, typer.Option(help="why, for the audit log")] = "",
) -> None:
    """Register an exact model version."""
    info = core.add_version(
        open_store(),
        provider,
        model_id,
        actor=actor(),
        aliases=alias or [],
        release_date=parse_date(release_date, "release date"),
        fingerprint=fingerprint,
        sunset=parse_date(sunset, "sunset"),
        successor=successor,
        litellm_params={"api_base": api_base} if api_base else None,
        reason=reason,
    )
    console.print(
        f"registered [bold]{info.model_id}[/bold] ({info.provider}, {info.status})"
        + (f", aliases: {', '.join(info.aliases)}" if info.aliases else "")
    )


@group.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False) -> None:
    """List versions with status, aliases and how many tenant agents pin each."""
    store = open_store()
    versions, usage = core.list_versions(store), core.usage(store)
    if as_json:
        print_json([{**v.to_dict(), "pinned_by": usage.get(v.model_id, 0)} for v in versions])
        return
    table = Table(
        "provider", "model id", "status", "aliases", "sunset", "successor", "pinned by", title="Model versions"
    )
    for v in versions:
        pinned = usage.get(v.model_id, 0)
        table.add_row(
            v.provider,
            v.model_id,
            _status(v.status),
            ", ".join(v.aliases),
            str(v.sunset_date or ""),
            v.successor_id or "",
            str(pinned) if pinned else "[dim]0 (unpinned)[/dim]",
        )
    console.print(table)


@group.command("alias")
def alias(
    alias: Annotated[str, typer.Argument(help="the moving name, e.g. gpt-4")],
    model_id: Annotated[str, typer.Argument(help="the exact version it resolves to from now on")],
    reason: Annotated[str, typer.Option(help="why, for the audit log")] = "",
) -> None:
    """Point an alias at a version (the change is kept in the alias's history)."""
    changed = core.set_alias(open_store(), alias, model_id, actor=actor(), reason=reason)
    console.print(f"{alias} -> {model_id}" + ("" if changed else " (unchanged)"))


@group.command("history")
def history(alias: Annotated[str, typer.Argument(help="alias to show")]) -> None:
    """When an alias resolved to which version: how a silent update shows up."""
    periods = core.alias_history(open_store(), alias)
    if not periods:
        from drift_pipeline.errors import NotFoundError

        raise NotFoundError(f"unknown alias {alias!r}")
    table = Table("version", "from", "to", "observed by", title=f"Alias {alias}")
    for p in periods:
        table.add_row(
            p.model_id,
            p.valid_from.isoformat(timespec="seconds"),
            p.valid_to.isoformat(timespec="seconds") if p.valid_to else "[green]now[/green]",
            p.observed_by,
        )
    console.print(table)


@group.command("deprecate")
def deprecate(
    model_id: Annotated[str, typer.Argument(help="version to deprecate")],
    sunset: Annotated[str, typer.Option(help="sunset date, YYYY-MM-DD")],
    successor: Annotated[str | None, typer.Option(help="registered version that replaces it")] = None,
    reason: Annotated[str, typer.Option(help="why, for the audit log")] = "",
) -> None:
    """Mark a version deprecated with a sunset date."""
    sunset_date = parse_date(sunset, "sunset")
    assert sunset_date is not None
    info = core.deprecate(open_store(), model_id, sunset=sunset_date, successor=successor, actor=actor(), reason=reason)
    pinned = core.usage(open_store()).get(model_id, 0)
    console.print(f"{model_id}: {info.status}, sunset {info.sunset_date}; pinned by {pinned} tenant agent(s)")


def _status(status: str) -> str:
    return {
        "active": "[green]active[/green]",
        "deprecated": "[yellow]deprecated[/yellow]",
        "sunset": "[red]sunset[/red]",
    }[status]


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="registry")
