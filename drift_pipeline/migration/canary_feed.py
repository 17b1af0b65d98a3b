"""Live canary monitoring from captured traffic: feeds `promotion.observe` with the canary and pinned slices.

For every migration in canary, the tenant agent's committed traffic since the last look is turned into
observations `{"route", "refusal", "error", "schema_failure"}` and handed to `promotion.observe`, which runs
the always-valid test and aborts the canary on a breach; the abort alert goes out through
`alerts.router.AlertRouter`. Only records of the migration's tenant and agent, timestamped at or after the
canary started, count; `canary_records` decides each one's slice and outcomes.

Counting each record once: the state per migration (``monitor/canary/tenant=<t>/migration-<id>.json`` in
object storage) holds a timestamp watermark and the ids of the records seen within `lateness` of it. A
look reads only records newer than `watermark - lateness` that are not among those ids, so a batch that
lands late (capture retries) is still counted, exactly once. The state is written *before* `promotion.observe`
and restored when it raises, so a record is counted at most once even if the process dies in between
(then that one batch is lost, which only delays an alarm; counting twice could raise a false one).
Records arriving more than `lateness` after newer ones were counted are missed (and not counted).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from drift_pipeline.alerts.events import CANARY_EPISODE, DriftEvent
from drift_pipeline.alerts.router import AlertRouter
from drift_pipeline.identifiers import check_identifier
from drift_pipeline.migration import promotion, states
from drift_pipeline.migration.canary_records import outcomes, route_of
from drift_pipeline.migration.details import MigrationDetails
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.objects import TRAFFIC_DATASET, ObjectStore, object_key
from drift_pipeline.versioning import manifests

log = logging.getLogger(__name__)

ACTOR = "canary-monitor"
DEFAULT_LATENESS = timedelta(minutes=15)
STATE_PREFIX = "monitor/canary"
_COLUMNS = [
    "record_id",
    "tenant_id",
    "agent_id",
    "timestamp",
    "requested_model",
    "pinned_model_id",
    "served_model",
    "response_text",
    "tool_calls",
    "error",
]


@dataclass
class MonitorState:
    """What a migration's monitor has already counted (persisted as JSON in object storage)."""

    migration_id: int
    watermark: str | None = None  # newest record timestamp counted (UTC ISO 8601)
    recent: dict[str, str] = field(default_factory=dict)  # record id -> timestamp, within `lateness` of it
    counted: dict[str, int] = field(default_factory=lambda: {"canary": 0, "pinned": 0})
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> records not observed
    looks: int = 0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MonitorState:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class CanaryCheck:
    """One look at one canary: what was counted, and whether the gate aborted it."""

    migration_id: int
    tenant_id: str
    agent_id: str
    canary: int = 0  # new observations of the canary slice in this look
    pinned: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    aborted: bool = False
    results: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    def line(self) -> str:
        """One line for a log: the counts and, per dimension, the rates and the always-valid p-value."""
        who = f"migration {self.migration_id} ({self.tenant_id}/{self.agent_id})"
        if self.error:
            return f"{who}: not monitored: {self.error}"
        text = f"{who}: +{self.canary} canary, +{self.pinned} pinned"
        if self.skipped:
            text += " (skipped " + ", ".join(f"{n} {why}" for why, n in sorted(self.skipped.items())) + ")"
        dims = [
            f"{r['dimension']} {_rate(r['rate_pinned'])} -> {_rate(r['rate_canary'])} p={r['p_value']:.2g}"
            for r in self.results
        ]
        if dims:
            text += "; " + ", ".join(dims)
        return text + ("; ABORTED: routing is back on the pinned model" if self.aborted else "")


# ------------------------------------------------------------------------------------------- public


def active_canaries(store: Store) -> list[states.MigrationInfo]:
    """Every migration currently in canary."""
    return [m for m in states.list_migrations(store, open_only=True) if m.state == "canary"]


def monitor_all(
    store: Store,
    objects: ObjectStore,
    *,
    router: AlertRouter | None = None,
    now: datetime | None = None,
    lateness: timedelta = DEFAULT_LATENESS,
    actor: str = ACTOR,
) -> list[CanaryCheck]:
    """One look at every active canary; a failure on one is reported in its `CanaryCheck`, not raised."""
    checks = []
    for migration in active_canaries(store):
        try:
            checks.append(
                monitor_migration(store, objects, migration, router=router, now=now, lateness=lateness, actor=actor)
            )
        except Exception as exc:  # one tenant's broken traffic must not stop the others' monitoring
            log.exception("canary monitor: migration %s failed", migration.id)
            checks.append(
                CanaryCheck(migration.id, migration.tenant_id, migration.agent_id, error=f"{type(exc).__name__}: {exc}")
            )
    return checks


def monitor_migration(
    store: Store,
    objects: ObjectStore,
    migration: states.MigrationInfo,
    *,
    router: AlertRouter | None = None,
    now: datetime | None = None,
    lateness: timedelta = DEFAULT_LATENESS,
    actor: str = ACTOR,
) -> CanaryCheck:
    """Count the canary's traffic not counted yet and run the gate's test on it (see the module doc)."""
    now = now or datetime.now(UTC)
    state = load_state(objects, migration)
    records = read_new_traffic(objects, migration, state, now=now, lateness=lateness)
    schema = manifests.current(store, migration.tenant_id, migration.agent_id).config.response_schema
    observations, new_state, skipped = classify(migration, records, state, schema, lateness=lateness)
    who = (migration.id, migration.tenant_id, migration.agent_id)
    if not observations:
        save_state(objects, migration, new_state)
        return CanaryCheck(*who, skipped=skipped)
    new_state.looks += 1
    save_state(objects, migration, new_state)  # first: a crash before the commit loses a batch, never doubles it
    try:
        verdict = promotion.observe(store, migration.id, observations, alert=_alert_hook(router), actor=actor)
    except Exception:
        save_state(objects, migration, state)  # nothing was counted: the next look takes these records again
        raise
    routes = Counter(o["route"] for o in observations)
    return CanaryCheck(
        *who,
        canary=routes["canary"],
        pinned=routes["pinned"],
        skipped=skipped,
        aborted=verdict.aborted,
        results=[r.to_dict() for r in verdict.results],
    )


def classify(
    migration: states.MigrationInfo,
    records: pd.DataFrame,
    state: MonitorState,
    response_schema: dict[str, Any] | None,
    *,
    lateness: timedelta = DEFAULT_LATENESS,
) -> tuple[list[dict[str, Any]], MonitorState, dict[str, int]]:
    """Observations of the records not counted yet, the state after counting them, and skipped counts."""
    started = canary_started_at(migration)
    floor = _floor(state, lateness)
    recent = dict(state.recent)
    observations: list[dict[str, Any]] = []
    skipped: Counter[str] = Counter()
    newest = _parse_ts(state.watermark) if state.watermark else None
    for row in records.to_dict(orient="records"):
        if row.get("tenant_id") != migration.tenant_id or row.get("agent_id") != migration.agent_id:
            continue  # another tenant's or agent's traffic is never this canary's evidence
        ts = _parse_ts(row.get("timestamp"))
        if ts is None:
            skipped["invalid timestamp"] += 1
            continue
        record_id = str(row.get("record_id") or "")
        if ts < started or (floor is not None and ts <= floor) or record_id in recent:
            continue  # before the canary, or counted already
        recent[record_id] = ts.isoformat()
        newest = ts if newest is None or ts > newest else newest
        route = route_of(row, migration)
        if route is None:
            skipped["unattributed"] += 1
            continue
        observations.append({"route": route, **outcomes(row, response_schema)})
    new_state = _advance(state, recent, newest, observations, skipped, lateness)
    return observations, new_state, dict(skipped)


def canary_started_at(migration: states.MigrationInfo) -> datetime:
    """When the canary first routed traffic (the first share in its history)."""
    history = MigrationDetails.load(migration.details).share_history
    if history:
        return _parse_ts(history[0].since) or migration.updated_at
    return migration.updated_at


# ---------------------------------------------------------------------------------------- traffic


def read_new_traffic(
    objects: ObjectStore,
    migration: states.MigrationInfo,
    state: MonitorState,
    *,
    now: datetime,
    lateness: timedelta = DEFAULT_LATENESS,
) -> pd.DataFrame:
    """The tenant's committed traffic that may hold records not counted yet.

    Only days from the canary start (or the watermark minus `lateness`) to today, and only batches
    committed after that point: an older batch cannot hold a newer record.
    """
    tenant = check_identifier(migration.tenant_id, "tenant id")
    lower = max(canary_started_at(migration), _floor(state, lateness) or datetime.min.replace(tzinfo=UTC))
    frames = []
    for ref in objects.list_batches(TRAFFIC_DATASET, tenant, lower.date(), now.date()):
        committed = _parse_ts(ref.committed_at)
        if committed is not None and committed < lower - lateness:
            continue
        frame = objects.read_batch(ref)
        frames.append(frame.reindex(columns=_COLUMNS))
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=_COLUMNS)
    return pd.concat(frames, ignore_index=True).drop_duplicates("record_id", keep="first")


# ------------------------------------------------------------------------------------------ state


def state_path(migration: states.MigrationInfo) -> str:
    tenant = check_identifier(migration.tenant_id, "tenant id")
    return object_key(*STATE_PREFIX.split("/"), f"tenant={tenant}", f"migration-{int(migration.id)}.json")


def load_state(objects: ObjectStore, migration: states.MigrationInfo) -> MonitorState:
    """The migration's monitor state, or a fresh one on its first look."""
    rel = state_path(migration)
    if not objects.exists(rel):
        return MonitorState(migration.id)
    return MonitorState.from_dict(objects.read_json(rel))


def save_state(objects: ObjectStore, migration: states.MigrationInfo, state: MonitorState) -> None:
    objects.write_json(state_path(migration), state.to_dict())


# -------------------------------------------------------------------------------------- internals


def _alert_hook(router: AlertRouter | None) -> Callable[[dict[str, Any]], None] | None:
    if router is None:
        return None

    def send(event: dict[str, Any]) -> None:
        router.notify(abort_event(event))

    return send


def abort_event(event: Mapping[str, Any]) -> DriftEvent:
    """The tenant-scoped ERROR alert for a canary the gate aborted (`promotion.observe` hands us `event`)."""
    breach = event.get("breach") or {}
    dims = breach.get("dimensions") or []
    changes = ", ".join(
        f"{d['dimension']} {_rate(d['rate_pinned'])} -> {_rate(d['rate_canary'])} (p={d['p_value']:.2g})" for d in dims
    )
    summary = (
        f"Canary of {event['candidate']} for {event['tenant_id']}/{event['agent_id']} was aborted "
        f"(migration {event['migration_id']}): {changes or 'divergence'}. All traffic is back on {event['pinned']}."
    )
    return DriftEvent(
        tenant_id=event["tenant_id"],
        agent_id=event["agent_id"],
        episode=f"{CANARY_EPISODE}{event['migration_id']}",
        severity="ERROR",
        summary=summary,
        dimensions=[d["dimension"] for d in dims],
        details={**json.loads(json.dumps(dict(event), default=str)), "kind": "canary_aborted"},
    )


def _advance(
    state: MonitorState,
    recent: dict[str, str],
    newest: datetime | None,
    observations: Iterable[Mapping[str, Any]],
    skipped: Mapping[str, int],
    lateness: timedelta,
) -> MonitorState:
    routes = Counter(o["route"] for o in observations)
    counted = {k: state.counted.get(k, 0) + routes[k] for k in ("canary", "pinned")}
    all_skipped = Counter(state.skipped) + Counter(skipped)
    keep_after = (newest - lateness) if newest is not None else None
    kept = {i: t for i, t in recent.items() if keep_after is None or datetime.fromisoformat(t) > keep_after}
    return MonitorState(
        migration_id=state.migration_id,
        watermark=newest.isoformat() if newest is not None else None,
        recent=kept,
        counted=counted,
        skipped=dict(all_skipped),
        looks=state.looks,
    )


def _floor(state: MonitorState, lateness: timedelta) -> datetime | None:
    """Records at or before this were either counted or are too late to count."""
    if not state.watermark:
        return None
    return datetime.fromisoformat(state.watermark) - lateness


def _parse_ts(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        ts = value
    else:
        try:
            ts = datetime.fromisoformat(str(value))
        except (TypeError, ValueError):
            return None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"
