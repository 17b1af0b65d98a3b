"""A baseline from imported (or captured) traffic over a date range, in one step.

The same path the nightly assets take (stratified, deduplicated, scrubbed daily samples, then replay of
the canonical prompts on the pinned model twice for the noise floor), run over every day of a range so a
platform can baseline last month's traffic the day it first imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import pandas as pd

from drift_pipeline.detection import baselines, embeddings
from drift_pipeline.detection.baselines import BaselineInfo
from drift_pipeline.errors import InvalidInputError
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.objects import ObjectStore
from drift_pipeline.traffic import sampling
from drift_pipeline.versioning import manifests

MAX_DAYS = 366


def sample_range(
    objects: ObjectStore,
    tenant: sampling.TenantSampling,
    since: date,
    until: date,
    policy: sampling.SamplingPolicy | None = None,
    on_day: Callable[[str, sampling.SampleResult], None] | None = None,
) -> pd.DataFrame:
    """The daily samples of a tenant's traffic from `since` to `until` (both included), concatenated."""
    if until < since:
        raise InvalidInputError(f"--until {until} is before --since {since}")
    if (until - since).days >= MAX_DAYS:
        raise InvalidInputError(f"at most {MAX_DAYS} days at once: {since} .. {until}")
    if not tenant.sampling_consent:
        raise InvalidInputError(f"tenant {tenant.tenant_id} has not given sampling consent: no baseline from traffic")
    frames = []
    for offset in range((until - since).days + 1):
        day = since + timedelta(days=offset)
        result = sampling.sample_from_storage(objects, tenant, day, policy)
        if on_day:
            on_day(day.isoformat(), result)
        if len(result.frame):
            frames.append(result.frame)
    return pd.concat(frames, ignore_index=True) if frames else sampling.empty_sample_frame()


def baseline_from_traffic(
    store: Store,
    objects: ObjectStore,
    tenant_id: str,
    agent_id: str,
    since: date,
    until: date,
    *,
    max_prompts: int = 32,
    actor: str,
    progress: bool = False,
    on_day: Callable[[str, sampling.SampleResult], None] | None = None,
) -> BaselineInfo:
    """Sample the agent's traffic over the range and build its baseline on the pinned model."""
    manifest = manifests.current(store, tenant_id, agent_id)
    tenant = sampling.tenant_sampling_from_store(store, tenant_id)
    samples = sample_range(objects, tenant, since, until, on_day=on_day)
    if samples.empty or not (samples["agent_id"] == agent_id).any():
        raise InvalidInputError(
            f"no traffic for {tenant_id}/{agent_id} between {since} and {until}: nothing to baseline"
        )
    return baselines.build_baseline(
        store,
        objects,
        manifest,
        samples,
        max_prompts=max_prompts,
        embedder=embeddings.shared(),
        actor=actor,
        reason=f"baseline from traffic {since}..{until}",
        progress=progress,
    )
