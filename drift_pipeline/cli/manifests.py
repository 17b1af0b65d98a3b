"""`drift-pipeline tenants|pin|manifest|resolve`: the per-tenant versioning contract."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from drift_pipeline.cli.common import actor, console, open_store, print_json
from drift_pipeline.errors import InvalidInputError
from drift_pipeline.versioning import manifests as core
from drift_pipeline.versioning.runtime import Resolver
from drift_pipeline.versioning.tenants import add_tenant, list_tenants

tenants = typer.Typer(help="Add and list tenants (contact, regulated flag, sampling consent).", no_args_is_help=True)
manifest = typer.Typer(help="Show a tenant agent's manifest and its revisions.", no_args_is_help=True)


@tenants.command("add")
def tenants_add(
    tenant_id: Annotated[str, typer.Argument(help="tenant slug, e.g. acme")],
    contact: Annotated[str | None, typer.Option(help="technical contact e-mail (receives drift alerts)")] = None,
    regulated: Annotated[bool, typer.Option("--regulated", help="migrations need human review")] = False,
    no_consent: Annotated[bool, typer.Option("--no-consent", help="never sample this tenant's traffic")] = False,
    hourly: Annotated[bool, typer.Option("--hourly", help="high-stakes: check drift hourly instead of daily")] = False,
    pii_pattern: Annotated[
        list[str] | None, typer.Option("--pii-pattern", help="NAME=REGEX scrubbed as <CUSTOM:NAME> (repeatable)")
    ] = None,
) -> None:
    """Add a tenant."""
    patterns = dict(_split_pattern(p) for p in pii_pattern or [])
    info = add_tenant(
        open_store(),
        tenant_id,
        actor=actor(),
        contact=contact,
        regulated=regulated,
        sampling_consent=not no_consent,
        cadence="hourly" if hourly else "daily",
        pii_patterns=patterns,
    )
    console.print(
        f"tenant [bold]{info.tenant_id}[/bold] added"
        + (" (regulated)" if info.regulated else "")
        + ("" if info.sampling_consent else " (no sampling consent)")
    )


@tenants.command("list")
def tenants_list(as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False) -> None:
    """List tenants."""
    rows = list_tenants(open_store())
    if as_json:
        print_json([r.__dict__ for r in rows])
        return
    table = Table("tenant", "contact", "regulated", "sampling consent", "cadence", title="Tenants")
    for r in rows:
        table.add_row(
            r.tenant_id,
            r.contact or "",
            "yes" if r.regulated else "",
            "yes" if r.sampling_consent else "[red]no[/red]",
            r.cadence,
        )
    console.print(table)


def pin(
    tenant_id: Annotated[str, typer.Argument(help="tenant")],
    agent_id: Annotated[str, typer.Argument(help="agent")],
    model_id: Annotated[str, typer.Argument(help="exact registered version (an alias is refused)")],
    threshold: Annotated[
        float | None, typer.Option(help="drift alert threshold in (0, 1]: minimum effect that alerts")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            help="agent.yaml/json: system_prompt, tools, response_schema, memory_config, workflow_types, decoding"
        ),
    ] = None,
    reason: Annotated[str, typer.Option(help="why, for the audit log")] = "",
    baseline: Annotated[
        str | None,
        typer.Option(help="baseline id to put in force with the pin: an existing baseline of this agent and model"),
    ] = None,
) -> None:
    """Pin a tenant agent to an exact model version (writes a new manifest revision)."""
    if threshold is not None:
        core.check_threshold(threshold)
    agent_config = core.AgentConfig.from_file(config) if config else None
    m = core.pin(
        open_store(),
        tenant_id,
        agent_id,
        model_id,
        actor=actor(),
        threshold=threshold,
        config=agent_config,
        reason=reason,
        baseline_id=baseline,
    )
    console.print(
        f"{m.tenant_id}/{m.agent_id} pinned to [bold]{m.pinned_model_id}[/bold] (revision {m.revision}, threshold {m.drift_alert_threshold})"
    )


@manifest.command("show")
def manifest_show(
    tenant_id: Annotated[str, typer.Argument(help="tenant")],
    agent_id: Annotated[str, typer.Argument(help="agent")],
    show_history: Annotated[bool, typer.Option("--history", help="every revision, oldest first")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Show the manifest in force (or its whole history)."""
    store = open_store()
    revisions = core.history(store, tenant_id, agent_id) if show_history else [core.current(store, tenant_id, agent_id)]
    if as_json:
        print_json([m.to_dict() for m in revisions] if show_history else revisions[0].to_dict())
        return
    if show_history:
        table = Table(
            "rev", "created", "by", "model", "baseline", "threshold", "reason", title=f"{tenant_id}/{agent_id} history"
        )
        for m in revisions:
            table.add_row(
                str(m.revision),
                m.created_at.isoformat(timespec="seconds"),
                m.created_by,
                m.pinned_model_id,
                m.behavioral_baseline_id or "",
                f"{m.drift_alert_threshold:g}",
                m.reason,
            )
        console.print(table)
        return
    m = revisions[0]
    body = (
        f"[bold]model[/bold] {m.pinned_model_id} (pinned {m.pinned_at.isoformat(timespec='seconds')})\n"
        f"[bold]revision[/bold] {m.revision}   [bold]baseline[/bold] {m.behavioral_baseline_id or '[dim]none yet[/dim]'}   "
        f"[bold]threshold[/bold] {m.drift_alert_threshold:g}\n"
        f"[bold]tenant[/bold] contact={m.tenant.contact or '-'} regulated={m.tenant.regulated} consent={m.tenant.sampling_consent}\n"
        f"[bold]workflows[/bold] {', '.join(m.config.workflow_types) or '-'}   [bold]tools[/bold] "
        f"{', '.join(t.get('function', t).get('name', '?') for t in m.config.tools) or '-'}\n"
        f"[bold]system prompt[/bold] {m.config.system_prompt[:200] or '-'}"
    )
    if m.config_error:  # shown, never crashed on: a row written before validation or edited in the database
        body += f"\n[red]invalid stored config[/red] {escape(m.config_error)}"
    console.print(Panel(body, title=f"{m.tenant_id}/{m.agent_id}"))


def resolve(
    tenant_id: Annotated[str, typer.Argument(help="tenant")],
    agent_id: Annotated[str, typer.Argument(help="agent")],
) -> None:
    """What the platform's runtime gets for this agent: exact model, provider, decoding (JSON)."""
    print(json.dumps(Resolver(open_store()).resolve(tenant_id, agent_id).to_dict(), indent=2, sort_keys=True))


def _split_pattern(value: str) -> tuple[str, str]:
    name, sep, regex = value.partition("=")
    if not sep or not name or not regex:
        raise InvalidInputError(f"--pii-pattern {value!r}: use NAME=REGEX")
    return name, regex


def register(app: typer.Typer) -> None:
    app.add_typer(tenants, name="tenants")
    app.add_typer(manifest, name="manifest")
    app.command("pin")(pin)
    app.command("resolve")(resolve)
