"""Ingestion of existing logs (JSONL, Parquet, CSV, LLMDrift CSV) with a quarantine for bad records.

`run` is the entry point (`ingest`, `ingest_with_store`, `read_quarantine`); `readers` turns a file into
items, `fields` normalises one record, `llmdrift` adapts LLMDrift evaluation rows.
"""
