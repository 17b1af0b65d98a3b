"""Batches on disk: a DataFrame as Parquet or JSON lines bytes, and back."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from typing import Any

import pandas as pd


def frame_to_bytes(frame: pd.DataFrame, fmt: str) -> bytes:
    if fmt == "parquet":
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        return buf.getvalue()
    lines = (json.dumps(row, ensure_ascii=False, default=str) for row in _records(frame))
    return ("".join(line + "\n" for line in lines)).encode("utf-8")


def frame_from_bytes(data: bytes, fmt: str, columns: list[str] | None = None) -> pd.DataFrame:
    if fmt == "parquet":
        return pd.read_parquet(io.BytesIO(data), columns=columns)
    # split("\n"), not splitlines(): U+0085, U+2028 and friends may sit unescaped inside a JSON string.
    rows = [json.loads(line) for line in data.decode("utf-8").split("\n") if line.strip()]
    frame = pd.DataFrame(rows)
    return frame[columns] if columns else frame


def _records(frame: pd.DataFrame) -> Iterable[dict[str, Any]]:
    for row in frame.to_dict(orient="records"):
        yield {k: (None if _isna(v) else v) for k, v in row.items()}


def _isna(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False
