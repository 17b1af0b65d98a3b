"""The logprob tripwire: on the real offline model (every provider-side variant fires it, the pinned model
does not), and on a real local OpenAI-compatible HTTP server with and without logprobs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from drift_pipeline.detection import tripwire
from drift_pipeline.detection.offline import variants
from drift_pipeline.detection.replay import ReplayTarget
from drift_pipeline.errors import InvalidInputError
from drift_pipeline_tests.plugins.providers import FakeOpenAI

OFFLINE = ReplayTarget(variants.MODEL_ID, "offline", {})


def test_distance_bounds_tokens_that_left_the_top_k() -> None:
    ref = [{"Rome": -0.1, "The": -2.0, "It": -3.0}, {"4": -0.5}]
    now = [{"Rome": -0.1, "The": -2.0, "Milan": -2.5}, {"4": -0.5}]
    # "It" left today's top-3: it is at most today's floor (-2.5); "Milan" entered: at most -3.0 before.
    assert tripwire.distance(ref, now) == [pytest.approx(0.5), 0.0]
    assert tripwire.distance(ref, ref) == [0.0, 0.0]
    assert tripwire.distance([{}], [{"a": -1.0}]) == [float("inf")]
    with pytest.raises(InvalidInputError):
        tripwire.distance(ref, now[:1])


def test_tripwire_fires_on_every_offline_variant_and_not_on_the_pinned_model(offline_model: Any, home: Path) -> None:
    variants.set_variant(variants.MODEL_ID, "base")
    reference = tripwire.measure_reference(OFFLINE, runs=2)
    assert reference.available and reference.noise < tripwire.MIN_TOLERANCE
    assert all(len(lp) == tripwire.TOP_K for lp in reference.logprobs)
    pinned, _ = tripwire.check(reference, OFFLINE)
    assert not pinned.fired and pinned.distance < reference.tolerance
    assert pinned.prompt_tokens > 0 and pinned.completion_tokens == len(tripwire.TRIPWIRE_PROMPTS)
    changed = [v for v in variants.VARIANTS if v != variants.DEFAULT_VARIANT]
    assert {"int5-silent", "safety-silent", "decoding-silent"} <= set(changed)
    for name in changed:
        variants.set_variant(variants.MODEL_ID, name)
        verdict, _ = tripwire.check(reference, OFFLINE)
        assert verdict.fired, (name, verdict.reason)
        assert verdict.distance > 10 * reference.tolerance, (name, verdict.reason)
    variants.set_variant(variants.MODEL_ID, "base")
    assert not tripwire.check(reference, OFFLINE)[0].fired  # back to the pinned variant: quiet again


def test_openai_compatible_server_with_logprobs(fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_OPENAI_KEY", "sk-test")
    target = ReplayTarget("llm-1", "openai", {"api_base": fake_openai.api_base, "api_key_env": "FAKE_OPENAI_KEY"})
    fake_openai.logprobs = {"Rome": -0.05, "The": -3.2, "Milan": -4.0, "It": -5.5, "Roma": -6.0, "A": -7.0}
    reference = tripwire.measure_reference(target, prompts=["capital of Italy?", "3 + 4 ="])
    assert reference.available and reference.noise == 0.0 and reference.tolerance == tripwire.MIN_TOLERANCE
    assert reference.logprobs[0] == {"Rome": -0.05, "The": -3.2, "Milan": -4.0, "It": -5.5, "Roma": -6.0}
    asked = [b for b in fake_openai.bodies if b.get("logprobs")]
    assert asked and all(b["max_tokens"] == 1 and b["top_logprobs"] == tripwire.TOP_K for b in asked)
    same, cost = tripwire.check(reference, target, prompts=["capital of Italy?", "3 + 4 ="])
    assert not same.fired and cost.prompt_tokens == 2 and cost.completion_tokens == 2
    fake_openai.logprobs = {**fake_openai.logprobs, "Rome": -0.2}  # a fine-tuning step moves one number a bit
    moved, _ = tripwire.check(reference, target, prompts=["capital of Italy?", "3 + 4 ="])
    assert moved.fired and moved.distance == pytest.approx(0.15) and moved.moved_prompts == [0, 1]


def test_server_without_logprobs_is_reported_unavailable(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_OPENAI_KEY", "sk-test")
    target = ReplayTarget("llm-1", "openai", {"api_base": fake_openai.api_base, "api_key_env": "FAKE_OPENAI_KEY"})
    reference = tripwire.measure_reference(target, prompts=["ping"])
    assert not reference.available and "returned no logprobs" in reference.reason
    with pytest.raises(tripwire.LogprobsUnavailable):
        tripwire.check(reference, target, prompts=["ping"])
    assert tripwire.TripwireReference.from_dict(reference.to_dict()) == reference
    with pytest.raises(InvalidInputError):
        tripwire.TripwireReference.from_dict({"model_id": "x", "available": True, "bogus": 1})
