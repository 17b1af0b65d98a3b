"""http(s) links for report metadata in the Dagster UI (`persistence/report_links.py` decides which kind)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from drift_pipeline.errors import InvalidInputError
from drift_pipeline.persistence.objects import ObjectStore
from drift_pipeline.persistence.report_links import report_url


def html_uri(uri: str) -> str:
    """The HTML rendering stored beside a JSON report (same key, `.html`)."""
    return uri[: -len(".json")] + ".html" if uri.endswith(".json") else uri


def report_links(objects: ObjectStore, uris: Iterable[str], log: Any = None) -> dict[str, str]:
    """{report uri (JSON or HTML): URL of its HTML page}; a uri that cannot be linked is logged and left out."""
    links = {}
    for uri in uris:
        try:
            links[uri] = report_url(objects, html_uri(uri))
        except InvalidInputError as exc:  # a missing link must never fail a check or an asset
            if log is not None:
                log.warning(f"no link for report {uri}: {exc}")
    return links
