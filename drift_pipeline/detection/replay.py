"""Shadow replay: re-run sampled inputs against the pinned model and candidates through litellm.

Every model is reached as `"{provider}/{model_id}"` plus its `litellm_params`, so the offline model, any
OpenAI-compatible server (vLLM, llama.cpp, Ollama: `provider="openai"`, `api_base=...`) and the hosted
providers differ only in configuration. Replays only read samples and write `replay_outputs`; they never
touch live traffic (each call is tagged `metadata={"drift_pipeline_replay": True}` so capture skips it).

Cache and resumability: each output is committed to `replay_outputs` the moment it arrives, keyed by
sha256 of the model, the full canonical request, the provider revision (known for the offline provider)
and a cache namespace. A rerun of a killed replay therefore re-calls only what is missing. Because a hosted
provider can change behaviour silently under the same model id, a cached answer must not outlive the
question "what does the model say *today*": callers that need today's behaviour pass a namespace per
replay day (the Dagster asset uses its partition date), which keeps reruns within the day resumable and
makes the next day call again; `fresh=True` ignores cached answers altogether (and overwrites them).
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import json
import logging
import os
import random
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import select

from drift_pipeline.errors import DriftPipelineError, InvalidInputError
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.tables import ReplayOutput
from drift_pipeline.traffic.records import dumps

log = logging.getLogger(__name__)

OUTPUT_COLUMNS = (
    "record_id",
    "model",
    "provider",
    "response_text",
    "tool_calls",
    "finish_reason",
    "prompt_tokens",
    "completion_tokens",
    "latency_ms",
    "decoding",
    "system_fingerprint",
    "provider_revision",
    "served_model",
    "cache_key",
    "cache_hit",
    "attempts",
    "error",
)
DEFAULT_CONCURRENCY = 8
# The offline provider batches concurrent requests: let a full batch in at once.
PROVIDER_CONCURRENCY = {"offline": 16}
# litellm params that are credentials or transport settings: never part of the cache key or the stored request.
_NOT_REQUEST = frozenset({"api_key", "api_key_env", "timeout", "max_retries", "num_retries", "metadata"})
_SLEEP = asyncio.sleep  # replaced in tests to observe back-off delays exactly


@dataclass(frozen=True)
class ReplayTarget:
    """A model version to replay against: litellm calls it as `"{provider}/{model_id}"` with `litellm_params`.

    `litellm_params` may name the API key's environment variable as `api_key_env` (the key itself is
    never stored).
    """

    model_id: str
    provider: str
    litellm_params: dict[str, Any] = field(default_factory=dict)

    @property
    def litellm_model(self) -> str:
        return f"{self.provider}/{self.model_id}"

    @classmethod
    def from_version(cls, version: Any) -> ReplayTarget:
        """From a `registry.VersionInfo` (or anything with model_id, provider, litellm_params)."""
        return cls(version.model_id, version.provider, dict(version.litellm_params or {}))

    def call_params(self) -> dict[str, Any]:
        params = {k: v for k, v in self.litellm_params.items() if k != "api_key_env"}
        env = self.litellm_params.get("api_key_env")
        if env:
            if env not in os.environ:
                raise InvalidInputError(f"{self.litellm_model}: environment variable {env} (api key) is not set")
            params["api_key"] = os.environ[env]
        return params


@dataclass(frozen=True)
class Decoding:
    """Deterministic decoding parameters, sent explicitly and stored with every output."""

    temperature: float = 0.0
    seed: int = 0
    max_tokens: int = 256
    top_p: float | None = None

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise InvalidInputError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if self.temperature < 0:
            raise InvalidInputError(f"temperature must be >= 0, got {self.temperature}")

    def params(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class RetryPolicy:
    """Retries for rate limits, timeouts and 5xx: exponential back-off with full jitter, Retry-After honoured."""

    max_attempts: int = 5
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    timeout_s: float = 120.0  # per attempt

    def delay(self, attempt: int, exc: BaseException | None, rng: random.Random) -> float:
        """Seconds to wait before attempt `attempt + 1` (attempt counts from 1)."""
        cap = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        wait = rng.uniform(0, cap)
        after = retry_after_s(exc) if exc is not None else None
        return max(wait, min(after, self.max_delay_s * 4)) if after is not None else wait


def retry_after_s(exc: BaseException) -> float | None:
    """The server's Retry-After (seconds or HTTP date; or retry-after-ms), if the error carries one."""
    headers: Any = getattr(exc, "litellm_response_headers", None)
    if headers is None:
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None) if response is not None else None
    if not headers:
        return None
    try:
        if headers.get("retry-after-ms") is not None:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, (when - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError, AttributeError):
        return None


def is_retryable(exc: BaseException) -> bool:
    """Rate limits, timeouts, connection errors and 5xx are transient; other 4xx are the request's fault."""
    import litellm

    if isinstance(exc, asyncio.TimeoutError | TimeoutError | litellm.Timeout | litellm.RateLimitError):
        return True
    if isinstance(exc, litellm.APIConnectionError | litellm.InternalServerError | litellm.ServiceUnavailableError):
        return True
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and (status in (408, 409, 429) or status >= 500)


@dataclass
class _Call:
    key: str
    target: ReplayTarget
    request: dict[str, Any]
    provider_revision: str | None


@dataclass
class ReplaySummary:
    """What a replay did: how many requests, from cache, called, failed (with the first errors)."""

    requests: int = 0
    cached: int = 0
    called: int = 0
    failed: int = 0
    invalid_records: int = 0
    errors: list[str] = field(default_factory=list)


def canonical_request(
    target: ReplayTarget, messages: list[Any], tools: Any, response_format: Any, decoding: Decoding
) -> dict[str, Any]:
    """The request as sent, minus credentials: what the cache key covers and what is stored."""
    request: dict[str, Any] = {"model": target.litellm_model, "messages": messages, **decoding.params()}
    if tools:
        request["tools"] = tools
    if response_format:
        request["response_format"] = response_format
    extra = {k: v for k, v in target.litellm_params.items() if k not in _NOT_REQUEST}
    if extra:
        request["litellm_params"] = extra
    return request


def cache_key(request: dict[str, Any], provider_revision: str | None, namespace: str | None) -> str:
    """sha256 over the canonical request, the provider revision and the cache namespace."""
    material = dumps({"request": request, "provider_revision": provider_revision, "namespace": namespace or ""})
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def provider_revision(target: ReplayTarget) -> str | None:
    """The provider-side revision we can see: the offline provider's active one; unknown for others."""
    if target.provider != "offline":
        return None
    from drift_pipeline.detection import offline_llm

    return offline_llm.active_revision(target.model_id).name


def replay(
    sample: pd.DataFrame,
    models: list[ReplayTarget],
    *,
    store: Store,
    decoding: Decoding,
    system_prompt: str | None = None,
    concurrency: dict[str, int] | None = None,
    progress: bool = True,
    retry: RetryPolicy | None = None,
    cache_namespace: str | None = None,
    fresh: bool = False,
) -> pd.DataFrame:
    """Replay `sample` against every target; one output row per (record, model). See `areplay`."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise DriftPipelineError("replay() was called inside a running event loop: await areplay() instead")
    return asyncio.run(
        areplay(
            sample,
            models,
            store=store,
            decoding=decoding,
            system_prompt=system_prompt,
            concurrency=concurrency,
            progress=progress,
            retry=retry,
            cache_namespace=cache_namespace,
            fresh=fresh,
        )
    )


async def areplay(
    sample: pd.DataFrame,
    models: list[ReplayTarget],
    *,
    store: Store,
    decoding: Decoding,
    system_prompt: str | None = None,
    concurrency: dict[str, int] | None = None,
    progress: bool = True,
    retry: RetryPolicy | None = None,
    cache_namespace: str | None = None,
    fresh: bool = False,
) -> pd.DataFrame:
    """Replay `sample` (traffic record schema) against `models`; returns one row per (record, model).

    Identical requests are called once; cached outputs are reused unless `fresh`. Failed requests (after
    retries) and invalid records appear as rows with `error` set; `df.attrs["summary"]` counts them.
    `concurrency` maps provider -> maximum requests in flight.
    """
    if not models:
        raise InvalidInputError("replay needs at least one target model")
    missing = {"record_id", "messages"} - set(sample.columns)
    if missing:
        raise InvalidInputError(f"sample lacks column(s) {', '.join(sorted(missing))} (traffic record schema)")
    if any(t.provider == "offline" for t in models):
        from drift_pipeline.detection.offline_llm import register_offline_provider

        register_offline_provider()
    for target in models:
        target.call_params()  # a missing api key is a configuration error: say so before any call
    retry = retry or RetryPolicy()
    summary = ReplaySummary()
    revisions = [provider_revision(t) for t in models]

    # One entry per (record, model): the cache key, or the reason the record cannot be replayed.
    plan: list[tuple[str, ReplayTarget, str | None, str | None, str | None]] = []
    calls: dict[str, _Call] = {}
    for row in sample.to_dict("records"):
        record_id = str(row["record_id"])
        try:
            messages, tools, response_format = _parse_record(row, system_prompt)
        except InvalidInputError as exc:
            summary.invalid_records += 1
            plan.extend((record_id, t, None, str(exc), None) for t in models)
            continue
        for target, revision in zip(models, revisions, strict=True):
            request = canonical_request(target, messages, tools, response_format, decoding)
            key = cache_key(request, revision, cache_namespace)
            calls.setdefault(key, _Call(key, target, request, revision))
            plan.append((record_id, target, key, None, revision))

    summary.requests = len(calls)
    results: dict[str, dict[str, Any]] = {} if fresh else _load_cached(store, list(calls))
    summary.cached = len(results)
    todo = [c for k, c in calls.items() if k not in results]
    await _run_calls(todo, results, store, retry, concurrency or {}, progress, fresh, summary)

    rows = [_output_row(*entry, results=results, decoding=decoding) for entry in plan]
    df = pd.DataFrame(rows, columns=list(OUTPUT_COLUMNS))
    df.attrs["summary"] = asdict(summary)
    if summary.failed or summary.invalid_records:
        log.warning(
            "replay: %d request(s) failed after retries, %d invalid record(s); first errors: %s",
            summary.failed,
            summary.invalid_records,
            "; ".join(summary.errors[:3]),
        )
    return df


def _parse_record(row: dict[str, Any], system_prompt: str | None) -> tuple[list[Any], Any, Any]:
    try:
        messages = json.loads(row["messages"]) if isinstance(row["messages"], str) else row["messages"]
        tools = _json_field(row.get("tools"))
        response_format = _json_field(row.get("response_format"))
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"invalid record: malformed JSON ({exc})") from exc
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) and "role" in m for m in messages):
        raise InvalidInputError("invalid record: messages must be a non-empty JSON list of {role, content}")
    if system_prompt and not any(m.get("role") == "system" for m in messages):
        messages = [{"role": "system", "content": system_prompt}, *messages]
    return messages, tools, response_format


def _json_field(value: Any) -> Any:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return json.loads(value) if isinstance(value, str) else value


def _load_cached(store: Store, keys: list[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    with store.session() as session:
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            for row in session.execute(select(ReplayOutput).where(ReplayOutput.cache_key.in_(chunk))).scalars():
                found[row.cache_key] = {**row.response, "cache_hit": True, "attempts": 0}
    return found


async def _run_calls(
    todo: list[_Call],
    results: dict[str, dict[str, Any]],
    store: Store,
    retry: RetryPolicy,
    concurrency: dict[str, int],
    progress: bool,
    fresh: bool,
    summary: ReplaySummary,
) -> None:
    from tqdm.auto import tqdm

    limits = {**PROVIDER_CONCURRENCY, **concurrency}
    semaphores = {
        p: asyncio.Semaphore(max(1, limits.get(p, DEFAULT_CONCURRENCY))) for p in {c.target.provider for c in todo}
    }
    rng = random.Random()
    bar = tqdm(total=len(todo), desc="replay", unit="req", disable=not progress or not todo)

    async def one(call: _Call) -> None:
        async with semaphores[call.target.provider]:
            outcome = await _call_with_retries(call, retry, rng)
        if outcome.get("error"):
            summary.failed += 1
            summary.errors.append(f"{call.target.litellm_model}: {outcome['error']}")
        else:
            summary.called += 1
            # Commit now: a run killed after this point never pays for this request again.
            await asyncio.to_thread(_save, store, call, outcome, fresh)
        results[call.key] = outcome
        bar.update(1)

    try:
        await asyncio.gather(*(one(c) for c in todo))
    finally:
        bar.close()


async def _call_with_retries(call: _Call, retry: RetryPolicy, rng: random.Random) -> dict[str, Any]:
    import litellm

    params = {k: v for k, v in call.request.items() if k not in ("model", "litellm_params")}
    kwargs = {
        **params,
        **call.target.call_params(),
        "timeout": retry.timeout_s,
        "max_retries": 0,  # retries are ours (with Retry-After); the OpenAI client's own would double them
        "metadata": {"drift_pipeline_replay": True},
    }
    attempt = 0
    while True:
        attempt += 1
        started = time.perf_counter()
        try:
            response = await asyncio.wait_for(
                litellm.acompletion(model=call.target.litellm_model, **kwargs), timeout=retry.timeout_s
            )
            return {**_extract(response), "latency_ms": (time.perf_counter() - started) * 1000, "attempts": attempt}
        except Exception as exc:
            if not is_retryable(exc) or attempt >= retry.max_attempts:
                return {"error": _describe(exc), "attempts": attempt}
            await _SLEEP(retry.delay(attempt, exc, rng))


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


def _save(store: Store, call: _Call, outcome: dict[str, Any], overwrite: bool) -> None:
    row = {
        "cache_key": call.key,
        "model": call.target.litellm_model,
        "provider_revision": call.provider_revision,
        "request": call.request,
        "response": {k: v for k, v in outcome.items() if k != "cache_hit"},
        "created_at": datetime.now(UTC),
    }
    with store.transaction() as session:
        if store.is_postgres:
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        stmt = insert(ReplayOutput).values(**row)
        if overwrite:
            update = {k: stmt.excluded[k] for k in ("provider_revision", "request", "response", "created_at")}
            stmt = stmt.on_conflict_do_update(index_elements=["cache_key"], set_=update)
        else:
            # A concurrent run may have stored the same request first: keep one row, never a duplicate.
            stmt = stmt.on_conflict_do_nothing(index_elements=["cache_key"])
        session.execute(stmt)


def _output_row(
    record_id: str,
    target: ReplayTarget,
    key: str | None,
    invalid: str | None,
    revision: str | None,
    *,
    results: dict[str, dict[str, Any]],
    decoding: Decoding,
) -> dict[str, Any]:
    out = results.get(key, {}) if key else {}
    error = invalid or out.get("error") or ("not run (replay interrupted)" if key and key not in results else "")
    return {
        "record_id": record_id,
        "model": target.model_id,
        "provider": target.provider,
        "response_text": out.get("response_text", ""),
        "tool_calls": dumps(out.get("tool_calls")),
        "finish_reason": out.get("finish_reason", ""),
        "prompt_tokens": out.get("prompt_tokens"),
        "completion_tokens": out.get("completion_tokens"),
        "latency_ms": out.get("latency_ms"),
        "decoding": dumps(decoding.params()),
        "system_fingerprint": out.get("system_fingerprint"),
        "provider_revision": revision if key else None,
        "served_model": out.get("served_model"),
        "cache_key": key,
        "cache_hit": bool(out.get("cache_hit", False)),
        "attempts": out.get("attempts", 0),
        "error": error,
    }


def stored_outputs(store: Store, keys: Iterable[str]) -> int:
    """How many of `keys` are in the replay cache (for reports and tests)."""
    return len(_load_cached(store, list(keys)))
