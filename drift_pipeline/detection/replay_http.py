"""Replay's direct transport to OpenAI-compatible endpoints: one pooled aiohttp session per replay.

litellm spends ~5 ms of CPU per request on this machine (client construction, cost calculation,
logging payloads), so one event loop tops out near 200 requests/s whatever the provider could serve,
and far below that under load. A target configured as `provider="openai"` with an `api_base` and no
other litellm option (vLLM, llama.cpp, Ollama's /v1, any self-hosted server) needs none of litellm's
translation: the body is the request as sent. For those the engine posts it itself: 0.6-0.7 ms of CPU
per request with the whole replay engine included (`benchmarks/bench_replay.py --mode http`).
Failures keep what `replay_call` decides retries on: a `ProviderHTTPError` carries the status code and
the response (its Retry-After header), a broken connection has no status (retried), a timeout is
`asyncio.TimeoutError`. Anything else still goes through litellm.
"""

from __future__ import annotations

import json
import os
from typing import Any

# litellm_params that the direct transport understands; any other option means litellm must translate.
_DIRECT_PARAMS = frozenset({"api_base", "api_key", "api_key_env", "timeout", "max_retries"})
TRANSPORTS = ("auto", "direct", "litellm")
MAX_RESPONSE_BYTES = 16 * 1024 * 1024  # a hostile provider cannot make the replay hold more than this


class ProviderHTTPError(Exception):
    """A failed request to the provider: `status_code` (None: no HTTP answer) and the `response` (headers)."""

    def __init__(self, message: str, status_code: int | None = None, response: Any = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.response = response


def uses_direct_transport(provider: str, litellm_params: dict[str, Any], choice: str = "auto") -> bool:
    """Whether replay posts to this target itself: `auto` for an OpenAI-compatible `api_base` without other
    litellm options; `litellm` never; `direct` insists (an error for a target that does not qualify)."""
    from drift_pipeline.errors import InvalidInputError

    if choice not in TRANSPORTS:
        raise InvalidInputError(f"replay transport must be one of {', '.join(TRANSPORTS)}, got {choice!r}")
    eligible = provider == "openai" and bool(litellm_params.get("api_base")) and set(litellm_params) <= _DIRECT_PARAMS
    if choice == "direct" and not eligible:
        raise InvalidInputError(
            f"{provider}: the direct transport needs provider openai, an api_base and no other option"
        )
    return eligible and choice != "litellm"


class OpenAITransport:
    """Chat completions over one shared connection pool; open it inside the replay's event loop."""

    def __init__(self) -> None:
        self._session: Any = None

    async def __aenter__(self) -> OpenAITransport:
        import aiohttp

        # No pool limit of its own: the replay's per-provider semaphore is the one limit.
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
        self._session = aiohttp.ClientSession(connector=connector)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._session.close()

    async def complete(self, model_id: str, params: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """POST `{api_base}/chat/completions`; the answer's fields as `replay_call` stores them."""
        import aiohttp

        url = str(params["api_base"]).rstrip("/") + "/chat/completions"
        body = {k: v for k, v in params.items() if k not in _DIRECT_PARAMS and k != "metadata"}
        body["model"] = model_id
        headers = {"Content-Type": "application/json"}
        # As litellm does: the configured key, else OPENAI_API_KEY; a local server may need none.
        key = params.get("api_key") or os.environ.get("OPENAI_API_KEY")
        if key:
            headers["Authorization"] = f"Bearer {key}"
        try:
            async with self._session.post(
                url, data=json.dumps(body), headers=headers, timeout=aiohttp.ClientTimeout(total=timeout_s)
            ) as response:
                raw = await _read_capped(response)
                if response.status >= 400:
                    text = _error_text(response.status, raw)
                    # A provider may echo the request's credentials: they never reach logs or outputs.
                    text = text.replace(key, "***") if key else text
                    raise ProviderHTTPError(text, response.status, response)
        except aiohttp.ClientError as exc:
            # Refused, reset or closed connections: transient, retried like litellm's APIConnectionError.
            raise ProviderHTTPError(f"connection error: {type(exc).__name__}") from exc
        return extract(raw)


async def _read_capped(response: Any) -> bytes:
    chunks, size = [], 0
    async for chunk in response.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise ProviderHTTPError(f"response larger than {MAX_RESPONSE_BYTES} bytes", 502)
        chunks.append(chunk)
    return b"".join(chunks)


def _error_text(status: int, raw: bytes) -> str:
    try:
        error = json.loads(raw).get("error")
        message = error.get("message") if isinstance(error, dict) else error
    except (ValueError, AttributeError):
        message = None
    return f"HTTP {status}: {str(message or raw[:200].decode('utf-8', 'replace')).strip()}"


def extract(raw: bytes) -> dict[str, Any]:
    """The fields replay keeps from an OpenAI chat completion body; a malformed body is a 502 (retried)."""
    try:
        data = json.loads(raw)
        choice = data["choices"][0]
        message = choice["message"]
        usage = data.get("usage") or {}
        content = message.get("content")
        if content is not None and not isinstance(content, str):
            raise TypeError("content is not a string")
        return {
            "response_text": content or "",
            "tool_calls": message.get("tool_calls") or None,
            "finish_reason": choice.get("finish_reason") or "",
            "prompt_tokens": usage.get("prompt_tokens"),
            "completion_tokens": usage.get("completion_tokens"),
            "system_fingerprint": data.get("system_fingerprint"),
            "served_model": data.get("model"),
        }
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise ProviderHTTPError(f"malformed chat completion ({type(exc).__name__})", 502) from exc
