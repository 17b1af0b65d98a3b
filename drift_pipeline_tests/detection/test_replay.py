"""Shadow replay: cache, resumability, retries, timeouts, concurrency, and a real replay of the offline model."""

from __future__ import annotations

import asyncio
import json
import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import func, select

from drift_pipeline.detection import replay as rp
from drift_pipeline.detection import replay_call
from drift_pipeline.detection.replay import Decoding, ReplayTarget, areplay, replay
from drift_pipeline.detection.replay_cache import cache_key
from drift_pipeline.errors import DriftPipelineError, InvalidInputError
from drift_pipeline.persistence.tables import ReplayOutput
from drift_pipeline.retry import RetryPolicy, retry_after_s
from drift_pipeline_tests.plugins.replay import make_sample

A = ReplayTarget("model-a", "fake")
B = ReplayTarget("model-b", "fake")
DEC = Decoding(temperature=0, seed=7, max_tokens=32)


def _stored(store) -> list[str]:
    with store.session() as s:
        return list(s.execute(select(ReplayOutput.cache_key)).scalars())


def test_replay_outputs_cache_and_dedup(store, fake_llm) -> None:
    # The third record repeats the first one's request: it must be paid for once per model.
    sample = make_sample(["hello", "world", "hello"])
    df = replay(sample, [A, B], store=store, decoding=DEC, progress=False)

    assert list(df.columns) == list(rp.OUTPUT_COLUMNS)
    assert len(df) == 6 and (df["error"] == "").all()
    assert set(zip(df["record_id"], df["model"], strict=True)) == {
        (r, m) for r in sample["record_id"] for m in ("model-a", "model-b")
    }
    assert df.loc[df["model"] == "model-a", "response_text"].tolist() == [
        "model-a: hello",
        "model-a: world",
        "model-a: hello",
    ]
    assert json.loads(df["decoding"].iloc[0]) == {"temperature": 0, "seed": 7, "max_tokens": 32}
    assert sum(fake_llm.calls.values()) == 4  # 2 distinct requests x 2 models
    assert all(p["seed"] == 7 and p["max_tokens"] == 32 and p["temperature"] == 0 for p in fake_llm.params)
    assert len(_stored(store)) == 4
    assert df.attrs["summary"]["requests"] == 4 and df.attrs["summary"]["called"] == 4

    again = replay(sample, [A, B], store=store, decoding=DEC, progress=False)
    assert again["cache_hit"].all() and sum(fake_llm.calls.values()) == 4
    assert again["response_text"].tolist() == df["response_text"].tolist()

    # A new namespace (e.g. the next replay day) or fresh=True asks the provider again.
    replay(sample, [A], store=store, decoding=DEC, progress=False, cache_namespace="2026-11-27")
    assert sum(fake_llm.calls.values()) == 6
    fresh = replay(sample, [A], store=store, decoding=DEC, progress=False, fresh=True)
    assert not fresh["cache_hit"].any() and sum(fake_llm.calls.values()) == 8
    assert len(_stored(store)) == 6  # overwritten in place, never duplicated


# litellm builds a custom handler's coroutine in an executor thread (`run_in_executor`, then awaits it): a
# cancel that lands during that await drops the coroutine unstarted, so that request was never sent.
@pytest.mark.filterwarnings("ignore:coroutine .* was never awaited:RuntimeWarning")
def test_resume_after_cancel_finishes_without_duplicates(store, fake_llm) -> None:
    prompts = [f"q{i}" for i in range(8)]
    sample = make_sample(prompts)
    fake_llm.delay = 0.05

    async def cancelled_run() -> None:
        task = asyncio.create_task(
            areplay(sample, [A], store=store, decoding=DEC, progress=False, concurrency={"fake": 2})
        )
        while len(fake_llm.completed) < 3:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancelled_run())
    # What the killed run committed is what it finished (a reply still in flight at the kill is lost).
    with store.session() as s:
        done_first = {r.request["messages"][-1]["content"] for r in s.execute(select(ReplayOutput)).scalars()}
    assert 2 <= len(done_first) < len(prompts)
    calls_first = dict(fake_llm.calls)

    df = replay(sample, [A], store=store, decoding=DEC, progress=False)
    assert len(df) == len(prompts) and (df["error"] == "").all()
    assert df["response_text"].tolist() == [f"model-a: {p}" for p in prompts]
    # Finished requests were not called again; the others were called exactly once more.
    for p in prompts:
        extra = fake_llm.calls[("model-a", p)] - calls_first.get(("model-a", p), 0)
        assert extra == (0 if p in done_first else 1), p
    keys = _stored(store)
    assert len(keys) == len(set(keys)) == len(prompts)
    with store.session() as s:
        assert s.execute(select(func.count()).select_from(ReplayOutput)).scalar() == len(prompts)


def test_rate_limits_and_5xx_are_retried_with_retry_after(store, fake_llm, monkeypatch) -> None:
    delays: list[float] = []

    async def record(seconds: float) -> None:
        delays.append(seconds)

    monkeypatch.setattr(replay_call, "_SLEEP", record)
    fake_llm.retry_after = "7"
    df = replay(make_sample(["rl:2", "5xx:1"]), [A], store=store, decoding=DEC, progress=False)
    assert (df["error"] == "").all()
    assert df["attempts"].tolist() == [3, 2]
    assert fake_llm.calls[("model-a", "rl:2")] == 3
    assert sorted(delays)[-2:] == [7.0, 7.0]  # Retry-After wins over the shorter jittered back-off
    assert min(delays) <= replay_call.DEFAULT_RETRY.base_delay_s  # the 5xx retry used plain back-off


class _Ceiling:
    """An rng whose uniform draw is always the top of its range: each back-off equals its cap."""

    def uniform(self, low: float, high: float) -> float:
        return high


def test_backoff_doubles_across_the_first_try_made_outside_the_retry_loop(fake_llm, monkeypatch) -> None:
    delays: list[float] = []

    async def record(seconds: float) -> None:
        delays.append(seconds)

    monkeypatch.setattr(replay_call, "_SLEEP", record)
    policy = RetryPolicy(attempts=5, base_delay_s=0.5, max_delay_s=30.0)
    outcome = asyncio.run(replay_call.complete("fake/model-a", {"messages": [{"role": "user", "content": "5xx:3"}]},
                                               retry=policy, rng=_Ceiling()))  # fmt: skip
    assert outcome["attempts"] == 4 and "error" not in outcome
    assert delays == [0.5, 1.0, 2.0]  # try 1 fails outside tenacity, tries 2-3 inside: one doubling sequence
    delays.clear()
    failed = asyncio.run(replay_call.complete("fake/model-a", {"messages": [{"role": "user", "content": "5xx:9"}]},
                                              retry=RetryPolicy(attempts=3, base_delay_s=0.5), rng=_Ceiling()))  # fmt: skip
    assert failed["attempts"] == 3 and failed["error"] and delays == [0.5, 1.0]


def test_client_errors_fail_fast_and_exhausted_retries_are_reported(store, fake_llm, monkeypatch) -> None:
    async def no_wait(_seconds: float) -> None:
        return None

    monkeypatch.setattr(replay_call, "_SLEEP", no_wait)
    policy = RetryPolicy(attempts=3)
    df = replay(make_sample(["bad", "rl:99", "ok"]), [A], store=store, decoding=DEC, progress=False, retry=policy)
    by = df.set_index("response_text", drop=False)
    rows = {r["error"].split(":")[0]: r for r in df.to_dict("records")}
    assert fake_llm.calls[("model-a", "bad")] == 1  # a 4xx is the request's fault: no retry
    assert fake_llm.calls[("model-a", "rl:99")] == 3
    assert set(rows) == {"BadRequestError", "RateLimitError", ""}
    assert rows["BadRequestError"]["attempts"] == 1 and rows["RateLimitError"]["attempts"] == 3
    assert "model-a: ok" in by.index
    assert df.attrs["summary"]["failed"] == 2
    assert len(_stored(store)) == 1  # failures are not cached: the next run tries them again


def test_timeouts_are_retried(sqlite_store, fake_llm, monkeypatch) -> None:
    async def no_wait(_seconds: float) -> None:
        return None

    monkeypatch.setattr(replay_call, "_SLEEP", no_wait)
    policy = RetryPolicy(attempts=2)
    df = replay(
        make_sample(["slow:5"]),
        [A],
        store=sqlite_store,
        decoding=DEC,
        progress=False,
        retry=policy,
        attempt_timeout_s=0.2,
    )
    assert df["error"].tolist() == [""] and df["attempts"].tolist() == [2]
    assert fake_llm.calls[("model-a", "slow:5")] == 2


def test_per_provider_concurrency_limit(sqlite_store, fake_llm) -> None:
    fake_llm.delay = 0.03
    replay(
        make_sample([f"p{i}" for i in range(8)]),
        [A],
        store=sqlite_store,
        decoding=DEC,
        progress=False,
        concurrency={"fake": 3},
    )
    assert fake_llm.max_in_flight == 3


def test_invalid_records_are_reported_not_dropped(sqlite_store, fake_llm) -> None:
    sample = make_sample(["fine", "broken"])
    sample.loc[1, "messages"] = "{not json"
    df = replay(sample, [A, B], store=sqlite_store, decoding=DEC, progress=False)
    assert len(df) == 4
    broken = df[df["record_id"] == sample.loc[1, "record_id"]]
    assert broken["error"].str.startswith("invalid record").all()
    assert df.attrs["summary"]["invalid_records"] == 1
    with pytest.raises(InvalidInputError, match="lacks column"):
        replay(sample.drop(columns=["messages"]), [A], store=sqlite_store, decoding=DEC, progress=False)
    with pytest.raises(InvalidInputError, match="max_tokens"):
        Decoding(max_tokens=0)


def test_system_prompt_is_added_and_part_of_the_key(sqlite_store, fake_llm) -> None:
    sample = make_sample(["hi"])
    plain = replay(sample, [A], store=sqlite_store, decoding=DEC, progress=False)
    with_sys = replay(sample, [A], store=sqlite_store, decoding=DEC, progress=False, system_prompt="Be terse.")
    assert plain["cache_key"].iloc[0] != with_sys["cache_key"].iloc[0]
    with sqlite_store.session() as s:
        req = s.get(ReplayOutput, with_sys["cache_key"].iloc[0]).request
    assert req["messages"][0] == {"role": "system", "content": "Be terse."}


def test_backoff_delay_and_retry_after_parsing() -> None:
    import httpx
    import litellm

    policy = RetryPolicy(base_delay_s=1, max_delay_s=8)
    rng = random.Random(0)
    for attempt in range(1, 8):
        assert 0 <= policy.delay(attempt, None, rng) <= min(8, 2 ** (attempt - 1))

    def limited(headers: dict[str, str]) -> Exception:
        resp = httpx.Response(429, headers=headers, request=httpx.Request("POST", "http://x"))
        return litellm.RateLimitError("x", llm_provider="p", model="m", response=resp)

    assert retry_after_s(limited({"retry-after": "3"})) == 3
    assert retry_after_s(limited({"retry-after-ms": "250"})) == 0.25
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 < retry_after_s(limited({"retry-after": when})) <= 30
    assert retry_after_s(limited({})) is None
    assert replay_call.is_retryable(limited({})) and replay_call.is_retryable(TimeoutError())
    assert not replay_call.is_retryable(litellm.BadRequestError("x", llm_provider="p", model="m"))


class _OpenAIServer(BaseHTTPRequestHandler):
    """A minimal OpenAI-compatible endpoint: one 429 with Retry-After, then answers."""

    hits: list[dict[str, Any]] = []  # noqa: RUF012 - shared with the test on purpose

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).hits.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        if len(type(self).hits) == 1:
            self._send(429, {"error": {"message": "rate limited", "type": "rate_limit"}}, {"Retry-After": "0"})
            return
        answer = {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "system_fingerprint": None,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "pong"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
        }
        self._send(200, answer, {})

    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def openai_server() -> Iterator[str]:
    _OpenAIServer.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OpenAIServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_openai_compatible_endpoint_by_configuration_only(sqlite_store, openai_server, monkeypatch) -> None:
    monkeypatch.setenv("LOCAL_LLM_KEY", "sk-local")
    target = ReplayTarget("smollm2", "openai", {"api_base": openai_server, "api_key_env": "LOCAL_LLM_KEY"})
    df = replay(make_sample(["ping"]), [target], store=sqlite_store, decoding=DEC, progress=False)
    assert df["response_text"].tolist() == ["pong"] and df["attempts"].tolist() == [2]
    hits = _OpenAIServer.hits
    assert len(hits) == 2 and hits[-1]["path"] == "/v1/chat/completions"
    assert hits[-1]["auth"] == "Bearer sk-local"
    assert hits[-1]["body"]["seed"] == 7 and hits[-1]["body"]["temperature"] == 0
    with sqlite_store.session() as s:
        stored = s.get(ReplayOutput, df["cache_key"].iloc[0])
    assert "sk-local" not in json.dumps(stored.request)  # the key never reaches the store


def test_missing_api_key_env_is_a_clear_error(sqlite_store, monkeypatch) -> None:
    monkeypatch.delenv("NOPE_KEY", raising=False)
    target = ReplayTarget("x", "openai", {"api_base": "http://127.0.0.1:9/v1", "api_key_env": "NOPE_KEY"})
    with pytest.raises(InvalidInputError, match="NOPE_KEY"):
        replay(make_sample(["ping"]), [target], store=sqlite_store, decoding=DEC, progress=False)


def test_replay_refuses_a_running_loop(sqlite_store) -> None:
    async def inside() -> None:
        replay(make_sample(["x"]), [A], store=sqlite_store, decoding=DEC, progress=False)

    with pytest.raises(DriftPipelineError, match="areplay"):
        asyncio.run(inside())


def test_offline_variant_is_part_of_the_cache_key(home) -> None:
    from drift_pipeline.detection.offline import variants

    target = ReplayTarget(variants.MODEL_ID, "offline")
    request = rp.canonical_request(target, [{"role": "user", "content": "x"}], None, None, DEC)
    before = cache_key(request, rp.provider_variant(target), None)
    variants.set_variant(variants.MODEL_ID, "safety-silent")
    after = cache_key(request, rp.provider_variant(target), None)
    assert rp.provider_variant(target) == "safety-silent" and before != after


@pytest.mark.slow
def test_real_replay_against_the_offline_model(home, sqlite_store, offline_model) -> None:
    from drift_pipeline.detection.offline import variants

    target = ReplayTarget(variants.MODEL_ID, "offline")
    sample = make_sample(["Name three primary colors.", "What is the capital of France?"])
    dec = Decoding(max_tokens=12, seed=1)
    first = replay(sample, [target], store=sqlite_store, decoding=dec, progress=False)
    assert (first["error"] == "").all() and (first["response_text"].str.len() > 0).all()
    assert (first["completion_tokens"] <= 12).all() and (first["prompt_tokens"] > 10).all()
    assert set(first["system_fingerprint"]) == {variants.VARIANTS["base"].fingerprint}
    assert first["provider_variant"].tolist() == ["base", "base"]

    cached = replay(sample, [target], store=sqlite_store, decoding=dec, progress=False)
    assert cached["cache_hit"].all() and cached["response_text"].tolist() == first["response_text"].tolist()

    # A silent provider update: same model id, same fingerprint, but the cache must not hide it.
    variants.set_variant(variants.MODEL_ID, "safety-silent")
    silent = replay(sample, [target], store=sqlite_store, decoding=dec, progress=False)
    assert not silent["cache_hit"].any()
    assert silent["system_fingerprint"].tolist() == first["system_fingerprint"].tolist()
    assert (silent["prompt_tokens"] > first["prompt_tokens"]).all()  # the injected prompt is really there


def test_replay_cli_runs_registered_versions(home, fake_llm, tmp_path) -> None:
    import pandas as pd
    import typer
    from typer.testing import CliRunner

    from drift_pipeline.cli import replay as cli
    from drift_pipeline.persistence.db import Store
    from drift_pipeline.versioning import registry

    registry.add_version(Store.open(), "fake", "model-a", actor="test")
    sample_path, out = tmp_path / "sample.parquet", tmp_path / "out" / "replay.jsonl"
    make_sample(["one", "two"]).to_parquet(sample_path)
    app = typer.Typer()
    cli.register(app)
    res = CliRunner().invoke(app, ["replay", "run", str(sample_path), "--model", "model-a", "--output", str(out)])
    assert res.exit_code == 0, res.output
    assert "2 called" in res.output
    assert pd.read_json(out, lines=True)["response_text"].tolist() == ["model-a: one", "model-a: two"]
    res = CliRunner().invoke(app, ["replay", "run", str(sample_path), "--model", "nope", "--output", str(out)])
    assert isinstance(res.exception, DriftPipelineError)
