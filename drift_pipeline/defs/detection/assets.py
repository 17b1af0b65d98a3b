"""Detection assets: sampled inputs -> behavioural baselines -> shadow replays -> divergence scores and drift report.

Each asset is a thin call into the plain-Python core (sampling, baselines, detection); what it adds is
partitioning (per tenant; the day is the run's `drift_pipeline/day` tag), lineage, and metadata that the Dagster UI shows and plots.
"""

from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg
import pandas as pd
from pydantic import Field

from drift_pipeline.config import Settings
from drift_pipeline.defs.detection.latest_verdicts import latest_verdicts_metadata
from drift_pipeline.defs.partitions import run_day, tenant_ids, tenants
from drift_pipeline.defs.report_links import report_links
from drift_pipeline.defs.resources import LOOKBACK_DAYS, DriftStore, ObjectStorage
from drift_pipeline.defs.runs import CANDIDATES_TAG, REASON_TAG, WINDOW_TAG
from drift_pipeline.defs.traffic.assets import GROUP, OWNERS
from drift_pipeline.detection import baselines, embeddings, latest_verdicts, shadow, top_up, wording
from drift_pipeline.identifiers import model_key
from drift_pipeline.persistence import reports
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.objects import ObjectStore
from drift_pipeline.versioning import manifests


class BaselineConfig(dg.Config):
    """Baseline snapshots per tenant agent; the defaults never replace a baseline in force."""

    max_prompts: int = Field(
        32,
        ge=1,
        description="canonical prompts per agent baseline, from its sampled traffic (`drift-pipeline plan` says how many equivalence needs)",
    )
    rebuild: bool = Field(
        False,
        description="snapshot a new baseline even where one is in force for the pinned model (audited; the manifest then points at the new one)",
    )


@dg.asset(
    partitions_def=tenants,
    group_name=GROUP,
    owners=OWNERS,
    kinds={"python", "parquet"},
    # The tenant's samples of the run's day and the days before it (the I/O manager reads what exists).
    ins={"sampled_inputs": dg.AssetIn(metadata={LOOKBACK_DAYS: 7})},
    pool="offline_llm",
    description="Immutable behavioural baseline per tenant agent: canonical prompts, the pinned model's responses, embeddings, dimension summary and noise floor. A new snapshot gets a new id; the manifest points at the one in force (audited).",
)
def behavioral_baselines(
    context: dg.AssetExecutionContext,
    config: BaselineConfig,
    sampled_inputs: pd.DataFrame,
    drift_store: DriftStore,
    object_storage: ObjectStorage,
) -> pd.DataFrame:
    store, objects = drift_store.get(), object_storage.get()
    frames = []
    for tenant_id in tenant_ids(context):
        samples = sampled_inputs[sampled_inputs["tenant_id"] == tenant_id] if len(sampled_inputs) else sampled_inputs
        frame, created = _tenant_baselines(context, config, store, objects, tenant_id, samples)
        context.add_asset_metadata(
            {
                "baselines_in_force": len(frame),
                "created": created,
                "baselines": dg.MetadataValue.md(frame.to_markdown(index=False) if len(frame) else "_none_"),
            },
            partition_key=tenant_id,
        )
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=BASELINE_COLUMNS)


BASELINE_COLUMNS = ["tenant_id", "agent_id", "baseline_id", "model_id", "n_prompts", "uri", "created_at"]


def _tenant_baselines(
    context: dg.AssetExecutionContext,
    config: BaselineConfig,
    store: Store,
    objects: ObjectStore,
    tenant_id: str,
    sampled_inputs: pd.DataFrame,
) -> tuple[pd.DataFrame, int]:
    """The tenant's baselines in force (snapshotting the missing ones) and how many were created."""
    rows, created = [], 0
    for manifest in manifests.list_current(store, tenant_id):
        current = baselines.get(store, manifest.behavioral_baseline_id) if manifest.behavioral_baseline_id else None
        if current is None or config.rebuild:
            if sampled_inputs.empty or not (sampled_inputs["agent_id"] == manifest.agent_id).any():
                context.log.warning(f"{tenant_id}/{manifest.agent_id}: no sampled traffic yet, no baseline")
                continue
            current = baselines.build_baseline(
                store,
                objects,
                manifest,
                sampled_inputs,
                max_prompts=config.max_prompts,
                embedder=embeddings.shared(),
                actor=f"dagster:{context.run_id[:8]}",
                reason="behavioral_baselines materialization",
            )
            created += 1
        rows.append(
            {
                "tenant_id": tenant_id,
                "agent_id": manifest.agent_id,
                "baseline_id": current.baseline_id,
                "model_id": current.model_id,
                "n_prompts": current.n_prompts,
                "uri": current.uri,
                "created_at": current.created_at.isoformat(),
            }
        )
    return pd.DataFrame(rows, columns=BASELINE_COLUMNS), created


@dg.asset(
    partitions_def=tenants,
    group_name=GROUP,
    owners=OWNERS,
    kinds={"python", "litellm", "parquet"},
    deps=["behavioral_baselines"],
    pool="offline_llm",
    description="Shadow replay of each agent's baseline prompts against its pinned model and any candidate versions (run tag drift_pipeline/candidates), deterministic, cached and resumable. Never touches live traffic.",
)
def shadow_replays(
    context: dg.AssetExecutionContext, drift_store: DriftStore, object_storage: ObjectStorage
) -> pd.DataFrame:
    store, objects = drift_store.get(), object_storage.get()
    day = run_day(context.instance, context.run)
    candidates, namespace = _replay_scope(context, day)
    reason = context.run.tags.get(REASON_TAG, "nightly")
    limit = Settings.from_env().replay_pairs
    outs = []
    for tenant_id in tenant_ids(context):
        frames = []
        for manifest in manifests.list_current(store, tenant_id):
            if not manifest.behavioral_baseline_id:
                context.log.warning(f"{tenant_id}/{manifest.agent_id}: no baseline in force, nothing to replay")
                continue
            frames.append(
                shadow.replay_agent(
                    store, objects, manifest, candidates=candidates, cache_namespace=namespace, limit=limit
                )
            )
        out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        failed = int((out["error"].fillna("") != "").sum()) if len(out) else 0
        context.add_asset_metadata(
            {
                "outputs": len(out),
                "failed": failed,
                "cache_hits": int(out["cache_hit"].sum()) if len(out) else 0,
                "models": ", ".join(sorted(out["model"].unique())) if len(out) else "",
                "reason": reason,
            },
            partition_key=tenant_id,
        )
        outs.append(out)
    return pd.concat(outs, ignore_index=True) if any(len(o) for o in outs) else pd.DataFrame()


@dg.multi_asset(
    partitions_def=tenants,
    group_name=GROUP,
    outs={
        "divergence_scores": dg.AssetOut(
            owners=OWNERS,
            kinds={"python", "parquet"},
            description="Per prompt pair and behavioural dimension: baseline value, replay value, difference.",
        ),
        "drift_report": dg.AssetOut(
            owners=OWNERS,
            kinds={"python", "html"},
            description="Per agent, target model and dimension: effect, confidence interval, corrected p-value, verdict; with links to the JSON diff and its HTML rendering.",
        ),
    },
)
def divergence(
    context: dg.AssetExecutionContext,
    shadow_replays: pd.DataFrame,
    drift_store: DriftStore,
    object_storage: ObjectStorage,
) -> Iterator[dg.Output]:
    store, objects = drift_store.get(), object_storage.get()
    day = run_day(context.instance, context.run)
    scores, reports_ = [], []
    tenant_metadata: dict[str, dict[str, object]] = {}
    for tenant_id in tenant_ids(context):
        replays = shadow_replays[shadow_replays["tenant_id"] == tenant_id] if len(shadow_replays) else shadow_replays
        tenant_scores, report, plots, verdicts, figures = _score_tenant(
            context, store, objects, tenant_id, day, replays
        )
        links = report_links(objects, sorted(set(report["html_uri"])) if len(report) else [], context.log)
        context.add_asset_metadata(
            {"tenant_id": tenant_id, "day": day, **_pair_counts(tenant_scores)},
            asset_key="divergence_scores",
            partition_key=tenant_id,
        )
        tenant_metadata[tenant_id] = {
            "tenant_id": tenant_id,
            "day": day,
            **report_metadata(report, verdicts, plots, links, figures),
        }
        scores += tenant_scores
        reports_.append(report)
    # Read back after this step's reports are stored: whichever tenant materialized last, its overview
    # answers "who drifted last night?" for the whole fleet.
    across = latest_verdicts_metadata(latest_verdicts.summary(store, now=datetime.now(UTC)), objects, context.log)
    for tenant_id, metadata in tenant_metadata.items():
        context.add_asset_metadata({**across, **metadata}, asset_key="drift_report", partition_key=tenant_id)
    yield dg.Output(pd.concat(scores, ignore_index=True) if scores else pd.DataFrame(), output_name="divergence_scores")
    yield dg.Output(
        pd.concat([r for r in reports_ if len(r)], ignore_index=True)
        if any(len(r) for r in reports_)
        else pd.DataFrame(),
        output_name="drift_report",
    )


def _score_tenant(
    context: dg.AssetExecutionContext,
    store: Store,
    objects: ObjectStore,
    tenant_id: str,
    day: str,
    shadow_replays: pd.DataFrame,
) -> tuple[list[pd.DataFrame], pd.DataFrame, dict[str, float], dict[tuple[str, str, str], str], list[str]]:
    """One tenant's per-pair scores, its drift-report rows, the effects the UI plots over time, the verdict
    per (agent, role, model) and a worded figure per drifted dimension."""
    candidates, namespace = _replay_scope(context, day)
    settings = Settings.from_env()
    plan = (
        top_up.TopUpPlan(settings.replay_pairs, settings.top_up_pairs)
        if settings.replay_pairs and settings.top_up_pairs
        else None
    )
    scores, rows, plots, verdicts, figures = [], [], {}, {}, []
    for manifest in manifests.list_current(store, tenant_id):
        if shadow_replays.empty:
            break

        def replay_more(n: int, manifest: manifests.Manifest = manifest) -> pd.DataFrame:
            return shadow.replay_agent(
                store, objects, manifest, candidates=candidates, cache_namespace=namespace, limit=n
            )

        drifts = shadow.score_agent(
            store, objects, manifest, shadow_replays, embedder=embeddings.shared(), top_up=plan, replay_more=replay_more
        )
        for drift in drifts:
            shadow.write_reports(objects, drift, day)
            _record_report(store, objects, drift, actor=f"dagster:{context.run_id[:8]}")
            scores.append(
                drift.result.per_pair.assign(
                    tenant_id=tenant_id, agent_id=drift.agent_id, role=drift.role, model_id=drift.model_id
                )
            )
            rows.extend(shadow.dimension_rows(drift, day))
            verdicts[(drift.agent_id, drift.role, drift.model_id)] = str(drift.result.report.get("verdict", ""))
            for dim in drift.result.report["dimensions"]:
                if dim.get("effect") is not None:
                    plots[f"{tenant_id}/{drift.agent_id}/{drift.role}/{dim['name']}"] = float(dim["effect"])
                if dim.get("drifted"):
                    figure = wording.figure(
                        dim["name"], float(dim["effect"]), drift.result.report["threshold"], dim.get("p_adjusted")
                    )
                    figures.append(f"{drift.agent_id} ({drift.role}, {drift.model_id}): {figure}")
    return scores, pd.DataFrame(rows), plots, verdicts, figures


def _pair_counts(scores: list[pd.DataFrame]) -> dict[str, int]:
    """Numeric keys that plot per tenant: scored pairs per agent and role, and the total."""
    counts = {"pairs_x_dimensions": sum(len(s) for s in scores)}
    for frame in scores:
        if len(frame):
            tenant, agent, role = frame["tenant_id"].iloc[0], frame["agent_id"].iloc[0], frame["role"].iloc[0]
            counts[f"pairs/{tenant}/{agent}/{role}"] = (
                int(frame["pair_id"].nunique()) if "pair_id" in frame else len(frame)
            )
    return counts


def report_metadata(
    report: pd.DataFrame,
    verdicts: dict[tuple[str, str, str], str],
    plots: dict[str, float],
    links: dict[str, str],
    figures: list[str],
) -> dict[str, object]:
    """What the drift_report materialization shows: the tenant's verdict first, the figures, links that open.

    `effect/<tenant>/<agent>/<role>/<dimension>` is a rounded float on every materialization: the tenant is
    in the key because Dagster plots a key across all partitions, so each key is one tenant's line with a point
    per night; the same keys (role `pinned`) are on the drift checks.
    """
    pinned = [v for (_, role, _), v in verdicts.items() if role == shadow.PINNED]
    worst = next((v for v in ("drift", "inconclusive", "equivalent") if v in pinned), None)
    drifted = report[report["drifted"].astype(bool)] if len(report) else report
    table = "\n".join(
        f"| {a} | {role} | {m} | **{v.upper()}** |" if v == "drift" else f"| {a} | {role} | {m} | {v.upper()} |"
        for (a, role, m), v in sorted(verdicts.items())
    )
    return {
        "verdict": worst.upper() if worst else "no report",
        "verdicts": dg.MetadataValue.md(
            "| agent | role | model | verdict |\n|---|---|---|---|\n" + table if verdicts else "_no report_"
        ),
        "agents_scored": len(verdicts),
        "dimensions_drifted": len(drifted),
        "drifted": dg.MetadataValue.md("\n".join(f"- {f}" for f in figures) or "_no drift_"),
        "reports": dg.MetadataValue.md(
            "\n".join(f"- [{uri.rsplit('/', 1)[-1]}]({url})" for uri, url in sorted(links.items())) or "_none_"
        ),
        **{f"report/{_link_name(report, uri)}": dg.MetadataValue.url(url) for uri, url in sorted(links.items())},
        **{f"effect/{k}": wording.metric(v) for k, v in sorted(plots.items())},
    }


def _link_name(report: pd.DataFrame, uri: str) -> str:
    row = report[report["html_uri"] == uri].iloc[0]
    return f"{row['agent_id']}/{row['role']}/{model_key(str(row['model_id']))}"


def _replay_scope(context: dg.AssetExecutionContext, day: str) -> tuple[list[str], str]:
    """The run's candidate versions and its replay-cache namespace (day, trigger, window)."""
    tags = context.run.tags
    candidates = [c for c in tags.get(CANDIDATES_TAG, "").split(",") if c]
    # Reruns of a run resume from the cache; a new day, trigger or window asks the providers again.
    return candidates, f"{day}:{tags.get(REASON_TAG, 'nightly')}:{tags.get(WINDOW_TAG, '')}"


def _record_report(store: Store, objects: ObjectStore, drift: shadow.AgentDrift, *, actor: str) -> None:
    """Store the report with its hash (and object copy): only stored reports can answer evidence."""
    body = {**drift.result.report, "role": drift.role, "report_uri": drift.report_uri, "html_uri": drift.html_uri}
    with store.transaction() as session:
        reports.record(
            store,
            session,
            kind="drift",
            tenant_id=drift.tenant_id,
            agent_id=drift.agent_id,
            model_id=drift.model_id,
            body=body,
            actor=actor,
            objects=objects,
        )
