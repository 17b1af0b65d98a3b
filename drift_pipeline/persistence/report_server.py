"""A small read-only HTTP server for the drift reports' HTML pages, so links in the Dagster UI open.

It serves exactly one kind of thing: ``GET /reports/<key>.html`` read from the object store (local or
S3), under the store's ``reports/`` prefix. Nothing else: no listing of any folder, no JSON (the HTML is
what a person reads), no file outside the prefix (keys are checked by `check_key` and, locally, resolved
under the root by `ObjectStore.full_path`, so ``..``, encoded separators and planted symlinks are refused).
Pages go out with headers that let the self-contained report render (inline CSS, ``data:`` images) and
nothing more: no script, no framing, no referrer, no caching. ``GET /healthz`` answers ``ok`` (for
`make ui` and tests to wait on).

It has no authentication: bind it to loopback (the default) or put it behind an authenticating proxy.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from drift_pipeline.errors import InvalidInputError, NotFoundError
from drift_pipeline.persistence.object_keys import check_key
from drift_pipeline.persistence.objects import ObjectStore
from drift_pipeline.persistence.report_links import DEFAULT_HOST, DEFAULT_PORT, REPORTS_PREFIX

log = logging.getLogger(__name__)

SECURITY_HEADERS = {
    # The report is one self-contained page: inline CSS and PNG data URIs, never a script or a fetch.
    "Content-Security-Policy": (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def requested_key(path: str) -> str:
    """The object key a request path names; InvalidInputError unless it is a report page under ``reports/``."""
    raw = urlsplit(path).path
    key = check_key(unquote(raw, errors="strict"))
    if not key.startswith(REPORTS_PREFIX) or not key.endswith(".html"):
        raise InvalidInputError("only report pages (reports/**.html) are served")
    if any(segment.startswith(".") for segment in key.split("/")):
        raise InvalidInputError("hidden or temporary objects are not served")  # e.g. an unfinished .tmp-* write
    return key


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ReportServer:
    """`ThreadingHTTPServer` serving report pages from `objects`; `start()` runs it in a daemon thread."""

    def __init__(
        self, objects: ObjectStore, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *, allow_remote: bool = False
    ) -> None:
        if not is_loopback(host) and not allow_remote:
            raise InvalidInputError(
                f"the report server has no authentication: refusing to bind {host!r} (loopback only, "
                "or pass --allow-remote behind an authenticating proxy)"
            )
        self.objects = objects
        try:
            self.server = ThreadingHTTPServer((host, port), _handler(objects))
        except OSError as exc:
            raise InvalidInputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self.server.daemon_threads = True
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> ReportServer:
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True, name="report-server")
        self.thread.start()
        return self

    def serve_forever(self) -> None:
        self.server.serve_forever()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> ReportServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _handler(objects: ObjectStore) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "drift-pipeline-reports"
        sys_version = ""  # no Python version in the Server header

        def do_GET(self) -> None:
            self._answer(send_body=True)

        def do_HEAD(self) -> None:
            self._answer(send_body=False)

        def _answer(self, *, send_body: bool) -> None:
            if urlsplit(self.path).path == "/healthz":
                self._reply(HTTPStatus.OK, b"ok\n", "text/plain; charset=utf-8", send_body)
                return
            try:
                body = objects.read_bytes(requested_key(self.path))
            except (InvalidInputError, UnicodeDecodeError):
                self._reply(HTTPStatus.NOT_FOUND, b"not a report page\n", "text/plain; charset=utf-8", send_body)
            except (NotFoundError, IsADirectoryError):
                self._reply(HTTPStatus.NOT_FOUND, b"no such report\n", "text/plain; charset=utf-8", send_body)
            except Exception:  # a storage fault: logged here, never echoed to the browser
                log.exception("report server: reading %s failed", self.path)
                self._reply(
                    HTTPStatus.INTERNAL_SERVER_ERROR, b"storage error\n", "text/plain; charset=utf-8", send_body
                )
            else:
                self._reply(HTTPStatus.OK, body, "text/html; charset=utf-8", send_body)

        def _reply(self, status: HTTPStatus, body: bytes, content_type: str, send_body: bool) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in SECURITY_HEADERS.items():
                self.send_header(name, value)
            self.end_headers()
            if send_body:
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("report server: " + format, *args)

    return Handler
