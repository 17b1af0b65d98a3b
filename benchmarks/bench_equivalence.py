"""Equivalence benchmarks on real outputs: false `equivalent` at the margin, pairs to reach `equivalent`,
and fleet-wide false incidents per night with and without FDR control.

All runs go through the production rule (`statistics.evaluate` -> `verdicts`) on per-pair tables built
from the real LLMDrift answers (`bench_power.corpus`: their measured refusal, length, reasoning,
formatting, tone and instruction-following values):

(a) a change exactly at the margin (refusal +delta; length +delta relative) is injected into the
    candidate; the share of runs called `equivalent` must stay <= alpha;
(b) an unchanged model: pinned-vs-pinned pairs, deterministic (identical answers) and nondeterministic
    (the replay noise of `bench_power.simulate`); the share of runs where every dimension is `equivalent`,
    per n, and the pairs each dimension needs (`verdicts.pairs_needed`);
(c) drift power and false alarms: `benchmarks/bench_power.py` (the same rule);
(d) a night of 1,000 tenants with no change at all: false drift verdicts (Holm per tenant) versus
    false platform incidents after Benjamini-Hochberg across the fleet (`fleet.platform_incidents`).

    .venv/bin/python benchmarks/bench_equivalence.py --runs 200
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from bench_power import DIMENSIONS, corpus, simulate

from drift_pipeline.detection import fleet, verdicts
from drift_pipeline.detection.scoring import specs_for
from drift_pipeline.detection.statistics import evaluate


def at_margin(features: pd.DataFrame, n: int, delta: float, rng: np.random.Generator) -> pd.DataFrame:
    """Pinned replays with refusal moved by exactly +delta and length by exactly +delta (relative)."""
    table = simulate(features, n, 0.0, rng)
    refusal = table["dimension"] == "refusal"
    base = table.loc[refusal, "baseline_value"].to_numpy()
    cand = base.copy()
    flip = rng.choice(np.flatnonzero(base == 0), size=round(delta * n), replace=False)
    cand[flip] = 1.0
    table.loc[refusal, "candidate_value"] = cand
    length = table["dimension"] == "length"
    b = table.loc[length, "baseline_value"].to_numpy()
    table.loc[length, "candidate_value"] = b / (1 - delta)  # symmetric relative change of exactly delta
    return table


def false_equivalence(features: pd.DataFrame, runs: int, n: int, delta: float, alpha: float) -> dict[str, float]:
    rng = np.random.default_rng(11)
    specs = specs_for(["refusal", "length"])
    calls = {"refusal": 0, "length": 0}
    for _ in range(runs):
        results, _ = evaluate(at_margin(features, n, delta, rng), specs, threshold=delta, alpha=alpha)
        for r in results:
            calls[r.name] += r.verdict == "equivalent"
    return {k: v / runs for k, v in calls.items()}


def unchanged(features: pd.DataFrame, n: int, runs: int, alpha: float, delta: float, noisy: bool) -> tuple[float, dict]:
    rng = np.random.default_rng(n)
    specs = specs_for(DIMENSIONS)
    all_equivalent = 0
    needed: dict[str, list[int]] = {}
    for _ in range(runs):
        table = simulate(features, n, 0.0, rng)
        if not noisy:
            table["candidate_value"] = table["baseline_value"]
        results, _ = evaluate(table, specs, threshold=delta, alpha=alpha)
        all_equivalent += verdicts.overall(r.verdict for r in results) == "equivalent"
        for r in results:
            if r.verdict == "inconclusive" and r.pairs_needed:
                needed.setdefault(r.name, []).append(r.pairs_needed)
    return all_equivalent / runs, {k: int(np.median(v)) for k, v in needed.items()}


def fleet_night(features: pd.DataFrame, tenants: int, n: int, alpha: float, q: float, delta: float) -> tuple[int, int]:
    rng = np.random.default_rng(7)
    specs = specs_for(DIMENSIONS)
    reports = []
    for t in range(tenants):
        results, _ = evaluate(simulate(features, n, 0.0, rng), specs, threshold=delta, alpha=alpha)
        reports.append({"tenant_id": f"t{t}", "agent_id": "a", "dimensions": [r.to_dict() for r in results]})
    from statsmodels.stats.multitest import multipletests

    holm_false = sum(any(d["drifted"] for d in r["dimensions"]) for r in reports)
    holm_significant = sum(
        any(d["p_adjusted"] < alpha for d in r["dimensions"] if d["p_adjusted"] is not None) for r in reports
    )
    p = [d["p_value"] for r in reports for d in r["dimensions"] if d["p_value"] is not None]
    bh_significant = int(multipletests(p, alpha=q, method="fdr_bh")[0].sum())
    return holm_false, len(fleet.platform_incidents(reports, q=q)), holm_significant, bh_significant


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--alpha", type=float, default=0.01)
    parser.add_argument("--margin", type=float, default=0.05)
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--fdr", type=float, default=0.05)
    args = parser.parse_args()
    started = time.perf_counter()
    features = corpus()
    print(f"corpus: {len(features)} real answers; alpha {args.alpha}, margin {args.margin}")

    print(f"\n(a) false 'equivalent' when the true change equals the margin ({args.runs} runs each; target <= alpha)")
    for n in (200, 1000, 4000):
        rates = false_equivalence(features, args.runs, n, args.margin, args.alpha)
        print(f"  n={n:>5}: " + ", ".join(f"{k} {v:.1%}" for k, v in rates.items()), flush=True)

    print(
        "\n(b) unchanged model: share of runs with every dimension 'equivalent'; median pairs needed by inconclusive ones"
    )
    for noisy in (False, True):
        label = "nondeterministic replay" if noisy else "deterministic (identical answers)"
        print(f"  {label}:")
        for n in (50, 100, 150, 200, 400, 800, 1600):
            share, needed = unchanged(features, n, max(10, args.runs // 10), args.alpha, args.margin, noisy)
            print(f"    n={n:>5}: all equivalent {share:6.1%}   pairs needed {needed}", flush=True)
    print(f"  planning (verdicts.plan): {verdicts.plan(args.margin, alpha=args.alpha)}")

    print("\n(c) drift power / false alarms under this rule: python benchmarks/bench_power.py")

    print(f"\n(d) one night, {args.tenants} tenants x {len(DIMENSIONS)} dimensions, no change anywhere (n=200 each)")
    holm_false, bh_false, holm_sig, bh_sig = fleet_night(features, args.tenants, 200, args.alpha, args.fdr, args.margin)
    print(
        f"  expected false drift verdicts (Holm per tenant, <= alpha each): <= {fleet.expected_false_incidents(args.tenants, args.alpha):.1f}"
    )
    print(f"  observed false drift verdicts (Holm per tenant): {holm_false}")
    print(f"  observed false platform incidents (Benjamini-Hochberg q={args.fdr} across the fleet): {bh_false}")
    print(f"  statistically significant alone (no practical bar): {holm_sig} tenants (Holm), {bh_sig} tests (BH)")
    print(f"took {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()
