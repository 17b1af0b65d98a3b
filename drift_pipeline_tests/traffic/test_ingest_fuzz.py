"""Property tests: hostile log lines never raise, every line is counted once, nothing lands outside the root.

Lines mix near-valid records with hostile field values (huge or negative numbers, NaN, bad timestamps,
wrong types, deep nesting, lone surrogates, traversal ids), random JSON, random bytes and deep brackets.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drift_pipeline.persistence.objects import ObjectStore
from drift_pipeline.traffic.ingest.run import ingest, read_quarantine

BASE = {
    "tenant_id": "acme",
    "agent_id": "support",
    "timestamp": "2024-05-01T10:00:00Z",
    "messages": [{"role": "user", "content": "hello"}],
    "response_text": "hi",
}
FIELDS = [*BASE, "prompt", "prompt_tokens", "completion_tokens", "latency_ms", "tools", "tool_calls"]
FIELDS += ["response_format", "silent_reroute", "workflow_type", "served_model", "tenant", "agent"]
NASTY = [
    10**30,
    -(10**30),
    -5,
    1e308,
    "inf",
    "-Infinity",
    "NaN",
    "9999-12-31T23:59:59-01:00",
    "0001-01-01T00:00:00+01:00",
    "[" * 300 + "]" * 300,
    [1, 2, {}],
    [{"role": "user", "content": [1, 2, {}]}],
    [{"role": "user", "content": "[" * 3000 + "]" * 3000}],
    "acme\n",
    "../../etc",
    "a..b",
    "\ud800",
    "",
    {},
    [],
]
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
field_values = st.one_of(st.sampled_from(NASTY), json_values)
records = st.dictionaries(st.sampled_from(FIELDS), field_values, max_size=4).map(
    lambda changes: json.dumps(BASE | changes).encode()
)
literal_constants = st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e999", b"9" * 5000]).map(
    lambda v: json.dumps(BASE).encode()[:-1] + b', "latency_ms": ' + v + b"}"
)
deep = st.integers(min_value=60, max_value=20_000).map(lambda n: b'{"a": ' + b"[" * n + b"]" * n + b"}")
lines = st.one_of(
    records,
    records,
    literal_constants,
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=80),
    deep,
).map(lambda line: line.replace(b"\n", b" "))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(lines, min_size=1, max_size=10), st.integers(min_value=1, max_value=4))
def test_hostile_lines_are_counted_once_and_nothing_escapes(batch: list[bytes], chunk_size: int):
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        source = base / "in.jsonl"
        source.write_bytes(b"\n".join(batch) + b"\n")
        objects = ObjectStore(str(base / "root"), {})

        report = ingest(str(source), objects, chunk_size=chunk_size)  # raises nothing, whatever the lines

        assert report.read == sum(1 for line in batch if line.strip())
        assert report.accepted + report.quarantined == report.read
        assert report.written + report.duplicates == report.accepted
        stored = [i for t in objects.list_tenants("traffic") for i in objects.read_batches("traffic", t)["record_id"]]
        assert len(stored) == len(set(stored)) == report.written
        assert len(read_quarantine(objects)) == report.quarantined
        outside = [p for p in base.rglob("*") if p != source and base / "root" not in p.parents and p != base / "root"]
        assert outside == []
