"""Behavioural baselines: a tenant agent's canonical prompts with the pinned model's responses.

A baseline is the workload-specific fingerprint drift is measured against: the prompt set (from the
tenant's anonymised, stratified samples), the pinned model's responses with their decoding parameters,
the responses' embeddings, a summary of the behavioural dimensions, and the noise floor (the pinned model
replayed against itself on the same prompts). It is immutable: a new snapshot gets a new id, and the
manifest's `behavioral_baseline_id` (an audited change) says which one is in force.
"""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import select

from drift_pipeline.detection import embeddings, scoring
from drift_pipeline.detection.embeddings import Embedder
from drift_pipeline.detection.replay import Decoding, ReplayTarget, replay
from drift_pipeline.detection.statistics import NoiseFloor
from drift_pipeline.errors import InvalidInputError, NotFoundError, RefusedError
from drift_pipeline.identifiers import check_identifier
from drift_pipeline.persistence import audit
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.objects import ObjectStore, object_key
from drift_pipeline.persistence.tables import Baseline
from drift_pipeline.versioning import manifests, registry

log = logging.getLogger(__name__)

# What a baseline keeps of each sampled record: the request, never the original response or its metadata.
PROMPT_COLUMNS = (
    "record_id",
    "tenant_id",
    "agent_id",
    "timestamp",
    "workflow_type",
    "agent_step",
    "prompt_id",
    "messages",
    "tools",
    "response_format",
    "requested_model",
    "pinned_model_id",
)
RESPONSE_COLUMNS = (
    "response_text",
    "tool_calls",
    "finish_reason",
    "decoding",
    "provider_variant",
    "system_fingerprint",
)


@dataclass(frozen=True)
class BaselineInfo:
    baseline_id: str
    tenant_id: str
    agent_id: str
    model_id: str
    uri: str
    n_prompts: int
    summary: dict[str, Any]
    created_at: datetime

    @property
    def noise_floor(self) -> NoiseFloor | None:
        data = self.summary.get("noise_floor")
        return NoiseFloor.from_dict(data) if data else None


def canonical_prompts(samples: pd.DataFrame, agent_id: str, *, limit: int, seed: int = 0) -> pd.DataFrame:
    """One row per distinct prompt of `agent_id`, spread over its strata, at most `limit` rows.

    Round-robin across strata (workflow type x agent step) so that a small baseline still covers every
    workflow, deterministic for a seed.
    """
    rows = samples[samples["agent_id"] == agent_id]
    if rows.empty:
        return rows
    rows = rows.drop_duplicates("messages").sample(frac=1.0, random_state=seed)
    strata = rows["workflow_type"].astype(str) + "/" + rows["agent_step"].astype(str)
    rows = rows.assign(_rank=rows.groupby(strata).cumcount()).sort_values(["_rank", "record_id"], kind="stable")
    return rows.drop(columns="_rank").head(limit).reset_index(drop=True)


def pairs_frame(baseline: pd.DataFrame, replayed: pd.DataFrame) -> pd.DataFrame:
    """Pair baseline responses with replay outputs by record id, in `scoring.score_pairs`' columns."""
    new = replayed[["record_id", "response_text", "tool_calls", "error"]].rename(
        columns={"response_text": "candidate_text", "tool_calls": "candidate_tool_calls", "error": "replay_error"}
    )
    merged = baseline.merge(new, on="record_id")
    merged = merged[merged["replay_error"].fillna("") == ""]  # a failed call is reported by the replay, not scored
    return pd.DataFrame(
        {
            "pair_id": merged["record_id"],
            "messages": merged["messages"],
            "tools": merged["tools"],
            "response_format": merged["response_format"],
            "baseline_text": merged["response_text"].fillna(""),
            "candidate_text": merged["candidate_text"].fillna(""),
            "baseline_tool_calls": merged["tool_calls"].fillna("null"),
            "candidate_tool_calls": merged["candidate_tool_calls"].fillna("null"),
        }
    )


def create_baseline(
    store: Store,
    objects: ObjectStore,
    *,
    manifest: manifests.Manifest,
    prompts: pd.DataFrame,
    responses: pd.DataFrame,
    summary: dict[str, Any],
    noise_floor: NoiseFloor | None,
    embedder: Embedder | None = None,
    actor: str,
    reason: str = "",
    point_manifest: bool = True,
) -> BaselineInfo:
    """Write an immutable baseline, index it, and (unless `point_manifest` is false, e.g. when a migration
    promotion writes the manifest itself) point the manifest at it, all audited.

    `responses` are the pinned model's replay outputs for `prompts` (joined on record_id).
    """
    if prompts.empty:
        raise InvalidInputError(f"no prompts for {manifest.tenant_id}/{manifest.agent_id}: nothing to baseline")
    frame = prompts[list(PROMPT_COLUMNS)].merge(
        responses[["record_id", *RESPONSE_COLUMNS, "error"]], on="record_id", how="left"
    )
    failed = frame["error"].fillna("").ne("") | frame["response_text"].isna()
    if failed.all():
        raise RefusedError(
            f"every replay of the pinned model failed for {manifest.tenant_id}/{manifest.agent_id}: no baseline"
        )
    frame = frame[~failed].drop(columns="error").reset_index(drop=True)
    frame["model_id"] = manifest.pinned_model_id
    if embedder is not None:
        frame["embedding"] = list(embedder.embed(frame["response_text"].tolist()).tolist())

    data = _parquet(frame)
    baseline_id = _baseline_id(manifest, data)
    rel = object_key(
        "baselines",
        f"tenant={check_identifier(manifest.tenant_id, 'tenant id')}",
        f"agent={check_identifier(manifest.agent_id, 'agent id')}",
        f"{baseline_id}.parquet",
    )
    if objects.exists(rel):
        raise RefusedError(f"baseline {baseline_id} already exists; baselines are immutable")
    objects.write_bytes(rel, data)
    full_summary = {
        **summary,
        "noise_floor": noise_floor.to_dict() if noise_floor else None,
        "failed_replays": int(failed.sum()),
    }
    with store.transaction() as session:
        row = Baseline(
            baseline_id=baseline_id,
            tenant_id=manifest.tenant_id,
            agent_id=manifest.agent_id,
            model_id=manifest.pinned_model_id,
            uri=objects.uri(rel),
            n_prompts=len(frame),
            summary=_jsonable(full_summary),
            created_at=audit.utcnow(),
        )
        session.add(row)
        session.flush()
        info = _info(row)
        audit.append(
            store,
            session,
            actor=actor,
            action="baseline.create",
            subject=f"{manifest.tenant_id}/{manifest.agent_id}",
            tenant_id=manifest.tenant_id,
            after={
                "baseline_id": baseline_id,
                "model_id": manifest.pinned_model_id,
                "n_prompts": len(frame),
                "uri": info.uri,
            },
            reason=reason,
        )
    if not point_manifest:
        return info
    manifests.update(
        store,
        manifest.tenant_id,
        manifest.agent_id,
        {"behavioral_baseline_id": baseline_id},
        actor=actor,
        action="manifest.baseline",
        reason=reason or "new behavioural baseline",
    )
    return info


def replay_decoding(manifest: manifests.Manifest, version_decoding: dict[str, Any]) -> Decoding:
    """Deterministic replay parameters: temperature 0 and a fixed seed, the agent's max_tokens."""
    max_tokens = int({**version_decoding, **manifest.require_valid_config().decoding}.get("max_tokens", 256))
    return Decoding(temperature=0.0, seed=0, max_tokens=max_tokens)


def build_baseline(
    store: Store,
    objects: ObjectStore,
    manifest: manifests.Manifest,
    samples: pd.DataFrame,
    *,
    max_prompts: int = 32,
    embedder: Embedder | None = None,
    actor: str,
    reason: str = "",
    progress: bool = False,
    point_manifest: bool = True,
    model_id: str | None = None,
) -> BaselineInfo:
    """Snapshot a baseline for one agent from its tenant's samples: replay the canonical prompts on the
    pinned model (or `model_id`, e.g. a candidate being promoted) twice (the second pass measures the noise
    floor), score, write, and point the manifest at it unless `point_manifest` is false.
    """
    prompts = canonical_prompts(samples, manifest.agent_id, limit=max_prompts)
    if prompts.empty:
        raise InvalidInputError(f"no sampled traffic for {manifest.tenant_id}/{manifest.agent_id}: nothing to baseline")
    if model_id and model_id != manifest.pinned_model_id:
        manifest = replace(manifest, pinned_model_id=model_id)
    version = registry.get_version(store, manifest.pinned_model_id)
    decoding = replay_decoding(manifest, version.decoding)
    target = ReplayTarget.from_version(version)
    stamp = audit.utcnow().isoformat()
    runs = [
        replay(
            prompts,
            [target],
            store=store,
            decoding=decoding,
            system_prompt=manifest.config.system_prompt or None,
            cache_namespace=f"baseline:{manifest.tenant_id}:{manifest.agent_id}:{stamp}:{i}",
            progress=progress,
        )
        for i in (1, 2)
    ]
    pinned = prompts[list(PROMPT_COLUMNS)].merge(runs[0][["record_id", "response_text", "tool_calls"]], on="record_id")
    contexts, _ = scoring.to_contexts(
        pairs_frame(pinned, runs[1]),
        response_schema=manifest.config.response_schema,
        tools=manifest.config.tools or None,
    )
    per_pair = scoring.score_contexts(contexts, embedder=embedder)
    noise = NoiseFloor.measure(per_pair, scoring.specs_for())
    summary = {
        # Which vectors the similarity noise floor was measured with (`noise_floor_for`).
        "embedding_backend": (embedder.backend if embedder is not None else embeddings.backend()).id,
        "dimensions": {d: _mean(g["baseline_value"]) for d, g in per_pair.groupby("dimension")},
        "decoding": decoding.params(),
        "strata": prompts.groupby(["workflow_type", "agent_step"]).size().rename("n").reset_index().to_dict("records"),
    }
    return create_baseline(
        store,
        objects,
        manifest=manifest,
        prompts=prompts,
        responses=runs[0],
        summary=summary,
        noise_floor=noise,
        embedder=embedder,
        actor=actor,
        reason=reason,
        point_manifest=point_manifest,
    )


def noise_floor_for(info: BaselineInfo, embedder: Embedder | None) -> NoiseFloor | None:
    """The baseline's noise floor, less its similarity part when that was measured on another embedding
    backend: similarities of two backends are on different scales, so testing today's against it would
    be a false alarm (or a missed one). Baselines from before the field were built on the local model."""
    floor = info.noise_floor
    measured = info.summary.get("embedding_backend") or embeddings.LOCAL_BACKEND_ID
    current = (embedder.backend if embedder is not None else embeddings.backend()).id
    if floor is None or embeddings.scale_of(measured) == embeddings.scale_of(current):
        return floor  # the same backend, or two within the error budget of the reference
    log.warning(
        "baseline %s: similarity noise floor measured with %s, not %s: similarity is descriptive until a "
        "new baseline is built",
        info.baseline_id,
        measured,
        current,
    )
    return replace(floor, similarities=[], floors={k: v for k, v in floor.floors.items() if k != "similarity"})


def get(store: Store, baseline_id: str) -> BaselineInfo:
    with store.session() as session:
        row = session.get(Baseline, baseline_id)
        if row is None:
            raise NotFoundError(f"unknown baseline {baseline_id!r}")
        return _info(row)


def list_for(store: Store, tenant_id: str, agent_id: str | None = None) -> list[BaselineInfo]:
    query = select(Baseline).where(Baseline.tenant_id == tenant_id).order_by(Baseline.created_at)
    if agent_id:
        query = query.where(Baseline.agent_id == agent_id)
    with store.session() as session:
        return [_info(r) for r in session.execute(query).scalars()]


def load_frame(objects: ObjectStore, info: BaselineInfo) -> pd.DataFrame:
    """The baseline's rows (prompts, responses, embeddings), read from its own tenant's prefix."""
    prefix = objects.uri(f"baselines/tenant={info.tenant_id}/")
    if not info.uri.startswith(prefix):
        raise InvalidInputError(f"baseline {info.baseline_id} is not stored under tenant {info.tenant_id}'s prefix")
    return pd.read_parquet(io.BytesIO(objects.read_bytes(info.uri[len(objects.url) + 1 :])))


def _mean(values: pd.Series) -> float | None:
    values = values.dropna()
    return float(values.mean()) if len(values) else None


def _baseline_id(manifest: manifests.Manifest, data: bytes) -> str:
    stamp = audit.utcnow().strftime("%Y%m%dT%H%M%S%f")
    return f"bl-{manifest.agent_id}-{stamp}-{hashlib.sha256(data).hexdigest()[:8]}"


def _parquet(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


def _info(row: Baseline) -> BaselineInfo:
    return BaselineInfo(
        row.baseline_id,
        row.tenant_id,
        row.agent_id,
        row.model_id,
        row.uri,
        row.n_prompts,
        dict(row.summary or {}),
        row.created_at,
    )


def _jsonable(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else str(v)))
