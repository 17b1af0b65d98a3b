"""False alarms under continuous peeking, and detection delay, of the canary monitor's sequential test.

Simulates canary/pinned traffic on one binary dimension (e.g. refusal), looks at the data after every
batch, and compares the always-valid mSPRT (drift_pipeline.migration.canary) with a naive fixed-n two-proportion
z-test repeated at every look. Run: .venv/bin/python benchmarks/bench_sequential.py [--streams 1000]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np

from drift_pipeline.migration.canary import DEFAULT_MIN_N, DEFAULT_TAU, msprt_two_proportions


def naive_p(xp: int, n_p: int, xc: int, nc: int) -> float:
    """Two-sided two-proportion z-test p-value (what a dashboard 'significance' badge computes)."""
    pooled = (xp + xc) / (n_p + nc)
    var = pooled * (1 - pooled) * (1 / n_p + 1 / nc)
    if var <= 0:
        return 1.0
    z = (xc / nc - xp / n_p) / math.sqrt(var)
    return math.erfc(abs(z) / math.sqrt(2))


def simulate(
    p_pinned: float, p_canary: float, *, streams: int, looks: int, batch: int, share: float, alpha: float, seed: int
) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    n_c_step = int(batch * share)
    n_p_step = batch - n_c_step
    xc_all = rng.binomial(n_c_step, p_canary, size=(streams, looks)).cumsum(axis=1)
    xp_all = rng.binomial(n_p_step, p_pinned, size=(streams, looks)).cumsum(axis=1)
    msprt_alarm, naive_alarm, delays = 0, 0, []
    for s in range(streams):
        m_done = n_done = False
        for k in range(looks):
            nc, n_p = n_c_step * (k + 1), n_p_step * (k + 1)
            xc, xp = int(xc_all[s, k]), int(xp_all[s, k])
            if not m_done and msprt_two_proportions(xp, n_p, xc, nc, alpha=alpha).p_value <= alpha:
                m_done = True
                msprt_alarm += 1
                delays.append(nc)
            if not n_done and nc >= DEFAULT_MIN_N and naive_p(xp, n_p, xc, nc) <= alpha:
                n_done = True
                naive_alarm += 1
            if m_done and n_done:
                break
    return {
        "msprt_rate": msprt_alarm / streams,
        "naive_rate": naive_alarm / streams,
        "median_delay": statistics.median(delays) if delays else float("nan"),
        "p90_delay": float(np.percentile(delays, 90)) if delays else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--looks", type=int, default=200)
    parser.add_argument("--batch", type=int, default=100, help="requests between looks (both slices)")
    parser.add_argument("--share", type=float, default=0.2, help="canary share of traffic")
    parser.add_argument("--alpha", type=float, default=0.01)
    args = parser.parse_args()
    kw = dict(streams=args.streams, looks=args.looks, batch=args.batch, share=args.share, alpha=args.alpha)
    total = args.looks * args.batch
    print(
        f"{args.streams} simulated canaries, {args.looks} looks every {args.batch} requests "
        f"({total} requests, canary share {args.share:.0%}), alpha={args.alpha}, tau={DEFAULT_TAU}, "
        f"min n per arm={DEFAULT_MIN_N}"
    )
    t0 = time.perf_counter()
    print("\nfalse alarms under H0 (no shift), alarm at ANY look:")
    print(f"{'base rate':>10} {'mSPRT':>8} {'naive z at every look':>22}")
    for p in (0.02, 0.05, 0.20):
        r = simulate(p, p, seed=1, **kw)
        print(f"{p:>10.2f} {r['msprt_rate']:>8.3f} {r['naive_rate']:>22.3f}")
    print("\npower and detection delay (canary requests until the alarm) for a real shift:")
    print(f"{'pinned->canary':>15} {'mSPRT power':>12} {'median delay':>13} {'p90 delay':>10}")
    for p0, p1 in ((0.05, 0.08), (0.05, 0.10), (0.05, 0.15), (0.20, 0.25)):
        r = simulate(p0, p1, seed=2, **kw)
        print(f"{p0:>7.2f}->{p1:<6.2f} {r['msprt_rate']:>12.3f} {r['median_delay']:>13.0f} {r['p90_delay']:>10.0f}")
    print(f"\n({time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
