"""Completion tokens billed by the provider: a paired usage dimension (providers' infrastructure changes show up here first)."""

from __future__ import annotations

from drift_pipeline.detection.dimensions._usage import UsageDimension


class CompletionTokens(UsageDimension):
    name = "completion_tokens"
    field = "completion_tokens"
    order = 93
    applies_when = "completion_tokens on both sides"
    description = "completion tokens billed by the provider"


DIMENSION = CompletionTokens()
