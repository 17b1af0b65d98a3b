"""A real local OpenAI-compatible embedding server (`POST /v1/embeddings`), honest or hostile on demand."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

DIM = 64


def hashed_vector(text: str, dim: int = DIM) -> list[float]:
    """A deterministic bag-of-words vector (not unit norm on purpose: the client must normalise)."""
    vector = np.full(dim, 0.05)
    for word in re.findall(r"\w+", text.lower()):
        digest = hashlib.sha256(word.encode()).digest()
        vector[digest[0] % dim] += 1.0 + digest[1] / 255
    return [float(x) for x in vector * 3.0]


class FakeEmbeddings:
    """`mode` scripts the answers: ``ok``; ``dim`` (one vector one element short), ``nan``, ``count`` (one
    vector missing), ``indices`` (an index twice), ``index-type`` (an index as a string), ``text`` (200 with an HTML page), ``huge`` (a 3 MB body),
    ``zero``, ``stream`` (the same 3 MB without Content-Length); ``reversed`` answers in reverse index order (valid). `fail` is a list of HTTP statuses sent
    (with Retry-After: 0) before answering. With `model` set (a SentenceTransformer) it embeds for real."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.fail: list[int] = []
        self.model: Any = None
        self.requests: list[dict[str, Any]] = []  # path, auth header, body of every request
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def texts_seen(self) -> list[str]:
        return [t for r in self.requests for t in r["body"].get("input", [])]

    def vectors(self, texts: list[str]) -> list[list[float]]:
        if self.model is not None:
            return self.model.encode(texts, normalize_embeddings=False, convert_to_numpy=True).tolist()
        return [hashed_vector(t) for t in texts]

    def answer(self, texts: list[str]) -> tuple[int, bytes, str]:
        vectors = self.vectors(texts)
        if self.mode == "text":
            return 200, b"<html>502 Bad Gateway</html>", "text/html"
        if self.mode in ("huge", "stream"):
            return 200, b'{"data": [' + b" " * 3_000_000 + b"]}", "application/json"
        if self.mode == "dim":
            vectors[-1] = vectors[-1][:-1]
        if self.mode == "nan":
            vectors[0][3] = float("nan")
        if self.mode == "zero":
            vectors[0] = [0.0] * len(vectors[0])
        items = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
        if self.mode == "count":
            items = items[:-1]
        if self.mode == "indices" and len(items) > 1:
            items[1]["index"] = 0
        if self.mode == "index-type":
            items[0]["index"] = "0"
        if self.mode == "reversed":
            items.reverse()
        body = {"object": "list", "model": "served", "data": items, "usage": {"prompt_tokens": 1, "total_tokens": 1}}
        return 200, json.dumps(body).encode(), "application/json"  # json.dumps writes NaN as NaN, like a bad server

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                fake.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                if fake.fail:
                    return self._send(fake.fail.pop(0), b'{"error": {"message": "busy"}}', "application/json")
                if self.path.rstrip("/") != "/v1/embeddings":
                    return self._send(404, b'{"error": "not found"}', "application/json")
                texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
                if any(not t for t in texts):  # as OpenAI does
                    return self._send(400, b'{"error": {"message": "input cannot be empty"}}', "application/json")
                self._send(*fake.answer(texts))

            def _send(self, status: int, data: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                if fake.mode != "stream" or status != 200:  # "stream": the body ends when the connection does
                    self.send_header("Content-Length", str(len(data)))
                self.send_header("Retry-After", "0")
                self.end_headers()
                # The client may stop reading a huge answer: what it should do.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture(scope="session")
def embedding_server_session() -> Iterator[FakeEmbeddings]:
    fake = FakeEmbeddings()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


@pytest.fixture
def embedding_server(embedding_server_session: FakeEmbeddings) -> FakeEmbeddings:
    """The session's embedding server, reset: honest, hashed vectors, no recorded requests."""
    embedding_server_session.mode, embedding_server_session.fail = "ok", []
    embedding_server_session.model = None
    embedding_server_session.requests.clear()
    return embedding_server_session
