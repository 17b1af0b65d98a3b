"""`drift-pipeline provider ...` (the offline provider's variants) and `drift-pipeline replay run`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from drift_pipeline import files
from drift_pipeline.cli.common import console, open_store, print_json
from drift_pipeline.errors import InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

FORMATS = (".parquet", ".jsonl", ".csv")

provider_group = typer.Typer(
    help="The offline provider (SmolLM2 in-process): stage provider-side variants.", no_args_is_help=True
)
replay_group = typer.Typer(help="Shadow-replay sampled inputs against registered model versions.", no_args_is_help=True)


@provider_group.command("variants")
def list_variants() -> None:
    """List the provider-side variants the offline provider can serve."""
    from drift_pipeline.detection.offline import variants

    active = variants.active_variant().name
    table = Table("variant", "announced", "system_fingerprint", "what changes", title="Offline provider variants")
    for v in variants.VARIANTS.values():
        name = f"[bold green]{v.name} (active)[/bold green]" if v.name == active else v.name
        table.add_row(name, "yes" if v.announced else "[yellow]silent[/yellow]", v.fingerprint, v.description)
    console.print(table)


@provider_group.command("show")
def show(as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False) -> None:
    """Show the active variant of the offline model and when it changed."""
    from drift_pipeline.detection.offline import variants

    state = variants.show_state()
    if as_json:
        print_json(state)
        return
    kind = "announced" if state["announced"] else "[yellow]silent[/yellow]"
    console.print(
        f"[bold]{state['model']}[/bold] serves variant [bold]{state['variant']}[/bold] ({kind}, "
        f"fingerprint {state['system_fingerprint']}) since {state['since'] or 'install'}\n{state['description']}"
    )


@provider_group.command("set-variant")
def set_variant(
    model: Annotated[str, typer.Argument(help="offline model id, e.g. smollm2-135m-instruct")],
    variant: Annotated[str, typer.Argument(help="variant name (see `provider variants`)")],
    note: Annotated[str, typer.Option(help="why, kept in the variant history")] = "",
) -> None:
    """Switch the offline provider to VARIANT for MODEL in every process (stages a provider update)."""
    from drift_pipeline.detection.offline import variants

    chosen = variants.set_variant(model, variant, note=note)
    kind = "announced: system_fingerprint changes" if chosen.announced else "silent: system_fingerprint unchanged"
    console.print(f"offline provider now serves [bold]{model}[/bold] as variant [bold]{chosen.name}[/bold] ({kind})")


@replay_group.command("run")
def run(
    sample: Annotated[Path, typer.Argument(help="sample in the traffic record schema (.parquet, .jsonl or .csv)")],
    model: Annotated[list[str], typer.Option("--model", help="registered model version id (repeatable)")],
    output: Annotated[Path, typer.Option(help="where to write the outputs (.parquet, .jsonl or .csv)")],
    max_tokens: Annotated[int, typer.Option(help="explicit max_tokens for every request")] = 256,
    seed: Annotated[int, typer.Option(help="seed sent with every request")] = 0,
    namespace: Annotated[str | None, typer.Option(help="cache namespace, e.g. the replay day")] = None,
    fresh: Annotated[bool, typer.Option(help="ignore cached outputs and call every model again")] = False,
    concurrency: Annotated[
        list[str] | None,
        typer.Option(help="PROVIDER=N: at most N requests in flight to that provider (repeatable; default 8)"),
    ] = None,
) -> None:
    """Replay SAMPLE against each --model at temperature 0 and write one row per record and model."""
    from drift_pipeline.detection.replay import Decoding, ReplayTarget, replay
    from drift_pipeline.versioning import registry

    if output.suffix not in FORMATS:
        raise InvalidInputError(f"cannot write {output.suffix!r} outputs (use .parquet, .jsonl or .csv)")
    store = open_store()
    with store.session() as session:  # an alias is refused with what it resolves to today
        for m in model:
            registry.require_exact_version(session, m)
    targets = [ReplayTarget.from_version(registry.get_version(store, m)) for m in model]
    df = replay(
        _read(sample),
        targets,
        store=store,
        decoding=Decoding(temperature=0.0, seed=seed, max_tokens=max_tokens),
        cache_namespace=namespace,
        fresh=fresh,
        concurrency=_limits(concurrency or []),
    )
    _write(df, output)
    s = df.attrs["summary"]
    console.print(
        f"{len(df)} outputs -> {output}: {s['called']} called, {s['cached']} from cache, "
        + (f"[red]{s['failed']} failed[/red]" if s["failed"] else "0 failed")
        + (f", [yellow]{s['invalid_records']} invalid records[/yellow]" if s["invalid_records"] else "")
    )


def _limits(pairs: list[str]) -> dict[str, int]:
    """`["openai=64", ...]` as `{"openai": 64}`; anything else is a clear input error."""
    limits: dict[str, int] = {}
    for pair in pairs:
        provider, _, n = pair.partition("=")
        if not provider or not n.isdigit() or int(n) < 1:
            raise InvalidInputError(f"--concurrency {pair!r}: expected PROVIDER=N with N >= 1, e.g. openai=64")
        limits[provider] = int(n)
    return limits


def _read(path: Path) -> pd.DataFrame:
    import pandas as pd

    if not path.is_file():
        raise InvalidInputError(f"sample file {path} does not exist")
    readers = {".parquet": pd.read_parquet, ".jsonl": lambda p: pd.read_json(p, lines=True), ".csv": pd.read_csv}
    if path.suffix not in readers:
        raise InvalidInputError(f"cannot read {path.suffix!r} samples (use .parquet, .jsonl or .csv)")
    try:
        return readers[path.suffix](path)
    except Exception as exc:
        raise InvalidInputError(f"cannot read sample {path}: {exc}") from exc


def _write(df: pd.DataFrame, path: Path) -> None:
    """Owner-only and atomic: replay outputs hold tenant prompts and model answers."""
    if path.suffix == ".parquet":
        data = df.to_parquet(index=False)
    elif path.suffix == ".jsonl":
        data = df.to_json(orient="records", lines=True).encode("utf-8")
    else:
        data = df.to_csv(index=False).encode("utf-8")
    files.write_private(path, data)


def register(app: typer.Typer) -> None:
    """Add the `provider` and `replay` command groups to the main app."""
    app.add_typer(provider_group, name="provider")
    app.add_typer(replay_group, name="replay")
