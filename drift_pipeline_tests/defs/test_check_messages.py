"""The run-level words of the drift checks: the block message and the tenant's verdict (defs/detection/checks.py)."""

from __future__ import annotations

import re
from typing import Any

from drift_pipeline.defs.detection.checks import block_message, tenant_verdict
from drift_pipeline.detection.expectations import check_report


def _report(agent: str, effect: float, p_adjusted: float, *, drifted: bool) -> dict[str, Any]:
    dims = [
        {"name": "similarity", "kind": "similarity", "effect": effect, "p_adjusted": p_adjusted, "drifted": drifted},
        {"name": "refusal", "kind": "binary", "effect": 0.0, "p_adjusted": 1.0, "drifted": False},
    ]
    for d in dims:
        d.update(
            noise_floor=0.0, near_miss=False, equivalence_low=d["effect"] - 0.01, equivalence_high=d["effect"] + 0.01
        )
    return {"tenant_id": "acme", "agent_id": agent, "alpha": 0.01, "threshold": 0.05, "dimensions": dims}


def test_a_drift_reads_as_a_block_with_signed_rounded_figures() -> None:
    drifted = check_report(_report("extractor", -0.74712643678, 0.0004, drifted=True))
    clean = check_report(_report("support", 0.001, 1.0, drifted=False))
    message = block_message([clean, drifted])
    assert message == (
        "blocked by drift_within_threshold for acme/extractor: similarity -0.747 (margin ±0.05, p_adj 0.0004)"
    )
    assert tenant_verdict([clean, drifted]) == "DRIFT"
    assert block_message([clean]) is None and tenant_verdict([clean]) == "EQUIVALENT"
    assert tenant_verdict([]) == "no report"
    assert not re.search(r"\d{5,}", message)  # no float noise
