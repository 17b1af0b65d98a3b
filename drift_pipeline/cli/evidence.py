"""`drift-pipeline evidence ...`: the equivalence evidence, its offline bundle, and the bundle's check."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from drift_pipeline.cli.common import actor, console, open_store, parse_datetime
from drift_pipeline.errors import InvalidInputError, RefusedError
from drift_pipeline.migration import evidence, evidence_bundle
from drift_pipeline.persistence import refusals, reports
from drift_pipeline.persistence.objects import ObjectStore


class _BuildByDefault(TyperGroup):
    """`evidence TENANT AGENT ...` builds (the historic form); `evidence verify BUNDLE` checks a bundle."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["build", *args]
        return super().parse_args(ctx, args)


evidence_app = typer.Typer(
    cls=_BuildByDefault,
    help="Equivalence evidence for a compliance file: `evidence TENANT AGENT --since DATE [--bundle DIR]`, "
    "and `evidence verify BUNDLE --public-key KEY` to check a bundle offline.",
    no_args_is_help=True,
)


@evidence_app.command("build")
def build(
    tenant_id: Annotated[str, typer.Argument(help="tenant")],
    agent_id: Annotated[str, typer.Argument(help="agent")],
    since: Annotated[str, typer.Option(help="the validation date to compare with (YYYY-MM-DD or ISO time)")],
    report_id: Annotated[
        str | None, typer.Option(help="a stored report id (default: the newest stored report of the pinned model)")
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(help="a drift report file from elsewhere: attached as 'external, unverified', never the answer"),
    ] = None,
    max_age_days: Annotated[int, typer.Option(help="a stored report older than this is not today's evidence")] = 2,
    output: Annotated[Path | None, typer.Option(help="write the evidence JSON here (default: stdout)")] = None,
    html: Annotated[Path | None, typer.Option(help="also write an HTML report here")] = None,
    bundle: Annotated[
        Path | None, typer.Option(help="also write a bundle folder the tenant can check offline (`evidence verify`)")
    ] = None,
) -> None:
    """Is the model on this tenant's data today equivalent to the one validated then? (JSON + HTML)

    The answer rests only on a drift report the system stored (verified on use); only a current,
    equivalent one answers `equivalent`.
    """
    when = parse_datetime(since, "--since")
    assert when is not None
    if max_age_days < 1:
        raise InvalidInputError("--max-age-days must be at least 1")
    store, objects = open_store(), ObjectStore.from_settings()
    with refusals.audited(
        store, actor=actor(), action="evidence.refused", subject=f"{tenant_id}/{agent_id}", tenant_id=tenant_id
    ):
        attachments = [reports.external_attachment(report, tenant_id, agent_id, None)] if report else []
        data = evidence.build(
            store,
            tenant_id,
            agent_id,
            when,
            report_id=report_id,
            attachments=attachments,
            objects=objects,
            max_age=timedelta(days=max_age_days),
        )
    if html is not None:
        evidence.write_html(data, html)
    if bundle is not None:
        evidence_bundle.write_from_store(store, bundle, data, objects)
    if output is None:
        print(json.dumps(data, indent=2, sort_keys=True, default=str))
        return
    evidence.write_json(data, output)
    answer = data["answer"]
    console.print(f"[bold]{answer['verdict']}[/bold]: {answer['summary']}")
    for note in answer["notes"]:
        console.print(f"[yellow]note:[/yellow] {note}")
    for item in attachments:
        console.print(f"[yellow]attached[/yellow] {item['file']} as {item['origin']} (not part of the answer)")
    console.print(
        f"evidence written to {output}" + (f" and {html}" if html else "") + (f"; bundle {bundle}" if bundle else "")
    )


@evidence_app.command("verify")
def verify(
    bundle: Annotated[Path, typer.Argument(help="an evidence bundle folder (`evidence ... --bundle DIR`)")],
    public_key: Annotated[
        list[Path] | None,
        typer.Option(help="the audit signing public key (PEM) the operator published; repeat for rotated keys"),
    ] = None,
) -> None:
    """Check an evidence bundle offline (no database): files, report hash, signed approvals, audit proofs."""
    keys = [_read_key(p) for p in public_key or []]
    problems = evidence_bundle.verify_offline(bundle, keys)
    if problems:
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise RefusedError(f"evidence bundle {bundle} does not verify: {problems[0]}{more}")
    data = json.loads((bundle / evidence_bundle.EVIDENCE).read_text(encoding="utf-8"))
    console.print(
        f"[green]verified[/green] evidence of {data['tenant_id']}/{data['agent_id']}: "
        f"{data['answer']['verdict']} (report, approvals and audit proofs check out)"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(evidence_app, name="evidence")


def _read_key(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"cannot read public key {path}: {exc.strerror or exc}") from exc
