"""The LLMDrift adapter: one row of an LLMDrift evaluation CSV to a `TrafficRecord`.

LLMDrift files (model, id, query, answer, timestamp, ...) carry no tenant or agent: the run supplies both.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from drift_pipeline.traffic.ingest.fields import RecordError, coerce_float, coerce_int, normalise
from drift_pipeline.traffic.records import TrafficRecord

_REQUIRED = ("model", "id", "query", "answer", "timestamp")


def llmdrift_record(row: Mapping[str, Any], *, tenant: str, agent: str, source: str) -> TrafficRecord:
    """One LLMDrift CSV row: model -> model version, id -> prompt id, query -> prompt, answer -> response."""
    missing = [c for c in _REQUIRED if c not in row or row[c] is None]
    if missing:
        raise RecordError("missing_field", f"LLMDrift row lacks {', '.join(missing)}")
    version = str(row["model"]).strip().rsplit("/", 1)[-1]  # 'openaichat/gpt-4-0613' -> 'gpt-4-0613'
    dataset = str(row.get("dataset") or "llmdrift").strip() or "llmdrift"
    prompt_id = f"{dataset}:{str(row['id']).strip()}"
    try:
        stamp = datetime.strptime(str(row["timestamp"]).strip(), "%m/%d/%Y, %H:%M:%S").replace(tzinfo=UTC)
    except ValueError as exc:
        raise RecordError("bad_timestamp", f"{row['timestamp']!r} is not MM/DD/YYYY, HH:MM:SS") from exc
    latency = coerce_float(row.get("latency") or None, "latency")
    # The file's timestamp is per run, not per call: the version and prompt id (part of the record's
    # content, hence of its id) make each row distinct.
    return normalise(
        {
            "timestamp": stamp.isoformat(),
            "prompt_id": prompt_id,
            "requested_model": version,
            "pinned_model_id": version,
            "served_model": version,
            "messages": [{"role": "user", "content": str(row["query"])}],
            "response_text": str(row["answer"]),
            "latency_ms": None if latency is None else latency * 1000,
            "completion_tokens": coerce_int(row.get("answer_token") or None, "answer_token"),
            "workflow_type": dataset,
        },
        tenant=tenant,
        agent=agent,
        source=source,
    )
