"""Prompt tokens billed by the provider: a paired usage dimension (providers' infrastructure changes show up here first)."""

from __future__ import annotations

from drift_pipeline.detection.dimensions._usage import UsageDimension


class PromptTokens(UsageDimension):
    name = "prompt_tokens"
    field = "prompt_tokens"
    order = 92
    applies_when = "prompt_tokens on both sides"
    description = "prompt tokens billed by the provider"


DIMENSION = PromptTokens()
