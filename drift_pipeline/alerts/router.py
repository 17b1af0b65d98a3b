"""Tenant-scoped drift alerts: Slack, PagerDuty Events v2, HMAC-signed webhooks and SMTP e-mail.

One incident per tenant, agent and drift episode (`alert_incidents.dedup_key` is unique). `AlertRouter`
opens the incident and claims the channels that are due in one short transaction, delivers outside it
(so no database lock is held across the network), then records each channel's result in a second
transaction. Every change to an incident and its audit entry commit together. Two sensor ticks racing
on one episode cannot both send: the unique key (and a row lock) lets exactly one claim each channel.

Delivery never raises into the caller: failures are retried with backoff, then recorded as ``failed``
(a later `notify` for the still-open episode tries that channel again, up to `max_rounds`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import random
import re
import smtplib
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from drift_pipeline.errors import InvalidInputError, NotFoundError
from drift_pipeline.persistence import audit
from drift_pipeline.persistence.tables import AlertIncident

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from drift_pipeline.detection.expectations import DriftCheckResult
    from drift_pipeline.persistence.db import Store

log = logging.getLogger(__name__)

Severity = Literal["ERROR", "WARN"]
SEVERITY_RANK = {"WARN": 1, "ERROR": 2}
PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
SIGNATURE_HEADER = "X-Drift-Signature"
TIMESTAMP_HEADER = "X-Drift-Timestamp"
ACTOR = "drift-pipeline/alerts"
CONTACT_CHANNEL = "contact-email"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class DeliveryError(Exception):
    """A channel refused or could not take a message; `retryable` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


# ---------------------------------------------------------------------------------------------- events


@dataclass(frozen=True)
class DriftEvent:
    """A drift finding for one tenant agent. `episode` names the drift episode (candidate + baseline)."""

    tenant_id: str
    agent_id: str
    episode: str
    severity: Severity
    summary: str
    report_uri: str | None = None
    dimensions: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def episode_key(self) -> str:
        """Tenant, agent and episode: all incidents of one episode share it."""
        return f"drift/{self.tenant_id}/{self.agent_id}/{self.episode}"

    @classmethod
    def from_check(cls, result: DriftCheckResult, *, episode: str) -> DriftEvent:
        """The event for a failed drift check (`expectations.check_report`); raises when it passed."""
        if result.severity is None or not result.tenant_id or not result.agent_id:
            raise InvalidInputError("only a failed drift check of a named tenant and agent makes an alert")
        return cls(
            tenant_id=result.tenant_id,
            agent_id=result.agent_id,
            episode=episode,
            severity=result.severity,
            summary=result.description,
            report_uri=result.report_uri,
            dimensions=result.failing_dimensions,
            details={"threshold": result.threshold, "observed_value": result.observed_value},
        )


def episode_key(candidate_model_id: str, baseline_id: str) -> str:
    """The conventional episode name: drift of this candidate against this baseline."""
    return f"{candidate_model_id}@{baseline_id}"


@dataclass(frozen=True)
class AlertMessage:
    """What every channel renders: one incident, triggered or resolved."""

    action: Literal["trigger", "resolve"]
    dedup_key: str
    incident_id: int
    tenant_id: str
    agent_id: str
    episode: str
    severity: Severity
    summary: str
    report_uri: str | None
    dimensions: list[str]
    details: dict[str, Any]
    sent_at: str

    @property
    def title(self) -> str:
        kind = "breach" if self.severity == "ERROR" else "near miss"
        prefix = "RESOLVED" if self.action == "resolve" else self.severity
        return f"[{prefix}] Drift {kind}: {self.tenant_id}/{self.agent_id} ({self.episode})"

    def to_dict(self) -> dict[str, Any]:
        return {"event": f"drift.{self.action}", **asdict(self)}


@dataclass(frozen=True)
class DeliveryResult:
    """One channel's result for one message."""

    channel: str
    status: Literal["delivered", "failed"]
    attempts: int
    error: str | None = None


@dataclass(frozen=True)
class AlertOutcome:
    """What `notify`/`resolve` did: `status` is opened, duplicate, redelivered, resolved, none or error."""

    status: str
    dedup_key: str | None = None
    incident_id: int | None = None
    deliveries: dict[str, DeliveryResult] = field(default_factory=dict)
    error: str | None = None

    @property
    def delivered(self) -> list[str]:
        return [name for name, d in self.deliveries.items() if d.status == "delivered"]

    @property
    def failed(self) -> list[str]:
        return [name for name, d in self.deliveries.items() if d.status == "failed"]


# ------------------------------------------------------------------------------------------ channels


class _Channel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = ""
    min_severity: Severity = "WARN"
    timeout_s: float = 10.0

    def model_post_init(self, _context: Any) -> None:
        if not self.name:
            self.name = self.type  # type: ignore[attr-defined]

    def send(self, message: AlertMessage, client: httpx.Client, smtp: SmtpSettings | None) -> None:
        raise NotImplementedError


class SlackChannel(_Channel):
    """Slack incoming webhook: a JSON body with `text` (fallback) and Block Kit `blocks`."""

    type: Literal["slack"]
    webhook_url: SecretStr

    def send(self, message: AlertMessage, client: httpx.Client, smtp: SmtpSettings | None) -> None:
        _post(client, self.webhook_url.get_secret_value(), slack_payload(message), self.timeout_s)


class PagerDutyChannel(_Channel):
    """PagerDuty Events API v2 (`POST /v2/enqueue`); trigger and resolve share the dedup key."""

    type: Literal["pagerduty"]
    routing_key: SecretStr
    url: str = PAGERDUTY_URL
    source: str = "drift-pipeline"
    min_severity: Severity = "ERROR"  # page people for breaches only; near misses go to chat/e-mail

    def send(self, message: AlertMessage, client: httpx.Client, smtp: SmtpSettings | None) -> None:
        body = pagerduty_payload(message, self.routing_key.get_secret_value(), self.source)
        _post(client, self.url, body, self.timeout_s)


class WebhookChannel(_Channel):
    """Generic webhook: JSON body signed with HMAC-SHA256 over ``"{timestamp}.{body}"``."""

    type: Literal["webhook"]
    url: str
    secret: SecretStr

    def send(self, message: AlertMessage, client: httpx.Client, smtp: SmtpSettings | None) -> None:
        body = json.dumps(message.to_dict(), sort_keys=True, default=str).encode("utf-8")
        headers = sign(self.secret.get_secret_value(), body)
        _post(client, self.url, None, self.timeout_s, content=body, headers=headers)


class EmailChannel(_Channel):
    """E-mail to fixed recipients (e.g. the platform's on-call list) through the configured SMTP server."""

    type: Literal["email"]
    to: list[str]

    def send(self, message: AlertMessage, client: httpx.Client, smtp: SmtpSettings | None) -> None:
        if smtp is None:
            raise DeliveryError("no smtp settings configured", retryable=False)
        smtp.send(email_message(message, smtp.sender, self.to), self.timeout_s)


Channel = Annotated[SlackChannel | PagerDutyChannel | WebhookChannel | EmailChannel, Field(discriminator="type")]


class SmtpSettings(BaseModel):
    """The SMTP server e-mail goes through; `starttls` upgrades the connection before login."""

    model_config = ConfigDict(extra="forbid")

    host: str
    port: int = 25
    sender: str
    starttls: bool = False
    username: str | None = None
    password: SecretStr | None = None
    ca_file: str | None = None  # a private CA that signed the server's certificate

    def send(self, msg: EmailMessage, timeout_s: float) -> None:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=timeout_s) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context(cafile=self.ca_file))
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


class RetryPolicy(BaseModel):
    """Attempts per delivery with exponential backoff and full jitter; `max_rounds` bounds re-deliveries."""

    model_config = ConfigDict(extra="forbid")

    attempts: int = Field(4, ge=1, le=20)
    backoff_s: float = Field(0.5, ge=0)
    max_backoff_s: float = Field(30.0, ge=0)
    max_rounds: int = Field(3, ge=1)
    claim_timeout_s: float = Field(600.0, gt=0)

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1)))


class ChannelConfig(BaseModel):
    """Where alerts go: the platform's channels (always), the tenant's contact e-mail, per-tenant channels."""

    model_config = ConfigDict(extra="forbid")

    platform: list[Channel] = Field(default_factory=list)
    tenants: dict[str, list[Channel]] = Field(default_factory=dict)
    contact_email: bool = True
    smtp: SmtpSettings | None = None
    retry: RetryPolicy = Field(default_factory=RetryPolicy)

    @field_validator("platform")
    @classmethod
    def _unique_names(cls, channels: list[Any]) -> list[Any]:
        names = [c.name for c in channels]
        if len(set(names)) != len(names) or CONTACT_CHANNEL in names:
            raise ValueError(f"channel names must be unique and not {CONTACT_CHANNEL!r}: {names}")
        return channels

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, env: dict[str, str] | None = None) -> ChannelConfig:
        """Validate a config mapping; ``${VAR}`` in any string is replaced from the environment."""
        try:
            return cls.model_validate(_expand_env(data or {}, os.environ if env is None else env))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise InvalidInputError(f"alert config: {where}: {first['msg']}") from exc

    @classmethod
    def from_yaml(cls, path: str | Path, *, env: dict[str, str] | None = None) -> ChannelConfig:
        import yaml

        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise NotFoundError(f"alert config {str(path)!r} does not exist") from exc
        except (OSError, yaml.YAMLError) as exc:
            raise InvalidInputError(f"alert config {str(path)!r} is not readable YAML: {exc}") from exc
        if data is not None and not isinstance(data, dict):
            raise InvalidInputError(f"alert config {str(path)!r} must be a mapping")
        return cls.from_dict(data or {}, env=env)

    def tenant_channels(self, tenant_id: str) -> list[Any]:
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


# ---------------------------------------------------------------------------------------- renderers


def slack_payload(message: AlertMessage) -> dict[str, Any]:
    """Slack incoming-webhook body: `text` for notifications, `blocks` for the channel."""
    fields = [
        f"*Tenant*\n{message.tenant_id}",
        f"*Agent*\n{message.agent_id}",
        f"*Severity*\n{message.severity}",
        f"*Dimensions*\n{', '.join(message.dimensions) or '-'}",
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": message.title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": message.summary[:3000]}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
    ]
    context = [f"incident {message.incident_id}", f"episode `{message.episode}`"]
    if message.report_uri:
        context.append(f"report: {message.report_uri}")
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(context)}]})
    return {"text": f"{message.title}: {message.summary}"[:3000], "blocks": blocks}


def pagerduty_payload(message: AlertMessage, routing_key: str, source: str) -> dict[str, Any]:
    """PagerDuty Events API v2 body; a resolve needs only the routing and dedup keys."""
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": message.action,
        "dedup_key": pagerduty_dedup_key(message.dedup_key),
    }
    if message.action == "trigger":
        body["payload"] = {
            "summary": message.title[:1024],
            "severity": "error" if message.severity == "ERROR" else "warning",
            "source": source,
            "component": message.agent_id,
            "group": message.tenant_id,
            "class": "behavioural-drift",
            "custom_details": {
                "summary": message.summary,
                "tenant_id": message.tenant_id,
                "agent_id": message.agent_id,
                "episode": message.episode,
                "dimensions": message.dimensions,
                "report": message.report_uri,
                **message.details,
            },
        }
        if message.report_uri and message.report_uri.startswith(("http://", "https://")):
            body["links"] = [{"href": message.report_uri, "text": "drift report"}]
    return body


def pagerduty_dedup_key(dedup_key: str) -> str:
    # PagerDuty caps dedup_key at 255 characters; long tenant/agent/episode names are hashed.
    return dedup_key if len(dedup_key) <= 255 else "drift-" + hashlib.sha256(dedup_key.encode()).hexdigest()


def email_message(message: AlertMessage, sender: str, to: list[str]) -> EmailMessage:
    """A plain-text e-mail a person can act on without opening anything else."""
    msg = EmailMessage()
    msg["Subject"] = message.title
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["X-Drift-Dedup-Key"] = message.dedup_key
    lines = [
        message.summary,
        "",
        f"Tenant:     {message.tenant_id}",
        f"Agent:      {message.agent_id}",
        f"Episode:    {message.episode}",
        f"Severity:   {message.severity}",
        f"Dimensions: {', '.join(message.dimensions) or '-'}",
        f"Report:     {message.report_uri or '-'}",
        f"Incident:   {message.incident_id} ({message.dedup_key})",
    ]
    if message.action == "resolve":
        lines.insert(0, "This drift episode has been resolved.\n")
    msg.set_content("\n".join(lines) + "\n")
    return msg


# ------------------------------------------------------------------------------------------ signing


def sign(secret: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    """Headers for a signed webhook body: the timestamp and ``sha256=<hex>`` over ``"{ts}.{body}"``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode("utf-8"), ts.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return {TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: f"sha256={digest}", "Content-Type": "application/json"}


def verify_signature(
    secret: str,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    *,
    tolerance_s: int = 300,
    now: float | None = None,
) -> bool:
    """True when `signature` matches `body` and `timestamp` is within `tolerance_s` (replay protection)."""
    if not signature or not timestamp or not signature.startswith("sha256=") or not timestamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > tolerance_s:
        return False
    expected = sign(secret, body, timestamp=int(timestamp))[SIGNATURE_HEADER]
    return hmac.compare_digest(expected, signature)


# ------------------------------------------------------------------------------------------- router


class AlertRouter:
    """Sends tenant-scoped, deduplicated drift alerts and records every step in the audit log.

    `sleep` is injectable so that tests and benchmarks need not wait out real backoff.
    """

    def __init__(
        self,
        store: Store,
        channels: ChannelConfig,
        *,
        actor: str = ACTOR,
        sleep: Callable[[float], None] = time.sleep,
        client: httpx.Client | None = None,
    ) -> None:
        self.store = store
        self.config = channels
        self.actor = actor
        self._sleep = sleep
        self._client = client

    # -- public

    def notify(self, event: DriftEvent) -> AlertOutcome:
        """Open (or join) the event's incident and deliver to every channel that is due. Never raises."""
        try:
            channels = self.recipients(event.tenant_id)
            claim = self._claim_with_retry(event, channels)
            if not claim.due:
                return AlertOutcome(claim.status, claim.dedup_key, claim.incident_id)
            results = self._deliver(claim.message, claim.due)
            self._record(claim.incident_id, "trigger", claim.message.severity, results)
            return AlertOutcome(claim.status, claim.dedup_key, claim.incident_id, results)
        except Exception as exc:  # an alerting fault must never fail the caller's run
            log.exception("alert for %s/%s failed", event.tenant_id, event.agent_id)
            return AlertOutcome("error", error=f"{type(exc).__name__}: {exc}")

    def resolve(self, tenant_id: str, agent_id: str, episode: str | None = None, *, reason: str = "") -> AlertOutcome:
        """Resolve the open incident(s) of a tenant agent (or one episode) and tell the channels that heard."""
        try:
            resolved = self._close(tenant_id, agent_id, episode, reason)
            if not resolved:
                return AlertOutcome("none")
            channels = {c.name: c for c in self.recipients(tenant_id)}
            last: AlertOutcome = AlertOutcome("none")
            for incident_id, message, heard in resolved:
                due = [channels[name] for name in heard if name in channels]
                results = self._deliver(message, due) if due else {}
                if results:
                    self._record(incident_id, "resolve", message.severity, results)
                last = AlertOutcome("resolved", message.dedup_key, incident_id, results)
            return last
        except Exception as exc:
            log.exception("resolving alerts for %s/%s failed", tenant_id, agent_id)
            return AlertOutcome("error", error=f"{type(exc).__name__}: {exc}")

    def recipients(self, tenant_id: str) -> list[Any]:
        """The platform's channels, the tenant's own, and its contact e-mail: never another tenant's."""
        channels: list[Any] = [*self.config.platform, *self.config.tenant_channels(tenant_id)]
        contact = self._contact(tenant_id)
        if contact:
            channels.append(EmailChannel(type="email", name=CONTACT_CHANNEL, to=[contact]))
        return channels

    def open_incidents(self, tenant_id: str | None = None) -> list[AlertIncident]:
        query = select(AlertIncident).where(AlertIncident.status == "open").order_by(AlertIncident.id)
        if tenant_id:
            query = query.where(AlertIncident.tenant_id == tenant_id)
        with self.store.session() as session:
            return list(session.execute(query).scalars())

    # -- claiming (short transactions, no network)

    def _claim_with_retry(self, event: DriftEvent, channels: list[Any]) -> _Claim:
        try:
            return self._claim(event, channels)
        except IntegrityError:
            # Another tick opened this episode's incident between our read and insert: join it instead.
            return self._claim(event, channels)

    def _claim(self, event: DriftEvent, channels: list[Any]) -> _Claim:
        now = audit.utcnow()
        with self.store.transaction() as session:
            incident = self._latest_incident(session, event.episode_key)
            if incident is None or incident.status != "open":
                return self._open(session, event, channels, now, incident)
            deliveries = dict(incident.deliveries or {})
            due = [c for c in channels if self._is_due(deliveries.get(c.name), c, event.severity, now)]
            status = "duplicate"
            if due:
                status = "redelivered"
                for c in due:
                    deliveries[c.name] = _pending(deliveries.get(c.name), event.severity, now)
                payload = dict(incident.payload)
                if SEVERITY_RANK[event.severity] > SEVERITY_RANK[payload["severity"]]:
                    payload.update(_event_payload(event), severity=event.severity)
                    status = "escalated"
                    self._audit(session, "alert.escalated", incident, after=payload, reason=event.summary)
                incident.payload, incident.deliveries = payload, deliveries
            message = _message("trigger", incident, now)
            return _Claim(status, incident.dedup_key, incident.id, message, due)

    def _open(
        self, session: Session, event: DriftEvent, channels: list[Any], now: datetime, previous: AlertIncident | None
    ) -> _Claim:
        n = int(previous.dedup_key.rsplit("#", 1)[1]) + 1 if previous else 1
        due = [c for c in channels if SEVERITY_RANK[event.severity] >= SEVERITY_RANK[c.min_severity]]
        incident = AlertIncident(
            dedup_key=f"{event.episode_key}#{n}",
            tenant_id=event.tenant_id,
            agent_id=event.agent_id,
            status="open",
            payload=_event_payload(event),
            deliveries={c.name: _pending(None, event.severity, now) for c in due},
            opened_at=now,
        )
        session.add(incident)
        session.flush()  # the unique dedup_key is the race arbiter: a concurrent opener fails here
        self._audit(session, "alert.opened", incident, after=incident.payload, reason=event.summary)
        return _Claim("opened", incident.dedup_key, incident.id, _message("trigger", incident, now), due)

    def _latest_incident(self, session: Session, episode_key: str) -> AlertIncident | None:
        # One statement decides "join the open incident" or "open incident n+1": two separate reads
        # could straddle a concurrent commit and open a second incident for one episode.
        query = (
            select(AlertIncident)
            .where(AlertIncident.dedup_key.startswith(episode_key + "#", autoescape=True))
            .order_by(AlertIncident.id.desc())
            .limit(1)
            .with_for_update()
        )
        return session.execute(query).scalars().first()

    def _is_due(self, state: dict[str, Any] | None, channel: Any, severity: Severity, now: datetime) -> bool:
        if SEVERITY_RANK[severity] < SEVERITY_RANK[channel.min_severity]:
            return False
        if state is None:
            return True
        status = state.get("status")
        if status == "delivered":
            return SEVERITY_RANK[severity] > SEVERITY_RANK[state.get("severity", "WARN")]  # escalation
        if status == "failed":
            return int(state.get("rounds", 1)) < self.config.retry.max_rounds
        # "pending": another sender holds the claim; take it over only if that sender died.
        claimed = datetime.fromisoformat(state["claimed_at"])
        return now - claimed > timedelta(seconds=self.config.retry.claim_timeout_s)

    # -- delivery (network, outside any transaction)

    def _deliver(self, message: AlertMessage, channels: list[Any]) -> dict[str, DeliveryResult]:
        client = self._client or httpx.Client()
        try:
            return {c.name: self._deliver_one(message, c, client) for c in channels}
        finally:
            if self._client is None:
                client.close()

    def _deliver_one(self, message: AlertMessage, channel: Any, client: httpx.Client) -> DeliveryResult:
        policy = self.config.retry
        error = ""
        for attempt in range(1, policy.attempts + 1):
            try:
                channel.send(message, client, self.config.smtp)
                return DeliveryResult(channel.name, "delivered", attempt)
            except DeliveryError as exc:
                error = str(exc)
                if not exc.retryable:
                    return DeliveryResult(channel.name, "failed", attempt, error)
            except Exception as exc:  # a rendering or library fault is this channel's failure, not the run's
                return DeliveryResult(channel.name, "failed", attempt, f"{type(exc).__name__}: {exc}")
            if attempt < policy.attempts:
                log.warning("alert to %s failed (attempt %d): %s", channel.name, attempt, error)
                self._sleep(policy.delay(attempt))
        return DeliveryResult(channel.name, "failed", policy.attempts, error)

    # -- recording

    def _record(self, incident_id: int, action: str, severity: Severity, results: dict[str, DeliveryResult]) -> None:
        now = audit.utcnow().isoformat()
        with self.store.transaction() as session:
            incident = session.execute(
                select(AlertIncident).where(AlertIncident.id == incident_id).with_for_update()
            ).scalar_one()
            deliveries = dict(incident.deliveries or {})
            for name, result in results.items():
                state = dict(deliveries.get(name) or {})
                if action == "trigger":
                    state.update(status=result.status, attempts=result.attempts, error=result.error, at=now)
                    if result.status == "delivered":
                        state["severity"] = severity
                else:
                    state["resolve"] = {"status": result.status, "attempts": result.attempts, "error": result.error}
                deliveries[name] = state
                verb = "sent" if result.status == "delivered" else "failed"
                audit_action = f"alert.{verb}" if action == "trigger" else f"alert.resolve_{verb}"
                self._audit(session, audit_action, incident, after={"channel": name, **asdict(result)})
            incident.deliveries = deliveries

    def _close(
        self, tenant_id: str, agent_id: str, episode: str | None, reason: str
    ) -> list[tuple[int, AlertMessage, list[str]]]:
        now = audit.utcnow()
        query = select(AlertIncident).where(
            AlertIncident.tenant_id == tenant_id, AlertIncident.agent_id == agent_id, AlertIncident.status == "open"
        )
        if episode is not None:
            key = f"drift/{tenant_id}/{agent_id}/{episode}#"
            query = query.where(AlertIncident.dedup_key.startswith(key, autoescape=True))
        closed = []
        with self.store.transaction() as session:
            for incident in session.execute(query.with_for_update()).scalars():
                incident.status, incident.resolved_at = "resolved", now
                self._audit(session, "alert.resolved", incident, after={"status": "resolved"}, reason=reason)
                heard = [n for n, s in (incident.deliveries or {}).items() if s.get("status") == "delivered"]
                closed.append((incident.id, _message("resolve", incident, now), heard))
        return closed

    def _audit(
        self, session: Session, action: str, incident: AlertIncident, *, after: dict[str, Any], reason: str = ""
    ) -> None:
        audit.append(
            self.store,
            session,
            actor=self.actor,
            action=action,
            subject=incident.dedup_key,
            tenant_id=incident.tenant_id,
            after={"incident_id": incident.id, **after},
            reason=reason,
        )

    def _contact(self, tenant_id: str) -> str | None:
        if not self.config.contact_email or self.config.smtp is None:
            return None
        from drift_pipeline.versioning import manifests

        try:
            return manifests.get_tenant(self.store, tenant_id).contact
        except NotFoundError:
            return None


@dataclass(frozen=True)
class _Claim:
    status: str
    dedup_key: str
    incident_id: int
    message: AlertMessage
    due: list[Any]


def _pending(previous: dict[str, Any] | None, severity: Severity, now: datetime) -> dict[str, Any]:
    rounds = int((previous or {}).get("rounds", 0)) + 1
    state = dict(previous or {})
    state.update(status="pending", claimed_at=now.isoformat(), rounds=rounds, claiming_severity=severity)
    return state


def _event_payload(event: DriftEvent) -> dict[str, Any]:
    return {
        "episode": event.episode,
        "severity": event.severity,
        "summary": event.summary,
        "report_uri": event.report_uri,
        "dimensions": list(event.dimensions),
        "details": json.loads(json.dumps(event.details, default=str)),
    }


def _message(action: Literal["trigger", "resolve"], incident: AlertIncident, now: datetime) -> AlertMessage:
    p = incident.payload
    return AlertMessage(
        action=action,
        dedup_key=incident.dedup_key,
        incident_id=incident.id,
        tenant_id=incident.tenant_id,
        agent_id=incident.agent_id,
        episode=p["episode"],
        severity=p["severity"],
        summary=p["summary"],
        report_uri=p.get("report_uri"),
        dimensions=list(p.get("dimensions") or []),
        details=dict(p.get("details") or {}),
        sent_at=now.isoformat(),
    )


def _post(
    client: httpx.Client,
    url: str,
    body: dict[str, Any] | None,
    timeout_s: float,
    *,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> None:
    try:
        if content is not None:
            response = client.post(url, content=content, headers=headers, timeout=timeout_s)
        else:
            response = client.post(url, json=body, headers=headers, timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
    if response.is_success:
        return
    # 429 and 5xx are transient; any other 4xx (bad routing key, bad URL) will not heal by retrying.
    retryable = response.status_code == 429 or response.status_code >= 500
    raise DeliveryError(f"HTTP {response.status_code}: {response.text[:200]}", retryable=retryable)


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


def outcome_summary(outcomes: Iterable[AlertOutcome]) -> dict[str, int]:
    """Counts by status, for sensor tick logs and run metadata."""
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    return counts
