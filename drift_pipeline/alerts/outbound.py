"""Where alerts may be sent, and how their URLs appear in logs: the operator's outbound policy.

A tenant-configured alert URL makes the platform send requests on the tenant's behalf, so it is checked
twice (server-side request forgery): when the config is loaded, its host must be on the operator's
allow-list (`DRIFT_PIPELINE_ALERT_ALLOWED_HOSTS`: hosts or domains), and at send time every address the
host resolves to must be public: loopback, link-local (cloud metadata at 169.254.169.254), private,
shared, multicast, unspecified and reserved ranges, their IPv6 equivalents and IPv4-mapped IPv6 are
refused unless the operator sets `DRIFT_PIPELINE_ALERT_ALLOW_PRIVATE_NETWORKS` (local receivers, tests).
The address rule applies to the platform's own channels too. Redirects are never followed.

Alert URLs carry secrets (a Slack webhook's path is its credential), so only `redact_url` forms are
ever logged, stored or exported; `RedactUrls` does the same for httpx's own request log.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_ALLOWED_HOSTS = ("hooks.slack.com", "events.pagerduty.com", "events.eu.pagerduty.com")
_URL = re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://[^\s'\"<>]+")


class OutboundRefused(ValueError):
    """An alert URL the operator's policy does not allow (a ValueError, so pydantic reports it)."""


@dataclass(frozen=True)
class OutboundPolicy:
    """The operator's rules for alert URLs: allowed hosts for tenant channels, and private networks."""

    allowed_hosts: tuple[str, ...] = DEFAULT_ALLOWED_HOSTS
    allow_private_networks: bool = False

    @classmethod
    def from_settings(cls) -> OutboundPolicy:
        from drift_pipeline.config import Settings

        settings = Settings.from_env()
        hosts = tuple(h.strip().lower().rstrip(".") for h in settings.alert_allowed_hosts.split(",") if h.strip())
        return cls(hosts, settings.alert_allow_private_networks)

    def check_configured(self, url: str, *, tenant: bool) -> None:
        """Refuse a URL at configuration time: bad scheme, credentials in it, a host off the allow-list
        (tenant channels), or a literal address in a forbidden range."""
        parts = urlsplit(url)
        shown = redact_url(url)
        if parts.scheme not in ("https", "http"):
            raise OutboundRefused(f"alert URL {shown} must be http(s)")
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise OutboundRefused(f"alert URL {shown} has no host")
        if parts.username or parts.password:
            raise OutboundRefused(f"alert URL {shown} must not carry credentials")
        if tenant and not self.host_allowed(host):
            raise OutboundRefused(
                f"alert URL host {host!r} is not on the operator's allow-list (DRIFT_PIPELINE_ALERT_ALLOWED_HOSTS)"
            )
        address = _literal_address(host)
        if address is not None and not self.address_allowed(address):
            raise OutboundRefused(f"alert URL {shown} points at a non-public address ({address})")

    def check_resolved(self, url: str) -> None:
        """Refuse at send time when the URL's host resolves to any forbidden address (DNS can change
        after the config was checked). A name that does not resolve is left to the HTTP client's error."""
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".")
        try:
            infos = socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80))
        except (socket.gaierror, UnicodeError):
            return
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            if not self.address_allowed(address):
                raise OutboundRefused(f"alert URL {redact_url(url)} resolves to a non-public address ({address})")

    def host_allowed(self, host: str) -> bool:
        """`example.com` allows that host and its subdomains; `*` allows any host."""
        host = host.lower()
        return any(entry == "*" or host == entry or host.endswith("." + entry) for entry in self.allowed_hosts)

    def address_allowed(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        if self.allow_private_networks:
            return True
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return address.is_global and not address.is_multicast


def redact_url(url: str) -> str:
    """The URL as it may be shown: scheme, host and port; any path or query replaced by a short hash, so
    two URLs can still be told apart without revealing either."""
    try:
        parts = urlsplit(url)
        netloc = parts.hostname or ""
        if parts.port:
            netloc = f"{netloc}:{parts.port}"
    except ValueError:
        return "<unparsable URL>"
    rest = url.split(parts.netloc, 1)[-1] if parts.netloc else ""
    if rest in ("", "/"):
        return f"{parts.scheme}://{netloc}{rest}"
    return f"{parts.scheme}://{netloc}/<redacted:{hashlib.sha256(rest.encode()).hexdigest()[:8]}>"


def scrub(text: str, *secrets: str) -> str:
    """`text` with every URL redacted and each of `secrets` (paths, keys) replaced."""
    text = _URL.sub(lambda m: redact_url(m.group(0)), text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "<redacted>")
    return text


def body_digest(body: bytes) -> str:
    """What is kept of a receiver's error body: its length and a hash, never its text (a receiver may
    echo the request path, which is the secret of a Slack webhook)."""
    return f"{len(body)} bytes, sha256 {hashlib.sha256(body).hexdigest()[:12]}"


class RedactUrls(logging.Filter):
    """Rewrites a log record so that no URL appears in full (httpx logs every request URL at INFO)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = scrub(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, ()
        return True


def install_log_redaction() -> None:
    """Attach `RedactUrls` to the HTTP client loggers once."""
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactUrls) for f in logger.filters):
            logger.addFilter(RedactUrls())


def _literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
