"""Alerts: tenant-scoped incidents delivered to the platform's and the tenant's channels.

Owns alert events, channel configuration and delivery (Slack, PagerDuty, signed webhooks, e-mail),
signing, deduplication per drift episode and the incident lifecycle. May import persistence and
versioning; detection and migration call it, never the other way round.
"""
