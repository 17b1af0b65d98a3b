"""Fixtures for the alerts tests: a real local HTTP receiver (`drift_pipeline.alerts.receiver`) and SMTP server.

The servers start once per test session; the function-scoped fixtures reset what they recorded, so
every test sees only its own requests and e-mails. The Dagster sensor tests reuse them.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from drift_pipeline.alerts.receiver import AlertReceiver
from drift_pipeline_tests.plugins.processes import free_port


@dataclass
class SmtpMailbox:
    """A real aiosmtpd server on 127.0.0.1 collecting every message it accepts."""

    host: str
    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[dict[str, Any]] = field(default_factory=list)
    ca_file: str | None = None
    logins: list[tuple[str, str]] = field(default_factory=list)  # (user, password) of accepted logins
    lock: threading.Lock = field(default_factory=threading.Lock)

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m, e in zip(self.messages, self.envelopes, strict=True) if address in e["rcpt_tos"]]

    def reset(self) -> None:
        with self.lock:
            self.messages.clear()
            self.envelopes.clear()
            self.logins.clear()


class _Handler:
    def __init__(self, box: SmtpMailbox) -> None:
        self.box = box

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self.box.lock:
            self.box.messages.append(message)  # type: ignore[arg-type]
            self.box.envelopes.append(
                {
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": list(envelope.rcpt_tos),
                    "tls": _over_tls(server, session),
                }
            )
        return "250 Message accepted for delivery"


def _over_tls(server: Any, session: Any) -> bool:
    """STARTTLS sets `session.ssl`; implicit TLS (SMTPS) shows on the transport instead."""
    return session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (it is its own CA), so STARTTLS verifies for real."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "smtp.crt", tmp / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


SMTP_USER, SMTP_PASSWORD = "alerts", "smtp-pass-S3cr3t-do-not-leak"


def _start_smtp(box: SmtpMailbox, tls_context: ssl.SSLContext | None = None, *, implicit: bool = False) -> Any:
    """aiosmtpd on `box`: plain, STARTTLS-required (`tls_context`) or SMTPS (`implicit`); the TLS ones
    accept the login SMTP_USER/SMTP_PASSWORD, and only over TLS."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == (
            SMTP_USER,
            SMTP_PASSWORD,
        )
        if ok:
            with box.lock:
                box.logins.append((SMTP_USER, SMTP_PASSWORD))
        return AuthResult(success=ok)

    kwargs: dict[str, Any] = {}
    if implicit:
        kwargs.update(ssl_context=tls_context, authenticator=authenticator, auth_require_tls=False)
    elif tls_context is not None:
        kwargs.update(tls_context=tls_context, require_starttls=True, authenticator=authenticator)
    controller = Controller(_Handler(box), hostname=box.host, port=box.port, **kwargs)
    controller.start()
    return controller


@pytest.fixture(autouse=True)
def _local_receivers_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The operator's explicit allowance for the 127.0.0.1 receivers and SMTP servers these tests use: the
    default outbound policy refuses loopback and private addresses (tests of that default unset these)."""
    monkeypatch.setenv("DRIFT_PIPELINE_ALERT_ALLOW_PRIVATE_NETWORKS", "1")
    monkeypatch.setenv("DRIFT_PIPELINE_ALERT_ALLOWED_HOSTS", "127.0.0.1,localhost,hooks.slack.com")


@pytest.fixture(scope="session")
def _alert_receiver_server() -> Iterator[AlertReceiver]:
    receiver = AlertReceiver()
    yield receiver
    receiver.close()


@pytest.fixture
def alert_receiver(_alert_receiver_server: AlertReceiver) -> Iterator[AlertReceiver]:
    """The session's HTTP receiver, with nothing recorded and no failure rules."""
    _alert_receiver_server.reset()
    yield _alert_receiver_server
    _alert_receiver_server.reset()


@pytest.fixture(scope="session")
def _smtp_server() -> Iterator[SmtpMailbox]:
    box = SmtpMailbox("127.0.0.1", free_port())
    controller = _start_smtp(box)
    yield box
    controller.stop()


@pytest.fixture
def smtp_server(_smtp_server: SmtpMailbox) -> Iterator[SmtpMailbox]:
    """A plain local SMTP server (no TLS), emptied for this test."""
    _smtp_server.reset()
    yield _smtp_server
    _smtp_server.reset()


@pytest.fixture(scope="session")
def smtp_tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpMailbox]:
    """A local SMTP server that requires STARTTLS with a self-signed certificate (`ca_file` trusts it)."""
    cert, key = _self_signed(tmp_path_factory.mktemp("smtp-tls"))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    box = SmtpMailbox("127.0.0.1", free_port(), ca_file=str(cert))
    controller = _start_smtp(box, context)
    yield box
    controller.stop()


@pytest.fixture(scope="session")
def smtps_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpMailbox]:
    """A local SMTPS server (implicit TLS from the first byte) with a self-signed certificate."""
    cert, key = _self_signed(tmp_path_factory.mktemp("smtps"))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    box = SmtpMailbox("127.0.0.1", free_port(), ca_file=str(cert))
    controller = _start_smtp(box, context, implicit=True)
    yield box
    controller.stop()
