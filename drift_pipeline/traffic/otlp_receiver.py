"""A live OTLP/HTTP traces receiver: `POST /v1/traces` from a Collector or an SDK exporter, ingested
through the same path (and quarantine, and counts) as a file.

Bounded: a body over `max_body_bytes` is refused with 413 before it is read, at most `max_concurrent`
requests are decoded at once (others get 503 with Retry-After, which OTLP exporters honour), and a body
that is not OTLP gets 400 with one line. Quarantined spans are reported back as OTLP partial success.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import zlib
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from drift_pipeline.traffic.ingest.fields import RecordError
from drift_pipeline.traffic.ingest.mapping import AttributeMapping
from drift_pipeline.traffic.ingest.otlp import request_from_json, request_from_protobuf, request_items
from drift_pipeline.traffic.ingest.readers import Item

log = logging.getLogger(__name__)
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
MAX_BODY_BYTES = 16 * 1024 * 1024

# (items of one request, a key for it: the hash of its body) -> counts ("accepted", "quarantined", ...)
Sink = Callable[[Iterable[Item], str], dict[str, Any]]


def store_sink(
    objects: Any = None,
    *,
    tenant: str | None = None,
    agent: str | None = None,
    store: Any = None,
    check_agents: bool = True,
) -> Sink:
    """A sink ingesting into the object store (the settings' by default), scrubbing with the tenants' own
    PII patterns and checking agents against the manifests in `store` when given. A request sent twice
    (an exporter's retry) is stored once."""
    from drift_pipeline.persistence.objects import ObjectStore
    from drift_pipeline.traffic.ingest.run import ingest_stream
    from drift_pipeline.versioning import tenants

    objects = objects or ObjectStore.from_settings()

    def sink(items: Iterable[Item], key: str) -> dict[str, Any]:
        known = tenants.known_agents(store) if store is not None and check_agents else None
        patterns = {t.tenant_id: dict(t.pii_patterns) for t in tenants.list_tenants(store)} if store is not None else {}
        report = ingest_stream(
            items,
            objects,
            source="otlp-http",
            fmt="otlp",
            key=key,
            tenant=tenant,
            agent=agent,
            known_agents=known,
            pii_patterns=patterns,
        )
        return report.to_dict()

    return sink


class OtlpReceiver(ThreadingHTTPServer):
    """The HTTP server; `serve_forever()` runs it, `shutdown()` stops it."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        sink: Sink,
        mapping: AttributeMapping | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
        max_concurrent: int = 4,
    ) -> None:
        super().__init__(address, _Handler)
        self.sink, self.mapping, self.max_body_bytes = sink, mapping or AttributeMapping(), max_body_bytes
        self.slots = threading.BoundedSemaphore(max_concurrent)
        self.requests = 0

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/v1/traces"


class _Handler(BaseHTTPRequestHandler):
    server: OtlpReceiver
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] != "/v1/traces":
            return self._reply(404, "only POST /v1/traces is served here")
        length = int(self.headers.get("Content-Length") or -1)
        if length < 0:
            return self._reply(411, "Content-Length is required")
        if length > self.server.max_body_bytes:
            return self._reply(413, f"body over {self.server.max_body_bytes} bytes: send smaller batches")
        if not self.server.slots.acquire(blocking=False):
            return self._reply(503, "busy: retry later", retry_after=1)
        try:
            body = self.rfile.read(length)
            self._ingest(body)
        finally:
            self.server.slots.release()

    def do_GET(self) -> None:
        self._reply(405, "use POST /v1/traces")

    def _ingest(self, body: bytes) -> None:
        kind = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        if kind not in (PROTOBUF, JSON):
            return self._reply(415, f"Content-Type must be {PROTOBUF} or {JSON}")
        try:
            body = _decompress(body, (self.headers.get("Content-Encoding") or "").lower(), self.server.max_body_bytes)
            request = request_from_protobuf(body) if kind == PROTOBUF else request_from_json(json.loads(body))
        except RecordError as err:
            return self._reply(400, err.detail or err.reason)
        except (ValueError, RecursionError, OSError, EOFError, zlib.error) as exc:
            return self._reply(400, f"not an OTLP traces request: {type(exc).__name__}")
        self.server.requests += 1
        key = hashlib.sha256(body).hexdigest()[:32]
        counts = self.server.sink(request_items(request, self.server.mapping), key)
        rejected = int(counts.get("quarantined", 0))
        message = ", ".join(f"{k}={v}" for k, v in sorted((counts.get("reasons") or {}).items()))
        self._reply(200, message, rejected=rejected, as_protobuf=kind == PROTOBUF)

    def _reply(
        self, status: int, message: str, *, rejected: int = 0, as_protobuf: bool = False, retry_after: int | None = None
    ) -> None:
        if status == 200:
            payload = _success(rejected, message, as_protobuf)
            kind = PROTOBUF if as_protobuf else JSON
        else:
            payload, kind = json.dumps({"code": status, "message": message}).encode(), JSON
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        if retry_after is not None:
            self.send_header("Retry-After", str(retry_after))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("otlp receiver: " + format, *args)  # no request lines on stderr


def _decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """gzip/deflate bodies, bounded after inflation too (a small bomb must not inflate past the limit)."""
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise RecordError("not_otlp", f"unsupported Content-Encoding {encoding!r}")
    inflater = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
    out = inflater.decompress(body, limit + 1)
    if len(out) > limit or inflater.unconsumed_tail:
        raise RecordError("not_otlp", f"body inflates past {limit} bytes")
    return out


def _success(rejected: int, message: str, as_protobuf: bool) -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

    response = ExportTraceServiceResponse()
    if rejected:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = f"quarantined: {message}"[:500]
    if as_protobuf:
        return response.SerializeToString()
    from google.protobuf import json_format

    return json.dumps(json_format.MessageToDict(response)).encode()
