"""The drift report as an HTML page a person would rather look at than read: verdict first, plots, the
most changed examples."""

from __future__ import annotations

import base64
import html
import io
from typing import Any

from drift_pipeline.detection.report import fmt_value as _fmt
from drift_pipeline.detection.report import in_words


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
    shift = report.get("distribution") or {}
    if shift.get("drift"):
        bits.append(
            f"response distribution (paired MMD p = {shift['p_value']:.2g}, adjusted {shift['p_adjusted']:.2g})"
        )
    return f"Behaviour changed on {report['n_pairs']} paired prompts: " + "; ".join(bits) + "."


def _meta_table(report: dict[str, Any]) -> str:
    rows = [
        ("tenant / agent", f"{report.get('tenant_id') or '–'} / {report.get('agent_id') or '–'}"),
        ("pairs", report["n_pairs"]),
        ("alpha / correction", f"{report['alpha']} / {report.get('correction', 'holm')}"),
        ("alert threshold", report["threshold"]),
        ("noise floor pairs", report.get("noise_floor_pairs", 0) or "not measured"),
        ("not applicable", ", ".join(report.get("not_applicable", [])) or "–"),
        ("distribution test", _distribution_line(report.get("distribution") or {})),
        ("embeddings", report.get("embedding_backend") or "–"),
        ("quarantined rows", report.get("quarantined", {}).get("count", 0)),
        ("generated", report.get("generated_at", "")),
    ]
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _distribution_line(shift: dict[str, Any]) -> str:
    if not shift.get("applicable"):
        return f"not run ({shift.get('reason', 'not run')})"
    outcome = "difference shown" if shift["drift"] else "no difference shown (this is not equivalence)"
    return (
        f"{outcome}: statistic {shift['statistic']:.3g}, p {shift['p_value']:.2g} (adj. {shift['p_adjusted']:.2g}), "
        f"n {shift['n']}, {shift['changed_pairs']} changed pairs, {shift['permutations']} permutations"
    )


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
