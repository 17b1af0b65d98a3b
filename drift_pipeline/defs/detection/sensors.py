"""Detection sensor: silent provider-side changes, caught by a logprob tripwire, then a tiny fixed probe set.

Each tick checks the logprob tripwire first (`detection/tripwire.py`, a few one-token completions); only
when it fires does the text probe run (`detection/probes.py`) and a new revision ask for replays.
Providers without logprobs fall back to the text probes, and the log says so.

Starts RUNNING: it probes only the offline model and endpoints you configured (hosted providers with
DRIFT_PIPELINE_PROBE_HOSTED=true).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import dagster as dg

from drift_pipeline.config import Settings
from drift_pipeline.defs.detection.jobs import replay_job
from drift_pipeline.defs.resources import DriftStore, ObjectStorage
from drift_pipeline.defs.runs import Tick, load_cursor, replay_request, today_utc
from drift_pipeline.detection import probes, tripwire
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
    fetch_logprobs: tripwire.LogprobFetcher | None = None,
    tripwire_prompts: tuple[str, ...] = tripwire.TRIPWIRE_PROMPTS,
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
                checks=_Tripwire(fetch_logprobs, tripwire_prompts),
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
    providers = {t.model_id: t.provider for t in targets}
    for tenant_id, models in sorted(by_tenant.items()):
        suffix = ":" + ",".join(f"{m}={after[m]}" for m in sorted(models))
        provider = providers.get(sorted(models)[0], "")
        tick.run_requests.append(
            replay_request(
                tenant_id, day, "silent-change", [], key_suffix=suffix, window=suffix.lstrip(":"), provider=provider
            )
        )
    tick.cursor = {"fingerprints": {**previous, **after}}
    return tick


def _is_probe(fingerprint: str) -> bool:
    return fingerprint.startswith(probes.PROBE_SET_VERSION + ":")


@dataclass(frozen=True)
class _Tripwire:
    fetch: tripwire.LogprobFetcher | None
    prompts: tuple[str, ...]


NO_LOGPROBS = "no logprobs: text probes used"


def _probe_one(
    store: Store,
    objects: ObjectStore,
    target: probes.ProbeTarget,
    *,
    complete: probes.Completer | None,
    similarity: probes.Similarity | None,
    margin: float,
    prompts: tuple[str, ...],
    checks: _Tripwire,
    log: list[str],
) -> None:
    reference = probes.load_reference(objects, target.model_id)
    wire = tripwire.load_reference(objects, target.model_id)
    if reference is None or wire is None:
        _measure_references(store, objects, target, reference, complete, similarity, prompts, checks, log)
        return
    trip = _tripwire_first(wire, target, checks, log)
    if trip is not None and not trip.fired:
        log.append(f"{target.model_id}: unchanged ({trip.reason})")
        return  # the cheap check saw nothing: no text probe, no replay
    result = probes.run_probe(target, complete=complete, prompts=prompts)
    verdict = probes.compare(reference, result, similarity=similarity, margin=margin)
    if trip is None and not verdict.changed:
        log.append(f"{target.model_id}: unchanged ({NO_LOGPROBS}; {verdict.reason})")
        return
    # A fired tripwire is the change (its tolerance is calibrated on pinned runs); the text probe is its evidence.
    reason = f"{trip.reason}; text probe: {verdict.reason}" if trip else f"{NO_LOGPROBS}; {verdict.reason}"
    revised = probes.ProbeReference(
        model_id=target.model_id,
        responses=result.responses,
        fingerprint=result.fingerprint,
        noise_distance=reference.noise_distance,
        noise_changed_rate=reference.noise_changed_rate,
        measured_at=result.taken_at,
        revision=reference.revision + 1,
    )
    # The revision and its evidence commit before the new references are saved: a crash in between probes
    # again next tick and finds the same change, instead of losing it.
    registry.record_fingerprint(store, target.model_id, revised.registry_fingerprint, actor=ACTOR_SILENT, reason=reason)
    with store.transaction() as session:
        audit.append(
            store,
            session,
            actor=ACTOR_SILENT,
            action="model.silent_change",
            subject=target.model_id,
            before={"fingerprint": reference.registry_fingerprint, "responses": reference.responses},
            after={
                **verdict.to_dict(),
                "revision": revised.revision,
                "responses": result.responses,
                "tripwire": trip.to_dict() if trip else {"available": False, "reason": NO_LOGPROBS},
            },
            reason=reason,
        )
    if trip is not None:
        _save_tripwire_revision(objects, wire, target, checks)
    probes.save_reference(objects, revised)
    log.append(f"{target.model_id}: SILENT CHANGE, revision {revised.revision} ({reason})")


def _tripwire_first(
    wire: tripwire.TripwireReference, target: probes.ProbeTarget, checks: _Tripwire, log: list[str]
) -> tripwire.TripwireVerdict | None:
    """Today's tripwire verdict, or None (text probes) when the provider gives no logprobs."""
    if not wire.available:
        return None
    try:
        verdict, _ = tripwire.check(wire, target, fetch=checks.fetch, prompts=checks.prompts)
    except tripwire.LogprobsUnavailable as exc:
        log.append(f"{target.model_id}: {NO_LOGPROBS} ({exc})")
        return None
    return verdict


def _save_tripwire_revision(
    objects: ObjectStore, wire: tripwire.TripwireReference, target: probes.ProbeTarget, checks: _Tripwire
) -> None:
    """The changed version's new fingerprint, re-measured so its tolerance fits what is served now."""
    fresh = tripwire.measure_reference(target, fetch=checks.fetch, prompts=checks.prompts, revision=wire.revision + 1)
    tripwire.save_reference(objects, fresh)


def _measure_references(
    store: Store,
    objects: ObjectStore,
    target: probes.ProbeTarget,
    reference: probes.ProbeReference | None,
    complete: probes.Completer | None,
    similarity: probes.Similarity | None,
    prompts: tuple[str, ...],
    checks: _Tripwire,
    log: list[str],
) -> None:
    """First sight of a version: its tripwire fingerprint (or "no logprobs") and its text-probe reference."""
    wire = tripwire.measure_reference(target, fetch=checks.fetch, prompts=checks.prompts)
    tripwire.save_reference(objects, wire)
    wire_note = f"tripwire tolerance {wire.tolerance:.4f} nats over {wire.runs} runs" if wire.available else NO_LOGPROBS
    if reference is not None:
        log.append(f"{target.model_id}: tripwire reference stored ({wire_note})")
        return
    reference = probes.measure_reference(target, complete=complete, similarity=similarity, prompts=prompts)
    probes.save_reference(objects, reference)
    registry.record_fingerprint(
        store,
        target.model_id,
        reference.registry_fingerprint,
        actor=ACTOR_SILENT,
        reason=f"probe reference measured (noise floor: distance {reference.noise_distance:.3f}, "
        f"{reference.noise_changed_rate:.0%} of answers differ between two probes; {wire_note})",
    )
    log.append(f"{target.model_id}: probe reference stored, noise floor {reference.noise_distance:.3f} ({wire_note})")


@dg.sensor(
    name="silent_change_sensor",
    jobs=[replay_job],
    minimum_interval_seconds=PROBE_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Checks a logprob tripwire (then, only if it fires or the provider gives no logprobs, a tiny fixed text probe set) against every pinned version reachable offline (or a configured endpoint); a change beyond the calibrated tolerance or noise floor measured at registration registers a new revision and asks for replays of every tenant pinned to it.",
)
def silent_change_sensor(
    context: dg.SensorEvaluationContext, drift_store: DriftStore, object_storage: ObjectStorage
) -> dg.SensorResult:
    hosted = Settings.from_env().probe_hosted
    tick = silent_change_tick(drift_store.get(), object_storage.get(), load_cursor(context.cursor), hosted=hosted)
    return tick.result(context, "no silent change beyond the noise floor")
