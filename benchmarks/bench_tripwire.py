"""Logprob tripwire on the offline model: cost per check and detection of every provider-side variant.

The pinned `base` variant's tripwire reference is measured (calibration runs included), then every
variant of `detection/offline/variants.py` is served in turn and checked: fired or not, its largest
|d logprob|, tokens and wall time per check. The text probe (`probes.py`: greedy, `MAX_TOKENS` tokens per
prompt) is measured the same way for comparison, with its own verdict per variant.

    .venv/bin/python benchmarks/bench_tripwire.py            # add --no-text to skip the text probes
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from typing import Any

from drift_pipeline.detection import probes, tripwire
from drift_pipeline.detection.offline import variants
from drift_pipeline.detection.replay import ReplayTarget

TARGET = ReplayTarget(variants.MODEL_ID, "offline", {})


def text_probe(prompts: tuple[str, ...]) -> tuple[list[str], int, float]:
    """The text probe through litellm, with its token count (usage) and wall time."""
    import litellm

    started = time.perf_counter()
    texts, tokens = [], 0
    for prompt in prompts:
        response: Any = litellm.completion(
            model=TARGET.litellm_model,
            messages=[{"role": "user", "content": prompt}],
            temperature=0.0,
            seed=0,
            max_tokens=probes.MAX_TOKENS,
        )
        texts.append(response.choices[0].message.content or "")
        tokens += int(response.usage.total_tokens)
    return texts, tokens, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-text", action="store_true", help="skip the text-probe comparison")
    args = parser.parse_args()
    os.environ.setdefault("DRIFT_PIPELINE_HOME", tempfile.mkdtemp(prefix="bench-tripwire-"))
    from drift_pipeline.detection.offline.model import load_base
    from drift_pipeline.detection.offline.provider import register_offline_provider

    load_base()
    register_offline_provider()
    variants.set_variant(variants.MODEL_ID, "base", note="bench_tripwire")
    started = time.perf_counter()
    reference = tripwire.measure_reference(TARGET)
    print(
        f"tripwire reference: {len(tripwire.TRIPWIRE_PROMPTS)} prompts x top-{tripwire.TOP_K}, {reference.runs} "
        f"calibration runs in {time.perf_counter() - started:.1f} s; noise {reference.noise:.2e}, "
        f"tolerance {reference.tolerance:.4f} nats"
    )
    if not args.no_text:
        ref_texts, _, _ = text_probe(probes.PROBE_PROMPTS)
        text_ref = probes.ProbeReference(TARGET.model_id, ref_texts, probes.fingerprint(ref_texts), 0.0, 0.0, "now")
    print(
        "\n| variant | announced | tripwire fired | max abs d logprob | tripwire tokens | tripwire wall s "
        "| text probe changed | text probe tokens | text probe wall s |"
    )
    print("|---|---|---|---:|---:|---:|---|---:|---:|")
    for name, variant in variants.VARIANTS.items():
        variants.set_variant(variants.MODEL_ID, name, note="bench_tripwire")
        tripwire.check(reference, TARGET)  # warm-up: a re-quantized copy is built on first use, not per check
        verdict, _ = tripwire.check(reference, TARGET)
        text = ("-", "-", "-")
        if not args.no_text:
            texts, tokens, wall = text_probe(probes.PROBE_PROMPTS)
            result = probes.ProbeResult(TARGET.model_id, texts, probes.fingerprint(texts), "now")
            changed = probes.compare(text_ref, result).changed
            text = ("yes" if changed else "no", str(tokens), f"{wall:.2f}")
        print(
            f"| {name} | {'yes' if variant.announced else 'SILENT'} | {'yes' if verdict.fired else 'no'} "
            f"| {verdict.distance:.4f} | {verdict.prompt_tokens + verdict.completion_tokens} | {verdict.wall_s:.2f} "
            f"| {text[0]} | {text[1]} | {text[2]} |"
        )
    variants.set_variant(variants.MODEL_ID, "base", note="bench_tripwire done")


if __name__ == "__main__":
    main()
