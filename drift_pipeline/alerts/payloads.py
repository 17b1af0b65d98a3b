"""What each channel sends: Slack Block Kit, PagerDuty Events API v2 and plain-text e-mail renderings of a message.

The generic webhook sends `AlertMessage.to_dict()` as it is, signed (`signing.py`).
"""

from __future__ import annotations

import hashlib
from email.message import EmailMessage
from typing import Any

from drift_pipeline.alerts.events import AlertMessage


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
