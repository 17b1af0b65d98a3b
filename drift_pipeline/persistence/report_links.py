"""Links a browser can open for stored reports: what the Dagster UI shows beside every drift report.

A report's `uri` is where the store keeps it (a local path or ``s3://``); a person needs an http(s) URL.
In order of preference:

1. ``DRIFT_PIPELINE_REPORT_BASE_URL`` set: ``{base}/{key}``, e.g. a `drift-pipeline reports serve` next to
   the UI, or a proxy that serves the bucket's ``reports/`` prefix (links never expire);
2. S3 without a base URL: a presigned GET link (s3fs ``sign``) valid ``DRIFT_PIPELINE_REPORT_LINK_EXPIRY_S``;
3. the embedded default (local files): the report server on ``http://127.0.0.1:3080`` that `make ui` starts.

A local path is never pasted into a URL: a link is always built from the object key under the store root.
"""

from __future__ import annotations

from urllib.parse import quote

from drift_pipeline.config import Settings
from drift_pipeline.errors import InvalidInputError
from drift_pipeline.persistence.object_keys import check_key
from drift_pipeline.persistence.objects import ObjectStore

REPORTS_PREFIX = "reports/"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3080
DEFAULT_BASE_URL = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"


def report_key(objects: ObjectStore, uri: str) -> str:
    """The object key of a report `uri` the store made (`ObjectStore.uri`); refused outside ``reports/``."""
    prefix = f"{objects.url}/"
    if not uri.startswith(prefix):
        raise InvalidInputError(f"{uri!r} is not an object of {objects.url!r}")
    key = check_key(uri[len(prefix) :])
    if not key.startswith(REPORTS_PREFIX):
        raise InvalidInputError(f"{uri!r} is not under the {REPORTS_PREFIX} prefix")
    return key


def base_url(objects: ObjectStore, settings: Settings | None = None) -> str | None:
    """Where report keys are served: the configured base URL, the local report server, or None (presign)."""
    configured = (settings or Settings.from_env()).report_base_url
    if configured:
        return configured.rstrip("/")
    return DEFAULT_BASE_URL if objects.is_local else None


def report_url(objects: ObjectStore, uri: str, settings: Settings | None = None) -> str:
    """An absolute http(s) URL for the stored report `uri` (see the module docstring for which)."""
    settings = settings or Settings.from_env()
    key = report_key(objects, uri)
    base = base_url(objects, settings)
    if base is not None:
        return f"{base}/{quote(key, safe='/=')}"
    return str(objects.fs.sign(objects.full_path(key), expiration=settings.report_link_expiry_s))
