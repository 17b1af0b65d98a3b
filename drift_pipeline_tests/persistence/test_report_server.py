"""Report links and the read-only report server: real reports over real HTTP, nothing else ever served."""

from __future__ import annotations

import http.client
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from drift_pipeline.config import Settings
from drift_pipeline.detection.report import render_html
from drift_pipeline.errors import InvalidInputError
from drift_pipeline.persistence.objects import ObjectStore
from drift_pipeline.persistence.report_links import report_url
from drift_pipeline.persistence.report_server import SECURITY_HEADERS, ReportServer
from drift_pipeline_tests.plugins.migration import drift_report

KEY = "reports/tenant=acme/day=2026-11-30/agent=extractor/offline--smollm2"


def _store_report(objects: ObjectStore) -> bytes:
    body = {**drift_report("bl-1", "offline/smollm2", drifted=("refusal",)), "tenant_id": "acme", "agent_id": "x"}
    body["dimensions"] = [{"noise_floor": None, **d} for d in body["dimensions"]]
    body["examples"] = [{**e, "changed": ["refusal"]} for e in body["examples"]]
    page = render_html(body).encode("utf-8")
    objects.write_bytes(f"{KEY}.html", page)
    objects.write_bytes(f"{KEY}.json", b'{"secret": "prompts"}')
    return page


def _get(server: ReportServer, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """The raw request path goes out as written (no client-side normalisation of `..`)."""
    host, port = server.server.server_address[:2]
    conn = http.client.HTTPConnection(str(host), int(port), timeout=30)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


@pytest.fixture
def served(objects: ObjectStore) -> Iterator[tuple[ReportServer, bytes]]:
    page = _store_report(objects)
    with ReportServer(objects, "127.0.0.1", 0) as server:
        yield server, page


def test_serves_a_stored_report_page_with_safe_headers(served: tuple[ReportServer, bytes]) -> None:
    server, page = served
    status, headers, body = _get(server, f"/{KEY}.html")
    assert status == 200 and body == page and b"Drift report" in body
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert all(headers[name] == value for name, value in SECURITY_HEADERS.items())
    assert "Python" not in headers["Server"]
    assert _get(server, f"/{KEY}.html", "HEAD")[:2][0] == 200
    assert _get(server, "/healthz")[2] == b"ok\n"


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/reports/",
        "/reports/tenant=acme/",
        f"/{KEY}.json",  # only the HTML page a person reads
        "/reports/../drift.db",
        "/reports/%2e%2e/%2e%2e/etc/passwd.html",
        "/reports/tenant=acme/..%2f..%2f..%2fsecret.html",
        "/reports/tenant=acme/%00.html",
        "/reports/tenant=acme/.tmp-123.html",
        "/assets/drift_report/x.html",
        "/reports/nope.html",
        "/reports/%ff.html",
    ],
)
def test_refuses_everything_but_report_pages(served: tuple[ReportServer, bytes], path: str) -> None:
    server, _ = served
    status, headers, body = _get(server, path)
    assert status == 404 and headers["X-Content-Type-Options"] == "nosniff"
    assert b"secret" not in body and b"root:" not in body and b"<" not in body  # no listing, no page


def test_a_symlink_planted_under_reports_does_not_lead_out(tmp_path: Path) -> None:
    objects = ObjectStore(str(tmp_path / "objects"), {})
    _store_report(objects)
    (tmp_path / "secret.html").write_text("<p>secret</p>")
    os.symlink(tmp_path / "secret.html", tmp_path / "objects" / "reports" / "leak.html")
    with ReportServer(objects, "127.0.0.1", 0) as server:
        status, _, body = _get(server, "/reports/leak.html")
    assert status == 404 and b"secret" not in body


def test_binds_loopback_only_unless_told(local_objects: ObjectStore, run_cli) -> None:
    with pytest.raises(InvalidInputError, match="no authentication"):
        ReportServer(local_objects, "0.0.0.0", 0)
    code, _out, err = run_cli("reports", "serve", "--host", "0.0.0.0", "--port", "0")
    assert code == 1 and len(err.strip().splitlines()) == 1 and "no authentication" in err


def test_links_are_absolute_http_urls_that_open_the_report(objects: ObjectStore, monkeypatch) -> None:
    page = _store_report(objects)
    uri = objects.uri(f"{KEY}.html")
    url = report_url(objects, uri)
    assert urlsplit(url).scheme in ("http", "https") and urlsplit(url).netloc
    assert objects.root not in urlsplit(url).path or not objects.is_local  # never a local path pasted in
    if objects.is_local:  # the embedded default: the report server `make ui` starts
        assert url == f"http://127.0.0.1:3080/{KEY}.html"
        with ReportServer(objects, "127.0.0.1", 0) as server:
            assert _get(server, urlsplit(url).path)[2] == page
    else:  # S3: a presigned GET link that really opens the object
        assert "Signature" in url or "X-Amz-Signature" in url
        with urllib.request.urlopen(url, timeout=30) as response:
            assert response.read() == page
    monkeypatch.setenv("DRIFT_PIPELINE_REPORT_BASE_URL", "https://reports.example.com/drift/")
    assert report_url(objects, uri) == f"https://reports.example.com/drift/{KEY}.html"
    with pytest.raises(InvalidInputError):
        report_url(objects, objects.uri("traffic/tenant=acme/x.parquet"))
    with pytest.raises(InvalidInputError):
        report_url(objects, "/etc/passwd")


def test_base_url_setting_must_be_http(monkeypatch: pytest.MonkeyPatch) -> None:
    for bad in ("file:///etc", "javascript:alert(1)", "http://exa mple.com"):
        monkeypatch.setenv("DRIFT_PIPELINE_REPORT_BASE_URL", bad)
        with pytest.raises(InvalidInputError, match="DRIFT_PIPELINE_REPORT_BASE_URL"):
            Settings.from_env()
