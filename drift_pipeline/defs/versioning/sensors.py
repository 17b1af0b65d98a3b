"""Versioning sensor: new model versions and moved aliases at the providers.

`new_model_version_sensor` starts RUNNING (hourly): a new version or a moved alias is what tenants need to hear
about first. Without `providers.yaml` it only lists models of the offline provider and of the endpoints the
registry names (free `GET /models`); paid one-token alias resolutions happen only for aliases an operator lists
there. Stop it in the UI (Automation) or with `dagster sensor stop`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import dagster as dg

from drift_pipeline.config import Settings
from drift_pipeline.defs.detection.jobs import replay_job
from drift_pipeline.defs.resources import DriftStore
from drift_pipeline.defs.runs import Tick, load_cursor, replay_request, today_utc
from drift_pipeline.detection import probes
from drift_pipeline.detection.offline import variants
from drift_pipeline.persistence.db import Store
from drift_pipeline.versioning import discovery, manifests, registry

ACTOR_NEW_VERSION = "sensor:new_model_version"
DISCOVERY_INTERVAL_S = Settings.from_env().discovery_interval_s


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
        offline = (variants.MODEL_ID,)
        by_name = {
            s.name: s for s in [*discovery.default_sources(versions, offline_models=offline), *discovery.load_sources()]
        }
        sources = list(by_name.values())
    providers = {v.model_id: v.provider for v in versions}
    observations = discovery.observe(
        sources,
        registry_aliases={a: (providers[m], m) for a, m in aliases.items()},
        resolve_alias=resolve_alias or probes.litellm_alias_resolver,
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
        first = sorted(candidates)[0]
        tick.run_requests.append(replay_request(tenant_id, day, reason, candidates, provider=providers[first]))
    tick.cursor = {"versions": sorted(providers), "aliases": dict(sorted(aliases.items()))}
    return tick


@dg.sensor(
    name="new_model_version_sensor",
    jobs=[replay_job],
    minimum_interval_seconds=DISCOVERY_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Polls provider model lists (litellm, OpenAI-compatible /models, the offline provider) and alias resolutions; registers new versions and asks for shadow replays of every tenant pinned in the affected family.",
)
def new_model_version_sensor(context: dg.SensorEvaluationContext, drift_store: DriftStore) -> dg.SensorResult:
    tick = new_model_version_tick(drift_store.get(), load_cursor(context.cursor))
    return tick.result(context, "no new model version and no alias moved")
