"""Object keys: every key is checked before any I/O, and keys built from ids are joined one plain segment
at a time, so no id can climb out of its prefix (`..`, separators, control characters)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from drift_pipeline.errors import InvalidInputError

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\\]")
MAX_SEGMENT = 255  # bytes: the usual file-name limit


def check_key(rel: str) -> str:
    """`rel` without leading '/', if every segment is a plain name; `InvalidInputError` otherwise.

    One trailing '/' is allowed: a folder prefix such as ``baselines/tenant=acme/``.
    """
    key = rel.lstrip("/")
    body = key.removesuffix("/")
    for segment in body.split("/") if body else ():
        if segment in ("", ".", "..") or _CONTROL.search(segment) or len(segment.encode("utf-8")) > MAX_SEGMENT:
            raise InvalidInputError(f"unsafe object key {rel!r}: segment {segment!r}")
    return key


def object_key(*segments: str) -> str:
    """Join key segments built from validated ids (or `identifiers.model_key`); each must be one plain name."""
    for segment in segments:
        if not segment or "/" in segment:
            raise InvalidInputError(f"unsafe object key segment {segment!r}")
    return check_key("/".join(segments))


def day_str(value: str | date | datetime) -> str:
    """Normalise a day (date, datetime or 'YYYY-MM-DD') to 'YYYY-MM-DD'."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).date().isoformat() if value.tzinfo else value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and _DAY.fullmatch(value):
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            pass
    raise InvalidInputError(f"invalid day {value!r}: expected YYYY-MM-DD")
