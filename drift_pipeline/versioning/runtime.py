"""Runtime resolution for the platform's request path: which exact model may this agent call?

`Resolver.resolve` is a dictionary lookup on the hot path. The cache is invalidated at once by manifest
changes made in this process, and within `poll_interval` seconds by changes made in any other process
(a shared change counter in the store is read at most once per interval).

Canary routing: while a migration is in canary, `resolve(..., session_key=...)` sends the sessions whose
deterministic hash falls in the canary share to the candidate (route "canary"); the same session always
gets the same answer, in every process. Without a session key, or without a canary, the pinned model is
served from the same dictionary lookup as before.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from drift_pipeline.persistence.db import Store
from drift_pipeline.versioning import manifests, registry

if TYPE_CHECKING:
    from drift_pipeline.migration.states import CanaryRoute

DEFAULT_DECODING: dict[str, Any] = {"temperature": 0.0, "max_tokens": 512}


@dataclass(frozen=True)
class Resolution:
    """What the platform must call for one request."""

    tenant_id: str
    agent_id: str
    model_id: str
    provider: str
    litellm_model: str
    litellm_params: dict[str, Any]
    decoding: dict[str, Any]
    manifest_revision: int
    baseline_id: str | None
    route: str = "pinned"  # "canary" when a migration's canary slice routes this session to the candidate
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


class Resolver:
    """Resolve (tenant, agent) to an exact model from an in-process cache.

    A tenant or agent without a manifest raises `NotFoundError`: there is never a silent default.
    """

    def __init__(self, store: Store, *, poll_interval: float = 0.25) -> None:
        self.store = store
        self.poll_interval = poll_interval
        self._cache: dict[tuple[str, str], Resolution] = {}
        # Only agents with an active canary have an entry: the no-canary path never looks past `_cache`.
        self._canaries: dict[tuple[str, str], tuple[CanaryRoute, Resolution]] = {}
        self._lock = threading.Lock()
        self._generation = 0  # bumped by every invalidation: a load that raced one is not cached
        self._seen_counter = store.change_counter()
        self._next_poll = time.monotonic() + poll_interval
        manifests.subscribe(self.invalidate)

    def resolve(
        self,
        tenant_id: str,
        agent_id: str,
        session_key: str | None = None,
        *,
        session_started_at: datetime | None = None,
    ) -> Resolution:
        """The model for one request; `session_key` (conversation id) enables sticky canary routing.

        `session_started_at` (when the conversation began) keeps a conversation on the model it started
        with even when the canary share grows meanwhile.
        """
        if time.monotonic() >= self._next_poll:
            self._poll()
        key = (tenant_id, agent_id)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._fill(key)
        if session_key is None or not self._canaries:
            return hit
        active = self._canaries.get(key)
        if active is None or not active[0].routes(tenant_id, agent_id, session_key, session_started_at):
            return hit
        return active[1]

    def invalidate(self) -> None:
        with self._lock:
            self._generation += 1
            self._cache.clear()
            self._canaries.clear()

    def _fill(self, key: tuple[str, str]) -> Resolution:
        generation = self._generation
        manifest = manifests.current(self.store, *key)
        resolution = _resolution(manifest, registry.get_version(self.store, manifest.pinned_model_id))
        # The one documented upward edge (versioning -> migration, see versioning/__init__.py): the
        # resolver must route a canary's sessions, and the canary's state belongs to the migration pillar.
        # Imported here, on a cache miss, so that importing the runtime does not load the migration pillar.
        from drift_pipeline.migration.states import active_canary

        route = active_canary(self.store, *key)
        canary = None
        if route is not None:
            canary = _resolution(
                manifest,
                registry.get_version(self.store, route.to_model_id),
                route="canary",
                extra={"migration_id": route.migration_id, "pinned_model_id": resolution.model_id},
            )
        with self._lock:
            # An invalidation while we read means what we read may predate the change: serve it to this
            # caller, but do not cache it (the next call reads again).
            if generation == self._generation:
                self._cache[key] = resolution
                if route is not None and canary is not None:
                    self._canaries[key] = (route, canary)
        return resolution

    def _poll(self) -> None:
        self._next_poll = time.monotonic() + self.poll_interval
        counter = self.store.change_counter()
        if counter != self._seen_counter:
            self._seen_counter = counter
            self.invalidate()


def _resolution(manifest: manifests.Manifest, version: registry.VersionInfo, **route: Any) -> Resolution:
    """What to call for `manifest`'s agent when it is served by `version` (its pin, or a canary candidate)."""
    return Resolution(
        tenant_id=manifest.tenant_id,
        agent_id=manifest.agent_id,
        model_id=version.model_id,
        provider=version.provider,
        litellm_model=version.litellm_model,
        litellm_params=version.litellm_params,
        decoding={**DEFAULT_DECODING, **version.decoding, **manifest.require_valid_config().decoding},
        manifest_revision=manifest.revision,
        baseline_id=manifest.behavioral_baseline_id,
        **route,
    )
