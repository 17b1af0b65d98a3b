"""OTLP traces (JSON as the Collector's file exporter writes it, or protobuf as exporters POST it) to items.

The data model is `opentelemetry-proto`'s: JSON is parsed with protobuf's JSON mapping after one OTLP
deviation is undone (trace and span ids are hex in OTLP JSON, base64 in protobuf's mapping). Each span is
one item: an LLM span becomes a raw record, any other span is skipped and counted, never quarantined.
A line that is not OTLP (truncated file, other JSON) is one quarantined item.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Iterator
from typing import Any

from drift_pipeline.traffic.ingest.fields import RecordError
from drift_pipeline.traffic.ingest.genai_spans import SpanView, span_record, span_style
from drift_pipeline.traffic.ingest.mapping import AttributeMapping
from drift_pipeline.traffic.ingest.readers import RAW_KEEP, Item

MAX_OTLP_LINE_BYTES = 64 * 1024 * 1024  # one line is one export request: many spans
_ID_KEYS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


def request_from_json(document: Any) -> Any:
    """An `ExportTraceServiceRequest` from OTLP JSON (a parsed object); `RecordError` when it is not OTLP."""
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    if not isinstance(document, dict) or not ({"resourceSpans", "resource_spans"} & document.keys()):
        raise RecordError("not_otlp", "no resourceSpans: not an OTLP traces document")
    request = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(_hex_ids_to_base64(document), request, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError) as exc:
        raise RecordError("not_otlp", str(exc)[:300]) from exc
    return request


def request_from_protobuf(body: bytes) -> Any:
    """An `ExportTraceServiceRequest` from its protobuf encoding; `RecordError` when it does not decode."""
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, ValueError) as exc:
        raise RecordError("not_otlp", f"not an OTLP protobuf request: {exc}"[:300]) from exc
    return request


def request_items(request: Any, mapping: AttributeMapping, first_offset: int = 0) -> Iterator[Item]:
    """One item per span of an export request: a raw record, a quarantine reason, or a skip."""
    from google.protobuf import json_format

    offset = first_offset
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                view = _view(span, resource)
                raw = json.dumps(json_format.MessageToDict(span), ensure_ascii=False)[:RAW_KEEP]
                style = span_style(view)
                if style is None:
                    yield Item(offset, raw, skipped="not_llm_span")
                else:
                    try:
                        yield Item(offset, raw, value=span_record(view, style, mapping))
                    except RecordError as err:
                        yield Item(offset, raw, error=err)
                offset += 1


def otlp_file_items(fs: Any, path: str, mapping: AttributeMapping) -> Iterator[Item]:
    """Items of an OTLP JSON file: JSON lines (the file exporter) or one pretty-printed document."""
    with fs.open(path, "rb") as fh:
        data = fh.read(MAX_OTLP_LINE_BYTES + 1)
        rest = fh.read(1)
    if len(data) <= MAX_OTLP_LINE_BYTES and not rest:
        whole = _whole_document(data)
        if whole is not None:
            yield from request_items(whole, mapping)
            return
    offset = 0
    with fs.open(path, "rb") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            for item in _line_items(line, mapping, offset):
                offset += 1
                yield item


def _whole_document(data: bytes) -> Any | None:
    """A single (pretty-printed) OTLP document, or None when the file is JSON lines."""
    if data.count(b"\n") <= 1 or not data.lstrip().startswith(b"{"):
        return None
    try:
        document = json.loads(data)
    except ValueError:
        return None
    try:
        return request_from_json(document)
    except RecordError:
        return None


def _line_items(line: bytes, mapping: AttributeMapping, offset: int) -> Iterator[Item]:
    raw = line[:RAW_KEEP].decode("utf-8", "backslashreplace")
    if len(line) > MAX_OTLP_LINE_BYTES:
        yield Item(offset, raw, error=RecordError("oversized", f"{len(line)} bytes > {MAX_OTLP_LINE_BYTES}"))
        return
    try:
        document = json.loads(line.decode("utf-8"))
        request = request_from_json(document)
    except UnicodeDecodeError as exc:
        yield Item(offset, raw, error=RecordError("bad_encoding", f"not UTF-8 at byte {exc.start}"))
        return
    except (ValueError, RecursionError) as exc:
        yield Item(offset, raw, error=RecordError("not_json", str(exc)[:300]))
        return
    except RecordError as err:
        yield Item(offset, raw, error=err)
        return
    yield from request_items(request, mapping, offset)


def attributes(pairs: Any) -> dict[str, Any]:
    """OTLP key/value pairs as a dict of plain values."""
    return {kv.key: any_value(kv.value) for kv in pairs}


def any_value(value: Any) -> Any:
    """An OTLP AnyValue as a plain Python value (arrays and key/value lists recursively)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        return value.bytes_value.decode("utf-8", "replace")
    return getattr(value, kind)


def _view(span: Any, resource: dict[str, Any]) -> SpanView:
    return SpanView(
        name=span.name,
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        start_ns=int(span.start_time_unix_nano),
        end_ns=int(span.end_time_unix_nano),
        attributes=attributes(span.attributes),
        resource=resource,
        events=[(event.name, attributes(event.attributes)) for event in span.events],
        status_code=int(span.status.code),
        status_message=span.status.message,
    )


def _hex_ids_to_base64(node: Any) -> Any:
    """OTLP JSON writes ids as hex; protobuf's JSON mapping expects base64 for bytes fields."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key in _ID_KEYS and isinstance(value, str):
                with contextlib.suppress(ValueError):  # not hex: left to the protobuf parser to judge
                    value = base64.b64encode(bytes.fromhex(value)).decode("ascii")
            out[key] = _hex_ids_to_base64(value)
        return out
    if isinstance(node, list):
        return [_hex_ids_to_base64(v) for v in node]
    return node
