"""Traffic other tools already recorded: OTLP traces and the exports of Langfuse, LangSmith, the OpenAI
Batch API and the LiteLLM proxy, each read by one small adapter into the one record schema."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from drift_pipeline.errors import InvalidInputError
from drift_pipeline.traffic.ingest.exports import export_items
from drift_pipeline.traffic.ingest.langfuse import langfuse_record
from drift_pipeline.traffic.ingest.langsmith import langsmith_record
from drift_pipeline.traffic.ingest.litellm_logs import litellm_record
from drift_pipeline.traffic.ingest.mapping import AttributeMapping
from drift_pipeline.traffic.ingest.openai_batch import batch_record, load_requests
from drift_pipeline.traffic.ingest.otlp import otlp_file_items
from drift_pipeline.traffic.ingest.readers import Item

IMPORT_FORMATS = ("otlp", "langfuse", "langsmith", "openai-batch", "litellm")


@dataclass(frozen=True)
class ImportOptions:
    """What the import formats need beyond the file: where scoping fields live, the batch input file."""

    mapping: AttributeMapping = field(default_factory=AttributeMapping)
    batch_input: str | None = None  # openai-batch: the requests file paired with the output file


def import_items(
    fs: Any, path: str, fmt: str, options: ImportOptions, max_bytes: int, chunk_size: int
) -> Iterator[Item]:
    """Items of one file in an import format (see `IMPORT_FORMATS`)."""
    mapping = options.mapping
    if fmt == "otlp":
        return otlp_file_items(fs, path, mapping)
    if fmt == "openai-batch":
        if not options.batch_input:
            raise InvalidInputError("--batch-input is required for the openai-batch format (the requests file)")
        requests = load_requests(*_same_fs(fs, options.batch_input))
        adapter = partial(batch_record, requests=requests, mapping=mapping)
    else:
        record = {"langfuse": langfuse_record, "langsmith": langsmith_record, "litellm": litellm_record}[fmt]
        adapter = partial(record, mapping=mapping)
    return export_items(fs, path, adapter, max_bytes, chunk_size)


def _same_fs(fs: Any, source: str) -> tuple[Any, str]:
    import fsspec

    if "://" in source:
        return fsspec.core.url_to_fs(source)
    return fs, source
