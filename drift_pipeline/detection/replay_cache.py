"""The replay cache: `replay_outputs` rows keyed by what was asked, committed as the answers arrive.

The key is sha256 of the full canonical request, the provider variant (known for the offline provider)
and a cache namespace, so a rerun of a killed replay re-calls only what is missing. Because a hosted
provider can change behaviour silently under the same model id, a cached answer must not outlive the
question "what does the model say *today*": callers that need today's behaviour pass a namespace per
replay day (the Dagster asset uses its partition date), which keeps reruns within the day resumable and
makes the next day call again; replay's `fresh=True` overwrites cached answers instead of reading them.
"""

from __future__ import annotations

import asyncio
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


def output_row(
    key: str, model: str, provider_variant: str | None, request: dict[str, Any], outcome: dict[str, Any]
) -> dict[str, Any]:
    """The `replay_outputs` row for one successful outcome."""
    return {
        "cache_key": key,
        "model": model,
        # The column keeps its name from before the rename (renaming it needs a schema migration).
        "provider_revision": provider_variant,
        "request": request,
        "response": {k: v for k, v in outcome.items() if k != "cache_hit"},
        "created_at": datetime.now(UTC),
    }


def save_outputs(store: Store, rows: list[dict[str, Any]], *, overwrite: bool) -> None:
    """Commit `rows` (from `output_row`) in one transaction; `overwrite` replaces stored ones."""
    if not rows:
        return
    with store.transaction() as session:
        if store.is_postgres:
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        stmt = insert(ReplayOutput)
        if overwrite:
            update = {k: stmt.excluded[k] for k in ("provider_revision", "request", "response", "created_at")}
            stmt = stmt.on_conflict_do_update(index_elements=["cache_key"], set_=update)
        else:
            # A concurrent run may have stored the same request first: keep one row, never a duplicate.
            stmt = stmt.on_conflict_do_nothing(index_elements=["cache_key"])
        # One statement for all rows (executemany): compiled once and cached, not a multi-row VALUES built
        # per batch: 3-4x less CPU per row, and the writer thread holds the GIL for less of the replay's time.
        session.execute(stmt, rows)


class OutputWriter:
    """Group commit for a running replay: an output is committed as soon as the commit before it ends.

    One commit per output serialises on the database (SQLite fsyncs each one): at 300 answers/s that,
    not the provider, set the pace. Outputs that arrive while a commit runs go into the next one, so a
    killed replay loses at most the answers of one commit, and `flush()` (which the replay awaits even
    when cancelled) loses none.
    """

    def __init__(self, store: Store, *, overwrite: bool) -> None:
        self._store, self._overwrite = store, overwrite
        self._pending: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None

    def add(self, row: dict[str, Any]) -> None:
        self._pending.append(row)
        if self._task is not None and self._task.done():
            self._task.result()  # a failed commit stops the replay, as a failed single commit did
            self._task = None
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            await asyncio.to_thread(save_outputs, self._store, batch, overwrite=self._overwrite)

    async def flush(self) -> None:
        """Wait until every output added so far is committed (re-raises a failed commit)."""
        while self._task is not None:
            task = self._task
            await task
            if task is self._task:
                self._task = None
        await self._drain()
