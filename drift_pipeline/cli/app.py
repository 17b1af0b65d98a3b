"""The `drift-pipeline` application: assembles the command groups and turns user errors into one line."""

from __future__ import annotations

import sys

import typer

from drift_pipeline.cli import common
from drift_pipeline.cli.lazy import lazy_group
from drift_pipeline.errors import DriftPipelineError

# Each top-level command and the module that registers it, in help order. A module is imported only when
# one of its commands runs (cli/lazy.py): `compare` need not load SQLAlchemy, migration or versioning.
COMMANDS = {
    "demo": "demo",
    "registry": "registry",
    **dict.fromkeys(("tenants", "manifest", "pin", "resolve"), "manifests"),
    **dict.fromkeys(("ingest", "otlp-receiver"), "ingest"),
    "baseline": "baseline",
    **dict.fromkeys(("provider", "replay"), "replay"),
    "compare": "compare",
    "plan": "plan",
    **dict.fromkeys(("migrate", "rollback", "scan-aliases"), "migrate"),
    "reviewers": "reviewers",
    "evidence": "evidence",
    "audit": "audit",
    "reports": "reports",
}

# What `--help` lists for each of them: the first paragraph of the command's own help, line breaks included
# (rich keeps them), copied here so that listing the commands imports none of their modules (test_startup.py
# holds the two equal).
SUMMARIES = {
    "demo": "Run the whole story on the offline model: pin, ingest, sample, baseline, replay, a silent update, "
    "drift, alert.",
    "registry": "Register exact model versions, move aliases, deprecate versions.",
    "tenants": "Add and list tenants (contact, regulated flag, sampling consent).",
    "manifest": "Show a tenant agent's manifest and its revisions.",
    "pin": "Pin a tenant agent to an exact model version (writes a new manifest revision).",
    "resolve": "What the platform's runtime gets for this agent: exact model, provider, decoding (JSON).",
    "ingest": "Ingest logs (JSONL, Parquet, CSV, LLMDrift CSV) or traffic other tools recorded (OTLP traces,\n"
    "Langfuse, LangSmith, OpenAI Batch, LiteLLM proxy logs); every bad record is quarantined with its\n"
    "reason, and spans or runs that are not model calls are skipped and counted.",
    "otlp-receiver": "Receive OTLP/HTTP traces (POST /v1/traces, protobuf or JSON) from a Collector or an SDK "
    "exporter and\ningest each request's LLM spans as they arrive. Stop with Ctrl-C.",
    "baseline": "Build behavioural baselines from stored traffic.",
    "provider": "The offline provider (SmolLM2 in-process): stage provider-side variants.",
    "replay": "Shadow-replay sampled inputs against registered model versions.",
    "compare": "Compare two versions' recorded outputs on the prompts both answered; exit 0 whatever the verdict.",
    "plan": 'Pairs needed to prove equivalence per kind of dimension (see docs/scoring.md, "Planning").',
    "migrate": "Move a tenant agent to a new model version through staging, review, canary and promotion.",
    "rollback": "Restore the last known-good pin and baseline; stops an in-flight canary. Idempotent.",
    "scan-aliases": "List model calls that name an alias instead of an exact version. Exit 1 when any is found "
    "(for CI).",
    "reviewers": "Register the people who may sign migration approvals (Ed25519 keys; names compared NFKC + "
    "case-folded).",
    "evidence": "Equivalence evidence for a compliance file: `evidence TENANT AGENT --since DATE [--bundle DIR]`, "
    "and `evidence verify BUNDLE --public-key KEY` to check a bundle offline.",
    "audit": "Verify, checkpoint and export the tamper-evident audit log (docs/audit.md).",
    "reports": "Drift reports: serve their HTML pages to the links in the Dagster UI.",
}

app = typer.Typer(
    name="drift-pipeline",
    help="Pin each tenant's model versions, fingerprint their behaviour, and catch drift before tenants do.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=lazy_group({name: f"drift_pipeline.cli.{module}" for name, module in COMMANDS.items()}, SUMMARIES),
)


@app.callback()
def _root() -> None:
    """Keeps the application a group: `init` is its only eagerly registered command."""


@app.command()
def init() -> None:
    """Create or upgrade the store (SQLite under DRIFT_PIPELINE_HOME, or DRIFT_PIPELINE_DATABASE_URL)."""
    store = common.open_store()
    common.console.print(f"[green]ready[/green] store at {store.engine.url.render_as_string(hide_password=True)}")


def main() -> None:
    """Console-script entry point: a refused request is one line and exit 1, a usage mistake one line and
    exit 2; never a traceback."""
    try:
        # Outside standalone mode click hands back a command's `typer.Exit` code instead of exiting:
        # dropping it once made `scan-aliases` exit 0 after finding aliases.
        code = app(standalone_mode=False)
    except DriftPipelineError as exc:
        common.err_console.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(1)
    except typer.Abort:
        common.err_console.print("aborted")
        sys.exit(130)
    except (typer.Exit, SystemExit) as exc:
        code = getattr(exc, "exit_code", None)
        sys.exit(code if code is not None else getattr(exc, "code", 0))
    except Exception as exc:
        if _is_click_error(exc):  # usage mistakes (unknown option or command, bad value): one line, exit 2
            common.err_console.print(f"[red]error:[/red] {exc.format_message()}", highlight=False)  # type: ignore[attr-defined]
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        from drift_pipeline.persistence.db import describe_storage_fault

        fault = describe_storage_fault(exc)
        if fault is None:
            raise
        common.err_console.print(f"[red]error:[/red] {fault}", highlight=False)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


def _is_click_error(exc: BaseException) -> bool:
    """click's own errors, and those of the click copy typer vendors (`typer._click`): same class name."""
    return any(cls.__name__ == "ClickException" for cls in type(exc).__mro__)


if __name__ == "__main__":  # `python -m drift_pipeline.cli.app ...`, as the console script
    main()
