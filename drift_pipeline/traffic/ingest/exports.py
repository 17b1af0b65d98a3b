"""Reading other tools' export files as objects, and turning each object into an item with an adapter.

Exports come as JSON lines, one JSON document (a list, or an API page `{"data": [...]}`), or CSV (UI
exports); cells holding JSON are decoded by the adapters. Each object is one item: read = accepted +
quarantined + skipped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from drift_pipeline.traffic.ingest.fields import RecordError
from drift_pipeline.traffic.ingest.readers import RAW_KEEP, Item, read_items

MAX_DOCUMENT_BYTES = 256 * 1024 * 1024


class Skip(Exception):
    """An object that is not a model call (a chain, a tool run, an embedding): counted, not quarantined."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


Adapter = Callable[[Mapping[str, Any]], dict[str, Any]]


def export_items(fs: Any, path: str, adapter: Adapter, max_bytes: int, chunk_size: int) -> Iterator[Item]:
    """Items of an export file, each object mapped by `adapter` (which may raise `Skip` or `RecordError`)."""
    for item in _objects(fs, path, max_bytes, chunk_size):
        if item.error is not None or item.value is None:
            yield item
            continue
        try:
            yield Item(item.offset, item.raw, value=adapter(item.value))
        except Skip as skip:
            yield Item(item.offset, item.raw, skipped=skip.reason)
        except RecordError as err:
            yield Item(item.offset, item.raw, error=err)


def _objects(fs: Any, path: str, max_bytes: int, chunk_size: int) -> Iterator[Item]:
    if path.lower().endswith(".csv"):
        yield from read_items(fs, path, "csv", max_bytes, chunk_size)
        return
    document = _single_document(fs, path)
    if document is None:
        yield from read_items(fs, path, "jsonl", max_bytes, chunk_size)
        return
    rows = document.get("data") if isinstance(document, dict) else document
    if isinstance(document, dict) and not isinstance(rows, list):
        rows = [document]
    for offset, row in enumerate(rows if isinstance(rows, list) else []):
        raw = json.dumps(row, ensure_ascii=False, default=str)[:RAW_KEEP]
        if isinstance(row, dict):
            yield Item(offset, raw, value=row)
        else:
            yield Item(offset, raw, error=RecordError("not_an_object", f"a JSON {type(row).__name__}"))


def _single_document(fs: Any, path: str) -> Any | None:
    """The file as one JSON document when it is one (a list or a page object), else None (JSON lines)."""
    with fs.open(path, "rb") as fh:
        head = fh.read(4096).lstrip()
        if head[:1] not in (b"[", b"{"):
            return None
        fh.seek(0)
        data = fh.read(MAX_DOCUMENT_BYTES + 1)
    if len(data) > MAX_DOCUMENT_BYTES or (head[:1] == b"{" and data.count(b"\n") > 1 and _is_jsonl(data)):
        return None
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return None  # read as JSON lines: each bad line is quarantined on its own
    return document if isinstance(document, list | dict) else None


def _is_jsonl(data: bytes) -> bool:
    """Several complete JSON objects, one per line (checked on the first line only)."""
    first = data.split(b"\n", 1)[0].strip()
    try:
        return isinstance(json.loads(first), dict)
    except (ValueError, RecursionError):
        return False


def as_object(value: Any) -> dict[str, Any]:
    """A JSON object given as a dict or a JSON string (CSV cells); {} when absent or not an object."""
    if isinstance(value, str) and value.strip()[:1] == "{":
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return dict(value) if isinstance(value, Mapping) else {}


def duration_ms(start: Any, end: Any) -> float | None:
    """Milliseconds between two ISO 8601 timestamps (None when either is missing or unreadable)."""
    from datetime import datetime

    try:
        t0 = datetime.fromisoformat(str(start).replace("Z", "+00:00"))
        t1 = datetime.fromisoformat(str(end).replace("Z", "+00:00"))
        return max((t1 - t0).total_seconds() * 1000, 0.0)
    except (TypeError, ValueError, OverflowError):
        return None
