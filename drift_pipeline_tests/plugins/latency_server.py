"""A real OpenAI-compatible provider with injected latency and a concurrency limit, in its own process.

The server (aiohttp) answers `POST /v1/chat/completions` after `latency_ms`, like a provider that takes
that long per request whatever the load. Above `limit` requests in flight it answers 429 with Retry-After,
as a provider's concurrency quota would. `GET /stats` reports requests served, rejected and the largest
number in flight at once; `POST /stats/reset` zeroes them. It runs in a separate process so that its own
CPU time never counts against the replay engine being measured (tests and `benchmarks/bench_replay.py`).

    python -m drift_pipeline_tests.plugins.latency_server --latency-ms 200 --limit 64
    # prints "READY http://127.0.0.1:PORT/v1" once it listens
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import pytest


def _completion(body: dict[str, Any], number: int) -> Any:
    from aiohttp import web

    content = str(body["messages"][-1].get("content", ""))
    return web.json_response(
        {
            "id": f"cmpl-{number}",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "system_fingerprint": "fp_latency",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": f"echo: {content}"}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": len(content.split()), "completion_tokens": 2, "total_tokens": 0},
        }
    )


def _app(latency_s: float, limit: int) -> Any:
    from aiohttp import web

    stats = {"served": 0, "rejected": 0, "in_flight": 0, "max_in_flight": 0, "latency_ms": latency_s * 1000}

    async def complete(request: web.Request) -> web.Response:
        # The latency counts from the handler's start and covers the server's own work (parsing, the
        # answer), as a provider's "200 ms per request" does: the engine measured is the only other cost.
        started = asyncio.get_running_loop().time()
        body = await request.json()
        if stats["in_flight"] >= limit:
            stats["rejected"] += 1
            error = {"error": {"message": "too many requests in flight", "type": "rate_limit"}}
            return web.json_response(error, status=429, headers={"Retry-After": "1"})
        stats["in_flight"] += 1
        stats["max_in_flight"] = max(stats["max_in_flight"], stats["in_flight"])
        try:
            answer = _completion(body, stats["served"] + 1)
            await asyncio.sleep(max(0.0, latency_s - (asyncio.get_running_loop().time() - started)))
        finally:
            stats["in_flight"] -= 1
        stats["served"] += 1
        return answer

    async def read_stats(request: web.Request) -> web.Response:
        return web.json_response(stats)

    async def reset(request: web.Request) -> web.Response:
        stats.update(served=0, rejected=0, max_in_flight=stats["in_flight"])
        return web.json_response(stats)

    app = web.Application()
    app.router.add_post("/v1/chat/completions", complete)
    app.router.add_get("/stats", read_stats)
    app.router.add_post("/stats/reset", reset)
    return app


async def _serve(latency_s: float, limit: int) -> None:
    from aiohttp import web

    runner = web.AppRunner(_app(latency_s, limit), access_log=None)
    await runner.setup()
    # A backlog above the limit: connections beyond it must reach the handler (and its 429), not stall.
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    port = runner.addresses[0][1]
    print(f"READY http://127.0.0.1:{port}/v1", flush=True)
    await asyncio.Event().wait()


@dataclass
class LatencyServer:
    """A running server: `api_base` for litellm, `stats()`/`reset()` over HTTP."""

    api_base: str
    process: subprocess.Popen[str]

    def _call(self, path: str, method: str) -> dict[str, Any]:
        url = self.api_base.removesuffix("/v1") + path
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=10) as resp:
            return dict(json.loads(resp.read()))

    def stats(self) -> dict[str, Any]:
        return self._call("/stats", "GET")

    def reset(self) -> dict[str, Any]:
        return self._call("/stats/reset", "POST")


@contextmanager
def latency_server(latency_ms: float = 200.0, limit: int = 64) -> Iterator[LatencyServer]:
    """Start the server in a child process; stop it (by its own pid) on exit."""
    cmd = [sys.executable, "-m", __name__, "--latency-ms", str(latency_ms), "--limit", str(limit)]
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline() if process.stdout else ""
        if not line.startswith("READY "):
            raise RuntimeError(f"latency server did not start (exit {process.poll()})")
        yield LatencyServer(line.split()[1], process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # never leave a server behind, whatever it inherited
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def slow_provider() -> Iterator[LatencyServer]:
    """The latency server with 200 ms per request and at most 64 requests in flight."""
    with latency_server(200.0, 64) as server:
        yield server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--limit", type=int, default=64, help="requests in flight before 429")
    args = parser.parse_args()
    # A test run started in the background ignores SIGINT, and Dagster code run in the test process maps
    # SIGTERM onto SIGINT's handler (`setup_interrupt_handlers`): this child would inherit "ignore SIGTERM"
    # and outlive its test. Default dispositions here, so `terminate()` stops it.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from drift_pipeline.detection.replay import event_loop_factory

    # The replay's own loop (uvloop where installed): the server's loop overhead is not what is measured.
    with suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(_serve(args.latency_ms / 1000, args.limit))


if __name__ == "__main__":
    main()
