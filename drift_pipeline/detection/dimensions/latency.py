"""Latency in milliseconds (replay outcome or captured record): a paired usage dimension (providers' infrastructure changes show up here first)."""

from __future__ import annotations

from drift_pipeline.detection.dimensions._usage import UsageDimension


class Latency(UsageDimension):
    name = "latency"
    field = "latency_ms"
    order = 90
    applies_when = "latency_ms on both sides"
    description = "latency in milliseconds (replay outcome or captured record)"


DIMENSION = Latency()
