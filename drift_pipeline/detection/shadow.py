"""Continuous drift detection: replay a baseline's prompts today and score the answers against it.

For each tenant agent with a baseline: the pinned model is replayed (a silent provider change shows up
as drift of the *pinned* target) and so is every candidate version (migration readiness). Each target's
answers are paired with the baseline's by prompt and scored by `scoring.score_pairs` against the
baseline's measured noise floor and the tenant's threshold.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from drift_pipeline.detection import baselines, report, scoring
from drift_pipeline.detection import top_up as top_up_design
from drift_pipeline.detection.embeddings import Embedder
from drift_pipeline.detection.replay import ReplayTarget, replay
from drift_pipeline.detection.report import CANDIDATE, PINNED
from drift_pipeline.errors import NotFoundError
from drift_pipeline.identifiers import check_identifier, model_key
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.objects import ObjectStore, day_str, object_key
from drift_pipeline.versioning import manifests, registry


@dataclass(frozen=True)
class Target:
    role: str  # "pinned" or "candidate"
    model_id: str
    replay: ReplayTarget


@dataclass
class AgentDrift:
    """One agent's verdict against one target model."""

    tenant_id: str
    agent_id: str
    role: str
    model_id: str
    baseline_id: str
    result: scoring.ScoreResult
    report_uri: str = ""
    html_uri: str = ""


def targets(store: Store, manifest: manifests.Manifest, candidates: list[str]) -> list[Target]:
    """The pinned version plus each registered candidate (unknown or alias candidates are refused)."""
    chosen = [
        Target(
            PINNED,
            manifest.pinned_model_id,
            ReplayTarget.from_version(registry.get_version(store, manifest.pinned_model_id)),
        )
    ]
    for model_id in dict.fromkeys(candidates):
        if model_id and model_id != manifest.pinned_model_id:
            with store.session() as session:
                registry.require_exact_version(session, model_id)
            chosen.append(Target(CANDIDATE, model_id, ReplayTarget.from_version(registry.get_version(store, model_id))))
    return chosen


def replay_agent(
    store: Store,
    objects: ObjectStore,
    manifest: manifests.Manifest,
    *,
    candidates: list[str],
    cache_namespace: str,
    limit: int | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Replay the agent's baseline prompts against the pinned model and candidates (one row per prompt x model).

    `limit` replays only the first that many of the baseline's prompts (its stored order), for a top-up design.
    """
    if not manifest.behavioral_baseline_id:
        raise NotFoundError(
            f"{manifest.tenant_id}/{manifest.agent_id} has no baseline yet: materialize behavioral_baselines first"
        )
    info = baselines.get(store, manifest.behavioral_baseline_id)
    prompts = baselines.load_frame(objects, info)
    if limit is not None:
        prompts = prompts.head(limit)
    chosen = targets(store, manifest, candidates)
    version = registry.get_version(store, manifest.pinned_model_id)
    out = replay(
        prompts,
        [t.replay for t in chosen],
        store=store,
        decoding=baselines.replay_decoding(manifest, version.decoding),
        system_prompt=manifest.config.system_prompt or None,
        cache_namespace=cache_namespace,
        progress=progress,
    )
    roles = {t.replay.model_id: t.role for t in chosen}
    return out.assign(
        tenant_id=manifest.tenant_id,
        agent_id=manifest.agent_id,
        baseline_id=info.baseline_id,
        role=out["model"].map(roles),
    )


def score_agent(
    store: Store,
    objects: ObjectStore,
    manifest: manifests.Manifest,
    replays: pd.DataFrame,
    *,
    embedder: Embedder | None = None,
    top_up: top_up_design.TopUpPlan | None = None,
    replay_more: Callable[[int], pd.DataFrame] | None = None,
    alpha: float = 0.01,
) -> list[AgentDrift]:
    """Score each target's replay of this agent against the baseline in force.

    With a `top_up` plan, an inconclusive target is scored again on up to `top_up.budget` prompts, which
    `replay_more(n)` replays (cached: the first look's prompts cost nothing); see `top_up`.
    """
    rows = replays[replays["agent_id"] == manifest.agent_id]
    if rows.empty:
        return []
    info = baselines.get(store, str(rows["baseline_id"].iloc[0]))
    frame = baselines.load_frame(objects, info)
    results = []
    for model, outputs in rows.groupby("model", sort=True):
        model_id = str(model)
        pairs = baselines.pairs_frame(frame, outputs)
        if pairs.empty:
            continue

        def score(pairs: pd.DataFrame, level: float, model_id: str = model_id) -> scoring.ScoreResult:
            return scoring.score_pairs(
                pairs,
                baseline=f"{info.model_id} (baseline {info.baseline_id})",
                candidate=model_id,
                threshold=manifest.drift_alert_threshold,
                alpha=level,
                response_schema=manifest.config.response_schema,
                tools=manifest.config.tools or None,
                noise_floor=baselines.noise_floor_for(info, embedder),
                embedder=embedder,
                tenant_id=manifest.tenant_id,
                agent_id=manifest.agent_id,
            )

        if top_up is None or replay_more is None:
            result = score(pairs, alpha)
        else:

            def pairs_for(n: int, model_id: str = model_id, pairs: pd.DataFrame = pairs) -> pd.DataFrame:
                if n <= len(pairs):
                    return pairs.head(n)
                more = replay_more(n)
                return baselines.pairs_frame(frame, more[more["model"] == model_id]).head(n)

            result = top_up_design.decide(top_up, pairs_for, score, alpha=alpha)
        results.append(
            AgentDrift(
                manifest.tenant_id, manifest.agent_id, str(outputs["role"].iloc[0]), model_id, info.baseline_id, result
            )
        )
    return results


def report_key(tenant_id: str, day: str, agent_id: str, model_id: str) -> str:
    """``reports/tenant=<t>/day=<d>/agent=<a>/<model key>`` (no suffix), built from validated ids only.

    The agent is a folder of its own: ``<agent>--<model>`` was ambiguous (agent ``a--b`` with model ``c``
    and agent ``a`` with model ``b--c`` overwrote each other's report).
    """
    return object_key(
        "reports",
        f"tenant={check_identifier(tenant_id, 'tenant id')}",
        f"day={day_str(day)}",
        f"agent={check_identifier(agent_id, 'agent id')}",
        model_key(model_id),
    )


def write_reports(objects: ObjectStore, drift: AgentDrift, day: str) -> AgentDrift:
    """Store the structured diff (JSON) and its HTML rendering under the tenant's prefix."""
    base = report_key(drift.tenant_id, day, drift.agent_id, drift.model_id)
    body = drift.result.report
    objects.write_bytes(f"{base}.json", json.dumps(body, indent=2, sort_keys=True, default=str).encode("utf-8"))
    objects.write_bytes(f"{base}.html", report.render_html(body).encode("utf-8"))
    drift.report_uri, drift.html_uri = objects.uri(f"{base}.json"), objects.uri(f"{base}.html")
    return drift


def read_report(objects: ObjectStore, uri: str) -> dict[str, Any]:
    return json.load(io.BytesIO(objects.read_bytes(uri[len(objects.url) + 1 :])))


def dimension_rows(drift: AgentDrift, day: str) -> list[dict[str, Any]]:
    """Flat per-dimension rows (the `drift_report` table that checks validate and the UI shows)."""
    rows = []
    for dim in drift.result.report["dimensions"]:
        rows.append(
            {
                "tenant_id": drift.tenant_id,
                "agent_id": drift.agent_id,
                "day": day,
                "role": drift.role,
                "model_id": drift.model_id,
                "baseline_id": drift.baseline_id,
                "report_uri": drift.report_uri,
                "html_uri": drift.html_uri,
                "drift_detected": bool(drift.result.report["drift_detected"]),
                **{
                    k: dim.get(k)
                    for k in (
                        "name",
                        "kind",
                        "baseline_value",
                        "candidate_value",
                        "effect",
                        "relative_effect",
                        "ci_low",
                        "ci_high",
                        "p_value",
                        "p_adjusted",
                        "noise_floor",
                        "n",
                        "drifted",
                        "near_miss",
                        "direction",
                        "verdict",
                        "equivalence_low",
                        "equivalence_high",
                        "pairs_needed",
                    )
                },
            }
        )
    return rows
