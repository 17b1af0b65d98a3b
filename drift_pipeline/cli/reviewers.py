"""`drift-pipeline reviewers ...`: the registered principals who may sign migration approvals."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from drift_pipeline.cli.common import actor, console, open_store, print_json
from drift_pipeline.errors import InvalidInputError
from drift_pipeline.migration import reviewers as core

reviewers = typer.Typer(
    help="Register the people who may sign migration approvals (Ed25519 keys; names compared NFKC + case-folded).",
    no_args_is_help=True,
)


@reviewers.command("add")
def add(
    name: Annotated[str, typer.Argument(help="reviewer name (stored normalised: NFKC, case-folded, trimmed)")],
    public_key: Annotated[
        Path | None, typer.Option(help="the reviewer's Ed25519 public key (PEM) they generated themselves")
    ] = None,
    generate_key: Annotated[
        bool, typer.Option("--generate-key", help="create a key pair here (needs --private-key-out)")
    ] = False,
    private_key_out: Annotated[
        Path | None, typer.Option(help="new file for the generated private key (mode 0600, never overwritten)")
    ] = None,
) -> None:
    """Register NAME with a public key (--public-key FILE) or a key pair created now (--generate-key)."""
    store = open_store()
    if generate_key == (public_key is not None):
        raise InvalidInputError("give exactly one of --public-key FILE or --generate-key --private-key-out FILE")
    if generate_key:
        if private_key_out is None:
            raise InvalidInputError("--generate-key needs --private-key-out FILE for the private key")
        info = core.add_generated(store, name, private_key_out, actor=actor())
        where = f"; private key written to {private_key_out} (0600): hand it to the reviewer only"
    else:
        assert public_key is not None
        try:
            pem = public_key.read_bytes()
        except OSError as exc:
            raise InvalidInputError(f"cannot read public key {public_key}: {exc.strerror or exc}") from exc
        info = core.add(store, name, pem, actor=actor())
        where = ""
    console.print(f"reviewer [bold]{info.name}[/bold] registered (key {info.key_id}){where}")


@reviewers.command("list")
def list_cmd(as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False) -> None:
    """Registered reviewers with their key ids."""
    rows = core.list_reviewers(open_store())
    if as_json:
        print_json([{**r.__dict__, "created_at": r.created_at.isoformat()} for r in rows])
        return
    table = Table("name", "key id", "registered", "by", title="Reviewers")
    for r in rows:
        table.add_row(r.name, r.key_id, r.created_at.isoformat(timespec="seconds"), r.created_by)
    console.print(table if rows else "no reviewers registered (`drift-pipeline reviewers add NAME ...`)")


def register(app: typer.Typer) -> None:
    app.add_typer(reviewers, name="reviewers")
