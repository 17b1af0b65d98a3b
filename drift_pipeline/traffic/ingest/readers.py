"""Reading an input file (local path or ``s3://`` URL) as items: one per non-blank line or row.

An item holds the parsed mapping, or the `RecordError` that kept the line from parsing (bad JSON, bad
UTF-8, oversized, nested too deep, a ragged CSV row), so the run can quarantine it with a scrubbed excerpt.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from drift_pipeline.errors import InvalidInputError, NotFoundError
from drift_pipeline.persistence.objects import ObjectStore, storage_options_from_env
from drift_pipeline.traffic.ingest.fields import RecordError, loads

FORMATS = ("jsonl", "parquet", "csv", "llmdrift")
RAW_KEEP = 65_536  # an unparsed item carries at most this many characters (in memory only)


@dataclass
class Item:
    """One line or row of the input: a parsed mapping, the reason it could not be parsed, or why it is
    skipped (a span or run that is not a model call: counted, not quarantined)."""

    offset: int
    raw: str
    value: Mapping[str, Any] | None = None
    error: RecordError | None = None
    skipped: str = ""


def open_source(source: str, objects: ObjectStore, options: Mapping[str, Any] | None) -> tuple[Any, str]:
    """The fsspec file system and path of one input file (a folder or a missing file is refused)."""
    import fsspec

    if options is None:
        # A source on the store's own scheme (e.g. the same S3 endpoint) reuses the store's options.
        same_scheme = source.split("://", 1)[0] == objects.url.split("://", 1)[0] and "://" in source
        options = objects.storage_options if same_scheme else storage_options_from_env(source)
    fs, path = fsspec.core.url_to_fs(source, **dict(options))
    try:
        info = fs.info(path)
    except FileNotFoundError as exc:
        raise NotFoundError(f"no such file: {source}") from exc
    if info.get("type") == "directory":
        raise InvalidInputError(f"{source} is a folder: ingest one file at a time")
    return fs, path


def source_key(fs: Any, path: str, source: str, fmt: str, tenant: str | None, agent: str | None) -> str:
    """A key for this version of the file and these run options: a changed file is a new source."""
    info = fs.info(path)
    version = info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("LastModified") or ""
    ident = json.dumps([source, info.get("size"), str(version), fmt, tenant, agent])
    return hashlib.sha256(ident.encode("utf-8")).hexdigest()[:32]


def read_items(fs: Any, path: str, fmt: str, max_bytes: int, chunk_size: int) -> Iterator[Item]:
    """Items of `path` in order; `llmdrift` files are CSV."""
    if fmt == "jsonl":
        return _jsonl_items(fs, path, max_bytes)
    if fmt == "parquet":
        return _parquet_items(fs, path, max_bytes, chunk_size)
    return _csv_items(fs, path, max_bytes)


def _jsonl_items(fs: Any, path: str, max_bytes: int) -> Iterator[Item]:
    with fs.open(path, "rb") as fh:
        offset = -1
        for line in fh:
            line = line.rstrip(b"\r\n")
            if not line.strip():
                continue  # blank lines are not records
            offset += 1
            if len(line) > max_bytes:
                raw = line[:RAW_KEEP].decode("utf-8", "backslashreplace")
                yield Item(offset, raw, error=RecordError("oversized", f"{len(line)} bytes > {max_bytes}"))
                continue
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                raw = line.decode("utf-8", "backslashreplace")
                yield Item(offset, raw, error=RecordError("bad_encoding", f"not UTF-8 at byte {exc.start}"))
                continue
            try:
                value = loads(text)  # depth checked before parsing: 100k-deep nesting is refused, not recursed
            except RecordError as exc:
                yield Item(offset, text, error=exc)
                continue
            if not isinstance(value, dict):
                yield Item(offset, text, error=RecordError("not_an_object", f"a JSON {type(value).__name__}"))
                continue
            yield Item(offset, text, value=value)


def _parquet_items(fs: Any, path: str, max_bytes: int, chunk_size: int) -> Iterator[Item]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with fs.open(path, "rb") as fh:
        try:
            parquet = pq.ParquetFile(fh)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InvalidInputError(f"{path} is not a readable Parquet file: {exc}") from exc
        offset = 0
        for batch in parquet.iter_batches(batch_size=chunk_size):
            for row in batch.to_pylist():
                raw = json.dumps(row, default=str, ensure_ascii=False)
                if len(raw.encode("utf-8")) > max_bytes:
                    yield Item(offset, raw[:RAW_KEEP], error=RecordError("oversized", f"row > {max_bytes} bytes"))
                else:
                    yield Item(offset, raw, value=row)
                offset += 1


def _csv_items(fs: Any, path: str, max_bytes: int) -> Iterator[Item]:
    # Quoted fields may span lines and be large: let our size check decide, not csv's field limit.
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))
    with fs.open(path, "rb") as fh:
        text = io.TextIOWrapper(fh, encoding="utf-8", errors="surrogateescape", newline="")
        reader = csv.reader(text)
        header = next(reader, None)
        if header is None:
            return
        for offset, cells in enumerate(reader):
            if not cells:
                continue
            raw = json.dumps(cells, ensure_ascii=False).encode("utf-8", "backslashreplace").decode("utf-8")
            if any(_has_surrogates(c) for c in cells):
                yield Item(offset, raw[:RAW_KEEP], error=RecordError("bad_encoding", "not UTF-8"))
            elif sum(len(c) for c in cells) > max_bytes:
                yield Item(offset, raw[:RAW_KEEP], error=RecordError("oversized", f"row > {max_bytes} bytes"))
            elif len(cells) != len(header):
                detail = f"expected {len(header)} columns, got {len(cells)}"
                yield Item(offset, raw, error=RecordError("bad_row", detail))
            else:
                yield Item(offset, raw, value={k: (v if v != "" else None) for k, v in zip(header, cells, strict=True)})


def _has_surrogates(text: str) -> bool:
    # Undecodable bytes arrive as lone surrogates (errors="surrogateescape").
    return any("\udc80" <= ch <= "\udcff" for ch in text)
