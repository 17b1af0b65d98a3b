"""`drift-pipeline plan`: how many prompts a baseline needs before equivalence can be shown at a margin."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from drift_pipeline.cli.common import console
from drift_pipeline.errors import InvalidInputError


def register(app: typer.Typer) -> None:
    """Add the `plan` command to the main application."""
    app.command("plan")(plan_command)


def plan_command(
    threshold: Annotated[
        list[float], typer.Option("--threshold", help="margin(s) of equivalence = drift_alert_threshold (0..1)")
    ],
    alpha: Annotated[float, typer.Option(help="error level of each verdict")] = 0.01,
    changed_share: Annotated[
        float, typer.Option(help="share of pairs whose value changes between two replays (0 = deterministic)")
    ] = 0.0,
    spread: Annotated[float, typer.Option(help="standard deviation of a per-pair change, on the 0..1 scale")] = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Pairs needed to prove equivalence per kind of dimension (see docs/scoring.md, "Planning")."""
    from drift_pipeline.detection.statistics import validate_levels
    from drift_pipeline.detection.verdicts import plan

    if not 0 <= changed_share <= 1 or spread < 0:
        raise InvalidInputError("--changed-share must be in [0, 1] and --spread at least 0")
    rows = []
    for margin in threshold:
        validate_levels(margin, alpha)
        needed = plan(margin, alpha=alpha, changed_share=changed_share, spread=spread)
        rows.append({"margin": margin, "alpha": alpha, **{f"{kind}_pairs": n for kind, n in needed.items()}})
    if as_json:
        print(json.dumps(rows))  # plain print: machine output never wraps at the terminal width
        return
    console.print(f"pairs needed to show equivalence (alpha {alpha:g}, changed share {changed_share:g})")
    table = Table()
    for column in ("margin", "binary dimensions", "continuous dimensions"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            *(str(row[k] if row[k] is not None else "never") for k in ("margin", "binary_pairs", "continuous_pairs"))
        )
    console.print(table)
