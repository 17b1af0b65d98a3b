"""Sensors: new model versions, silent changes, deprecations, new tenants, and drift-check alerts.

Each polling sensor keeps a JSON cursor of what it has already acted on and gives every run request a
stable `run_key`, so a re-evaluated tick never launches a replay twice. The tick logic lives in plain
functions (`*_tick`) that the sensors, the tests and `benchmarks/bench_scale.py` share.

Default status (safe for a demo): `new_tenants_sensor`, `silent_change_sensor` (probes only the offline
model and endpoints you configured), `deprecation_sensor` and the two alert sensors start RUNNING;
`new_model_version_sensor` starts STOPPED because it polls providers over the network and resolves
aliases with (one-token) paid completions.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg
from dagster import DagsterEventType

from drift_pipeline.alerts.router import AlertRouter, DriftEvent, load_channel_config
from drift_pipeline.config import Settings
from drift_pipeline.defs.assets import CANDIDATES_TAG, REASON_TAG, WINDOW_TAG
from drift_pipeline.defs.jobs import nightly_drift_job, replay_job
from drift_pipeline.defs.partitions import TENANTS, key, tenants
from drift_pipeline.defs.resources import DriftStore, ObjectStorage
from drift_pipeline.detection import probes
from drift_pipeline.persistence import audit
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.objects import TRAFFIC_DATASET, UNKNOWN_TENANT, ObjectStore
from drift_pipeline.versioning import discovery, manifests, registry

MODEL_TAG = "drift_pipeline/model"
DRIFT_CHECKS = ("drift_within_threshold", "drift_near_miss")
DEPRECATION_EPISODE = "deprecation:"
CANARY_EPISODE = "canary:"  # canary_monitor.EPISODE_PREFIX (not imported: the monitor imports the gates)

ACTOR_NEW_VERSION = "sensor:new_model_version"
ACTOR_SILENT = "sensor:silent_change"
ACTOR_DEPRECATION = "sensor:deprecation"
ACTOR_ALERTS = "sensor:drift_check_alerts"


_SETTINGS = Settings.from_env()
DISCOVERY_INTERVAL_S = _SETTINGS.discovery_interval_s
PROBE_INTERVAL_S = _SETTINGS.probe_interval_s
DEPRECATION_DAYS = _SETTINGS.deprecation_notice_days
DEPRECATION_BATCH = _SETTINGS.deprecation_batch  # notices per tick (the rest next tick)


@dataclass
class Tick:
    """What one evaluation decided: run requests, the next cursor, and lines for the sensor log."""

    run_requests: list[dg.RunRequest] = field(default_factory=list)
    cursor: dict[str, Any] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    partitions_to_add: list[str] = field(default_factory=list)

    def result(self, context: dg.SensorEvaluationContext, skip: str) -> dg.SensorResult:
        for line in self.log:
            context.log.info(line)
        return dg.SensorResult(
            run_requests=self.run_requests,
            cursor=json.dumps(self.cursor, sort_keys=True),
            skip_reason=None if self.run_requests or self.partitions_to_add else skip,
            dynamic_partitions_requests=[tenants.build_add_request(self.partitions_to_add)]
            if self.partitions_to_add
            else None,
        )


def today_utc(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).astimezone(UTC).date().isoformat()


def load_cursor(cursor: str | None) -> dict[str, Any] | None:
    """The JSON cursor, or None on the first tick (a cursor that is not JSON starts over, logged by Dagster)."""
    if not cursor:
        return None
    try:
        data = json.loads(cursor)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def replay_request(
    tenant_id: str,
    day: str,
    reason: str,
    candidates: Iterable[str],
    *,
    key_suffix: str = "",
    run_key: str | None = None,
    window: str = "",
) -> dg.RunRequest:
    """A `replay_job` run for one tenant-day with the contract's tags and a stable run key."""
    cands = sorted(set(candidates))
    tags = {REASON_TAG: reason, CANDIDATES_TAG: ",".join(cands)}
    if window:
        tags[WINDOW_TAG] = window
    if cands:
        tags[MODEL_TAG] = cands[0]
    return dg.RunRequest(
        run_key=run_key or f"{reason}:{tenant_id}:{day}:{','.join(cands)}{key_suffix}",
        job_name=replay_job.name,
        partition_key=key(tenant_id, day),
        tags=tags,
    )


# ------------------------------------------------------------------------------ a. new model versions


def _registry_state(store: Store) -> tuple[list[registry.VersionInfo], dict[str, str]]:
    return registry.list_versions(store), registry.aliases(store)


def new_model_version_tick(
    store: Store,
    cursor: dict[str, Any] | None,
    *,
    sources: list[discovery.ProviderSource] | None = None,
    resolve_alias: discovery.AliasResolver | None = None,
    now: datetime | None = None,
) -> Tick:
    """Poll providers, register what is new, and ask for replays of every tenant pinned in the family."""
    versions, aliases = _registry_state(store)
    state = cursor or {"versions": sorted(v.model_id for v in versions), "aliases": aliases}
    if sources is None:
        by_name = {s.name: s for s in [*discovery.default_sources(versions), *discovery.load_sources()]}
        sources = list(by_name.values())
    providers = {v.model_id: v.provider for v in versions}
    observations = discovery.observe(
        sources,
        registry_aliases={a: (providers[m], m) for a, m in aliases.items()},
        resolve_alias=resolve_alias,
    )
    applied = discovery.apply(store, discovery.diff(observations, versions, aliases), actor=ACTOR_NEW_VERSION)
    tick = Tick(log=[f"provider poll: {e}" for e in applied.errors])
    tick.log += [f"registered {n.provider}/{n.model_id} (from {n.source})" for n in applied.new_versions]
    tick.log += [f"alias {m.alias}: {m.old_model_id} -> {m.new_model_id}" for m in applied.alias_moves]

    versions, aliases = _registry_state(store)
    providers = {v.model_id: v.provider for v in versions}
    known = set(state.get("versions", []))
    previous = state.get("aliases", {})
    current = manifests.list_current(store)
    wanted: dict[str, tuple[set[str], set[str]]] = {}  # tenant -> (candidates, reasons)
    for model_id in sorted(set(providers) - known):
        for tenant_id in discovery.pinned_in_family(current, providers, model_id):
            entry = wanted.setdefault(tenant_id, (set(), set()))
            entry[0].add(model_id)
            entry[1].add("new-version")
    for alias, model_id in sorted(aliases.items()):
        if previous.get(alias) in (None, model_id):
            continue  # a new alias, or unchanged: nobody's behaviour moved
        history = [p.model_id for p in registry.alias_history(store, alias)]
        for tenant_id in discovery.pinned_in_family(current, providers, model_id, alias_versions=history):
            entry = wanted.setdefault(tenant_id, (set(), set()))
            entry[0].add(model_id)
            entry[1].add("alias-moved")
    day = today_utc(now)
    for tenant_id, (candidates, reasons) in sorted(wanted.items()):
        reason = "alias-moved" if "alias-moved" in reasons else "new-version"
        tick.run_requests.append(replay_request(tenant_id, day, reason, candidates))
    tick.cursor = {"versions": sorted(providers), "aliases": dict(sorted(aliases.items()))}
    return tick


@dg.sensor(
    name="new_model_version_sensor",
    jobs=[replay_job],
    minimum_interval_seconds=DISCOVERY_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Polls provider model lists (litellm, OpenAI-compatible /models, the offline provider) and alias resolutions; registers new versions and asks for shadow replays of every tenant pinned in the affected family.",
)
def new_model_version_sensor(context: dg.SensorEvaluationContext, drift_store: DriftStore) -> dg.SensorResult:
    tick = new_model_version_tick(drift_store.get(), load_cursor(context.cursor))
    return tick.result(context, "no new model version and no alias moved")


# ------------------------------------------------------------------------------ b. silent changes


def probe_targets(store: Store, *, hosted: bool = False) -> list[registry.VersionInfo]:
    """Pinned versions we can probe without paying a hosted provider (offline, or an endpoint we configured)."""
    used = {m for m, n in registry.usage(store).items() if n}
    return [
        v
        for v in registry.list_versions(store)
        if v.model_id in used and (hosted or v.provider == "offline" or v.litellm_params.get("api_base"))
    ]


def silent_change_tick(
    store: Store,
    objects: ObjectStore,
    cursor: dict[str, Any] | None,
    *,
    complete: probes.Completer | None = None,
    similarity: probes.Similarity | None = None,
    margin: float = probes.DEFAULT_MARGIN,
    hosted: bool = False,
    prompts: tuple[str, ...] = probes.PROBE_PROMPTS,
    now: datetime | None = None,
) -> Tick:
    """Probe each reachable pinned version; a change beyond its noise floor becomes a new revision + replays."""
    targets = probe_targets(store, hosted=hosted)
    state = cursor or {"fingerprints": {v.model_id: v.fingerprint for v in targets}}
    tick = Tick()
    for version in targets:
        target = probes.ProbeTarget.from_version(version)
        try:
            _probe_one(
                store,
                objects,
                target,
                complete=complete,
                similarity=similarity,
                margin=margin,
                prompts=prompts,
                log=tick.log,
            )
        except Exception as exc:  # one unreachable endpoint must not stop the others' probes
            tick.log.append(f"probe of {version.model_id} failed: {type(exc).__name__}: {exc}")
    after = {
        v.model_id: v.fingerprint for v in registry.list_versions(store) if v.model_id in {t.model_id for t in targets}
    }
    previous = state.get("fingerprints", {})
    changed = sorted(
        m
        for m, fp in after.items()
        if fp and previous.get(m) and fp != previous[m] and _is_probe(fp) and _is_probe(previous[m])
    )
    day = today_utc(now)
    by_tenant: dict[str, set[str]] = {}
    for manifest in manifests.list_current(store):
        # Replays compare against a baseline: an agent without one (no consent, no traffic yet) has nothing to replay.
        if manifest.pinned_model_id in changed and manifest.behavioral_baseline_id:
            by_tenant.setdefault(manifest.tenant_id, set()).add(manifest.pinned_model_id)
    for tenant_id, models in sorted(by_tenant.items()):
        suffix = ":" + ",".join(f"{m}={after[m]}" for m in sorted(models))
        tick.run_requests.append(
            replay_request(tenant_id, day, "silent-change", [], key_suffix=suffix, window=suffix.lstrip(":"))
        )
    tick.cursor = {"fingerprints": {**previous, **after}}
    return tick


def _is_probe(fingerprint: str) -> bool:
    return fingerprint.startswith(probes.PROBE_SET_VERSION + ":")


def _probe_one(
    store: Store,
    objects: ObjectStore,
    target: probes.ProbeTarget,
    *,
    complete: probes.Completer | None,
    similarity: probes.Similarity | None,
    margin: float,
    prompts: tuple[str, ...],
    log: list[str],
) -> None:
    reference = probes.load_reference(objects, target.model_id)
    if reference is None:
        reference = probes.measure_reference(target, complete=complete, similarity=similarity, prompts=prompts)
        probes.save_reference(objects, reference)
        registry.record_fingerprint(
            store,
            target.model_id,
            reference.registry_fingerprint,
            actor=ACTOR_SILENT,
            reason=f"probe reference measured (noise floor: distance {reference.noise_distance:.3f}, "
            f"{reference.noise_changed_rate:.0%} of answers differ between two probes)",
        )
        log.append(f"{target.model_id}: probe reference stored, noise floor {reference.noise_distance:.3f}")
        return
    result = probes.run_probe(target, complete=complete, prompts=prompts)
    verdict = probes.compare(reference, result, similarity=similarity, margin=margin)
    if not verdict.changed:
        log.append(f"{target.model_id}: unchanged ({verdict.reason})")
        return
    revised = probes.ProbeReference(
        model_id=target.model_id,
        responses=result.responses,
        fingerprint=result.fingerprint,
        noise_distance=reference.noise_distance,
        noise_changed_rate=reference.noise_changed_rate,
        measured_at=result.taken_at,
        revision=reference.revision + 1,
    )
    # The revision and its evidence commit before the new reference is saved: a crash in between probes
    # again next tick and finds the same change, instead of losing it.
    registry.record_fingerprint(
        store, target.model_id, revised.registry_fingerprint, actor=ACTOR_SILENT, reason=verdict.reason
    )
    with store.transaction() as session:
        audit.append(
            store,
            session,
            actor=ACTOR_SILENT,
            action="model.silent_change",
            subject=target.model_id,
            before={"fingerprint": reference.registry_fingerprint, "responses": reference.responses},
            after={**verdict.to_dict(), "revision": revised.revision, "responses": result.responses},
            reason=verdict.reason,
        )
    probes.save_reference(objects, revised)
    log.append(f"{target.model_id}: SILENT CHANGE, revision {revised.revision} ({verdict.reason})")


@dg.sensor(
    name="silent_change_sensor",
    jobs=[replay_job],
    minimum_interval_seconds=PROBE_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Replays a tiny fixed probe set against every pinned version reachable offline (or a configured endpoint); a change beyond the noise floor measured at registration registers a new revision and asks for replays of every tenant pinned to it.",
)
def silent_change_sensor(
    context: dg.SensorEvaluationContext, drift_store: DriftStore, object_storage: ObjectStorage
) -> dg.SensorResult:
    hosted = Settings.from_env().probe_hosted
    tick = silent_change_tick(drift_store.get(), object_storage.get(), load_cursor(context.cursor), hosted=hosted)
    return tick.result(context, "no silent change beyond the noise floor")


# ------------------------------------------------------------------------------ c. deprecations


def deprecation_tick(
    store: Store,
    router: AlertRouter,
    cursor: dict[str, Any] | None,
    *,
    days_before: int = DEPRECATION_DAYS,
    batch: int = DEPRECATION_BATCH,
    today: date | None = None,
    now: datetime | None = None,
) -> Tick:
    """Notify each tenant agent pinned to a version sunsetting within `days_before` days, once, and ask for
    a migration-readiness replay against the successor."""
    today = today or (now or datetime.now(UTC)).date()
    due = {
        v.model_id: v
        for v in registry.list_versions(store)
        if v.sunset_date is not None and v.sunset_date - today <= timedelta(days=days_before)
    }
    notified = {n for n in (cursor or {}).get("notified", []) if n.split("|", 1)[0] in due}
    tick = Tick()
    pending = [
        m
        for m in manifests.list_current(store)
        if m.pinned_model_id in due and f"{m.pinned_model_id}|{m.tenant_id}|{m.agent_id}" not in notified
    ]
    per_tenant: dict[tuple[str, str], list[str]] = {}
    for manifest in pending[:batch]:
        version = due[manifest.pinned_model_id]
        outcome = router.notify(_deprecation_event(manifest, version, today))
        if outcome.status == "error":  # not recorded: tried again next tick
            tick.log.append(f"notice to {manifest.tenant_id}/{manifest.agent_id} failed: {outcome.error}")
            continue
        notified.add(f"{version.model_id}|{manifest.tenant_id}|{manifest.agent_id}")
        per_tenant.setdefault((manifest.tenant_id, version.model_id), []).append(manifest.agent_id)
    day = (now or datetime.now(UTC)).date().isoformat()
    for (tenant_id, model_id), agents in sorted(per_tenant.items()):
        successor = due[model_id].successor_id
        tick.log.append(
            f"{tenant_id}: {model_id} sunsets {due[model_id].sunset_date} ({', '.join(agents)} notified)"
            + (f"; readiness replay against {successor}" if successor else "; no successor registered")
        )
        if successor:
            # Once per tenant and version, whatever the day: the run key leaves the day out.
            run_key = f"deprecation-readiness:{tenant_id}:{model_id}:{successor}"
            tick.run_requests.append(
                replay_request(tenant_id, day, "deprecation-readiness", [successor], run_key=run_key)
            )
    if len(pending) > batch:
        tick.log.append(f"{len(pending) - batch} notices left for the next tick")
    tick.cursor = {"notified": sorted(notified)}
    return tick


def _deprecation_event(manifest: manifests.Manifest, version: registry.VersionInfo, today: date) -> DriftEvent:
    days = (version.sunset_date - today).days if version.sunset_date else 0
    when = f"in {days} days" if days > 0 else ("today" if days == 0 else f"{-days} days ago")
    successor = version.successor_id
    summary = (
        f"{version.model_id} (pinned by {manifest.tenant_id}/{manifest.agent_id}) sunsets on {version.sunset_date} ({when}); "
        + (
            f"a migration-readiness replay against {successor} has been requested."
            if successor
            else "no successor is registered yet: choose one and replay against it."
        )
    )
    return DriftEvent(
        tenant_id=manifest.tenant_id,
        agent_id=manifest.agent_id,
        episode=f"{DEPRECATION_EPISODE}{version.model_id}",
        severity="WARN",
        summary=summary,
        details={
            "kind": "deprecation",
            "model_id": version.model_id,
            "sunset_date": str(version.sunset_date),
            "days_left": days,
            "successor_id": successor,
        },
    )


@dg.sensor(
    name="deprecation_sensor",
    jobs=[replay_job],
    minimum_interval_seconds=3600,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=f"N days (DRIFT_PIPELINE_DEPRECATION_NOTICE_DAYS, now {DEPRECATION_DAYS}) before a pinned version's sunset: a WARN notice to each affected tenant (audited, deduplicated) and a migration-readiness replay against the successor, once per tenant and version.",
)
def deprecation_sensor(context: dg.SensorEvaluationContext, drift_store: DriftStore) -> dg.SensorResult:
    store = drift_store.get()
    router = AlertRouter(store, load_channel_config(), actor=ACTOR_DEPRECATION)
    tick = deprecation_tick(store, router, load_cursor(context.cursor))
    return tick.result(context, "no pinned version is near its sunset, or every tenant was told")


# ------------------------------------------------------------------------------ d. new tenants


def new_tenants_tick(
    store: Store,
    objects: ObjectStore,
    instance: dg.DagsterInstance,
    cursor: dict[str, Any] | None,
    *,
    now: datetime | None = None,
) -> Tick:
    """Tenants in the registry or in traffic storage without a partition yet: add them and start their first run."""
    known = set(instance.get_dynamic_partitions(TENANTS))
    seen = {t.tenant_id for t in manifests.list_tenants(store)}
    tick = Tick()
    for tenant_id in objects.list_tenants(TRAFFIC_DATASET):
        try:
            if tenant_id != UNKNOWN_TENANT:
                manifests.check_slug(tenant_id, "tenant id")
                seen.add(tenant_id)
        except Exception as exc:  # a stray folder in storage is not a tenant
            tick.log.append(f"ignored traffic prefix {tenant_id!r}: {exc}")
    new = sorted(seen - known)
    with_manifest = set(manifests.known_agents(store))
    day = today_utc(now)
    for tenant_id in new:
        tick.run_requests.append(
            dg.RunRequest(
                run_key=f"first-run:{tenant_id}:{day}",
                job_name=nightly_drift_job.name,
                partition_key=key(tenant_id, day),
                tags={REASON_TAG: "new-tenant", CANDIDATES_TAG: ""},
                # Without a manifest there is nothing to replay yet: only sample its traffic.
                asset_selection=None if tenant_id in with_manifest else [dg.AssetKey("sampled_inputs")],
            )
        )
    tick.partitions_to_add = new
    tick.log += [f"new tenant partitions: {', '.join(new[:20])}{' ...' if len(new) > 20 else ''}"] if new else []
    tick.cursor = {"tenants": len(known | set(new)), "last_added": new[:100], "day": day}
    return tick


@dg.sensor(
    name="new_tenants_sensor",
    jobs=[nightly_drift_job],
    minimum_interval_seconds=120,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds a `tenants` partition for each tenant that appears in the registry or in traffic storage, and starts its first sample (and, with a manifest, its first nightly chain) for today.",
)
def new_tenants_sensor(
    context: dg.SensorEvaluationContext, drift_store: DriftStore, object_storage: ObjectStorage
) -> dg.SensorResult:
    tick = new_tenants_tick(drift_store.get(), object_storage.get(), context.instance, load_cursor(context.cursor))
    return tick.result(context, "no new tenant")


# ------------------------------------------------------------------------------ e. drift-check alerts


@dataclass
class AlertSummary:
    notified: int = 0
    resolved: int = 0
    tenants: set[str] = field(default_factory=set)
    outcomes: list[str] = field(default_factory=list)


def alerts_for_run(instance: dg.DagsterInstance, run_id: str, router: AlertRouter) -> AlertSummary:
    """Send an alert for every failing drift check entry of the run; resolve agents whose checks passed."""
    summary = AlertSummary()
    failing: dict[str, set[str]] = {}
    checked: dict[str, set[str] | None] = {}
    passed_tenants: set[str] = set()
    for record in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = record.dagster_event.event_specific_data  # type: ignore[union-attr]
        if evaluation.check_name not in DRIFT_CHECKS:
            continue
        meta = evaluation.metadata or {}
        entries = _json_value(meta.get("alerts")) or []
        tenant_id = _text_value(meta.get("tenant_id")) or next((e.get("tenant_id") for e in entries), None)
        if not tenant_id:
            continue
        summary.tenants.add(tenant_id)
        thresholds = _json_value(meta.get("thresholds"))
        if isinstance(thresholds, dict):
            checked[tenant_id] = (checked.get(tenant_id) or set()) | set(thresholds)
        else:
            checked.setdefault(tenant_id, None)
        if evaluation.passed:
            passed_tenants.add(tenant_id)
            continue
        for entry in entries:
            event = DriftEvent(
                tenant_id=str(entry["tenant_id"]),
                agent_id=str(entry["agent_id"]),
                episode=str(entry["episode"]),
                severity="ERROR" if entry.get("severity") == "ERROR" else "WARN",
                summary=str(entry.get("summary") or ""),
                report_uri=entry.get("report_uri"),
                dimensions=list(entry.get("dimensions") or []),
                details={"run_id": run_id, "check": evaluation.check_name},
            )
            failing.setdefault(event.tenant_id, set()).add(event.agent_id)
            outcome = router.notify(event)
            summary.notified += 1
            summary.outcomes.append(f"{event.tenant_id}/{event.agent_id} {event.severity}: {outcome.status}")
    for tenant_id in sorted(passed_tenants):
        for incident in router.open_incidents(tenant_id):
            episode = str((incident.payload or {}).get("episode", ""))
            scope = checked.get(tenant_id)
            # A passing drift check ends a drift episode only: deprecation notices and canary aborts
            # are other kinds of incident, closed by their own owners.
            if episode.startswith((DEPRECATION_EPISODE, CANARY_EPISODE)) or incident.agent_id in failing.get(
                tenant_id, set()
            ):
                continue
            if scope is not None and incident.agent_id not in scope:
                continue  # that agent was not checked in this run
            outcome = router.resolve(
                tenant_id, incident.agent_id, episode, reason=f"drift checks passed in run {run_id}"
            )
            summary.resolved += outcome.status == "resolved"
            summary.outcomes.append(f"{tenant_id}/{incident.agent_id} resolved: {outcome.status}")
    return summary


def _json_value(value: Any) -> Any:
    raw = getattr(value, "value", value)
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return None
    return raw


def _text_value(value: Any) -> str | None:
    raw = getattr(value, "value", value)
    return str(raw) if raw else None


def _send_run_alerts(context: dg.RunStatusSensorContext, drift_store: DriftStore) -> dg.SkipReason | None:
    store = drift_store.get()
    router = AlertRouter(store, load_channel_config(), actor=ACTOR_ALERTS)
    summary = alerts_for_run(context.instance, context.dagster_run.run_id, router)
    for line in summary.outcomes:
        context.log.info(line)
    if not summary.tenants:
        return dg.SkipReason("no drift check ran in this run")
    return None


@dg.run_status_sensor(
    name="drift_check_alerts",
    run_status=dg.DagsterRunStatus.SUCCESS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After a successful run: tenant-scoped alerts for failed non-blocking drift checks (a WARN near miss does not fail its run), and resolution for agents whose checks passed.",
)
def drift_check_alerts(context: dg.RunStatusSensorContext, drift_store: DriftStore) -> dg.SkipReason | None:
    return _send_run_alerts(context, drift_store)


@dg.run_failure_sensor(
    name="drift_check_failure_alerts",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After a failed run: tenant-scoped alerts for blocking ERROR drift checks (a breach fails the run).",
)
def drift_check_failure_alerts(context: dg.RunFailureSensorContext, drift_store: DriftStore) -> dg.SkipReason | None:
    return _send_run_alerts(context, drift_store)
