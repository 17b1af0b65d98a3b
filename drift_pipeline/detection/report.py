"""The structured diff: the versioned JSON drift report and its self-contained HTML rendering."""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from drift_pipeline.detection.dimensions.base import PairContext
    from drift_pipeline.detection.statistics import DimensionResult, NoiseFloor

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
) -> dict[str, Any]:
    """The drift report dict (the schema of docs/architecture.md, "Drift report")."""
    from drift_pipeline.detection.verdicts import overall

    drifted = [r.name for r in results if r.drifted]
    near = [r.name for r in results if r.near_miss]
    tested = [r for r in results if r.p_value is not None]
    return {
        "schema_version": SCHEMA_VERSION,
        "tenant_id": tenant_id,
        "agent_id": agent_id,
        "baseline": baseline,
        "candidate": candidate,
        "n_pairs": len(contexts),
        "alpha": alpha,
        "threshold": threshold,
        "drift_detected": bool(drifted),
        # drift | equivalent | inconclusive: the rule of detection/verdicts.py, over the tested dimensions.
        "verdict": overall(r.verdict for r in tested),  # type: ignore[misc]
        "margin": threshold,
        "guarantee": guarantee(alpha, len(tested)),
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
    return f"{phrase}: {_fmt(entry['baseline_value'], entry['kind'])} → {_fmt(entry['candidate_value'], entry['kind'])}"


def applicability(
    results: Sequence[DimensionResult], not_applicable: Sequence[str], n_pairs: int
) -> dict[str, dict[str, Any]]:
    """Per dimension: on how many of the pairs it applied, and when it applies (never a silent zero)."""
    out = {r.name: {"applicable_pairs": r.n, "of": n_pairs} for r in results}
    for name in not_applicable:
        out[name] = {"applicable_pairs": 0, "of": n_pairs, "applies_when": _dimension_attr(name, "applies_when")}
    return out


def guarantee(alpha: float, tests: int) -> str:
    """The error rates a report's verdict comes with, in words (docs/scoring.md "Verdicts")."""
    return (
        f"drift: at most {alpha:g} chance of a false drift verdict across the {tests} tested dimensions "
        f"(Holm); equivalent: at most {alpha:g} chance of calling a change of at least the margin "
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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# --- HTML --------------------------------------------------------------------------------------------


def write_html(report: dict[str, Any], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report), encoding="utf-8")


def render_html(report: dict[str, Any]) -> str:
    """A single self-contained page (inline CSS, PNG plots as data URIs; no script, no CDN)."""
    e = html.escape
    verdict = report.get("verdict", "drift" if report["drift_detected"] else "inconclusive")
    colour = VERDICT_COLOURS.get(verdict, VERDICT_COLOURS["inconclusive"])
    title = f"{report['baseline']} → {report['candidate']}"
    summary = _summary_sentence(report)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Drift report: {e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Drift report: {e(title)}</h1>",
        f"<p class='verdict' style='background:{colour}'>{e(verdict.replace('_', ' ').upper())}</p>",
        f"<p>{e(summary)}</p>",
        _meta_table(report),
        "<h2>Dimensions</h2>",
        _dimension_table(report),
    ]
    for plot in (_effect_plot(report), _values_plot(report)):
        if plot:
            parts.append(f"<img alt='plot' src='data:image/png;base64,{plot}'>")
    parts.append("<h2>Most changed examples</h2>")
    parts.append(_examples(report))
    parts.append(f"<p class='small'>{e(_HOW_TO_READ)}</p></body></html>")
    return "\n".join(parts)


VERDICT_COLOURS = {"drift": "#c0392b", "inconclusive": "#d68910", "equivalent": "#1e8449"}

_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222;line-height:1.4}
table{border-collapse:collapse;margin:1em 0;width:100%}td,th{border:1px solid #ddd;padding:4px 8px;
font-size:14px;text-align:right}th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
.verdict{color:white;display:inline-block;padding:4px 12px;border-radius:4px;font-weight:bold}
.drift{background:#fdecea}.near{background:#fef5e7}img{max-width:100%;margin:1em 0}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:1em}.pair pre{white-space:pre-wrap;background:#f8f8f8;
padding:8px;font-size:13px;max-height:300px;overflow:auto}.small{color:#666;font-size:13px}
"""

_HOW_TO_READ = (
    "How to read: each dimension compares the same prompts answered by both versions, on one 0..1 scale "
    "(absolute rate change for yes/no dimensions, relative change for sizes). DRIFT: the change is "
    "significant after correction for testing many dimensions AND at least the alert threshold and the noise "
    "floor measured by replaying the pinned model against itself. EQUIVALENT: the 1 - 2 alpha interval of the "
    "change lies inside +/- the margin (the alert threshold): two one-sided tests, at most alpha chance of "
    "calling a real change of the margin equivalent. INCONCLUSIVE: neither; more pairs would likely decide."
)


def _all_dims(report: dict[str, Any]) -> list[dict[str, Any]]:
    return list(report["dimensions"]) + list(report.get("descriptive", []))


def _summary_sentence(report: dict[str, Any]) -> str:
    dims = {d["name"]: d for d in report["dimensions"]}
    n, margin = report["n_pairs"], report.get("margin", report["threshold"])
    if report.get("verdict") == "equivalent":
        return f"Equivalent within +/-{margin:g} on every tested dimension over {n} paired prompts."
    if not report["drift_detected"]:
        open_ = report.get("inconclusive_dimensions") or []
        needed = report.get("pairs_needed")
        tail = f" About {needed} pairs would likely decide." if needed else ""
        return (
            f"No drift shown over {n} paired prompts, but equivalence within +/-{margin:g} is not shown either "
            f"for {', '.join(open_) or 'the tested dimensions'}.{tail}"
        )
    bits = []
    for name in report.get("drifted_dimensions", []):
        d = dims[name]
        bits.append(f"{name} ({d.get('in_words') or in_words(d)})")
    return f"Behaviour changed on {report['n_pairs']} paired prompts: " + "; ".join(bits) + "."


def _fmt(value: float | None, kind: str) -> str:
    if value is None:
        return "–"
    return f"{value:.1%}" if kind == "binary" else f"{value:.3g}"


def _meta_table(report: dict[str, Any]) -> str:
    rows = [
        ("tenant / agent", f"{report.get('tenant_id') or '–'} / {report.get('agent_id') or '–'}"),
        ("pairs", report["n_pairs"]),
        ("alpha / correction", f"{report['alpha']} / {report.get('correction', 'holm')}"),
        ("alert threshold", report["threshold"]),
        ("noise floor pairs", report.get("noise_floor_pairs", 0) or "not measured"),
        ("not applicable", ", ".join(report.get("not_applicable", [])) or "–"),
        ("quarantined rows", report.get("quarantined", {}).get("count", 0)),
        ("generated", report.get("generated_at", "")),
    ]
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _dimension_table(report: dict[str, Any]) -> str:
    head = "<tr>" + "".join(
        f"<th>{h}</th>"
        for h in (
            "dimension", "baseline", "candidate", "effect", "CI (drift)", "CI (equivalence)", "p (adj.)", "test",
            "noise floor", "verdict",
        )
    )  # fmt: skip
    rows = [head + "</tr>"]
    for d in _all_dims(report):
        status = d.get("verdict") or ("drift" if d["drifted"] else "")
        status += " (near miss)" if d["near_miss"] else ""
        css = "drift" if d["drifted"] else ("near" if d.get("verdict") == "inconclusive" else "")
        ci = "–" if d["ci_low"] is None else f"[{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]"
        eq = "–" if d.get("equivalence_low") is None else f"[{d['equivalence_low']:+.3f}, {d['equivalence_high']:+.3f}]"
        p = "not tested" if d["p_value"] is None else f"{d['p_value']:.2g} ({d['p_adjusted']:.2g})"
        nf = "–" if d["noise_floor"] is None else f"{d['noise_floor']:.3g}"
        eff = "–" if d["effect"] is None else f"{d['effect']:+.3g}"
        cells = [
            d["name"],
            _fmt(d["baseline_value"], d["kind"]),
            _fmt(d["candidate_value"], d["kind"]),
            eff,
            ci,
            eq,
            p,
            d["test"] or "–",
            nf,
            status,
        ]
        rows.append(f"<tr class='{css}'>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    return "<table>" + "".join(rows) + "</table>"


def _examples(report: dict[str, Any]) -> str:
    if not report["examples"]:
        return "<p>No pair changed.</p>"
    e = html.escape
    out = []
    for ex in report["examples"]:
        sim = "" if ex.get("similarity") is None else f" · similarity {ex['similarity']:.2f}"
        out.append(
            f"<h3>{e(str(ex['pair_id']))}: {e(', '.join(ex['changed']))}{e(sim)}</h3>"
            f"<p><b>Prompt:</b> {e(ex['prompt'])}</p><div class='pair'>"
            f"<div><b>{e(report['baseline'])}</b><pre>{e(ex['baseline_text'])}</pre></div>"
            f"<div><b>{e(report['candidate'])}</b><pre>{e(ex['candidate_text'])}</pre></div></div>"
        )
    return "\n".join(out)


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # headless: the CLI and Dagster run without a display
    import matplotlib.pyplot as plt

    return plt


def _effect_plot(report: dict[str, Any]) -> str | None:
    """Each tested dimension's equivalence interval against the +/-margin band (and its noise floor)."""
    dims = [d for d in report["dimensions"] if d.get("equivalence_low") is not None]
    if not dims:
        return None
    plt = _pyplot()
    margin = report.get("margin", report["threshold"])
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(dims) + 1.4))
    ax.axvspan(-margin, margin, color="#1e8449", alpha=0.12, label=f"equivalence band +/-{margin:g}")
    ax.axvline(0, color="#555", linewidth=0.8)
    for i, d in enumerate(dims):
        colour = VERDICT_COLOURS.get(d.get("verdict", ""), "#7f8c8d")
        ax.plot([d["equivalence_low"], d["equivalence_high"]], [i, i], color=colour, linewidth=4, solid_capstyle="butt")
        ax.plot([d["effect"]], [i], "o", color="black", markersize=4)
        if d["noise_floor"] is not None and d["kind"] != "similarity":
            ax.plot([-d["noise_floor"], d["noise_floor"]], [i, i], "|", color="blue", markersize=12)
    ax.set_yticks(range(len(dims)), [f"{d['name']} ({d.get('verdict', '')})" for d in dims])
    ax.invert_yaxis()
    alpha = report["alpha"]
    ax.set_xlabel(f"effect with its {1 - 2 * alpha:.0%} interval (0..1: rate change, relative change, similarity)")
    ax.set_title("Inside the band: equivalent. Beyond it and significant: drift. Otherwise: inconclusive.")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), fontsize=8, frameon=False)  # below: never over a bar
    return _png(fig)


def _values_plot(report: dict[str, Any]) -> str | None:
    """Baseline vs candidate mean per dimension, in the dimension's own unit."""
    dims = [d for d in report["dimensions"] if d["baseline_value"] is not None and d["kind"] != "similarity"]
    if not dims:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(dims), figsize=(1.6 * len(dims) + 1, 2.8), squeeze=False)
    for ax, d in zip(axes[0], dims, strict=True):
        values = [d["baseline_value"], d["candidate_value"]]
        ax.bar([0, 1], values, color=["#5d6d7e", VERDICT_COLOURS.get(d.get("verdict", ""), "#2e86c1")])
        ax.set_xticks([0, 1], ["base", "cand"], fontsize=8)
        ax.set_title(d["name"], fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
    fig.suptitle(f"{report['baseline']} (base) vs {report['candidate']} (cand): mean per dimension", fontsize=10)
    fig.tight_layout()
    return _png(fig)
