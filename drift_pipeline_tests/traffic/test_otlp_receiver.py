"""The live OTLP/HTTP receiver, fed by the real OpenTelemetry SDK exporter and by hand-made bad requests."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator

import httpx
import pytest

from drift_pipeline.persistence.objects import ObjectStore
from drift_pipeline.traffic.ingest.run import read_quarantine
from drift_pipeline.traffic.otlp_receiver import OtlpReceiver, store_sink
from drift_pipeline.traffic.records import read_traffic


@pytest.fixture
def receiver(local_objects: ObjectStore) -> Iterator[OtlpReceiver]:
    server = OtlpReceiver(("127.0.0.1", 0), store_sink(local_objects), max_body_bytes=64 * 1024)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _chat_span(tracer, question: str, answer: str | None, *, agent: str = "support") -> None:
    with tracer.start_as_current_span("chat gpt-4o-2024-08-06") as span:
        span.set_attribute("gen_ai.operation.name", "chat")
        span.set_attribute("gen_ai.request.model", "gpt-4o-2024-08-06")
        span.set_attribute("gen_ai.response.model", "gpt-4o-2024-08-06")
        span.set_attribute("gen_ai.usage.input_tokens", 12)
        span.set_attribute("agent.id", agent)
        span.set_attribute(
            "gen_ai.input.messages", json.dumps([{"role": "user", "parts": [{"type": "text", "content": question}]}])
        )
        if answer is not None:
            output = [{"role": "assistant", "parts": [{"type": "text", "content": answer}], "finish_reason": "stop"}]
            span.set_attribute("gen_ai.output.messages", json.dumps(output))


def test_sdk_exporter_spans_are_ingested(receiver: OtlpReceiver, local_objects: ObjectStore) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "bot", "tenant.id": "acme"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=receiver.url, timeout=10)))
    tracer = provider.get_tracer("test-instrumentation")
    _chat_span(tracer, "Where is order 7?", "It ships tomorrow.")
    _chat_span(tracer, "Cancel order 8", None)  # content capture off for the output: quarantined
    with tracer.start_as_current_span("GET /health"):
        pass  # not a model call: skipped
    provider.shutdown()

    traffic = read_traffic(local_objects, "acme")
    assert list(traffic["response_text"]) == ["It ships tomorrow."]
    assert traffic["agent_id"].iloc[0] == "support" and traffic["prompt_tokens"].iloc[0] == 12
    quarantine = read_quarantine(local_objects)
    assert list(quarantine["reason"]) == ["content_not_captured"]
    assert receiver.requests == 3


def _request(question: str) -> dict:
    attrs = [
        {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o-2024-08-06"}},
        {"key": "tenant.id", "value": {"stringValue": "acme"}},
        {"key": "agent.id", "value": {"stringValue": "support"}},
        {
            "key": "gen_ai.input.messages",
            "value": {"stringValue": json.dumps([{"role": "user", "parts": [{"type": "text", "content": question}]}])},
        },
        {
            "key": "gen_ai.output.messages",
            "value": {"stringValue": json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "ok"}]}])},
        },
    ]
    span = {
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b171",
        "name": "chat",
        "startTimeUnixNano": "1764633600000000000",
        "endTimeUnixNano": "1764633601000000000",
        "attributes": attrs,
    }
    return {"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": [span]}]}]}


def test_json_and_gzip_bodies_and_retries_store_once(receiver: OtlpReceiver, local_objects: ObjectStore) -> None:
    body = json.dumps(_request("hello")).encode()
    first = httpx.post(receiver.url, content=body, headers={"Content-Type": "application/json"})
    assert first.status_code == 200 and first.json() == {}
    retry = httpx.post(
        receiver.url,
        content=gzip.compress(body),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert retry.status_code == 200
    assert len(read_traffic(local_objects, "acme")) == 1


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"{not json", {"Content-Type": "application/json"}, 400),
        (b'{"other": 1}', {"Content-Type": "application/json"}, 400),
        (b"\x0a\xff\xff\xff", {"Content-Type": "application/x-protobuf"}, 400),
        (b"{}", {"Content-Type": "text/plain"}, 415),
        (b"x" * (70 * 1024), {"Content-Type": "application/json"}, 413),
        (gzip.compress(b" " * (200 * 1024)), {"Content-Type": "application/json", "Content-Encoding": "gzip"}, 400),
    ],
    ids=["bad-json", "not-otlp", "bad-protobuf", "wrong-type", "too-large", "gzip-bomb"],
)
def test_bad_requests_get_a_clear_4xx(
    receiver: OtlpReceiver, local_objects: ObjectStore, body: bytes, headers: dict, status: int
) -> None:
    response = httpx.post(receiver.url, content=body, headers=headers)
    assert response.status_code == status
    assert response.json()["message"]
    assert local_objects.list_tenants("traffic") == []


def test_partial_success_reports_quarantined_spans(receiver: OtlpReceiver) -> None:
    request = _request("hi")
    request["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"] = []
    request["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["name"] = "plain"
    request["resourceSpans"][0]["scopeSpans"][0]["spans"].append(
        {"name": "chat", "attributes": [{"key": "gen_ai.request.model", "value": {"stringValue": "m-1"}}]}
    )
    response = httpx.post(receiver.url, json=request)
    assert response.status_code == 200
    assert response.json()["partialSuccess"]["rejectedSpans"] == "1"
