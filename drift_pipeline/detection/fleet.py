"""Fleet-wide false alarms: what each tenant's alpha adds up to in a night, and FDR control for the platform.

Each tenant agent's verdict stays its own: Holm within its report gives at most `alpha` chance of a false
drift verdict per tenant agent and comparison. Summed over a fleet, the platform's on-call stream then
carries up to `tenant_agents x alpha` false incidents a night in expectation (`expected_false_incidents`:
10 for 1,000 tenant agents at alpha 0.01). `platform_incidents` is the fleet-level stream instead:
Benjamini-Hochberg at level q over every tested (tenant, agent, dimension) p-value of the night, keeping
those that are also practically beyond their drift bar. Guarantee: among the incidents it raises, the
expected share of false ones is at most q when the tests are independent or positively dependent (separate
tenants' traffic is); `method="by"` (Benjamini-Yekutieli) holds under any dependence, with less power.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from drift_pipeline.errors import InvalidInputError


def expected_false_incidents(tenant_agents: int, alpha: float) -> float:
    """Upper bound of the expected false drift verdicts per night when each tenant agent is tested at alpha."""
    return tenant_agents * alpha


def platform_incidents(
    reports: Iterable[Mapping[str, Any]], *, q: float = 0.05, method: Literal["bh", "by"] = "bh"
) -> list[dict[str, Any]]:
    """The (tenant, agent, dimension) changes the platform team should see, FDR-controlled at `q`."""
    from statsmodels.stats.multitest import multipletests

    if not 0 < q < 1:
        raise InvalidInputError(f"the false-discovery rate must be in (0, 1), got {q}")
    rows = [
        {"tenant_id": r.get("tenant_id"), "agent_id": r.get("agent_id"), **d}
        for r in reports
        for d in r.get("dimensions", [])
        if d.get("p_value") is not None
    ]
    if not rows:
        return []
    reject, adjusted, _, _ = multipletests([row["p_value"] for row in rows], alpha=q, method=f"fdr_{method}")
    incidents = []
    for row, keep, p_fdr in zip(rows, reject, adjusted, strict=True):
        bar = max(
            row.get("threshold") or 0.0, (row.get("noise_floor") or 0.0) if row.get("kind") != "similarity" else 0.0
        )
        if keep and (row.get("practical_effect") or 0.0) >= bar:
            incidents.append({**row, "p_fdr": float(p_fdr)})
    return incidents
