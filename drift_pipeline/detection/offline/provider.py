"""The litellm custom provider `offline`: requests become generation jobs under the active variant.

`litellm.completion(model="offline/smollm2-135m-instruct", ...)` (and `acompletion`) run a real model with
no network once `register_offline_provider()` has been called.
"""

from __future__ import annotations

import asyncio
import time
from functools import cache
from typing import Any

from drift_pipeline.detection.offline.generation import (
    Generation,
    GenerationJob,
    GenerationKey,
    MicroBatcher,
    generate_batch,
    render_prompt,
)
from drift_pipeline.detection.offline.variants import MODEL_ID, ProviderVariant, active_variant
from drift_pipeline.errors import InvalidInputError, NotFoundError

PROVIDER = "offline"
MAX_TOKENS_CAP = 2048
MAX_TOP_LOGPROBS = 20  # OpenAI's limit


def register_offline_provider() -> Any:
    """Register provider `offline` with litellm (idempotent; other custom providers are kept)."""
    import litellm

    handler = provider()
    entries = [e for e in (litellm.custom_provider_map or []) if e.get("provider") != PROVIDER]
    litellm.custom_provider_map = [*entries, {"provider": PROVIDER, "custom_handler": handler}]
    litellm.suppress_debug_info = True
    return handler


@cache
def provider() -> Any:
    """The process-wide `OfflineLLM` handler (set `max_batch`/`window_s` on it to tune batching)."""
    return _custom_llm_class()()


def _build_job(
    model: str, messages: list[dict[str, Any]], optional_params: dict[str, Any]
) -> tuple[GenerationJob, ProviderVariant]:
    if model != MODEL_ID:
        raise NotFoundError(f"the offline provider serves only {MODEL_ID!r}, not {model!r}")
    variant = active_variant(model)
    temperature = float(optional_params.get("temperature") or 0.0)
    max_tokens = optional_params.get("max_tokens") or optional_params.get("max_completion_tokens")
    max_tokens = min(int(max_tokens or variant.default_max_tokens), MAX_TOKENS_CAP)
    if max_tokens < 1:
        raise InvalidInputError(f"max_tokens must be >= 1, got {max_tokens}")
    stop = optional_params.get("stop") or ()
    stop = (stop,) if isinstance(stop, str) else tuple(stop)
    seed = optional_params.get("seed")
    key = GenerationKey(
        quant_bits=variant.quant_bits,
        repetition_penalty=variant.repetition_penalty,
        sample=temperature > 0,
        temperature=temperature,
        top_p=optional_params.get("top_p") if temperature > 0 else None,
        seed=int(seed) if seed is not None and temperature > 0 else None,
    )
    prompt = render_prompt(messages, variant, optional_params.get("tools"))
    job = GenerationJob(
        prompt=prompt, max_tokens=max_tokens, key=key, stop=stop, top_logprobs=_top_logprobs(optional_params)
    )
    return job, variant


def _top_logprobs(optional_params: dict[str, Any]) -> int | None:
    """`logprobs=True` (with `top_logprobs=k`) as OpenAI defines them; None when logprobs are not asked for."""
    if not optional_params.get("logprobs"):
        return None
    try:
        k = int(optional_params.get("top_logprobs") or 0)
    except (TypeError, ValueError):
        raise InvalidInputError("top_logprobs must be an integer") from None
    if not 0 <= k <= MAX_TOP_LOGPROBS:
        raise InvalidInputError(f"top_logprobs must be in 0..{MAX_TOP_LOGPROBS}, got {k}")
    return k


def _response(gen: Generation, variant: ProviderVariant, started: float) -> Any:
    import litellm

    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": gen.text},
        "finish_reason": gen.finish_reason,
    }
    if gen.logprobs is not None:
        choice["logprobs"] = {"content": gen.logprobs}
    resp = litellm.ModelResponse(
        model=MODEL_ID,
        system_fingerprint=variant.fingerprint,
        choices=[choice],
        usage=litellm.Usage(
            prompt_tokens=gen.prompt_tokens,
            completion_tokens=gen.completion_tokens,
            total_tokens=gen.prompt_tokens + gen.completion_tokens,
        ),
    )
    resp._hidden_params["offline_generation_ms"] = (time.perf_counter() - started) * 1000
    return resp


def _custom_llm_class() -> type:
    # Built on first use: litellm is a heavy import, and CustomLLM must be its base class.
    from litellm import CustomLLM

    class OfflineLLM(CustomLLM):
        """litellm handler for provider `offline`; async calls go through one `MicroBatcher` per event loop."""

        def __init__(self) -> None:
            super().__init__()
            self.max_batch = 16
            self.window_s = 0.01
            self._batchers: dict[int, tuple[asyncio.AbstractEventLoop, MicroBatcher]] = {}

        def batcher(self) -> MicroBatcher:
            loop = asyncio.get_running_loop()
            entry = self._batchers.get(id(loop))
            if entry is None or entry[0] is not loop:
                self._batchers = {k: v for k, v in self._batchers.items() if not v[0].is_closed()}
                entry = (loop, MicroBatcher(self.max_batch, self.window_s))
                self._batchers[id(loop)] = entry
            entry[1].max_batch, entry[1].window_s = self.max_batch, self.window_s
            return entry[1]

        def completion(self, model: str, messages: list[dict[str, Any]], *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            job, variant = _build_job(model, messages, kwargs.get("optional_params") or {})
            return _response(generate_batch([job])[0], variant, started)

        async def acompletion(self, model: str, messages: list[dict[str, Any]], *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            job, variant = await asyncio.to_thread(_build_job, model, messages, kwargs.get("optional_params") or {})
            return _response(await self.batcher().submit(job), variant, started)

    return OfflineLLM
