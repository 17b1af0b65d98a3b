"""Shards: which tenants share one nightly run, so a run's fixed cost (process start, imports, model loads)
is paid once per shard instead of once per tenant.

A shard is a contiguous stretch of the tenant partitions in their stored order (Dagster runs a range of
partitions as one run), holding only the selected tenants: a tenant that is not selected between two
selected ones closes the shard, so a run never touches a tenant it was not asked for.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from drift_pipeline.errors import InvalidInputError


@dataclass(frozen=True)
class Shard:
    """Consecutive tenant partitions `first`..`last` (inclusive, in partition order)."""

    tenant_ids: tuple[str, ...]

    @property
    def first(self) -> str:
        return self.tenant_ids[0]

    @property
    def last(self) -> str:
        return self.tenant_ids[-1]


def plan(ordered: Sequence[str], size: int, selected: Iterable[str] | None = None) -> list[Shard]:
    """Shards of at most `size` tenants over `ordered` (the partition order), keeping only `selected` (all by default)."""
    if size < 1:
        raise InvalidInputError(f"shard size must be at least 1, got {size}")
    wanted = set(ordered) if selected is None else set(selected)
    shards: list[Shard] = []
    current: list[str] = []
    for tenant_id in ordered:
        if tenant_id not in wanted or len(current) == size:
            if current:
                shards.append(Shard(tuple(current)))
            current = []
        if tenant_id in wanted:
            current.append(tenant_id)
    if current:
        shards.append(Shard(tuple(current)))
    return shards
