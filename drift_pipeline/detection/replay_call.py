"""One replay request through litellm: retries of transient failures, a timeout per attempt, a plain outcome.

Rate limits, timeouts, connection errors and 5xx are retried with `drift_pipeline.retry` (exponential
back-off with full jitter; a server's Retry-After wins when longer); other 4xx fail at once. The result is
never an exception: a failed request becomes an outcome with `error` set, so one bad record cannot stop a
replay.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

from drift_pipeline.detection.replay_http import OpenAITransport, ProviderHTTPError
from drift_pipeline.retry import RetryPolicy, attempts_made

# 5 tries, back-off 0.5 s doubling up to 30 s.
DEFAULT_RETRY = RetryPolicy(attempts=5, base_delay_s=0.5, max_delay_s=30.0)
DEFAULT_ATTEMPT_TIMEOUT_S = 120.0
_SLEEP = asyncio.sleep  # the back-off sleep, read at each call: tests replace it to observe delays exactly

Outcome = dict[str, Any]  # the extracted answer (or `error`), `latency_ms` and the `attempts` made


def is_retryable(exc: BaseException) -> bool:
    """Rate limits, timeouts, connection errors and 5xx are transient; other 4xx are the request's fault."""
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return True
    if isinstance(exc, ProviderHTTPError):
        status = exc.status_code
        return status is None or status in (408, 409, 429) or status >= 500  # None: a broken connection
    import litellm

    if isinstance(exc, litellm.Timeout | litellm.RateLimitError):
        return True
    if isinstance(exc, litellm.APIConnectionError | litellm.InternalServerError | litellm.ServiceUnavailableError):
        return True
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and (status in (408, 409, 429) or status >= 500)


async def complete(
    model: str,
    params: dict[str, Any],
    *,
    retry: RetryPolicy = DEFAULT_RETRY,
    timeout_s: float = DEFAULT_ATTEMPT_TIMEOUT_S,
    rng: random.Random | None = None,
    transport: OpenAITransport | None = None,
) -> Outcome:
    """`litellm.acompletion(model=model, **params)` with retries; each attempt gets at most `timeout_s`.

    With `transport` (an OpenAI-compatible `api_base`, see `replay_http`) the request is posted directly,
    under the same retries and timeout.
    """
    # Retries are ours (with Retry-After): the OpenAI client's own would multiply them.
    kwargs = {**params, "timeout": timeout_s, "max_retries": 0}
    started = time.perf_counter()
    try:  # The first try outside tenacity: most requests need no retry, and its set-up costs CPU per request.
        fields = await _attempt(model, params, kwargs, timeout_s, transport)
        return {**fields, "latency_ms": (time.perf_counter() - started) * 1000, "attempts": 1}
    except Exception as exc:
        if retry.attempts <= 1 or not is_retryable(exc):
            return {"error": _describe(exc), "attempts": 1}
        await _SLEEP(retry.delay(1, exc, rng))
    retrying = retry.aretrying(is_retryable, sleep=_SLEEP, rng=rng, start=2)
    try:
        async for attempt in retrying:
            with attempt:
                started = time.perf_counter()
                fields = await _attempt(model, params, kwargs, timeout_s, transport)
    except Exception as exc:
        return {"error": _describe(exc), "attempts": 1 + attempts_made(retrying)}
    latency_ms = (time.perf_counter() - started) * 1000
    return {**fields, "latency_ms": latency_ms, "attempts": 1 + attempts_made(retrying)}


async def _attempt(
    model: str, params: dict[str, Any], kwargs: dict[str, Any], timeout_s: float, transport: OpenAITransport | None
) -> dict[str, Any]:
    """One try, bounded by `timeout_s`: the answer's fields."""
    # wait_for as well as litellm's timeout: in-process providers ignore the latter.
    if transport is not None:
        model_id = model.partition("/")[2]
        return await asyncio.wait_for(transport.complete(model_id, params, timeout_s), timeout=timeout_s)
    import litellm

    response = await asyncio.wait_for(litellm.acompletion(model=model, **kwargs), timeout=timeout_s)
    return _extract(response)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:500] if text else type(exc).__name__


def _extract(response: Any) -> dict[str, Any]:
    choice = response.choices[0]
    message = choice.message
    tool_calls = getattr(message, "tool_calls", None)
    usage = getattr(response, "usage", None)
    return {
        "response_text": message.content or "",
        "tool_calls": [_plain(t) for t in tool_calls] if tool_calls else None,
        "finish_reason": choice.finish_reason or "",
        "prompt_tokens": getattr(usage, "prompt_tokens", None),
        "completion_tokens": getattr(usage, "completion_tokens", None),
        "system_fingerprint": getattr(response, "system_fingerprint", None),
        "served_model": getattr(response, "model", None),
    }


def _plain(obj: Any) -> Any:
    if hasattr(obj, "model_dump"):
        return obj.model_dump()
    return obj if isinstance(obj, dict) else json.loads(json.dumps(obj, default=str))
