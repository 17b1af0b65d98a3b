"""The docs' quick start, end to end: traces exported as OTLP by the real OpenTelemetry SDK -> ingest ->
sample -> baseline, on the embedded default with the offline model. (The nightly replay that follows is the
same job as for captured traffic: `defs/test_pipeline.py` runs it.)"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from drift_pipeline.defs.demo import driver
from drift_pipeline.persistence.db import Store


def export_as_otlp(records: list[dict], path: Path) -> int:
    """Record each traffic record as a GenAI span with the OpenTelemetry SDK and write the batch as OTLP
    JSON the way the Collector's file exporter does (one request per line, hex ids)."""
    from google.protobuf import json_format
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "agents"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("opentelemetry.instrumentation.openai_v2")
    for record in records:
        start = int(datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00")).timestamp() * 1e9)
        span = tracer.start_span(f"chat {record['served_model']}", start_time=start)
        question = record["messages"][-1]["content"]
        attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": record["served_model"],
            "gen_ai.response.model": record["served_model"],
            "tenant.id": record["tenant_id"],
            "agent.id": record["agent_id"],
            "workflow.type": record["workflow_type"],
            "agent.step": record["agent_step"],
            "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": question}]}]),
            "gen_ai.output.messages": json.dumps(
                [{"role": "assistant", "parts": [{"type": "text", "content": "noted"}], "finish_reason": "stop"}]
            ),
        }
        span.set_attributes(attributes)
        span.end(end_time=start + 800_000_000)
    request = json_format.MessageToDict(encode_spans(memory.get_finished_spans()))
    for resource in request["resourceSpans"]:
        for scope in resource["scopeSpans"]:
            for span in scope["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    path.write_text(json.dumps(request) + "\n", encoding="utf-8")
    return len(memory.get_finished_spans())


def test_traces_to_baseline(home: Path, tmp_path: Path, run_cli) -> None:
    driver.setup_registry_and_manifests(Store.open())  # registry, tenants and pins, as `pin` would
    today = datetime.now(UTC).date()
    days = [(today - timedelta(days=1)).isoformat(), today.isoformat()]
    lines = driver.write_traffic(tmp_path / "demo", days).read_text().splitlines()
    records = [json.loads(line) for line in lines[:-3]]  # the demo's last three lines are malformed on purpose
    records = [r for r in records if r["tenant_id"] == "acme" and r["agent_id"] == "support"]
    traces = tmp_path / "traces.otlp.jsonl"
    n_spans = export_as_otlp(records, traces)

    code, out, err = run_cli("ingest", str(traces), "--format", "otlp", "--json")
    assert code == 0, err
    counts = json.loads(out)
    assert counts["read"] == n_spans == counts["accepted"] and counts["quarantined"] == counts["skipped"] == 0

    code, out, err = run_cli(
        "baseline",
        "from-traffic",
        "acme",
        "support",
        "--since",
        days[0],
        "--max-prompts",
        "3",
        "--json",
    )
    assert code == 0, err
    baseline_id = json.loads(out)["baseline_id"]
    code, out, _ = run_cli("manifest", "show", "acme", "support", "--json")
    assert json.loads(out)["behavioral_baseline_id"] == baseline_id

    code, _, err = run_cli(
        "baseline",
        "from-traffic",
        "acme",
        "support",
        "--since",
        "2001-01-01",
        "--until",
        "2001-01-02",
    )
    assert code == 1 and "no traffic for acme/support" in err and len(err.strip().splitlines()) == 1
