"""Detection sensor: silent provider-side changes, caught by a tiny fixed probe set.

Starts RUNNING: it probes only the offline model and endpoints you configured (hosted providers with
DRIFT_PIPELINE_PROBE_HOSTED=true).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import dagster as dg

from drift_pipeline.config import Settings
from drift_pipeline.defs.detection.jobs import replay_job
from drift_pipeline.defs.resources import DriftStore, ObjectStorage
from drift_pipeline.defs.runs import Tick, load_cursor, replay_request, today_utc
from drift_pipeline.detection import probes
from drift_pipeline.persistence import audit
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.objects import ObjectStore
from drift_pipeline.versioning import manifests, registry

ACTOR_SILENT = "sensor:silent_change"
PROBE_INTERVAL_S = Settings.from_env().probe_interval_s


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
