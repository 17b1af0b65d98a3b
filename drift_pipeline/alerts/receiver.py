"""A local HTTP receiver for alert channels: stands in for the incident system in the demo and the tests.

A threaded `http.server` on 127.0.0.1 (a free port) that records every POST and can be told to answer
some with an error status, so retries and give-ups are exercised for real. Not for production use.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from drift_pipeline import files
from drift_pipeline.alerts.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")  # everything else in a request path becomes '-' in a file name


@dataclass(frozen=True)
class ReceivedRequest:
    """One request the receiver got, with the raw body (signatures are over the bytes)."""

    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        """A header by name, in any case."""
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)

    def signed_with(self, secret: str) -> bool:
        """True when the webhook signature headers verify against `secret`."""
        return verify_signature(secret, self.body, self.header(SIGNATURE_HEADER), self.header(TIMESTAMP_HEADER))


@dataclass
class _Rule:
    fail_times: int = 0
    status: int = 503


class AlertReceiver:
    """An HTTP server on 127.0.0.1 that records every POST and can be told to fail.

    `fail(path, times)` answers the next `times` requests to `path` with a 503; `down(path)` fails all.
    Accepted requests get 202 with ``{"status": "success", "dedup_key": ...}`` (what PagerDuty answers).
    With a `folder`, every body is also written there as ``alert-<n><path>.json``.
    """

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder
        if folder is not None:
            files.private_dirs(folder)
        self._lock = threading.Lock()
        self._requests: list[ReceivedRequest] = []
        self._attempts: list[ReceivedRequest] = []
        self._rules: dict[str, _Rule] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def fail(self, path: str, times: int, status: int = 503) -> None:
        with self._lock:
            self._rules[path] = _Rule(times, status)

    def down(self, path: str, status: int = 503) -> None:
        self.fail(path, 10**9, status)

    def requests(self, path: str | None = None) -> list[ReceivedRequest]:
        """Requests answered with success (what a real receiver would have accepted)."""
        with self._lock:
            return [r for r in self._requests if path is None or r.path == path]

    def attempts(self, path: str | None = None) -> list[ReceivedRequest]:
        """Every request that arrived, failed ones included."""
        with self._lock:
            return [r for r in self._attempts if path is None or r.path == path]

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._attempts.clear()
            self._rules.clear()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _record(self, request: ReceivedRequest) -> int:
        with self._lock:
            self._attempts.append(request)
            if self.folder is not None:
                # The request path is the sender's: only a sanitised, bounded stem of it names the file.
                stem = _UNSAFE.sub("-", request.path)[:80]
                files.write_private(self.folder / f"alert-{len(self._attempts):03d}{stem}.json", request.body)
            rule = self._rules.get(request.path)
            if rule and rule.fail_times > 0:
                rule.fail_times -= 1
                return rule.status
            self._requests.append(request)
            return 202

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = receiver._record(ReceivedRequest(self.path, dict(self.headers.items()), body))
                reply: dict[str, Any] = {"status": "success" if status < 300 else "error"}
                with contextlib.suppress(ValueError, AttributeError):  # not every channel posts JSON objects
                    reply["dedup_key"] = json.loads(body).get("dedup_key")
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # keep the demo's and the tests' output quiet
                pass

        return Handler
