"""Time to the first streamed token in milliseconds: a paired usage dimension (providers' infrastructure changes show up here first)."""

from __future__ import annotations

from drift_pipeline.detection.dimensions._usage import UsageDimension


class TimeToFirstToken(UsageDimension):
    name = "time_to_first_token"
    field = "ttft_ms"
    order = 91
    applies_when = "ttft_ms on both sides (streamed calls)"
    description = "time to the first streamed token in milliseconds"


DIMENSION = TimeToFirstToken()
