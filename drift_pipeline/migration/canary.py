"""Canary routing and live monitoring: sticky hashing of sessions and an always-valid sequential test.

Routing: a session goes to the candidate when `bucket(tenant, agent, migration, session) < share`. The
bucket is a deterministic hash in [0, 1), so every process routes a session the same way, and since the
share only grows, a session once on the candidate stays there. A caller that knows when a conversation
started passes `started_at`: the share in force at that moment decides, so a conversation that began on
the pinned model also stays there when the share grows later.

Monitoring: the canary slice is compared with the pinned slice on binary outcomes (refusal, error,
schema failure) after every batch of observations. Looking again and again at a fixed-n test inflates its
false-alarm rate, so we use the mixture sequential probability ratio test (mSPRT, Johari et al. 2017,
"Always valid inference") on the difference of the two proportions, with a normal mixing distribution
N(0, tau^2) on the effect. Its p-value is valid at any stopping time: the false-alarm rate holds however
often one peeks (see benchmarks/bench_sequential.py). Hand-written because no kept library in the
environment implements it (statsmodels, confseq and spotify-confidence are not installed); it is a
closed form of a few lines.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

DIMENSIONS = ("refusal", "error", "schema_failure")
DEFAULT_ALPHA = 0.01
DEFAULT_TAU = 0.03  # the size of shift we most want to catch fast (3 percentage points)
DEFAULT_MIN_N = 100  # per arm: below this the normal approximation is too rough to trust
_SCALE = float(2**64)


def bucket(tenant_id: str, agent_id: str, migration_id: int, session_key: str) -> float:
    """Deterministic position of a session in [0, 1) for one migration (same in every process)."""
    digest = hashlib.sha256(f"{tenant_id}|{agent_id}|{migration_id}|{session_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def share_at(history: Sequence[tuple[datetime, float]], when: datetime | None) -> float:
    """The canary share in force at `when` (the latest share when `when` is None; 0 before the canary)."""
    if not history:
        return 0.0
    if when is None:
        return history[-1][1]
    i = bisect.bisect_right([since for since, _ in history], when)
    return history[i - 1][1] if i else 0.0


def routes_to_canary(
    tenant_id: str,
    agent_id: str,
    migration_id: int,
    session_key: str,
    history: Sequence[tuple[datetime, float]],
    started_at: datetime | None = None,
) -> bool:
    return bucket(tenant_id, agent_id, migration_id, session_key) < share_at(history, started_at)


@dataclass(frozen=True)
class SequentialResult:
    """One dimension's always-valid test, canary vs pinned slice."""

    dimension: str
    n_pinned: int
    n_canary: int
    rate_pinned: float | None
    rate_canary: float | None
    effect: float | None  # canary rate - pinned rate
    log_likelihood_ratio: float
    p_value: float  # always-valid p-value at this look: min(1, 1 / Lambda)
    alpha: float
    breached: bool  # significant AND in the harmful direction (candidate worse)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def msprt_two_proportions(
    x_pinned: int,
    n_pinned: int,
    x_canary: int,
    n_canary: int,
    *,
    alpha: float = DEFAULT_ALPHA,
    tau: float = DEFAULT_TAU,
    min_n: int = DEFAULT_MIN_N,
    dimension: str = "rate",
) -> SequentialResult:
    """mSPRT for H0: equal rates, on the normal approximation of the difference of proportions.

    Lambda = sqrt(V / (V + tau^2)) * exp(theta^2 tau^2 / (2 V (V + tau^2))), with theta the observed
    difference and V its variance under H0 (pooled rate). Reject when Lambda >= 1 / alpha.
    """
    _check_counts(x_pinned, n_pinned, x_canary, n_canary)
    rate_p = x_pinned / n_pinned if n_pinned else None
    rate_c = x_canary / n_canary if n_canary else None
    effect = rate_c - rate_p if rate_p is not None and rate_c is not None else None
    log_lr = 0.0
    if effect is not None and min(n_pinned, n_canary) >= min_n:
        pooled = (x_pinned + x_canary) / (n_pinned + n_canary)
        var = pooled * (1 - pooled) * (1 / n_pinned + 1 / n_canary)
        if var > 0:
            tau2 = tau * tau
            log_lr = 0.5 * math.log(var / (var + tau2)) + effect * effect * tau2 / (2 * var * (var + tau2))
    p_value = min(1.0, math.exp(-log_lr))
    breached = p_value <= alpha and effect is not None and effect > 0
    return SequentialResult(dimension, n_pinned, n_canary, rate_p, rate_c, effect, log_lr, p_value, alpha, breached)


def evaluate(
    counts: Mapping[str, Mapping[str, Sequence[int]]],
    *,
    alpha: float = DEFAULT_ALPHA,
    tau: float = DEFAULT_TAU,
    min_n: int = DEFAULT_MIN_N,
) -> list[SequentialResult]:
    """Test every dimension; Bonferroni across dimensions keeps the family-wise false-alarm rate <= alpha.

    `counts[dimension] = {"pinned": [events, n], "canary": [events, n]}`.
    """
    per_dim = alpha / max(1, len(counts))
    results = []
    for name in sorted(counts):
        arms = counts[name]
        (xp, np_), (xc, nc) = arms.get("pinned", (0, 0)), arms.get("canary", (0, 0))
        results.append(
            msprt_two_proportions(
                int(xp), int(np_), int(xc), int(nc), alpha=per_dim, tau=tau, min_n=min_n, dimension=name
            )
        )
    return results


def add_observations(
    counts: Mapping[str, Mapping[str, Sequence[int]]], observations: Sequence[Mapping[str, Any]]
) -> dict[str, dict[str, list[int]]]:
    """Fold observations `{"route": "canary"|"pinned", "refusal": bool, ...}` into cumulative counts.

    A dimension missing from an observation is not counted for it (unknown is not "no event").
    """
    merged = {d: {arm: list(v) for arm, v in arms.items()} for d, arms in counts.items()}
    for i, obs in enumerate(observations):
        route = obs.get("route")
        if route not in ("canary", "pinned"):
            from drift_pipeline.errors import InvalidInputError

            raise InvalidInputError(f"observation #{i + 1} has route {route!r}: use 'canary' or 'pinned'")
        for dim in DIMENSIONS:
            if dim in obs and obs[dim] is not None:
                arm = merged.setdefault(dim, {}).setdefault(route, [0, 0])
                arm[0] += int(bool(obs[dim]))
                arm[1] += 1
    return merged


def _check_counts(*values: int) -> None:
    x_p, n_p, x_c, n_c = values
    if min(values) < 0 or x_p > n_p or x_c > n_c:
        from drift_pipeline.errors import InvalidInputError

        raise InvalidInputError(f"invalid counts (events {x_p}/{n_p} pinned, {x_c}/{n_c} canary)")
