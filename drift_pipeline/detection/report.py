"""The structured diff: the versioned JSON drift report and its self-contained HTML rendering."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from drift_pipeline import files

if TYPE_CHECKING:
    from drift_pipeline.detection.dimensions.base import PairContext
    from drift_pipeline.detection.statistics import DimensionResult, NoiseFloor

# A stored drift report's `role`: about the version the manifest pins, or about a proposed one.
PINNED, CANDIDATE = "pinned", "candidate"
SCHEMA_VERSION = "2.0"  # 2.0: three-way `verdict` with equivalence intervals
# A pair "changed" on a continuous dimension when its own practical change reaches this (or the threshold).
EXAMPLE_CHANGE = 0.2
EXAMPLE_TEXT_CHARS = 2000


def build_report(
    results: Sequence[DimensionResult],
    not_applicable: Sequence[str],
    per_pair: pd.DataFrame,
    contexts: Sequence[PairContext],
    *,
    baseline: str,
    candidate: str,
    threshold: float,
    alpha: float,
    correction: str = "holm",
    noise_floor: NoiseFloor | None = None,
    tenant_id: str | None = None,
    agent_id: str | None = None,
    quarantined: Sequence[dict[str, str]] = (),
    n_examples: int = 10,
    distribution: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The drift report dict (the schema of docs/architecture.md, "Drift report")."""
    from drift_pipeline.detection.verdicts import overall

    drifted = [r.name for r in results if r.drifted]
    near = [r.name for r in results if r.near_miss]
    tested = [r for r in results if r.p_value is not None]
    # The distribution test can only add a drift (it shows a difference, never equivalence).
    shifted = bool(distribution and distribution.get("drift"))
    family = len(tested) + (1 if distribution and distribution.get("applicable") else 0)
    return {
        "schema_version": SCHEMA_VERSION,
        "tenant_id": tenant_id,
        "agent_id": agent_id,
        "baseline": baseline,
        "candidate": candidate,
        "n_pairs": len(contexts),
        "alpha": alpha,
        "threshold": threshold,
        "drift_detected": bool(drifted) or shifted,
        # drift | equivalent | inconclusive: the rule of detection/verdicts.py, over the tested dimensions.
        "verdict": "drift" if shifted else overall(r.verdict for r in tested),  # type: ignore[misc]
        "margin": threshold,
        "guarantee": guarantee(alpha, family),
        "drifted_dimensions": drifted,
        "equivalent_dimensions": [r.name for r in tested if r.verdict == "equivalent"],
        "inconclusive_dimensions": [r.name for r in tested if r.verdict == "inconclusive"],
        "near_miss_dimensions": near,
        "pairs_needed": max((r.pairs_needed for r in tested if r.pairs_needed), default=None),
        "not_applicable": list(not_applicable),
        "applicability": applicability(results, not_applicable, len(contexts)),
        "correction": correction,
        "noise_floor_pairs": noise_floor.n_pairs if noise_floor else 0,
        "quarantined": {"count": len(quarantined), "items": list(quarantined)[:100]},
        # Every entry of `dimensions` was tested (numeric p_adjusted); a dimension with no reference to
        # test against (similarity without a noise floor) is reported under `descriptive` instead.
        "dimensions": [_entry(r) for r in results if r.p_value is not None],
        "descriptive": [_entry(r) for r in results if r.p_value is None],
        "distribution": distribution or {"applicable": False, "reason": "not run", "drift": False},
        "examples": most_changed_examples(results, per_pair, contexts, threshold, n_examples),
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _entry(result: DimensionResult) -> dict[str, Any]:
    entry = result.to_dict()
    entry["in_words"] = in_words(entry)
    return entry


def _dimension_attr(name: str, attr: str) -> str:
    from drift_pipeline.detection.dimensions import all_dimensions

    found = next((d for d in all_dimensions() if d.name == name), None)
    return str(getattr(found, attr, "")) if found else ""


def in_words(entry: dict[str, Any]) -> str:
    """The change in words, e.g. "gives the decision asked for: 98.0% → 23.0%"."""
    phrase = _dimension_attr(entry["name"], "phrase") or entry["name"]
    return f"{phrase}: {fmt_value(entry['baseline_value'], entry['kind'])} → {fmt_value(entry['candidate_value'], entry['kind'])}"


def applicability(
    results: Sequence[DimensionResult], not_applicable: Sequence[str], n_pairs: int
) -> dict[str, dict[str, Any]]:
    """Per dimension: on how many of the pairs it applied, and when it applies (never a silent zero)."""
    out = {r.name: {"applicable_pairs": r.n, "of": n_pairs} for r in results}
    for name in not_applicable:
        out[name] = {"applicable_pairs": 0, "of": n_pairs, "applies_when": _dimension_attr(name, "applies_when")}
    return out


def fmt_value(value: float | None, kind: str) -> str:
    if value is None:
        return "–"
    return f"{value:.1%}" if kind == "binary" else f"{value:.3g}"


def guarantee(alpha: float, tests: int) -> str:
    """The error rates a report's verdict comes with, in words (docs/scoring.md "Verdicts")."""
    return (
        f"drift: at most {alpha:g} chance of a false drift verdict across the {tests} tests "
        f"(dimensions and distribution test, Holm); equivalent: at most {alpha:g} chance of calling a change of at least the margin "
        "equivalent (TOST, intersection-union over dimensions)"
    )


def most_changed_examples(
    results: Sequence[DimensionResult],
    per_pair: pd.DataFrame,
    contexts: Sequence[PairContext],
    threshold: float,
    n: int,
) -> list[dict[str, Any]]:
    """Pairs ranked by changes on drifted dimensions, then on all dimensions, then by dissimilarity."""
    if n <= 0 or per_pair.empty:
        return []
    kinds = {r.name: r for r in results}
    rows = per_pair[per_pair["dimension"].isin(list(kinds))].dropna(subset=["baseline_value", "candidate_value"])
    changed: dict[str, list[str]] = {}
    for row in rows.itertuples(index=False):
        if _pair_changed(kinds[row.dimension], row.baseline_value, row.candidate_value, threshold):
            changed.setdefault(row.pair_id, []).append(row.dimension)
    sims = rows[rows["kind"] == "similarity"].set_index("pair_id")["candidate_value"].to_dict()
    drifted = {r.name for r in results if r.drifted}
    by_id = {c.pair_id: c for c in contexts}

    def rank(pid: str) -> tuple[int, int, float]:
        names = changed[pid]
        return (-sum(x in drifted for x in names), -len(names), sims.get(pid, 1.0))

    out = []
    for pid in sorted(changed, key=rank)[:n]:
        ctx = by_id[pid]
        out.append(
            {
                "pair_id": pid,
                "prompt": ctx.prompt[:EXAMPLE_TEXT_CHARS],
                "baseline_text": ctx.baseline_text[:EXAMPLE_TEXT_CHARS],
                "candidate_text": ctx.candidate_text[:EXAMPLE_TEXT_CHARS],
                "changed": changed[pid],
                "similarity": sims.get(pid),
            }
        )
    return out


def _pair_changed(result: DimensionResult, base: float, cand: float, threshold: float) -> bool:
    if result.kind == "binary":
        return base != cand
    if result.kind == "similarity":
        return 1.0 - cand >= max(threshold, EXAMPLE_CHANGE)
    if base == cand:
        return False
    from drift_pipeline.detection.dimensions import get_dimension

    span = get_dimension(result.name).span
    scale = span or max(abs(base), abs(cand))
    return abs(cand - base) / scale >= max(threshold, EXAMPLE_CHANGE)


def write_json(report: dict[str, Any], path: str | Path) -> None:
    """Owner-only and atomic (`files.write_private`): a report quotes tenant prompts and responses."""
    files.write_private(path, (json.dumps(report, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


# --- HTML --------------------------------------------------------------------------------------------


def write_html(report: dict[str, Any], path: str | Path) -> None:
    """The HTML page a person reads (`report_html`), owner-only."""
    files.write_private(Path(path), render_html(report).encode("utf-8"))


def render_html(report: dict[str, Any]) -> str:
    from drift_pipeline.detection.report_html import render_html as render

    return render(report)
