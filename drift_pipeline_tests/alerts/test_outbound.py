"""Outbound alert URLs: the operator's allow-list, non-public addresses refused (at config and send time),
redirects never followed. Local receivers run on 127.0.0.1 under an explicit allowance only."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from drift_pipeline.alerts.channels import ChannelConfig
from drift_pipeline.alerts.events import DriftEvent
from drift_pipeline.alerts.outbound import OutboundPolicy, OutboundRefused, redact_url
from drift_pipeline.alerts.router import AlertRouter
from drift_pipeline.errors import InvalidInputError
from drift_pipeline.versioning.tenants import add_tenant

STRICT = OutboundPolicy()  # the default: Slack and PagerDuty hosts for tenants, public addresses only


@pytest.fixture
def default_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The settings as an operator gets them out of the box (the alerts plugin relaxes them for local tests)."""
    monkeypatch.delenv("DRIFT_PIPELINE_ALERT_ALLOW_PRIVATE_NETWORKS", raising=False)
    monkeypatch.delenv("DRIFT_PIPELINE_ALERT_ALLOWED_HOSTS", raising=False)


def _tenant_hook(url: str) -> dict[str, Any]:
    return {"tenants": {"acme": [{"type": "webhook", "name": "hook", "url": url, "secret": "s"}]}}


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",  # cloud metadata
        "http://127.0.0.1:8080/admin",
        "http://10.0.0.7/internal",
        "http://192.168.1.1/",
        "http://100.64.0.1/",  # shared address space
        "http://0.0.0.0:9000/",
        "http://224.0.0.1/",
        "http://[::1]/",
        "http://[fe80::1]/",
        "http://[fd00::1]/",
        "http://[::ffff:169.254.169.254]/",  # IPv4-mapped IPv6
        "http://[::]/",
    ],
)
def test_non_public_addresses_are_refused_even_when_the_host_is_allowed(url):
    policy = OutboundPolicy(allowed_hosts=("*",))
    with pytest.raises(OutboundRefused, match="non-public address"):
        policy.check_configured(url, tenant=True)
    with pytest.raises(InvalidInputError, match="non-public address"):
        ChannelConfig.from_dict(_tenant_hook(url), outbound=policy)
    with pytest.raises(InvalidInputError, match="non-public address"):  # the platform's own channels too
        ChannelConfig.from_dict({"platform": [{"type": "webhook", "url": url, "secret": "s"}]}, outbound=policy)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://hooks.slack.com/services/T0/B0/xyz", True),
        ("https://events.pagerduty.com/v2/enqueue", True),
        ("https://evil.example/hook", False),
        ("https://hooks.slack.com.evil.example/services/x", False),
        ("https://evilhooks.slack.com/x", False),
        ("ftp://hooks.slack.com/x", False),
        ("https://user:pw@hooks.slack.com/x", False),
    ],
)
def test_tenant_urls_must_match_the_allow_list(url, allowed):
    if allowed:
        ChannelConfig.from_dict(_tenant_hook(url), outbound=STRICT)
        return
    with pytest.raises(InvalidInputError) as info:
        ChannelConfig.from_dict(_tenant_hook(url), outbound=STRICT)
    assert "pw" not in str(info.value) and "/services/x" not in str(info.value)


def test_a_domain_entry_allows_its_subdomains():
    policy = OutboundPolicy(allowed_hosts=("alerts.example.com",))
    assert policy.host_allowed("alerts.example.com") and policy.host_allowed("eu.alerts.example.com")
    assert not policy.host_allowed("example.com") and not policy.host_allowed("xalerts.example.com")


def test_the_settings_give_the_policy(monkeypatch, default_policy):
    assert OutboundPolicy.from_settings() == STRICT
    monkeypatch.setenv("DRIFT_PIPELINE_ALERT_ALLOWED_HOSTS", " Alerts.Example.com. , hooks.slack.com")
    monkeypatch.setenv("DRIFT_PIPELINE_ALERT_ALLOW_PRIVATE_NETWORKS", "true")
    assert OutboundPolicy.from_settings() == OutboundPolicy(("alerts.example.com", "hooks.slack.com"), True)


def test_by_default_a_local_receiver_is_refused_at_configuration(default_policy, alert_receiver):
    with pytest.raises(InvalidInputError, match="non-public address"):
        ChannelConfig.from_dict({"platform": [{"type": "slack", "webhook_url": alert_receiver.url("/slack")}]})
    with pytest.raises(InvalidInputError, match="not on the operator's allow-list"):
        ChannelConfig.from_dict(_tenant_hook(alert_receiver.url("/hook")))


def _event(episode: str = "2026-11-27") -> DriftEvent:
    return DriftEvent("acme", "support", episode, "ERROR", "refund policy drifted")


def test_a_name_that_resolves_to_loopback_is_refused_at_send_time(sqlite_store, alert_receiver):
    """`localhost` passes the allow-list (a name); after DNS it is 127.0.0.1, so nothing is sent."""
    add_tenant(sqlite_store, "acme", actor="t")
    url = alert_receiver.url("/hook").replace("127.0.0.1", "localhost")
    policy = OutboundPolicy(allowed_hosts=("localhost",))
    router = AlertRouter(sqlite_store, ChannelConfig.from_dict(_tenant_hook(url), outbound=policy))
    outcome = router.notify(_event())
    result = outcome.deliveries["tenant/hook"]
    assert result.status == "failed" and result.attempts == 1 and "resolves to a non-public address" in result.error
    assert alert_receiver.attempts() == []
    # With the operator's explicit allowance the same URL is delivered.
    allowed = OutboundPolicy(allowed_hosts=("localhost",), allow_private_networks=True)
    router = AlertRouter(sqlite_store, ChannelConfig.from_dict(_tenant_hook(url), outbound=allowed))
    assert router.notify(_event("2026-11-28")).deliveries["tenant/hook"].status == "delivered"


class _Redirector(BaseHTTPRequestHandler):
    target = ""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(307)
        self.send_header("Location", self.target)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def redirector(alert_receiver) -> Iterator[str]:
    """A receiver that answers 307 to another host (`localhost` instead of 127.0.0.1): the alert receiver."""
    handler = type(
        "Handler", (_Redirector,), {"target": alert_receiver.url("/stolen").replace("127.0.0.1", "localhost")}
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_redirects_are_never_followed(sqlite_store, alert_receiver, redirector):
    add_tenant(sqlite_store, "acme", actor="t")
    router = AlertRouter(sqlite_store, ChannelConfig.from_dict(_tenant_hook(redirector)))
    result = router.notify(_event()).deliveries["tenant/hook"]
    assert result.status == "failed" and result.attempts == 1 and "redirect not followed" in result.error
    assert alert_receiver.attempts() == []


def test_redact_url_keeps_only_scheme_host_and_port():
    shown = redact_url("https://hooks.slack.com/services/T0/B0/secretpart?x=1")
    assert shown.startswith("https://hooks.slack.com/<redacted:") and "secretpart" not in shown
    assert redact_url("http://127.0.0.1:8080/") == "http://127.0.0.1:8080/"
    assert redact_url("https://a.example/x") != redact_url("https://a.example/y")
