"""Sample-size curve: power to detect a refusal-rate shift, and false-alarm rate, versus paired sample size.

Controlled shifts are injected into REAL outputs (the LLMDrift answers of four GPT versions, ~4400
texts). Each simulated run draws n real answers as the pinned model's outputs; the candidate replays
them with realistic nondeterminism (2% of answers replaced by another real answer of the same refusal
status, and refusal status flipping both ways at 0.5% each, which changes nothing on average), and
under the alternative a further `--shift` of the answers turn into real refusals. Every run goes
through the production verdict (`statistics.evaluate`: all text dimensions tested, Holm at alpha,
threshold, near-miss rules); power = share of runs where `refusal` drifted, false alarms = share of
null runs where ANY dimension drifted.

    .venv/bin/python benchmarks/bench_power.py --runs 300
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from drift_pipeline.detection.dimensions import PairContext, get_dimension
from drift_pipeline.detection.scoring import specs_for
from drift_pipeline.detection.statistics import evaluate

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "llmdrift"
DIMENSIONS = ["refusal", "length", "reasoning", "formatting", "tone", "instruction_following"]


def corpus() -> pd.DataFrame:
    """One row per real answer with its per-response dimension values."""
    frames = [pd.read_csv(DATA / f) for f in ("SENSITIVEQ_EVAL.csv", "PRIME_FULL_EVAL.csv")]
    raw = pd.concat(frames, ignore_index=True)
    rows = []
    for query, answer in zip(raw["query"].fillna(""), raw["answer"].fillna("").astype(str), strict=True):
        ctx = PairContext("x", str(query), answer, answer)
        rows.append({name: get_dimension(name).value(answer, None, ctx) for name in DIMENSIONS})
    return pd.DataFrame(rows)


def simulate(features: pd.DataFrame, n: int, shift: float, rng: np.random.Generator) -> pd.DataFrame:
    """The long per-pair table of one simulated comparison."""
    refusals = np.flatnonzero(features["refusal"].to_numpy() == 1)
    answers = np.flatnonzero(features["refusal"].to_numpy() == 0)
    base = rng.integers(0, len(features), n)
    cand = base.copy()
    is_ref = features["refusal"].to_numpy()[base] == 1
    swap = rng.random(n) < 0.02  # nondeterministic rewording, same refusal status
    cand[swap & is_ref] = rng.choice(refusals, int(np.sum(swap & is_ref)))
    cand[swap & ~is_ref] = rng.choice(answers, int(np.sum(swap & ~is_ref)))
    flip = rng.random(n) < 0.005 / np.where(is_ref, max(is_ref.mean(), 1e-9), max(1 - is_ref.mean(), 1e-9))
    cand[flip & is_ref] = rng.choice(answers, int(np.sum(flip & is_ref)))
    cand[flip & ~is_ref] = rng.choice(refusals, int(np.sum(flip & ~is_ref)))
    if shift:
        inject = ~is_ref & ~flip & (rng.random(n) < shift / max(1 - is_ref.mean(), 1e-9))
        cand[inject] = rng.choice(refusals, int(np.sum(inject)))
    frames = []
    for name in DIMENSIONS:
        values = features[name].to_numpy(dtype=float)
        frames.append(
            pd.DataFrame(
                {
                    "pair_id": np.arange(n),
                    "dimension": name,
                    "baseline_value": values[base],
                    "candidate_value": values[cand],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def rates(features: pd.DataFrame, n: int, runs: int, shift: float, threshold: float, alpha: float, seed: int):
    rng = np.random.default_rng(seed)
    specs = specs_for(DIMENSIONS)
    power = alarms = 0
    for _ in range(runs):
        results, _ = evaluate(simulate(features, n, shift, rng), specs, threshold=threshold, alpha=alpha)
        drifted = {r.name for r in results if r.drifted}
        power += "refusal" in drifted
        alarms += bool(drifted)
    return power / runs, alarms / runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--shift", type=float, default=0.03)
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.02, 0.03])
    parser.add_argument("--alpha", type=float, default=0.01)
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 400, 600, 800, 1000, 1200, 1600, 2000, 3000])
    args = parser.parse_args()
    started = time.perf_counter()
    features = corpus()
    print(f"corpus: {len(features)} real answers, refusal rate {features['refusal'].mean():.1%}")
    print(f"shift +{args.shift:.0%} refusal, alpha {args.alpha} (Holm over {len(DIMENSIONS)} dims), {args.runs} runs")
    print(f"{'n':>6} " + " ".join(f"{'power@t=' + str(t):>13} {'false@t=' + str(t):>13}" for t in args.thresholds))
    for n in args.sizes:
        cells = []
        for t in args.thresholds:
            power, _ = rates(features, n, args.runs, args.shift, t, args.alpha, seed=n)
            _, false_alarms = rates(features, n, args.runs, 0.0, t, args.alpha, seed=n + 1)
            cells.append(f"{power:13.1%} {false_alarms:13.1%}")
        print(f"{n:>6} " + " ".join(cells), flush=True)
    print(f"took {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()
