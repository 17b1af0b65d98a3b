"""Importing traffic other tools recorded: exact counts per format, on fixtures written from each format's
published specification (sources noted per fixture in `data/imports/README.md`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drift_pipeline.persistence.objects import ObjectStore
from drift_pipeline.traffic.ingest.imports import ImportOptions
from drift_pipeline.traffic.ingest.mapping import AttributeMapping
from drift_pipeline.traffic.ingest.run import ingest, read_quarantine
from drift_pipeline.traffic.records import read_traffic

DATA = Path(__file__).parents[1] / "data" / "imports"

# format, file, options, (read, accepted, quarantined, skipped), quarantine reasons, skip reasons
CASES = [
    (
        "otlp",
        "otlp_traces.jsonl",
        {},
        (11, 5, 3, 3),
        {"content_not_captured": 1, "missing_model": 1, "not_json": 1},
        {"not_llm_span": 3},
    ),
    (
        "langfuse",
        "langfuse_observations.json",
        {},
        (5, 2, 1, 2),
        {"content_not_captured": 1},
        {"not_a_generation": 2},
    ),
    (
        "langfuse",
        "langfuse_observations.csv",
        {},
        (5, 2, 1, 2),
        {"content_not_captured": 1},
        {"not_a_generation": 2},
    ),
    ("langsmith", "langsmith_runs.jsonl", {}, (6, 3, 1, 2), {"bad_encoding": 1}, {"not_an_llm_run": 2}),
    (
        "openai-batch",
        "openai_batch_output.jsonl",
        {"batch_input": str(DATA / "openai_batch_input.jsonl")},
        (4, 2, 1, 1),
        {"unpaired": 1},
        {"not_chat_completion": 1},
    ),
    ("litellm", "litellm_spend_logs.json", {}, (3, 1, 1, 1), {"content_not_captured": 1}, {"not_a_completion": 1}),
]


@pytest.mark.parametrize(("fmt", "name", "options", "counts", "reasons", "skips"), CASES, ids=[c[1] for c in CASES])
def test_each_format_ingests_with_exact_counts(
    local_objects: ObjectStore, fmt: str, name: str, options: dict, counts: tuple, reasons: dict, skips: dict
) -> None:
    report = ingest(str(DATA / name), local_objects, fmt=fmt, import_options=ImportOptions(**options))
    assert (report.read, report.accepted, report.quarantined, report.skipped) == counts
    assert report.read == report.accepted + report.quarantined + report.skipped
    assert dict(report.reasons) == reasons
    assert dict(report.skip_reasons) == skips
    assert len(read_quarantine(local_objects)) == report.quarantined
    again = ingest(str(DATA / name), local_objects, fmt=fmt, import_options=ImportOptions(**options))
    assert again.written == 0, "re-importing the same file stores nothing twice"


def test_otlp_spans_become_records_with_their_scope_and_reroute(local_objects: ObjectStore) -> None:
    ingest(str(DATA / "otlp_traces.jsonl"), local_objects, fmt="otlp")
    acme = read_traffic(local_objects, "acme").set_index("served_model")
    assert set(acme["agent_id"]) == {"support"}
    refund = acme.loc["gpt-4o-2024-08-06"]
    assert json.loads(refund["tool_calls"])[0]["function"]["name"] == "issue_refund"
    assert json.loads(refund["messages"])[0] == {"role": "system", "content": "You are a billing assistant."}
    assert refund["prompt_tokens"] == 42 and refund["latency_ms"] == pytest.approx(1500.0)
    assert bool(acme.loc["gpt-4o-mini-2024-07-18"]["silent_reroute"]), "response.model != request.model"
    assert not bool(refund["silent_reroute"])
    globex = read_traffic(local_objects, "globex").set_index("agent_id")  # tenant from the resource
    assert globex.loc["math"]["response_text"] == "Yes, 17077 is a prime number.", "streamed choice events joined"
    assert globex.loc["triage"]["response_text"] == "billing"  # OpenInference
    assert json.loads(globex.loc["triage"]["messages"])[1]["content"] == "My card was charged twice."
    booked = json.loads(globex.loc["concierge"]["tool_calls"])[0]["function"]  # OpenLLMetry
    assert booked["name"] == "book_table" and json.loads(booked["arguments"]) == {"party": 2, "time": "19:00"}


def test_quarantined_spans_say_how_to_capture_content(local_objects: ObjectStore) -> None:
    ingest(str(DATA / "otlp_traces.jsonl"), local_objects, fmt="otlp")
    quarantine = read_quarantine(local_objects)
    hint = quarantine.loc[quarantine["reason"] == "content_not_captured", "detail"].iloc[0]
    assert "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT" in hint


def test_tenant_attribute_is_configurable(tmp_path: Path, local_objects: ObjectStore) -> None:
    line = json.loads((DATA / "otlp_traces.jsonl").read_text().splitlines()[0])
    for span in line["resourceSpans"][0]["scopeSpans"][0]["spans"]:
        for attr in span["attributes"]:
            if attr["key"] == "tenant.id":
                attr["key"] = "app.customer"
    source = tmp_path / "custom.jsonl"
    source.write_text(json.dumps(line) + "\n")
    default = ingest(str(source), local_objects, fmt="otlp", import_options=ImportOptions())
    assert default.accepted == 0 and default.reasons["missing_tenant"] == 2
    mapped = ImportOptions(mapping=AttributeMapping.with_overrides(tenant="app.customer"))
    custom = ingest(str(source), ObjectStore(str(tmp_path / "o2"), {}), fmt="otlp", import_options=mapped)
    assert custom.accepted == 2 and dict(custom.tenants) == {"acme": 2}


def test_mixed_tenants_in_one_file_are_split_and_a_run_tenant_refuses_others(local_objects: ObjectStore) -> None:
    mixed = ingest(str(DATA / "otlp_traces.jsonl"), local_objects, fmt="otlp")
    assert dict(mixed.tenants) == {"acme": 2, "globex": 3}
    scoped = ingest(str(DATA / "otlp_traces.jsonl"), local_objects, fmt="otlp", tenant="acme")
    assert scoped.reasons["tenant_mismatch"] == 3 and scoped.accepted == 2


def test_openai_batch_needs_its_input_file(local_objects: ObjectStore) -> None:
    from drift_pipeline.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="--batch-input"):
        ingest(str(DATA / "openai_batch_output.jsonl"), local_objects, fmt="openai-batch")


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "resourceSpans",
                    "scopeSpans",
                    "spans",
                    "attributes",
                    "key",
                    "value",
                    "stringValue",
                    "type",
                    "data",
                    "input",
                    "output",
                    "model",
                    "run_type",
                    "custom_id",
                    "messages",
                ]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=15,
)


@pytest.mark.parametrize("fmt", ["otlp", "langfuse", "langsmith", "litellm"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(JSON_VALUES, min_size=1, max_size=4))
def test_hostile_documents_never_raise_and_lose_nothing(tmp_path: Path, fmt: str, lines: list) -> None:
    source = tmp_path / f"in-{fmt}.jsonl"
    source.write_text("\n".join(json.dumps(v) for v in lines) + "\n")
    objects = ObjectStore(str(tmp_path / f"o-{fmt}"), {})
    report = ingest(str(source), objects, fmt=fmt, tenant="acme", agent="support")
    assert report.read == report.accepted + report.quarantined + report.skipped
    root = tmp_path / f"o-{fmt}"
    assert all(p == source or root in p.parents for p in tmp_path.rglob("*") if p.is_file() and fmt in str(p))
