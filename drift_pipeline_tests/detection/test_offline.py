"""The offline provider: real SmolLM2 generation through litellm, batching, variants, registration, CLI."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from drift_pipeline.detection.offline import generation, model, variants
from drift_pipeline.detection.offline import provider as offline_provider
from drift_pipeline.errors import NotFoundError

MODEL = f"offline/{variants.MODEL_ID}"
PROMPTS = ["Name three primary colors.", "What is the capital of France?", "Write a haiku about rain."]


def _ask(prompt: str, **kwargs) -> object:
    import litellm

    params = {"temperature": 0, "seed": 1, "max_tokens": 16, **kwargs}
    return litellm.completion(model=MODEL, messages=[{"role": "user", "content": prompt}], **params)


@pytest.mark.slow
def test_batched_async_generation_equals_unbatched_greedy(home, offline_model) -> None:
    import litellm

    single = [_ask(p) for p in PROMPTS]
    r = single[0]
    assert r.model == variants.MODEL_ID
    assert r.system_fingerprint == variants.VARIANTS["base"].fingerprint
    _, tokenizer = model.load_base()
    rendered = generation.render_prompt([{"role": "user", "content": PROMPTS[0]}], variants.VARIANTS["base"])
    assert r.usage.prompt_tokens == len(tokenizer(rendered, add_special_tokens=False).input_ids)
    assert 0 < r.usage.completion_tokens <= 16
    assert all(s.choices[0].message.content for s in single)

    async def together() -> tuple[list[str], list[int]]:
        rs = await asyncio.gather(
            *(
                litellm.acompletion(
                    model=MODEL, messages=[{"role": "user", "content": p}], temperature=0, seed=1, max_tokens=16
                )
                for p in PROMPTS
            )
        )
        return [x.choices[0].message.content for x in rs], offline_model.batcher().batch_sizes

    batched, sizes = asyncio.run(together())
    assert sizes == [len(PROMPTS)]  # one generate() call for the three concurrent requests
    assert batched == [s.choices[0].message.content for s in single]


@pytest.mark.slow
def test_max_tokens_seed_and_silent_variant(home, offline_model) -> None:
    short = _ask(PROMPTS[2], max_tokens=3)
    assert short.choices[0].finish_reason == "length" and short.usage.completion_tokens == 3

    first = _ask(PROMPTS[2], temperature=0.9, seed=5, max_tokens=6).choices[0].message.content
    assert _ask(PROMPTS[2], temperature=0.9, seed=5, max_tokens=6).choices[0].message.content == first

    base = _ask(PROMPTS[1], max_tokens=3)
    variants.set_variant(variants.MODEL_ID, "safety-silent")
    silent = _ask(PROMPTS[1], max_tokens=3)
    assert silent.model == base.model and silent.system_fingerprint == base.system_fingerprint
    assert silent.usage.prompt_tokens > base.usage.prompt_tokens  # the injected safety prompt
    variants.set_variant(variants.MODEL_ID, "safety-v1")
    assert _ask(PROMPTS[1], max_tokens=3).system_fingerprint != base.system_fingerprint


def test_variant_defaults_and_prompt_injection(home, monkeypatch) -> None:
    monkeypatch.setattr(offline_provider, "render_prompt", lambda messages, variant, tools=None: variant.name)
    variants.set_variant(variants.MODEL_ID, "decoding-v2")
    job, served = offline_provider._build_job(variants.MODEL_ID, [], {})
    assert job.max_tokens == 64 and job.key.repetition_penalty == 1.3 and not job.key.sample
    job, _ = offline_provider._build_job(variants.MODEL_ID, [], {"max_tokens": 9, "temperature": 0, "seed": 3})
    assert job.max_tokens == 9 and job.key.seed is None  # greedy: the seed cannot matter, batch freely
    variants.set_variant(variants.MODEL_ID, "int5-silent")
    job, served = offline_provider._build_job(variants.MODEL_ID, [], {})
    assert job.key.quant_bits == 5 and served.fingerprint == variants.VARIANTS["base"].fingerprint
    with pytest.raises(NotFoundError, match="only"):
        offline_provider._build_job("gpt-4o", [], {})


def test_safety_prompt_goes_into_the_system_message(offline_model) -> None:
    silent = variants.VARIANTS["safety-silent"]
    with_system = generation.render_prompt(
        [{"role": "system", "content": "You sell shoes."}, {"role": "user", "content": "hi"}], silent
    )
    assert with_system.count("<|im_start|>system") == 1
    assert variants.SAFETY_PROMPT + "\n\nYou sell shoes." in with_system
    plain = generation.render_prompt([{"role": "user", "content": "hi"}], variants.VARIANTS["base"])
    assert variants.SAFETY_PROMPT not in plain


def test_requantize_rounds_linear_weights_to_the_given_bits() -> None:
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(32, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4))
    original = net[0].weight.detach().clone()
    model.requantize(net, 3)
    for layer in (net[0], net[2]):
        for row in layer.weight:
            assert len(torch.unique(row)) <= 2**3 - 1
    assert not torch.equal(original, net[0].weight)
    assert torch.allclose(original, net[0].weight, atol=float(original.abs().max()) / 3 / 2 + 1e-6)


def test_variant_is_visible_across_processes(home) -> None:
    assert variants.active_variant().name == "base"
    code = (
        "from drift_pipeline.detection.offline import variants as v; "
        "v.set_variant(v.MODEL_ID, 'int5-silent', note='staged')"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ))
    assert variants.active_variant().name == "int5-silent"
    assert variants.show_state()["history"][-1]["note"] == "staged"
    with pytest.raises(NotFoundError, match="unknown offline provider variant"):
        variants.set_variant(variants.MODEL_ID, "nope")


def test_registration_is_idempotent_and_keeps_other_providers() -> None:
    import litellm

    other = {"provider": "someone-else", "custom_handler": object()}
    saved = list(litellm.custom_provider_map or [])
    litellm.custom_provider_map = [*saved, other]
    try:
        h1 = offline_provider.register_offline_provider()
        h2 = offline_provider.register_offline_provider()
        entries = [e for e in litellm.custom_provider_map if e["provider"] == offline_provider.PROVIDER]
        assert h1 is h2 and len(entries) == 1 and entries[0]["custom_handler"] is h1
        assert other in litellm.custom_provider_map
    finally:
        litellm.custom_provider_map = [e for e in litellm.custom_provider_map if e is not other]


def test_provider_cli(home) -> None:
    from drift_pipeline.cli import replay as cli

    app = typer.Typer()
    cli.register(app)
    runner = CliRunner()
    res = runner.invoke(app, ["provider", "set-variant", variants.MODEL_ID, "safety-silent", "--note", "demo"])
    assert res.exit_code == 0 and "silent" in res.output
    res = runner.invoke(app, ["provider", "show", "--json"])
    assert res.exit_code == 0 and '"variant": "safety-silent"' in res.output
    res = runner.invoke(app, ["provider", "variants"])
    assert res.exit_code == 0 and "int5-silent" in res.output
    res = runner.invoke(app, ["provider", "set-variant", variants.MODEL_ID, "bogus"])
    assert isinstance(res.exception, NotFoundError)
