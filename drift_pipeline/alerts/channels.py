"""Where alerts go: the channel models (Slack, PagerDuty, signed webhook, e-mail) and the operator's config.

`ChannelConfig` is the validated ``alerts.yaml``: the platform's channels, each tenant's own, SMTP and the
`retry` section (`DeliveryPolicy`). A channel's `send` raises `DeliveryError` when a message did not get
through; `retryable` tells the router whether another try may help.
"""

from __future__ import annotations

import json
import os
import re
import smtplib
import ssl
from email.message import EmailMessage
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from drift_pipeline.alerts.events import AlertMessage, Severity
from drift_pipeline.alerts.outbound import OutboundPolicy, body_digest, install_log_redaction, scrub
from drift_pipeline.alerts.payloads import email_message, pagerduty_payload, slack_payload
from drift_pipeline.alerts.signing import sign
from drift_pipeline.errors import InvalidInputError, NotFoundError
from drift_pipeline.retry import RetryPolicy

PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
CONTACT_CHANNEL = "contact-email"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
SMTP_PORTS = {"starttls": 587, "implicit": 465, "none": 25}
install_log_redaction()  # httpx logs each request's full URL at INFO; a Slack webhook's URL is its secret


class DeliveryError(Exception):
    """A channel refused or could not take a message; `retryable` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class BaseChannel(BaseModel):
    """What every channel has: a `name` (its type by default), the least severity it hears, a timeout."""

    model_config = ConfigDict(extra="forbid")

    name: str = ""
    min_severity: Severity = "WARN"
    timeout_s: float = 10.0

    def model_post_init(self, _context: Any) -> None:
        if not self.name:
            self.name = self.type  # type: ignore[attr-defined]

    def send(self, message: AlertMessage, client: httpx.Client, smtp: SmtpSettings | None) -> None:
        raise NotImplementedError

    def target_url(self) -> str | None:
        """The URL this channel posts to (checked against the outbound policy), None for e-mail."""
        return None


class SlackChannel(BaseChannel):
    """Slack incoming webhook: a JSON body with `text` (fallback) and Block Kit `blocks`."""

    type: Literal["slack"]
    webhook_url: SecretStr

    def send(self, message: AlertMessage, client: httpx.Client, smtp: SmtpSettings | None) -> None:
        _post(client, self.webhook_url.get_secret_value(), slack_payload(message), self.timeout_s)

    def target_url(self) -> str | None:
        return self.webhook_url.get_secret_value()


class PagerDutyChannel(BaseChannel):
    """PagerDuty Events API v2 (`POST /v2/enqueue`); trigger and resolve share the dedup key."""

    type: Literal["pagerduty"]
    routing_key: SecretStr
    url: str = PAGERDUTY_URL
    source: str = "drift-pipeline"
    min_severity: Severity = "ERROR"  # page people for breaches only; near misses go to chat/e-mail

    def send(self, message: AlertMessage, client: httpx.Client, smtp: SmtpSettings | None) -> None:
        body = pagerduty_payload(message, self.routing_key.get_secret_value(), self.source)
        _post(client, self.url, body, self.timeout_s, secrets=(self.routing_key.get_secret_value(),))

    def target_url(self) -> str | None:
        return self.url


class WebhookChannel(BaseChannel):
    """Generic webhook: JSON body signed with HMAC-SHA256 over ``"{timestamp}.{body}"``."""

    type: Literal["webhook"]
    url: str
    secret: SecretStr

    def send(self, message: AlertMessage, client: httpx.Client, smtp: SmtpSettings | None) -> None:
        body = json.dumps(message.to_dict(), sort_keys=True, default=str).encode("utf-8")
        headers = sign(self.secret.get_secret_value(), body)
        _post(client, self.url, None, self.timeout_s, content=body, headers=headers)

    def target_url(self) -> str | None:
        return self.url


class EmailChannel(BaseChannel):
    """E-mail to fixed recipients (e.g. the platform's on-call list) through the configured SMTP server."""

    type: Literal["email"]
    to: list[str]

    def send(self, message: AlertMessage, client: httpx.Client, smtp: SmtpSettings | None) -> None:
        if smtp is None:
            raise DeliveryError("no smtp settings configured", retryable=False)
        smtp.send(email_message(message, smtp.sender, self.to), self.timeout_s)


Channel = Annotated[SlackChannel | PagerDutyChannel | WebhookChannel | EmailChannel, Field(discriminator="type")]


class SmtpSettings(BaseModel):
    """The SMTP server e-mail goes through, always over TLS when it logs in.

    `tls`: ``starttls`` (the default; port 587) upgrades the connection and refuses a server that does
    not offer it, ``implicit`` (SMTPS, port 465) speaks TLS from the first byte, ``none`` (port 25) is the
    operator's explicit opt-in to cleartext for a local relay and cannot be combined with a login. The
    server's certificate is verified (`ca_file` trusts a private CA). The legacy `starttls: true/false`
    is read as ``tls: starttls/none``.
    """

    model_config = ConfigDict(extra="forbid")

    host: str
    port: int | None = None
    sender: str
    tls: Literal["starttls", "implicit", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    ca_file: str | None = None  # a private CA that signed the server's certificate

    @model_validator(mode="before")
    @classmethod
    def _legacy_starttls(cls, data: Any) -> Any:
        if isinstance(data, dict) and "starttls" in data:
            data = dict(data)
            legacy = data.pop("starttls")
            data.setdefault("tls", "starttls" if legacy else "none")
        return data

    @model_validator(mode="after")
    def _no_cleartext_login(self) -> SmtpSettings:
        if self.tls == "none" and (self.username or self.password):
            raise ValueError("a login without TLS is refused: use tls: starttls (the default) or implicit")
        return self

    def send(self, msg: EmailMessage, timeout_s: float) -> None:
        port = self.port or SMTP_PORTS[self.tls]
        context = ssl.create_default_context(cafile=self.ca_file)
        try:
            if self.tls == "implicit":
                connection: smtplib.SMTP = smtplib.SMTP_SSL(self.host, port, timeout=timeout_s, context=context)
            else:
                connection = smtplib.SMTP(self.host, port, timeout=timeout_s)
            with connection as smtp:
                if self.tls == "starttls":
                    smtp.ehlo()
                    if not smtp.has_extn("starttls"):
                        raise DeliveryError(
                            "smtp server does not offer STARTTLS: refusing to send (and log in) in cleartext",
                            retryable=False,
                        )
                    smtp.starttls(context=context)
                if self.username:
                    smtp.login(self.username, self.password.get_secret_value() if self.password else "")
                smtp.send_message(msg)
        except smtplib.SMTPResponseException as exc:
            # 5xx SMTP replies are permanent (bad recipient, auth refused): retrying cannot help.
            raise DeliveryError(f"smtp {exc.smtp_code}: {exc.smtp_error!r}", retryable=exc.smtp_code < 500) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"smtp refused recipients {sorted(exc.recipients)}", retryable=False) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"smtp: {exc}") from exc


class DeliveryPolicy(BaseModel):
    """The config's `retry` section: tries per delivery, re-delivery rounds, and when a stale claim is taken over.

    `attempts`, `backoff_s` and `max_backoff_s` become the shared `drift_pipeline.retry.RetryPolicy`
    (exponential backoff with full jitter); `max_rounds` bounds how often later `notify` calls retry a
    failed channel; a claim older than `claim_timeout_s` (its sender died) can be taken over.
    """

    model_config = ConfigDict(extra="forbid")

    attempts: int = Field(4, ge=1, le=20)
    backoff_s: float = Field(0.5, ge=0)
    max_backoff_s: float = Field(30.0, ge=0)
    max_rounds: int = Field(3, ge=1)
    claim_timeout_s: float = Field(600.0, gt=0)

    def retry_policy(self) -> RetryPolicy:
        """The tries of one delivery on the project's one retry mechanism."""
        return RetryPolicy(attempts=self.attempts, base_delay_s=self.backoff_s, max_delay_s=self.max_backoff_s)


class ChannelConfig(BaseModel):
    """Where alerts go: the platform's channels (always), the tenant's contact e-mail, per-tenant channels."""

    model_config = ConfigDict(extra="forbid")

    platform: list[Channel] = Field(default_factory=list)
    tenants: dict[str, list[Channel]] = Field(default_factory=dict)
    contact_email: bool = True
    smtp: SmtpSettings | None = None
    retry: DeliveryPolicy = Field(default_factory=DeliveryPolicy)
    _outbound: OutboundPolicy | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _urls_allowed(self, info: ValidationInfo) -> ChannelConfig:
        """Tenant URLs must be on the operator's allow-list; no URL may name a non-public address."""
        policy = (info.context or {}).get("outbound") or OutboundPolicy.from_settings()
        self._outbound = policy
        for channel in self.platform:
            if url := channel.target_url():
                policy.check_configured(url, tenant=False)
        for channels in self.tenants.values():
            for channel in channels:
                if url := channel.target_url():
                    policy.check_configured(url, tenant=True)
        return self

    @property
    def outbound(self) -> OutboundPolicy:
        """The outbound policy this config was checked with (the environment's when built directly)."""
        if self._outbound is None:
            self._outbound = OutboundPolicy.from_settings()
        return self._outbound

    @field_validator("platform")
    @classmethod
    def _unique_names(cls, channels: list[Any]) -> list[Any]:
        names = [c.name for c in channels]
        if len(set(names)) != len(names) or CONTACT_CHANNEL in names:
            raise ValueError(f"channel names must be unique and not {CONTACT_CHANNEL!r}: {names}")
        return channels

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], *, env: dict[str, str] | None = None, outbound: OutboundPolicy | None = None
    ) -> ChannelConfig:
        """Validate a config mapping; ``${VAR}`` in any string is replaced from the environment. `outbound`
        replaces the environment's policy (the demo allows its own local receiver this way)."""
        try:
            return cls.model_validate(
                _expand_env(data or {}, os.environ if env is None else env), context={"outbound": outbound}
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise InvalidInputError(scrub(f"alert config: {where}: {first['msg']}")) from None

    @classmethod
    def from_yaml(cls, path: str | Path, *, env: dict[str, str] | None = None) -> ChannelConfig:
        from drift_pipeline.versioning.agent_config import load_config_file

        if not Path(path).exists():
            raise NotFoundError(f"alert config {str(path)!r} does not exist")
        # Bounded, no anchors or aliases, and errors in one line: a YAML error's later lines quote the
        # offending line, which may hold a webhook URL.
        data = load_config_file(Path(path), "alert config")
        if data is not None and not isinstance(data, dict):
            raise InvalidInputError(f"alert config {str(path)!r} must be a mapping")
        return cls.from_dict(data or {}, env=env)

    def tenant_channels(self, tenant_id: str) -> list[BaseChannel]:
        """That tenant's own channels only, named ``tenant/<name>`` so they never collide with the platform's."""
        return [c.model_copy(update={"name": f"tenant/{c.name}"}) for c in self.tenants.get(tenant_id, [])]


def load_channel_config(path: str | Path | None = None) -> ChannelConfig:
    """The config at `path`, `$DRIFT_PIPELINE_ALERTS_CONFIG` or ``<home>/alerts.yaml``; empty when none exists."""
    from drift_pipeline.config import Settings

    explicit = path or Settings.from_env().alerts_config
    if explicit:
        return ChannelConfig.from_yaml(explicit)
    default = Settings.from_env().home / "alerts.yaml"
    return ChannelConfig.from_yaml(default) if default.exists() else ChannelConfig()


def _post(
    client: httpx.Client,
    url: str,
    body: dict[str, Any] | None,
    timeout_s: float,
    *,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
    secrets: tuple[str, ...] = (),
) -> None:
    # Error texts end up in logs and audit rows: never with the URL (or its path) or a key in them.
    hidden = (url, httpx.URL(url).raw_path.decode("ascii", "replace"), *secrets)
    try:
        if content is not None:
            response = client.post(url, content=content, headers=headers, timeout=timeout_s, follow_redirects=False)
        else:
            response = client.post(url, json=body, headers=headers, timeout=timeout_s, follow_redirects=False)
    except httpx.HTTPError as exc:
        raise DeliveryError(scrub(f"{type(exc).__name__}: {exc}", *hidden)) from None
    if response.is_success:
        return
    if response.is_redirect:  # a redirect could lead anywhere, past the allow-list: never followed
        raise DeliveryError(f"HTTP {response.status_code}: redirect not followed", retryable=False)
    # 429 and 5xx are transient; any other 4xx (bad routing key, bad URL) will not heal by retrying.
    retryable = response.status_code == 429 or response.status_code >= 500
    raise DeliveryError(f"HTTP {response.status_code}: body {body_digest(response.content)}", retryable=retryable)


def _expand_env(value: Any, env: Any) -> Any:
    if isinstance(value, dict):
        return {k: _expand_env(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, env) for v in value]
    if isinstance(value, str):

        def repl(match: re.Match[str]) -> str:
            if match.group(1) not in env:
                raise InvalidInputError(f"alert config refers to ${{{match.group(1)}}}, which is not set")
            return env[match.group(1)]

        return _ENV_REF.sub(repl, value)
    return value
