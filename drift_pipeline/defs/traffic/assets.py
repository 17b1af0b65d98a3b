"""Traffic asset: `sampled_inputs`, a tenant-day's anonymised stratified sample (the chain's first link).

A thin call into `traffic.sampling`; what it adds is partitioning (per tenant, the day in the run tag), lineage, and metadata
that the Dagster UI shows and plots.
"""

import dagster as dg
import pandas as pd
from pydantic import Field

from drift_pipeline.defs.partitions import run_day, tenant_ids, tenants
from drift_pipeline.defs.resources import DriftStore, ObjectStorage
from drift_pipeline.traffic import sampling

# One asset group for the whole chain: the Dagster UI draws a single group flat (no collapsed boxes to open),
# so the lineage reads at a glance; the stage of each asset is in its name, kinds and description.
GROUP = "drift_pipeline"
OWNERS = ["team:ml-platform"]


class SamplingConfig(dg.Config):
    """How a day's traffic is sampled per tenant (strata: agent x workflow x step; docs/traffic.md)."""

    target: int = Field(200, ge=1, description="records to sample per tenant-day, spread over the strata")
    min_per_stratum: int = Field(5, ge=0, description="at least this many per stratum (when it has them)")
    max_per_stratum: int = Field(
        50, ge=1, description="at most this many per stratum, so one busy workflow cannot fill the sample"
    )
    seed: int = Field(0, description="random seed: the same seed and traffic give the same sample (reproducible)")


@dg.asset(
    partitions_def=tenants,
    group_name=GROUP,
    owners=OWNERS,
    kinds={"python", "parquet"},
    description="A tenant's anonymised, stratified (workflow type x agent step), near-duplicate-free sample of one day's traffic. Tenants without sampling consent are never sampled.",
)
def sampled_inputs(
    context: dg.AssetExecutionContext, config: SamplingConfig, drift_store: DriftStore, object_storage: ObjectStorage
) -> pd.DataFrame:
    store, objects = drift_store.get(), object_storage.get()
    day = run_day(context.instance, context.run)
    policy = sampling.SamplingPolicy(config.target, config.min_per_stratum, config.max_per_stratum, config.seed)
    frames = []
    for tenant_id in tenant_ids(context):
        result = sampling.sample_from_storage(
            objects, sampling.tenant_sampling_from_store(store, tenant_id), day, policy
        )
        if result.status != "sampled":
            context.log.info(result.reason)
        strata = pd.DataFrame([{"stratum": k, **v} for k, v in result.strata.items()])
        context.add_asset_metadata(
            {
                "status": result.status,
                "reason": result.reason,
                "records_in": result.n_input,
                "after_dedup": result.n_after_dedup,
                "sampled": len(result.frame),
                "strata": dg.MetadataValue.md(strata.to_markdown(index=False) if len(strata) else "_none_"),
            },
            partition_key=tenant_id,
        )
        frames.append(result.frame)
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
