"""Replay against a real OpenAI-compatible server in its own process: concurrency, 429, timeouts, bad answers.

These targets (`provider="openai"` plus an `api_base`) go through the direct transport (`replay_http`),
so these tests pin that it behaves as the litellm path does: same retries, Retry-After, timeouts, cache.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import func, select

from drift_pipeline.detection import replay_call
from drift_pipeline.detection.replay import Decoding, ReplayTarget, replay
from drift_pipeline.detection.replay_http import ProviderHTTPError, extract, uses_direct_transport
from drift_pipeline.errors import InvalidInputError
from drift_pipeline.persistence.tables import ReplayOutput
from drift_pipeline.retry import RetryPolicy
from drift_pipeline_tests.plugins.latency_server import LatencyServer, latency_server
from drift_pipeline_tests.plugins.replay import make_sample

DEC = Decoding(temperature=0, seed=3, max_tokens=16)


def _target(api_base: str, **extra: Any) -> ReplayTarget:
    return ReplayTarget("served-model", "openai", {"api_base": api_base, "api_key_env": "BENCH_KEY", **extra})


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCH_KEY", "sk-test-secret")


def test_requests_overlap_up_to_the_limit_and_every_answer_is_committed(store) -> None:
    prompts = [f"question {i}" for i in range(128)]
    # 1 s per request: even a starved client has time to put most of its 64 requests in flight at once.
    with latency_server(latency_ms=1000, limit=64) as server:
        target = _target(server.api_base)
        kw: dict[str, Any] = {"store": store, "decoding": DEC, "progress": False, "concurrency": {"openai": 64}}
        df = replay(make_sample(prompts), [target], **kw)
        stats = server.stats()
        again = replay(make_sample(prompts), [target], **kw)
        assert again["cache_hit"].all() and server.stats()["served"] == len(prompts)
    assert (df["error"] == "").all() and df["attempts"].tolist() == [1] * len(prompts)
    assert df["response_text"].tolist() == [f"echo: {p}" for p in prompts]
    assert stats["served"] == len(prompts) and stats["rejected"] == 0  # never above the provider's limit
    assert stats["max_in_flight"] >= 48  # the requests really overlap at the server (limit 64)
    with store.session() as s:
        assert s.execute(select(func.count()).select_from(ReplayOutput)).scalar() == len(prompts)
        stored = s.execute(select(ReplayOutput)).scalars().first()
    assert "sk-test-secret" not in json.dumps(stored.request)


def test_429_retry_after_is_honoured(sqlite_store, monkeypatch: pytest.MonkeyPatch) -> None:
    delays: list[float] = []

    async def record(seconds: float) -> None:
        delays.append(seconds)
        await asyncio.sleep(0.6)  # long enough for the server (300 ms a request) to free its slots

    monkeypatch.setattr(replay_call, "_SLEEP", record)
    # The server takes 2 at a time and answers 429 (Retry-After: 1) above that; we send 6 at once.
    with latency_server(latency_ms=300, limit=2) as server:
        df = replay(
            make_sample([f"p{i}" for i in range(6)]), [_target(server.api_base)], store=sqlite_store,
            decoding=DEC, progress=False, concurrency={"openai": 6},
        )  # fmt: skip
        stats = server.stats()
    assert (df["error"] == "").all() and stats["served"] == 6
    assert stats["rejected"] >= 1 and df["attempts"].max() >= 2
    assert len(delays) == stats["rejected"] and min(delays) >= 1.0  # Retry-After wins over the back-off


def test_timeouts_are_retried_then_reported(sqlite_store, monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_wait(_seconds: float) -> None:
        return None

    monkeypatch.setattr(replay_call, "_SLEEP", no_wait)
    with latency_server(latency_ms=5000, limit=8) as server:
        df = replay(
            make_sample(["slow"]), [_target(server.api_base)], store=sqlite_store, decoding=DEC, progress=False,
            retry=RetryPolicy(attempts=2), attempt_timeout_s=0.3,
        )  # fmt: skip
    assert df["attempts"].tolist() == [2]
    assert df["error"].iloc[0].startswith("TimeoutError")
    assert df.attrs["summary"]["failed"] == 1


class _Hostile(BaseHTTPRequestHandler):
    """Answers by path: `/bad/...` a 400, `/garbage/...` a 200 that is not a chat completion."""

    hits: list[str] = []  # noqa: RUF012 - shared with the test on purpose

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).hits.append(self.path)
        status, body = (400, b'{"error": {"message": "bad request: no such model for key sk-test-secret"}}')
        if self.path.startswith("/garbage"):
            status, body = 200, b'{"choices": "nope", "api_key": "sk-test-secret"}'
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def hostile() -> Iterator[str]:
    _Hostile.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_client_errors_fail_fast_and_malformed_answers_are_errors(sqlite_store, hostile, monkeypatch) -> None:
    async def no_wait(_seconds: float) -> None:
        return None

    monkeypatch.setattr(replay_call, "_SLEEP", no_wait)
    policy = RetryPolicy(attempts=3)
    kw: dict[str, Any] = {"store": sqlite_store, "decoding": DEC, "progress": False, "retry": policy}
    bad = replay(make_sample(["x"]), [_target(f"{hostile}/bad/v1")], **kw)
    assert bad["attempts"].tolist() == [1]  # a 4xx is the request's fault: no retry
    assert bad["error"].iloc[0] == "ProviderHTTPError: HTTP 400: bad request: no such model for key ***"
    garbage = replay(make_sample(["x"]), [_target(f"{hostile}/garbage/v1")], **kw)
    assert garbage["attempts"].tolist() == [3]  # a 200 that is no answer is treated as a 502
    assert "malformed chat completion" in garbage["error"].iloc[0]
    assert "sk-test-secret" not in garbage["error"].iloc[0]
    assert _Hostile.hits == ["/bad/v1/chat/completions"] + ["/garbage/v1/chat/completions"] * 3


def test_refused_connections_are_retried(sqlite_store, monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_wait(_seconds: float) -> None:
        return None

    monkeypatch.setattr(replay_call, "_SLEEP", no_wait)
    df = replay(
        make_sample(["x"]), [_target("http://127.0.0.1:9/v1")], store=sqlite_store, decoding=DEC, progress=False,
        retry=RetryPolicy(attempts=2),
    )  # fmt: skip
    assert df["attempts"].tolist() == [2] and df["error"].iloc[0].startswith("ProviderHTTPError: connection error")


def test_transport_choice(sqlite_store, slow_provider: LatencyServer, monkeypatch: pytest.MonkeyPatch) -> None:
    assert uses_direct_transport("openai", {"api_base": "http://h/v1", "api_key_env": "K"})
    assert not uses_direct_transport("openai", {})  # hosted OpenAI: litellm maps the parameters
    assert not uses_direct_transport("openai", {"api_base": "http://h/v1", "api_version": "x"})
    assert not uses_direct_transport("anthropic", {"api_base": "http://h"})
    assert not uses_direct_transport("openai", {"api_base": "http://h/v1"}, "litellm")
    with pytest.raises(InvalidInputError):
        uses_direct_transport("anthropic", {}, "direct")
    with pytest.raises(InvalidInputError):
        uses_direct_transport("openai", {"api_base": "http://h/v1"}, "carrier-pigeon")
    # Through litellm (the setting), the same request reaches the same server and the same cache key.
    monkeypatch.setenv("DRIFT_PIPELINE_REPLAY_TRANSPORT", "litellm")
    kw: dict[str, Any] = {"store": sqlite_store, "decoding": DEC, "progress": False}
    via_litellm = replay(make_sample(["same"]), [_target(slow_provider.api_base)], **kw)
    direct = replay(make_sample(["same"]), [_target(slow_provider.api_base)], transport="direct", fresh=True, **kw)
    assert via_litellm["response_text"].tolist() == direct["response_text"].tolist() == ["echo: same"]
    assert via_litellm["cache_key"].tolist() == direct["cache_key"].tolist()
    assert slow_provider.stats()["served"] == 2
    monkeypatch.setenv("DRIFT_PIPELINE_REPLAY_TRANSPORT", "pigeon")
    with pytest.raises(InvalidInputError, match="DRIFT_PIPELINE_REPLAY_TRANSPORT"):
        replay(make_sample(["x"]), [_target(slow_provider.api_base)], **kw)


def test_extract_reads_an_openai_answer() -> None:
    body = {
        "model": "m-1",
        "system_fingerprint": "fp",
        "choices": [{"message": {"role": "assistant", "content": None, "tool_calls": [{"id": "t"}]}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4},
    }
    out = extract(json.dumps(body).encode())
    assert out["response_text"] == "" and out["tool_calls"] == [{"id": "t"}]
    assert (out["prompt_tokens"], out["completion_tokens"], out["served_model"]) == (3, 4, "m-1")
    for raw in (b"not json", b"[]", b'{"choices": []}', b'{"choices": [{"message": {"content": 5}}]}'):
        with pytest.raises(ProviderHTTPError):
            extract(raw)


def test_the_concurrency_setting_and_the_cli_option(home, slow_provider: LatencyServer, tmp_path, monkeypatch) -> None:
    import typer
    from typer.testing import CliRunner

    from drift_pipeline.cli import replay as cli
    from drift_pipeline.persistence.db import Store
    from drift_pipeline.versioning import registry

    monkeypatch.setenv("DRIFT_PIPELINE_REPLAY_CONCURRENCY", '{"openai": 5}')
    store = Store.open()
    replay(make_sample([f"s{i}" for i in range(20)]), [_target(slow_provider.api_base)], store=store, decoding=DEC)
    assert slow_provider.stats()["max_in_flight"] == 5  # the setting, over the default of 8

    registry.add_version(
        store, "openai", "served-model", actor="test", litellm_params=_target(slow_provider.api_base).litellm_params
    )
    sample_path, out = tmp_path / "sample.parquet", tmp_path / "out.jsonl"
    make_sample([f"c{i}" for i in range(12)]).to_parquet(sample_path)
    app = typer.Typer()
    cli.register(app)
    base = ["replay", "run", str(sample_path), "--model", "served-model", "--output", str(out)]
    slow_provider.reset()
    res = CliRunner().invoke(app, [*base, "--concurrency", "openai=3"])
    assert res.exit_code == 0, res.output
    assert "12 called" in res.output and slow_provider.stats()["max_in_flight"] == 3  # the option wins
    res = CliRunner().invoke(app, [*base, "--concurrency", "openai=lots"])
    assert isinstance(res.exception, InvalidInputError) and "PROVIDER=N" in str(res.exception)


def test_group_commit_batches_answers_and_surfaces_a_failed_commit(sqlite_store, monkeypatch) -> None:
    from drift_pipeline.detection import replay_cache

    batches: list[int] = []
    real = replay_cache.save_outputs

    def counting(store: Any, rows: list[dict[str, Any]], *, overwrite: bool) -> None:
        batches.append(len(rows))
        real(store, rows, overwrite=overwrite)

    monkeypatch.setattr(replay_cache, "save_outputs", counting)
    rows = [replay_cache.output_row(f"k{i}", "openai/m", None, {"i": i}, {"response_text": "x"}) for i in range(5)]

    async def write(store: Any) -> None:
        writer = replay_cache.OutputWriter(store, overwrite=False)
        for row in rows:  # all five arrive before the commit task first runs
            writer.add(row)
        await writer.flush()

    asyncio.run(write(sqlite_store))
    assert batches == [5]  # one transaction, not five
    with sqlite_store.session() as s:
        assert s.execute(select(func.count()).select_from(ReplayOutput)).scalar() == 5

    class Broken:
        is_postgres = False

        def transaction(self) -> Any:
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        asyncio.run(write(Broken()))


def test_the_latency_server_stops_on_sigterm_even_if_the_test_process_ignores_it() -> None:
    """A background test run ignores SIGINT and Dagster maps SIGTERM onto it: children inherit "ignore"."""
    import signal

    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        with latency_server(latency_ms=10, limit=2) as server:
            pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert server.process.returncode == -signal.SIGTERM  # stopped by terminate(), not by the kill fallback


def test_replay_runs_its_requests_on_uvloop_where_installed(monkeypatch: pytest.MonkeyPatch, store) -> None:
    """The event loop is part of the engine's CPU per request (benchmarks/bench_replay.py)."""
    uvloop = pytest.importorskip("uvloop")
    loops: list[type] = []

    async def spy(*args: Any, **kwargs: Any) -> Any:
        loops.append(type(asyncio.get_running_loop()))
        import pandas as pd

        return pd.DataFrame()

    monkeypatch.setattr("drift_pipeline.detection.replay.areplay", spy)
    replay(make_sample(["hi"]), [ReplayTarget("m", "openai")], store=store, decoding=Decoding(), progress=False)
    assert loops == [uvloop.Loop]
