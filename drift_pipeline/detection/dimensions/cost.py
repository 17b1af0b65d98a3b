"""Cost of the call in US dollars: a paired usage dimension (providers' infrastructure changes show up here first)."""

from __future__ import annotations

from drift_pipeline.detection.dimensions._usage import UsageDimension


class Cost(UsageDimension):
    name = "cost"
    field = "cost_usd"
    order = 94
    applies_when = "cost_usd on both sides"
    description = "cost of the call in US dollars"


DIMENSION = Cost()
