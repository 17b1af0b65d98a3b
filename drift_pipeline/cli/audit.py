"""`drift-pipeline audit ...`: verify the log and its signed checkpoints, checkpoint, export, tenant proofs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from drift_pipeline.cli.common import console, open_store, parse_datetime
from drift_pipeline.errors import IntegrityError, InvalidInputError
from drift_pipeline.persistence import audit as core
from drift_pipeline.persistence import audit_proofs, checkpoints
from drift_pipeline.persistence.objects import ObjectStore

group = typer.Typer(
    help="Verify, checkpoint and export the tamper-evident audit log (docs/audit.md).", no_args_is_help=True
)

PublicKeys = Annotated[
    list[Path] | None,
    typer.Option("--public-key", help="PEM public key to trust (repeatable); the keyring when omitted"),
]


def _read_keys(paths: list[Path]) -> list[bytes]:
    try:
        return [p.read_bytes() for p in paths]
    except OSError as exc:
        raise InvalidInputError(f"cannot read public key: {exc.strerror}: {exc.filename}") from None


@group.command("verify")
def verify(public_key: PublicKeys = None) -> None:
    """Check the hash chain, the tenant sub-chains, the Merkle tree and every signed checkpoint (store and
    object-storage copies); name the first bad entry or the checkpoint the log contradicts; exit 1 if any."""
    result = core.verify(open_store(), ObjectStore.from_settings(), _read_keys(public_key) if public_key else None)
    if not result.ok and result.first_bad_seq is not None:
        raise IntegrityError(
            f"audit entry {result.first_bad_seq} does not match: {result.problem} ({result.checked} entries before it verified)"
        )
    if not result.ok:
        raise IntegrityError(f"audit log fails verification: {result.problem}")
    for note in result.notes:
        console.print(f"note: {note}", highlight=False)
    console.print(
        f"[green]ok[/green]: {result.checked} entries, hash chain intact, tree root {result.root_hash[:16]}..., "
        f"{result.checkpoints} signed checkpoints consistent",
        highlight=False,
    )


@group.command("checkpoint")
def checkpoint() -> None:
    """Sign the tree as it stands (size + root hash, Ed25519) and keep it in the store and, write-once, in
    object storage. Refused when the log does not verify."""
    store, objects = open_store(), ObjectStore.from_settings()
    cp = checkpoints.create(store, objects)
    console.print(
        f"[green]checkpoint[/green]: tree size {cp.tree_size}, root {cp.root_hash[:16]}..., key {cp.key_id[:16]}..., "
        f"kept in the store and at {objects.uri(cp.object_name)}",
        highlight=False,
    )


@group.command("public-key")
def public_key(
    output: Annotated[Path | None, typer.Option(help="file to write (stdout when omitted)")] = None,
) -> None:
    """Print the checkpoint signing key's public half (PEM), to hand to tenants for `verify-export`."""
    pem = checkpoints.public_pem(checkpoints.load_signing_key().public_key())
    if output is None:
        print(pem.decode("ascii"), end="")
        return
    core.write_atomically(output, lambda tmp: tmp.write_bytes(pem))
    typer.echo(f"wrote the public key to {output}", err=True)


@group.command("export")
def export(
    fmt: Annotated[str, typer.Option("--format", help="csv, jsonl or parquet (ignored with --proofs)")] = "jsonl",
    tenant: Annotated[str | None, typer.Option(help="only this tenant's entries")] = None,
    since: Annotated[str | None, typer.Option(help="from this date/time (inclusive, UTC)")] = None,
    until: Annotated[str | None, typer.Option(help="up to this date/time (exclusive, UTC)")] = None,
    output: Annotated[Path | None, typer.Option(help="file to write (stdout for csv/jsonl when omitted)")] = None,
    proofs: Annotated[
        bool,
        typer.Option(
            "--proofs",
            help="write a JSON bundle of the tenant's entries with an inclusion proof each, the signed "
            "checkpoint and its public key (needs --tenant and --output; checked by verify-export)",
        ),
    ] = False,
) -> None:
    """Export entries, filtered by tenant and time range; files are written atomically."""
    if proofs:
        if not tenant or output is None or since or until:
            raise typer.BadParameter("--proofs needs --tenant and --output (and takes all the tenant's entries)")
        bundle = audit_proofs.tenant_proof_bundle(open_store(), tenant)
        audit_proofs.write_bundle(bundle, output)
        typer.echo(
            f"wrote {len(bundle['entries'])} entries with proofs against checkpoint of tree size "
            f"{bundle['checkpoint']['tree_size']} to {output}",
            err=True,
        )
        return
    rows = core.entries(
        open_store(), tenant_id=tenant, since=parse_datetime(since, "--since"), until=parse_datetime(until, "--until")
    )
    text = core.export(rows, fmt, output)
    if text is not None:
        print(text, end="")
    else:
        typer.echo(f"wrote {len(rows)} entries to {output}", err=True)


@group.command("verify-export")
def verify_export(
    bundle: Annotated[Path, typer.Argument(help="bundle written by `audit export --tenant T --proofs`")],
    public_key: Annotated[
        list[Path], typer.Option("--public-key", help="the operator's PEM public key (repeatable after rotations)")
    ],
) -> None:
    """Check a tenant proof bundle offline (no database): signature, every inclusion proof, every entry's
    hash and the tenant's sub-chain (an omitted entry shows as a gap). Exit 1 on any problem."""
    data = audit_proofs.read_bundle(bundle)
    problems = audit_proofs.verify_tenant_bundle(data, _read_keys(public_key))
    if problems:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise IntegrityError(f"bundle {bundle} fails verification: {problems[0]}{more}")
    cp = data["checkpoint"]
    console.print(
        f"[green]ok[/green]: {len(data['entries'])} entries of tenant {data['tenant_id']!r}, each proven in the log "
        f"checkpoint of tree size {cp['tree_size']} signed {cp['timestamp']} by key {cp['key_id'][:16]}...; "
        "no tenant entry missing before the last one",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="audit")
