"""The replay cache: `replay_outputs` rows keyed by what was asked, committed the moment each answer arrives.

The key is sha256 of the full canonical request, the provider variant (known for the offline provider)
and a cache namespace, so a rerun of a killed replay re-calls only what is missing. Because a hosted
provider can change behaviour silently under the same model id, a cached answer must not outlive the
question "what does the model say *today*": callers that need today's behaviour pass a namespace per
replay day (the Dagster asset uses its partition date), which keeps reruns within the day resumable and
makes the next day call again; replay's `fresh=True` overwrites cached answers instead of reading them.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.tables import ReplayOutput
from drift_pipeline.traffic.records import dumps

_CHUNK = 500  # keys per IN (...) query: well under every backend's parameter limit


def cache_key(request: dict[str, Any], provider_variant: str | None, namespace: str | None) -> str:
    """sha256 over the canonical request, the provider variant and the cache namespace."""
    # "provider_revision" is the variant's name from before the rename: kept so stored keys stay valid.
    material = dumps({"request": request, "provider_revision": provider_variant, "namespace": namespace or ""})
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def load_cached(store: Store, keys: list[str]) -> dict[str, dict[str, Any]]:
    """The stored outcome for each of `keys` that has one, marked as a cache hit (no attempts made)."""
    found: dict[str, dict[str, Any]] = {}
    with store.session() as session:
        for i in range(0, len(keys), _CHUNK):
            chunk = keys[i : i + _CHUNK]
            for row in session.execute(select(ReplayOutput).where(ReplayOutput.cache_key.in_(chunk))).scalars():
                found[row.cache_key] = {**row.response, "cache_hit": True, "attempts": 0}
    return found


def save_output(
    store: Store,
    key: str,
    *,
    model: str,
    provider_variant: str | None,
    request: dict[str, Any],
    outcome: dict[str, Any],
    overwrite: bool,
) -> None:
    """Commit one successful outcome under `key`; `overwrite` replaces a stored one (a fresh replay)."""
    row = {
        "cache_key": key,
        "model": model,
        # The column keeps its name from before the rename (renaming it needs a schema migration).
        "provider_revision": provider_variant,
        "request": request,
        "response": {k: v for k, v in outcome.items() if k != "cache_hit"},
        "created_at": datetime.now(UTC),
    }
    with store.transaction() as session:
        if store.is_postgres:
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        stmt = insert(ReplayOutput).values(**row)
        if overwrite:
            update = {k: stmt.excluded[k] for k in ("provider_revision", "request", "response", "created_at")}
            stmt = stmt.on_conflict_do_update(index_elements=["cache_key"], set_=update)
        else:
            # A concurrent run may have stored the same request first: keep one row, never a duplicate.
            stmt = stmt.on_conflict_do_nothing(index_elements=["cache_key"])
        session.execute(stmt)
