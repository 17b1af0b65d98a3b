"""AlertRouter: one incident per tenant, agent and drift episode, delivered once to every channel that is due.

`alert_incidents.dedup_key` is unique. The router opens the incident and claims the channels that are
due in one short transaction, delivers outside it (so no database lock is held across the network),
then records each channel's result in a second transaction. Every change to an incident and its audit
entry commit together. Two sensor ticks racing on one episode cannot both send: the unique key (and a
row lock) lets exactly one claim each channel.

Delivery never raises into the caller: a retryable failure is tried again with backoff
(`drift_pipeline.retry`), then recorded as ``failed`` (a later `notify` for the still-open episode tries
that channel again, up to `max_rounds`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import httpx
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from drift_pipeline.alerts.channels import CONTACT_CHANNEL, BaseChannel, ChannelConfig, DeliveryError, EmailChannel
from drift_pipeline.alerts.events import (
    SEVERITY_RANK,
    AlertMessage,
    AlertOutcome,
    DeliveryResult,
    DriftEvent,
    Severity,
)
from drift_pipeline.alerts.outbound import OutboundRefused, scrub
from drift_pipeline.errors import NotFoundError
from drift_pipeline.persistence import audit
from drift_pipeline.persistence.tables import AlertIncident
from drift_pipeline.retry import attempts_made

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from drift_pipeline.persistence.db import Store

log = logging.getLogger(__name__)

ACTOR = "drift-pipeline/alerts"


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

    def recipients(self, tenant_id: str) -> list[BaseChannel]:
        """The platform's channels, the tenant's own, and its contact e-mail: never another tenant's."""
        channels: list[BaseChannel] = [*self.config.platform, *self.config.tenant_channels(tenant_id)]
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

    def _claim_with_retry(self, event: DriftEvent, channels: list[BaseChannel]) -> _Claim:
        try:
            return self._claim(event, channels)
        except IntegrityError:
            # Another tick opened this episode's incident between our read and insert: join it instead.
            return self._claim(event, channels)

    def _claim(self, event: DriftEvent, channels: list[BaseChannel]) -> _Claim:
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
        self,
        session: Session,
        event: DriftEvent,
        channels: list[BaseChannel],
        now: datetime,
        previous: AlertIncident | None,
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

    def _is_due(self, state: dict[str, Any] | None, channel: BaseChannel, severity: Severity, now: datetime) -> bool:
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

    def _deliver(self, message: AlertMessage, channels: list[BaseChannel]) -> dict[str, DeliveryResult]:
        client = self._client or httpx.Client(follow_redirects=False)
        try:
            return {c.name: self._deliver_one(message, c, client) for c in channels}
        finally:
            if self._client is None:
                client.close()

    def _deliver_one(self, message: AlertMessage, channel: BaseChannel, client: httpx.Client) -> DeliveryResult:
        def log_retry(attempt: int, exc: BaseException, wait_s: float) -> None:
            log.warning("alert to %s failed (attempt %d): %s", channel.name, attempt, exc)

        retrying = self.config.retry.retry_policy().retrying(_retryable, sleep=self._sleep, before_sleep=log_retry)
        try:
            for attempt in retrying:
                with attempt:
                    self._send(message, channel, client)
        except DeliveryError as exc:
            return DeliveryResult(channel.name, "failed", attempts_made(retrying), str(exc))
        except Exception as exc:  # a rendering or library fault is this channel's failure, not the run's
            error = scrub(f"{type(exc).__name__}: {exc}")
            return DeliveryResult(channel.name, "failed", attempts_made(retrying), error)
        return DeliveryResult(channel.name, "delivered", attempts_made(retrying))

    def _send(self, message: AlertMessage, channel: BaseChannel, client: httpx.Client) -> None:
        url = channel.target_url()
        if url:  # checked again now: the name may resolve elsewhere than when the config was loaded
            try:
                self.config.outbound.check_resolved(url)
            except OutboundRefused as exc:
                raise DeliveryError(str(exc), retryable=False) from None
        channel.send(message, client, self.config.smtp)

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
        from drift_pipeline.versioning import tenants

        try:
            return tenants.get_tenant(self.store, tenant_id).contact
        except NotFoundError:
            return None


@dataclass(frozen=True)
class _Claim:
    status: str
    dedup_key: str
    incident_id: int
    message: AlertMessage
    due: list[BaseChannel]


def _retryable(exc: BaseException) -> bool:
    # Only a channel's transient refusal is worth another try; a bad config or a rendering bug is not.
    return isinstance(exc, DeliveryError) and exc.retryable


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
