"""A real local OpenAI-compatible provider: `/v1/models` and chat completions, for discovery and probes."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


class FakeOpenAI:
    """A real HTTP server speaking the two OpenAI endpoints discovery uses: `/v1/models` and chat completions.

    `models` is what it lists; `serves` maps a requested (alias) name to the model id it reports serving;
    `reply` is every answer's text (or a function of the last user message); `script(model, messages)`, when
    set, answers instead (a provider whose behaviour depends on the model asked). With `logprobs` set (token -> log-probability of the first answer token),
    a request with `logprobs=true` gets them back, OpenAI-style (`top_logprobs` most likely first); left
    None, the server ignores the parameter and returns none, as many providers do. `bodies` keeps the
    JSON of every completion request.
    """

    def __init__(self) -> None:
        self.models: list[str] = []
        self.serves: dict[str, str] = {}
        self.reply: str | Callable[[str], str] = "pong"
        self.script: Callable[[str, list[dict[str, Any]]], str] | None = None
        self.logprobs: dict[str, float] | None = None
        self.requests: list[tuple[str, str]] = []
        self.bodies: list[dict[str, Any]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def api_base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def answer(self, body: dict[str, Any]) -> str:
        """`script(model, messages)` when set, else `reply`, or `reply(last user message)` when it is a function."""
        if self.script is not None:
            return str(self.script(str(body["model"]), list(body.get("messages") or [])))
        if callable(self.reply):
            return str(self.reply(str(body["messages"][-1].get("content", ""))))
        return self.reply

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, body: dict[str, Any], status: int = 200) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                fake.requests.append(("GET", self.path))
                if self.path.rstrip("/") != "/v1/models":
                    return self._reply({"error": "not found"}, 404)
                self._reply({"object": "list", "data": [{"id": m, "object": "model"} for m in fake.models]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                fake.requests.append(("POST", self.path))
                fake.bodies.append(body)
                asked = body["model"]
                choice: dict[str, Any] = {
                    "index": 0,
                    "message": {"role": "assistant", "content": fake.answer(body)},
                    "finish_reason": "stop",
                }
                if body.get("logprobs") and fake.logprobs:
                    choice["logprobs"] = {"content": [_token_entry(fake.logprobs, int(body.get("top_logprobs") or 0))]}
                self._reply(
                    {
                        "id": "chatcmpl-1",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": fake.serves.get(asked, asked),
                        "choices": [choice],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    }
                )

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def _token_entry(logprobs: dict[str, float], k: int) -> dict[str, Any]:
    ranked = sorted(logprobs.items(), key=lambda kv: -kv[1])
    token, value = ranked[0]
    tops = [{"token": t, "logprob": v, "bytes": None} for t, v in ranked[:k]]
    return {"token": token, "logprob": value, "bytes": None, "top_logprobs": tops}


@pytest.fixture(scope="session")
def fake_openai_server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


@pytest.fixture
def fake_openai(fake_openai_server: FakeOpenAI) -> FakeOpenAI:
    fake_openai_server.models, fake_openai_server.serves = [], {}
    fake_openai_server.reply, fake_openai_server.logprobs = "pong", None
    fake_openai_server.requests.clear()
    fake_openai_server.bodies.clear()
    return fake_openai_server
