"""Jobs: the nightly chain, replays a sensor asks for, and baseline snapshots."""

from __future__ import annotations

import dagster as dg

SAMPLE = dg.AssetSelection.assets("sampled_inputs")
BASELINE = dg.AssetSelection.assets("behavioral_baselines")
REPLAY_CHAIN = dg.AssetSelection.assets("shadow_replays", "divergence_scores", "drift_report")

# Every step of a run in the run's own process: a run pays process start, imports and model loads once
# (the multiprocess default pays them again for every step), and a shard run once for all its tenants.
EXECUTOR = dg.in_process_executor

# sample -> replay -> score -> report (+ the drift checks on the report), per tenant or shard of tenants.
nightly_drift_job = dg.define_asset_job(
    "nightly_drift_job",
    selection=SAMPLE | REPLAY_CHAIN,
    executor_def=EXECUTOR,
    description="Nightly per tenant: sample the day's traffic, replay it against the pinned model (and candidates), score, report, check.",
    tags={"drift_pipeline/kind": "nightly"},
)

# What a sensor requests when a model version appears, an alias moves or a silent change is suspected.
replay_job = dg.define_asset_job(
    "replay_job",
    selection=REPLAY_CHAIN,
    executor_def=EXECUTOR,
    description="Shadow-replay a tenant's baseline prompts against its pinned model and any candidates, then score and check.",
    tags={"drift_pipeline/kind": "replay"},
)

# Sampling alone: a tenant-day's anonymised sample, e.g. days before the first baseline or after a backfill.
sampling_job = dg.define_asset_job(
    "sampling_job",
    selection=SAMPLE,
    description="Sample one tenant-day's traffic: anonymised, stratified, near-duplicate-free (no replay, no model call).",
    tags={"drift_pipeline/kind": "sampling"},
    executor_def=EXECUTOR,
)

baseline_job = dg.define_asset_job(
    "baseline_job",
    selection=BASELINE,
    executor_def=EXECUTOR,
    description="Snapshot a new behavioural baseline per tenant agent from its sampled traffic (immutable, audited).",
)
