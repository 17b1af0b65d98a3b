"""Commit markers: what a sound one looks like, and durable renames of the files that hold them.

A marker is trusted only when it describes its own batch: the name is ``{batch_id}.json``, the data file
it names is one of that batch's own names (never a path elsewhere), the row count and digest are well
formed. Anything else is quarantined by `objects.ObjectStore` instead of read.
"""

from __future__ import annotations

import os
import re
from typing import Any

FORMATS = ("parquet", "jsonl")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def marker_problem(marker: Any, batch_id: str) -> str:
    """What is wrong with a commit marker for `batch_id` ('' when it is sound)."""
    if not isinstance(marker, dict):
        return "marker is not a JSON object"
    if marker.get("batch_id") != batch_id:
        return "marker names another batch"
    fmt = marker.get("format")
    if fmt not in FORMATS:
        return "marker has an unknown format"
    file = marker.get("file")
    # Data files are named by the marker: only the batch's own names, never a path elsewhere.
    if not isinstance(file, str) or not re.fullmatch(rf"{re.escape(batch_id)}(?:-[0-9a-f]{{16}})?\.{fmt}", file):
        return "marker names an unexpected data file"
    rows = marker.get("rows")
    if not isinstance(rows, int) or isinstance(rows, bool) or rows < 0:
        return "marker has no valid row count"
    if not isinstance(marker.get("sha256"), str) or not _SHA256.fullmatch(marker["sha256"]):
        return "marker has no valid sha256"
    if not isinstance(marker.get("committed_at"), str) or not isinstance(marker.get("meta", {}), dict):
        return "marker has no valid commit time or meta"
    return ""


def fsync_folder(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # not supported here (e.g. some platforms): the rename is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
