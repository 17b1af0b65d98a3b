"""Alert secrets never leak: SMTP logs in over TLS only, and a full alert run with a Slack webhook URL, a
webhook HMAC key, a PagerDuty routing key and an SMTP password leaves none of them in any log line, audit
row, export, database row or file under the home folder."""

from __future__ import annotations

import json
import logging
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, select

from drift_pipeline.alerts.channels import ChannelConfig, SmtpSettings
from drift_pipeline.alerts.events import DriftEvent
from drift_pipeline.alerts.router import AlertRouter
from drift_pipeline.errors import InvalidInputError
from drift_pipeline.versioning.tenants import add_tenant
from drift_pipeline_tests.plugins.alerts import SMTP_PASSWORD, SMTP_USER

SLACK_PATH = "/services/T0SECRETTEAM/B0SECRETHOOK/xoxSlackPathSecret42"
HMAC_KEY = "whsec-hmac-key-Secret-77"
ROUTING_KEY = "pd-routing-key-Secret-99"
TENANT_TOKEN = "tenant-query-token-Secret-55"


def _event(episode: str = "2026-11-27") -> DriftEvent:
    return DriftEvent("acme", "support", episode, "ERROR", "refund policy drifted")


def _email_config(smtp: dict[str, Any]) -> ChannelConfig:
    return ChannelConfig.from_dict(
        {"platform": [{"type": "email", "to": ["oncall@platform.example"]}], "smtp": smtp, "contact_email": False}
    )


# ------------------------------------------------------------------------------------------------ SMTP


class _Recorder(socketserver.StreamRequestHandler):
    """A cleartext SMTP server that offers AUTH but not STARTTLS, and records every byte it receives."""

    received: list[bytes]

    def handle(self) -> None:
        self.wfile.write(b"220 relay.example ESMTP\r\n")
        for line in self.rfile:
            self.received.append(line)
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                self.wfile.write(b"250-relay.example\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


@pytest.fixture
def cleartext_relay() -> Iterator[tuple[int, list[bytes]]]:
    received: list[bytes] = []
    handler = type("Handler", (_Recorder,), {"received": received})
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], received
    server.shutdown()
    server.server_close()


def test_smtp_never_logs_in_without_tls(sqlite_store, cleartext_relay):
    """The default is STARTTLS, required: a server that does not offer it gets no password, and no mail."""
    port, received = cleartext_relay
    add_tenant(sqlite_store, "acme", actor="t")
    smtp = {
        "host": "127.0.0.1",
        "port": port,
        "sender": "d@x.example",
        "username": SMTP_USER,
        "password": SMTP_PASSWORD,
    }
    result = AlertRouter(sqlite_store, _email_config(smtp)).notify(_event()).deliveries["email"]
    assert result.status == "failed" and result.attempts == 1 and "does not offer STARTTLS" in result.error
    wire = b"".join(received)
    assert b"AUTH" not in wire.upper() and SMTP_PASSWORD.encode() not in wire and b"DATA" not in wire


@pytest.mark.parametrize("tls", [{"tls": "none"}, {"starttls": False}])
def test_cleartext_with_a_login_is_refused_by_the_config(tls):
    smtp = {"host": "relay", "sender": "d@x.example", "username": SMTP_USER, "password": SMTP_PASSWORD, **tls}
    with pytest.raises(InvalidInputError, match="login without TLS is refused") as info:
        _email_config(smtp)
    assert SMTP_PASSWORD not in str(info.value)


def test_defaults_are_starttls_on_the_submission_port():
    settings = SmtpSettings(host="relay", sender="d@x.example")
    assert settings.tls == "starttls" and settings.port is None
    assert SmtpSettings(host="relay", sender="d@x.example", starttls=True).tls == "starttls"


@pytest.mark.parametrize("server", ["smtp_tls_server", "smtps_server"])
def test_login_over_starttls_and_implicit_tls(sqlite_store, request, server):
    box = request.getfixturevalue(server)
    box.reset()
    add_tenant(sqlite_store, "acme", actor="t")
    smtp = {
        "host": box.host,
        "port": box.port,
        "sender": "d@x.example",
        "tls": "implicit" if server == "smtps_server" else "starttls",
        "username": SMTP_USER,
        "password": SMTP_PASSWORD,
        "ca_file": box.ca_file,
    }
    outcome = AlertRouter(sqlite_store, _email_config(smtp)).notify(_event())
    assert outcome.delivered == ["email"], outcome
    assert box.logins == [(SMTP_USER, SMTP_PASSWORD)] and all(e["tls"] for e in box.envelopes)


def test_an_unverified_certificate_gets_no_password(sqlite_store, smtp_tls_server):
    smtp_tls_server.reset()
    add_tenant(sqlite_store, "acme", actor="t")
    smtp = {"host": smtp_tls_server.host, "port": smtp_tls_server.port, "sender": "d@x.example"}
    smtp |= {"username": SMTP_USER, "password": SMTP_PASSWORD}  # no ca_file: the self-signed cert is not trusted
    config = _email_config(smtp)
    config.retry.attempts = 1
    result = AlertRouter(sqlite_store, config).notify(_event()).deliveries["email"]
    assert result.status == "failed" and "CERTIFICATE_VERIFY_FAILED" in result.error
    assert smtp_tls_server.logins == [] and smtp_tls_server.messages == []


def test_a_broken_alerts_yaml_is_one_line_without_the_url_in_it(tmp_path):
    """YAML errors quote the offending line on their later lines; that line may be a webhook URL."""
    path = tmp_path / "alerts.yaml"
    path.write_text(f"platform:\n  - type: slack\n    webhook_url: https://hooks.slack.com{SLACK_PATH}: [\n")
    with pytest.raises(InvalidInputError) as info:
        ChannelConfig.from_yaml(path)
    assert "\n" not in str(info.value) and SLACK_PATH.rsplit("/", 1)[1] not in str(info.value)
    path.write_text("platform: &p []\ntenants: {acme: *p}\n")
    with pytest.raises(InvalidInputError, match="anchors and aliases are not accepted"):
        ChannelConfig.from_yaml(path)


# ------------------------------------------------------------------------------------- a full run


class _Echo(BaseHTTPRequestHandler):
    """A receiver that fails and echoes the request path (with the secret in it) in its error body."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps({"error": f"no such hook: {self.path}"}).encode()
        self.send_response(404 if "tenant" in self.path else 500)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def echo_receiver() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _database_text(store: Any) -> str:
    """Every row of every table, as text (SQLite or PostgreSQL)."""
    meta = MetaData()
    meta.reflect(store.engine)
    with store.engine.connect() as conn:
        return "\n".join(repr(row) for table in meta.sorted_tables for row in conn.execute(select(table)))


def _files_text(folder: Path) -> str:
    return "\n".join(
        p.name + "\n" + p.read_bytes().decode("utf-8", "replace") for p in sorted(folder.rglob("*")) if p.is_file()
    )


def test_a_full_alert_run_leaks_no_secret(
    store, home, tmp_path, monkeypatch, run_cli, caplog, alert_receiver, smtp_tls_server, echo_receiver
):
    caplog.set_level(logging.DEBUG)
    # httpx logs each request's URL at INFO; some imports (litellm) raise its level, so set it back here
    caplog.set_level(logging.DEBUG, logger="httpx")
    monkeypatch.setenv("DRIFT_PIPELINE_DATABASE_URL", store.engine.url.render_as_string(hide_password=False))
    add_tenant(store, "acme", actor="t", contact="ops@acme.example")
    slack_url = echo_receiver + SLACK_PATH
    config = ChannelConfig.from_dict(
        {
            "platform": [
                {"type": "slack", "webhook_url": "${SLACK_URL}"},
                {"type": "webhook", "url": alert_receiver.url("/hook"), "secret": "${HOOK_KEY}"},
                {"type": "pagerduty", "routing_key": "${PD_KEY}", "url": echo_receiver + "/v2/enqueue"},
                {"type": "email", "to": ["oncall@platform.example"]},
            ],
            "tenants": {
                "acme": [
                    {
                        "type": "webhook",
                        "name": "own",
                        "url": f"{echo_receiver}/tenant?token={TENANT_TOKEN}",
                        "secret": "${HOOK_KEY}",
                    }
                ]
            },
            "smtp": {
                "host": smtp_tls_server.host,
                "port": smtp_tls_server.port,
                "sender": "drift@platform.example",
                "username": SMTP_USER,
                "password": "${SMTP_PASSWORD}",
                "ca_file": smtp_tls_server.ca_file,
            },
            "retry": {"attempts": 2, "backoff_s": 0},
        },
        env={"SLACK_URL": slack_url, "HOOK_KEY": HMAC_KEY, "PD_KEY": ROUTING_KEY, "SMTP_PASSWORD": SMTP_PASSWORD},
    )
    router = AlertRouter(store, config, sleep=lambda _: None)
    opened = router.notify(_event())
    assert sorted(opened.delivered) == ["contact-email", "email", "webhook"]
    assert {n: d.status for n, d in opened.deliveries.items() if d.status == "failed"} == {
        "slack": "failed",
        "pagerduty": "failed",
        "tenant/own": "failed",
    }
    assert router.notify(_event()).status == "redelivered"  # the failed channels are tried again
    router.resolve("acme", "support", reason="fixed")
    assert any("HTTP Request" in r.getMessage() for r in caplog.records), "httpx's request log was not captured"

    export = tmp_path / "export.jsonl"
    cli = [("audit", "export", "--format", "jsonl", "--tenant", "acme"), ("audit", "export", "--output", str(export))]
    outputs = [run_cli(*args) for args in cli]
    assert all(code == 0 for code, _, _ in outputs)

    haystacks = {
        "logs": "\n".join(r.getMessage() + str(r.exc_info or "") for r in caplog.records) + caplog.text,
        "cli": "\n".join(out + err for _, out, err in outputs),
        "outcomes": repr(opened),
        "database": _database_text(store),
        "files": _files_text(tmp_path),  # the home folder and the export
    }
    secrets = [SLACK_PATH, SLACK_PATH.rsplit("/", 1)[1], HMAC_KEY, ROUTING_KEY, SMTP_PASSWORD, TENANT_TOKEN]
    leaks = {(where, secret) for where, text in haystacks.items() for secret in secrets if secret in text}
    assert not leaks
    assert "HTTP 500: body" in haystacks["database"]  # the failure is recorded, as status, length and hash
