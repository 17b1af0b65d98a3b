"""Shadow replay: re-run sampled inputs against the pinned model and candidates through litellm.

Every model is reached as `"{provider}/{model_id}"` plus its `litellm_params`, so the offline model, any
OpenAI-compatible server (vLLM, llama.cpp, Ollama: `provider="openai"`, `api_base=...`) and the hosted
providers differ only in configuration. Replays only read samples and write `replay_outputs`; they never
touch live traffic (each call is tagged `metadata={"drift_pipeline_replay": True}` so capture skips it).
Each output is committed to the cache as it arrives (`replay_cache`, group commit), so a killed replay
resumes. OpenAI-compatible servers (`provider="openai"` with an `api_base`) are posted to directly
(`replay_http`): litellm's per-request CPU would otherwise cap the throughput.
Transient failures are retried with `drift_pipeline.retry` (Retry-After honoured), each attempt bounded
by `attempt_timeout_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import pandas as pd

from drift_pipeline.detection.replay_cache import OutputWriter, cache_key, load_cached, output_row
from drift_pipeline.detection.replay_call import DEFAULT_ATTEMPT_TIMEOUT_S, DEFAULT_RETRY, Outcome, complete
from drift_pipeline.detection.replay_http import OpenAITransport, uses_direct_transport
from drift_pipeline.errors import DriftPipelineError, InvalidInputError
from drift_pipeline.persistence.db import Store
from drift_pipeline.retry import RetryPolicy
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
    "provider_variant",
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
        # Plain fields, read directly: asdict's deep copy cost more than the rest of planning a request.
        return {f.name: v for f in fields(self) if (v := getattr(self, f.name)) is not None}


@dataclass
class _Call:
    key: str
    target: ReplayTarget
    request: dict[str, Any]
    provider_variant: str | None


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


def provider_variant(target: ReplayTarget) -> str | None:
    """The provider-side variant we can see: the offline provider's active one; unknown for others."""
    if target.provider != "offline":
        return None
    from drift_pipeline.detection.offline.variants import active_variant

    return active_variant(target.model_id).name


def replay(
    sample: pd.DataFrame,
    models: list[ReplayTarget],
    *,
    store: Store,
    decoding: Decoding,
    system_prompt: str | None = None,
    concurrency: dict[str, int] | None = None,
    progress: bool = True,
    retry: RetryPolicy = DEFAULT_RETRY,
    attempt_timeout_s: float = DEFAULT_ATTEMPT_TIMEOUT_S,
    cache_namespace: str | None = None,
    fresh: bool = False,
    transport: str | None = None,
) -> pd.DataFrame:
    """Replay `sample` against every target; one output row per (record, model). See `areplay`."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise DriftPipelineError("replay() was called inside a running event loop: await areplay() instead")
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        return runner.run(
            areplay(
                sample,
                models,
                store=store,
                decoding=decoding,
                system_prompt=system_prompt,
                concurrency=concurrency,
                progress=progress,
                retry=retry,
                attempt_timeout_s=attempt_timeout_s,
                cache_namespace=cache_namespace,
                fresh=fresh,
                transport=transport,
            )
        )


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (Linux, macOS), else asyncio's: the loop is a good part of
    the engine's CPU per request, and at 64 requests in flight on a small node that CPU is what keeps a
    replay from filling the provider's concurrency (`benchmarks/bench_replay.py --mode http`)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def areplay(
    sample: pd.DataFrame,
    models: list[ReplayTarget],
    *,
    store: Store,
    decoding: Decoding,
    system_prompt: str | None = None,
    concurrency: dict[str, int] | None = None,
    progress: bool = True,
    retry: RetryPolicy = DEFAULT_RETRY,
    attempt_timeout_s: float = DEFAULT_ATTEMPT_TIMEOUT_S,
    cache_namespace: str | None = None,
    fresh: bool = False,
    transport: str | None = None,
) -> pd.DataFrame:
    """Replay `sample` (traffic record schema) against `models`; returns one row per (record, model).

    Identical requests are called once; cached outputs are reused unless `fresh`. Failed requests (after
    `retry`, each try bounded by `attempt_timeout_s`) and invalid records appear as rows with `error` set;
    `df.attrs["summary"]` counts them. `concurrency` maps provider -> maximum requests in flight (over
    the setting `replay_concurrency` and the defaults: 8, `offline` 16). `transport` (over the setting
    `replay_transport`): `auto` posts to OpenAI-compatible `api_base` targets directly (`replay_http`),
    `litellm` sends everything through litellm, `direct` insists.
    """
    if not models:
        raise InvalidInputError("replay needs at least one target model")
    missing = {"record_id", "messages"} - set(sample.columns)
    if missing:
        raise InvalidInputError(f"sample lacks column(s) {', '.join(sorted(missing))} (traffic record schema)")
    if any(t.provider == "offline" for t in models):
        from drift_pipeline.detection.offline.provider import register_offline_provider

        register_offline_provider()
    from drift_pipeline.config import Settings

    settings = Settings.from_env()
    choice = transport or settings.replay_transport
    direct: set[int] = set()  # the targets (by id) that replay posts to itself
    for target in models:
        # A missing api key or an impossible transport is a configuration error: say so before any call.
        target.call_params()
        if uses_direct_transport(target.provider, target.litellm_params, choice):
            direct.add(id(target))
    summary = ReplaySummary()
    variants = [provider_variant(t) for t in models]

    # One entry per (record, model): the cache key, or the reason the record cannot be replayed.
    plan: list[tuple[str, ReplayTarget, str | None, str | None, str | None]] = []
    calls: dict[str, _Call] = {}
    # Column lists, not to_dict("records"): a pandas row dict per record cost a third of planning.
    columns = {c: sample[c].tolist() for c in ("record_id", "messages", "tools", "response_format") if c in sample}
    for i in range(len(sample)):
        row = {c: values[i] for c, values in columns.items()}
        record_id = str(row["record_id"])
        try:
            messages, tools, response_format = _parse_record(row, system_prompt)
        except InvalidInputError as exc:
            summary.invalid_records += 1
            plan.extend((record_id, t, None, str(exc), None) for t in models)
            continue
        for target, variant in zip(models, variants, strict=True):
            request = canonical_request(target, messages, tools, response_format, decoding)
            key = cache_key(request, variant, cache_namespace)
            calls.setdefault(key, _Call(key, target, request, variant))
            plan.append((record_id, target, key, None, variant))

    summary.requests = len(calls)
    results: dict[str, Outcome] = {} if fresh else load_cached(store, list(calls))
    summary.cached = len(results)
    todo = [c for k, c in calls.items() if k not in results]
    # The argument wins over DRIFT_PIPELINE_REPLAY_CONCURRENCY, which wins over the built-in defaults.
    limits = {**settings.replay_concurrency, **(concurrency or {})}
    await _run_calls(todo, results, store, retry, attempt_timeout_s, limits, direct, progress, fresh, summary)

    decoding_json = dumps(decoding.params())
    rows = [_output_row(*entry, results=results, decoding_json=decoding_json) for entry in plan]
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


async def _run_calls(
    todo: list[_Call],
    results: dict[str, Outcome],
    store: Store,
    retry: RetryPolicy,
    timeout_s: float,
    concurrency: dict[str, int],
    direct: set[int],
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
    writer = OutputWriter(store, overwrite=fresh)
    transport = OpenAITransport() if any(id(c.target) in direct for c in todo) else None
    call_params = {id(c.target): c.target.call_params() for c in todo}  # once per target, not per request

    async def one(call: _Call) -> None:
        params = {k: v for k, v in call.request.items() if k not in ("model", "litellm_params")}
        params |= {**call_params[id(call.target)], "metadata": {"drift_pipeline_replay": True}}
        via = transport if id(call.target) in direct else None
        async with semaphores[call.target.provider]:
            outcome = await complete(
                call.target.litellm_model, params, retry=retry, timeout_s=timeout_s, rng=rng, transport=via
            )
        if outcome.get("error"):
            summary.failed += 1
            summary.errors.append(f"{call.target.litellm_model}: {outcome['error']}")
        else:
            summary.called += 1
            # Committed with the next group commit: a rerun never pays for this request again.
            writer.add(output_row(call.key, call.target.litellm_model, call.provider_variant, call.request, outcome))
        results[call.key] = outcome
        bar.update(1)

    try:
        async with transport or contextlib.nullcontext():
            await asyncio.gather(*(one(c) for c in todo))
    finally:
        bar.close()
        # Even when the replay is cancelled: what arrived is committed, so a rerun does not pay for it.
        await writer.flush()


def _output_row(
    record_id: str,
    target: ReplayTarget,
    key: str | None,
    invalid: str | None,
    variant: str | None,
    *,
    results: dict[str, Outcome],
    decoding_json: str,
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
        "decoding": decoding_json,
        "system_fingerprint": out.get("system_fingerprint"),
        "provider_variant": variant if key else None,
        "served_model": out.get("served_model"),
        "cache_key": key,
        "cache_hit": bool(out.get("cache_hit", False)),
        "attempts": out.get("attempts", 0),
        "error": error,
    }
