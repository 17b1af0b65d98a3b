"""`drift-pipeline compare`: pair two versions' recorded outputs and write the structured diff."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from drift_pipeline.cli.common import console
from drift_pipeline.errors import InvalidInputError


def register(app: typer.Typer) -> None:
    """Add the `compare` command to the main application."""
    app.command("compare")(compare_command)


def compare_command(
    records: Annotated[Path, typer.Argument(help="recorded outputs of both versions")],
    baseline: Annotated[str, typer.Option(help="the validated version, e.g. gpt-4-0314")],
    candidate: Annotated[str, typer.Option(help="the version to check, e.g. gpt-4-0613")],
    output: Annotated[Path, typer.Option(help="where to write the JSON drift report")],
    fmt: Annotated[str, typer.Option("--format", help="llmdrift | jsonl | parquet | csv")] = "jsonl",
    html: Annotated[Path | None, typer.Option(help="also write a self-contained HTML report")] = None,
    threshold: Annotated[
        float, typer.Option(help="drift_alert_threshold: smallest change worth an alert (0..1, see docs/scoring.md)")
    ] = 0.05,
    alpha: Annotated[float, typer.Option(help="family-wise false-alarm level (Holm across dimensions)")] = 0.01,
    embedding_cache: Annotated[
        Path | None, typer.Option(help="an .npz embedding cache to reuse and update across runs")
    ] = None,
    dimension: Annotated[
        list[str] | None, typer.Option("--dimension", help="score only these dimensions (repeatable)")
    ] = None,
) -> None:
    """Compare two versions' recorded outputs on the prompts both answered; exit 0 whatever the verdict."""
    from drift_pipeline.detection.compare import FORMATS, compare
    from drift_pipeline.detection.report import write_html, write_json

    if fmt not in FORMATS:
        raise InvalidInputError(f"unknown --format {fmt!r} (use one of {', '.join(FORMATS)})")
    result = compare(
        records,
        fmt=fmt,  # type: ignore[arg-type]
        baseline=baseline,
        candidate=candidate,
        threshold=threshold,
        alpha=alpha,
        embedding_cache=embedding_cache,
        dimensions=dimension or None,
        progress=True,
    )
    write_json(result.report, output)
    if html is not None:
        write_html(result.report, html)
    print_summary(result.report)
    console.print(f"report written to {output}" + (f" and {html}" if html else ""))


def print_summary(report: dict[str, Any]) -> None:
    """A rich table: one row per dimension with its interval, drifted red, inconclusive yellow, equivalent green."""
    pairing = report.get("pairing", {})
    table = Table(title=f"{report['baseline']} → {report['candidate']}  ({report['n_pairs']} pairs)")
    for column in ("dimension", "baseline", "candidate", "effect", f"{1 - 2 * report['alpha']:.0%} CI"):
        table.add_column(column, justify="left" if column == "dimension" else "right", no_wrap=True)
    table.add_column("p adj.", justify="right")
    table.add_column("verdict")
    for d in list(report["dimensions"]) + list(report.get("descriptive", [])):
        style = {"drift": "bold red", "inconclusive": "yellow", "equivalent": "green"}.get(d.get("verdict", ""), "")
        verdict = d.get("verdict", "–") + (" (near miss)" if d["near_miss"] else "")
        if d["p_value"] is None:
            verdict = "untested"
        table.add_row(
            d["name"],
            _value(d["baseline_value"], d["kind"]),
            _value(d["candidate_value"], d["kind"]),
            f"{d['effect']:+.3f}",
            "–" if d.get("equivalence_low") is None else f"[{d['equivalence_low']:+.3f}, {d['equivalence_high']:+.3f}]",
            "–" if d["p_adjusted"] is None else f"{d['p_adjusted']:.2g}",
            verdict,
            style=style,
        )
    console.print(table)
    if any(d["p_value"] is None for d in report.get("descriptive", [])):
        console.print("untested: similarity needs a pinned-vs-pinned noise floor to be judged")
    for name in report.get("drifted_dimensions", []):
        entry = next(d for d in report["dimensions"] if d["name"] == name)
        console.print(f"changed: {entry.get('in_words', name)}", markup=False)
    applicability = report.get("applicability", {})
    for name in report.get("not_applicable", []):
        when = applicability.get(name, {}).get("applies_when")
        console.print(f"not applicable: {name}" + (f" (applies when {when})" if when else ""), markup=False)
    partial = [
        f"{k} {v['applicable_pairs']}/{v['of']}"
        for k, v in applicability.items()
        if 0 < v["applicable_pairs"] < v["of"]
    ]
    if partial:
        console.print(f"applied to part of the pairs: {', '.join(partial)}", markup=False)
    if pairing:
        console.print(
            f"paired {pairing['paired']} prompts; unpaired baseline {pairing['unpaired_baseline']}, "
            f"candidate {pairing['unpaired_candidate']}; duplicates skipped {pairing['duplicates']}"
        )
    colour = {"drift": "red", "inconclusive": "yellow", "equivalent": "green"}[report["verdict"]]
    console.print(f"[bold {colour}]verdict: {report['verdict']}[/]")
    if report["verdict"] == "inconclusive" and report.get("pairs_needed"):
        console.print(f"about {report['pairs_needed']} pairs would likely decide (docs/scoring.md, Verdicts)")


def _value(value: float | None, kind: str) -> str:
    if value is None:
        return "–"
    return f"{value:.1%}" if kind == "binary" else f"{value:.3g}"
