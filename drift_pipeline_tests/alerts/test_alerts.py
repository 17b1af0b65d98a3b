"""Alerts delivered to a real local HTTP receiver and a real SMTP server, deduplicated in the real store."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import select

from drift_pipeline.alerts.channels import ChannelConfig
from drift_pipeline.alerts.events import DriftEvent
from drift_pipeline.alerts.receiver import AlertReceiver
from drift_pipeline.alerts.router import AlertRouter
from drift_pipeline.alerts.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify_signature
from drift_pipeline.errors import InvalidInputError
from drift_pipeline.persistence import audit
from drift_pipeline.persistence.tables import AlertIncident
from drift_pipeline.versioning.tenants import add_tenant
from drift_pipeline_tests.plugins.alerts import SmtpMailbox

SECRET = "s3cret-hmac-key"
ACME_SECRET = "acme-own-secret"


def config(receiver: AlertReceiver, smtp: SmtpMailbox, **overrides: Any) -> ChannelConfig:
    data: dict[str, Any] = {
        "platform": [
            {"type": "pagerduty", "routing_key": "${PD_KEY}", "url": receiver.url("/pd")},
            {"type": "slack", "webhook_url": receiver.url("/slack")},
            {"type": "webhook", "url": receiver.url("/hook"), "secret": "${HOOK_SECRET}"},
        ],
        "tenants": {
            "acme": [{"type": "webhook", "name": "hook", "url": receiver.url("/acme-hook"), "secret": ACME_SECRET}],
            "globex": [{"type": "webhook", "name": "hook", "url": receiver.url("/globex-hook"), "secret": "g"}],
        },
        # A local relay without login: cleartext only by the operator's explicit opt-in.
        "smtp": {"host": smtp.host, "port": smtp.port, "sender": "drift@platform.example", "tls": "none"},
        "retry": {"attempts": 3, "backoff_s": 0.01, "max_rounds": 3},
    }
    data.update(overrides)
    return ChannelConfig.from_dict(data, env={"PD_KEY": "pd-routing-key", "HOOK_SECRET": SECRET})


def event(tenant: str = "acme", severity: str = "ERROR", episode: str = "gpt-4-0613@bl-1") -> DriftEvent:
    return DriftEvent(
        tenant_id=tenant,
        agent_id="support",
        episode=episode,
        severity=severity,  # type: ignore[arg-type]
        summary=f"DRIFT {tenant}/support: refusal +0.160 (margin ±0.05, p_adj 0.003), beyond the margin and the noise floor",
        report_uri=f"s3://reports/{tenant}/support/2026-11-26.json",
        dimensions=["refusal"],
        details={"threshold": 0.05, "observed_value": 0.16},
    )


@pytest.fixture
def tenants(store):
    add_tenant(store, "acme", actor="test", contact="ops@acme.example")
    add_tenant(store, "globex", actor="test", contact="ml@globex.example")
    return store


@pytest.fixture
def router(tenants, alert_receiver, smtp_server) -> AlertRouter:
    return AlertRouter(tenants, config(alert_receiver, smtp_server))


def alert_actions(store) -> list[str]:
    return [e["action"] for e in audit.entries(store, action_prefix="alert.")]


def test_breach_reaches_every_channel_of_its_tenant(router, alert_receiver, smtp_server) -> None:
    outcome = router.notify(event())

    assert outcome.status == "opened"
    assert outcome.dedup_key == "drift/acme/support/gpt-4-0613@bl-1#1"
    assert sorted(outcome.delivered) == ["contact-email", "pagerduty", "slack", "tenant/hook", "webhook"]

    (pd,) = alert_receiver.requests("/pd")
    body = pd.json()
    assert body["routing_key"] == "pd-routing-key"
    assert body["event_action"] == "trigger"
    assert body["dedup_key"] == outcome.dedup_key
    assert body["payload"]["severity"] == "error"
    assert body["payload"]["source"] == "drift-pipeline"
    assert body["payload"]["summary"].startswith("[ERROR] DRIFT: acme/support")
    assert body["payload"]["custom_details"]["report"] == "s3://reports/acme/support/2026-11-26.json"
    assert body["payload"]["custom_details"]["dimensions"] == ["refusal"]

    slack = alert_receiver.requests("/slack")[0].json()
    assert "acme/support" in slack["text"]
    assert slack["blocks"][0]["type"] == "header"
    assert "s3://reports/acme/support" in slack["blocks"][-1]["elements"][0]["text"]

    hook = alert_receiver.requests("/hook")[0]
    assert verify_signature(SECRET, hook.body, hook.headers[SIGNATURE_HEADER], hook.headers[TIMESTAMP_HEADER])
    assert hook.json()["event"] == "drift.trigger"
    assert hook.json()["tenant_id"] == "acme"
    own = alert_receiver.requests("/acme-hook")[0]
    assert verify_signature(ACME_SECRET, own.body, own.headers[SIGNATURE_HEADER], own.headers[TIMESTAMP_HEADER])
    assert not verify_signature(SECRET, own.body, own.headers[SIGNATURE_HEADER], own.headers[TIMESTAMP_HEADER])

    (mail,) = smtp_server.to("ops@acme.example")
    assert mail["Subject"] == "[ERROR] DRIFT: acme/support (gpt-4-0613@bl-1)"
    assert "s3://reports/acme/support/2026-11-26.json" in mail.get_content()
    assert mail["X-Drift-Dedup-Key"] == outcome.dedup_key

    assert alert_actions(router.store) == ["alert.opened"] + ["alert.sent"] * 5
    sent = audit.entries(router.store, action_prefix="alert.sent")
    assert {e["after"]["channel"] for e in sent} == set(outcome.delivered)
    assert all(e["tenant_id"] == "acme" and e["subject"] == outcome.dedup_key for e in sent)
    assert audit.verify(router.store).ok


def test_open_episode_is_not_sent_twice(router, alert_receiver, smtp_server) -> None:
    first = router.notify(event())
    again = router.notify(event())

    assert (first.status, again.status) == ("opened", "duplicate")
    assert again.dedup_key == first.dedup_key and again.deliveries == {}
    assert len(alert_receiver.requests()) == 4 and len(smtp_server.messages) == 1
    assert alert_actions(router.store).count("alert.opened") == 1


def test_resolve_then_new_drift_opens_a_new_incident(router, alert_receiver) -> None:
    first = router.notify(event())
    resolved = router.resolve("acme", "support", reason="candidate rolled back")
    second = router.notify(event())

    assert resolved.status == "resolved" and resolved.dedup_key == first.dedup_key
    pd = [r.json() for r in alert_receiver.requests("/pd")]
    assert [b["event_action"] for b in pd] == ["trigger", "resolve", "trigger"]
    assert pd[1]["dedup_key"] == first.dedup_key and "payload" not in pd[1]
    assert alert_receiver.requests("/slack")[1].json()["text"].startswith("[RESOLVED]")
    assert second.status == "opened" and second.dedup_key.endswith("#2")
    with router.store.session() as session:
        rows = session.execute(select(AlertIncident).order_by(AlertIncident.id)).scalars().all()
    assert [(r.dedup_key.rsplit("#")[1], r.status) for r in rows] == [("1", "resolved"), ("2", "open")]
    assert "alert.resolved" in alert_actions(router.store)
    assert router.resolve("acme", "support", "other-episode").status == "none"


def test_a_receiver_failing_twice_gets_exactly_one_alert(tenants, alert_receiver, smtp_server) -> None:
    sleeps: list[float] = []
    router = AlertRouter(tenants, config(alert_receiver, smtp_server), sleep=sleeps.append)
    alert_receiver.fail("/slack", 2)

    outcome = router.notify(event())

    assert outcome.deliveries["slack"].status == "delivered" and outcome.deliveries["slack"].attempts == 3
    assert len(alert_receiver.attempts("/slack")) == 3 and len(alert_receiver.requests("/slack")) == 1
    assert len(sleeps) == 2  # backoff between the three attempts only
    slack_audit = [e for e in audit.entries(tenants, action_prefix="alert.") if e["after"].get("channel") == "slack"]
    assert [(e["action"], e["after"]["attempts"]) for e in slack_audit] == [("alert.sent", 3)]


def test_a_channel_down_for_good_is_recorded_and_others_still_deliver(router, alert_receiver) -> None:
    alert_receiver.down("/pd")
    outcome = router.notify(event())

    assert outcome.status == "opened"
    assert outcome.failed == ["pagerduty"] and outcome.deliveries["pagerduty"].attempts == 3
    assert "HTTP 503" in (outcome.deliveries["pagerduty"].error or "")
    assert len(outcome.delivered) == 4
    failed = audit.entries(router.store, action_prefix="alert.failed")
    assert [e["after"]["channel"] for e in failed] == ["pagerduty"]

    # A later tick for the same open episode retries only the failed channel.
    alert_receiver.reset()
    retry = router.notify(event())
    assert retry.status == "redelivered" and list(retry.deliveries) == ["pagerduty"]
    assert retry.deliveries["pagerduty"].status == "delivered"
    assert [r.path for r in alert_receiver.requests()] == ["/pd"]
    assert router.notify(event()).status == "duplicate"


def test_failed_channel_gives_up_after_max_rounds(tenants, alert_receiver, smtp_server) -> None:
    router = AlertRouter(tenants, config(alert_receiver, smtp_server, retry={"attempts": 1, "max_rounds": 2}))
    alert_receiver.down("/pd")
    assert router.notify(event()).failed == ["pagerduty"]
    assert router.notify(event()).failed == ["pagerduty"]
    assert router.notify(event()).status == "duplicate"
    assert len(alert_receiver.attempts("/pd")) == 2


def test_client_errors_and_unreachable_hosts_never_raise(tenants, alert_receiver, smtp_server) -> None:
    cfg = config(
        alert_receiver,
        smtp_server,
        platform=[
            {"type": "slack", "webhook_url": alert_receiver.url("/slack")},
            {"type": "webhook", "name": "gone", "url": "http://127.0.0.1:9/nothing", "secret": "x"},
        ],
    )
    alert_receiver.fail("/slack", 1, status=400)
    outcome = AlertRouter(tenants, cfg, sleep=lambda _s: None).notify(event())

    assert outcome.deliveries["slack"].status == "failed"
    assert outcome.deliveries["slack"].attempts == 1  # a 400 will not heal by retrying
    assert outcome.deliveries["gone"].status == "failed" and outcome.deliveries["gone"].attempts == 3
    assert "ConnectError" in (outcome.deliveries["gone"].error or "")
    assert outcome.deliveries["contact-email"].status == "delivered"


def test_alerts_never_cross_tenants(router, alert_receiver, smtp_server) -> None:
    router.notify(event("acme"))
    assert alert_receiver.requests("/globex-hook") == [] and smtp_server.to("ml@globex.example") == []

    alert_receiver.reset()
    smtp_server.reset()
    router.notify(event("globex"))
    assert alert_receiver.requests("/acme-hook") == [] and smtp_server.to("ops@acme.example") == []
    assert alert_receiver.requests("/globex-hook")[0].json()["tenant_id"] == "globex"
    assert [m["To"] for m in smtp_server.messages] == ["ml@globex.example"]
    assert {e["tenant_id"] for e in audit.entries(router.store, action_prefix="alert.")} == {"acme", "globex"}


def test_racing_ticks_send_one_alert(router, alert_receiver) -> None:
    barrier = threading.Barrier(2)
    outcomes = []

    def tick() -> None:
        barrier.wait()
        outcomes.append(router.notify(event()))

    threads = [threading.Thread(target=tick) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    assert sorted(o.status for o in outcomes) == ["duplicate", "opened"]
    assert len(alert_receiver.requests("/pd")) == 1 and len(alert_receiver.requests("/slack")) == 1
    with router.store.session() as session:
        assert len(session.execute(select(AlertIncident)).scalars().all()) == 1


def test_near_miss_skips_paging_and_escalation_pages_once(router, alert_receiver) -> None:
    warn = router.notify(event(severity="WARN"))
    assert warn.status == "opened" and "pagerduty" not in warn.deliveries
    assert alert_receiver.requests("/pd") == []
    assert alert_receiver.requests("/slack")[0].json()["text"].startswith("[WARN] INCONCLUSIVE")

    breach = router.notify(event(severity="ERROR"))
    assert breach.status == "escalated" and breach.dedup_key == warn.dedup_key
    assert alert_receiver.requests("/pd")[0].json()["payload"]["severity"] == "error"
    assert len(alert_receiver.requests("/slack")) == 2
    assert router.notify(event(severity="ERROR")).status == "duplicate"
    assert router.notify(event(severity="WARN")).status == "duplicate"
    assert "alert.escalated" in alert_actions(router.store)


def test_email_over_starttls_with_verified_certificate(sqlite_store, alert_receiver, smtp_tls_server) -> None:
    add_tenant(sqlite_store, "acme", actor="test", contact="ops@acme.example")
    smtp = {
        "host": smtp_tls_server.host,
        "port": smtp_tls_server.port,
        "sender": "drift@platform.example",
        "starttls": True,
        "ca_file": smtp_tls_server.ca_file,
    }
    cfg = ChannelConfig.from_dict({"platform": [{"type": "email", "to": ["oncall@platform.example"]}], "smtp": smtp})
    outcome = AlertRouter(sqlite_store, cfg).notify(event())

    assert sorted(outcome.delivered) == ["contact-email", "email"]
    assert all(e["tls"] for e in smtp_tls_server.envelopes[-2:])
    assert smtp_tls_server.to("oncall@platform.example")[-1]["Subject"].startswith("[ERROR]")


def test_signature_rejects_tampering_wrong_secret_and_replay() -> None:
    body = b'{"event": "drift.trigger"}'
    headers = sign(SECRET, body)
    sig, ts = headers[SIGNATURE_HEADER], headers[TIMESTAMP_HEADER]
    assert verify_signature(SECRET, body, sig, ts)
    assert not verify_signature(SECRET, body + b" ", sig, ts)
    assert not verify_signature("other", body, sig, ts)
    assert not verify_signature(SECRET, body, sig, ts, now=time.time() + 3600)
    assert not verify_signature(SECRET, body, None, ts)
    old = sign(SECRET, body, timestamp=int(time.time()) - 301)
    assert not verify_signature(SECRET, body, old[SIGNATURE_HEADER], old[TIMESTAMP_HEADER])


def test_config_from_yaml_reads_secrets_from_env(tmp_path) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text(
        "platform:\n  - type: pagerduty\n    routing_key: ${PD_KEY}\n"
        "tenants:\n  acme:\n    - {type: slack, webhook_url: 'https://hooks.slack.com/services/acme'}\n"
    )
    cfg = ChannelConfig.from_yaml(path, env={"PD_KEY": "abc"})
    assert cfg.platform[0].routing_key.get_secret_value() == "abc"
    assert "abc" not in repr(cfg)  # secrets stay out of logs
    assert [c.name for c in cfg.tenant_channels("acme")] == ["tenant/slack"]
    assert cfg.tenant_channels("globex") == []

    with pytest.raises(InvalidInputError, match=r"\$\{PD_KEY\}, which is not set"):
        ChannelConfig.from_yaml(path, env={})
    with pytest.raises(InvalidInputError, match=r"alert config: platform\.0"):
        ChannelConfig.from_dict({"platform": [{"type": "carrier-pigeon"}]})
    with pytest.raises(InvalidInputError, match="unique"):
        ChannelConfig.from_dict({"platform": [{"type": "slack", "webhook_url": "u"}] * 2})
