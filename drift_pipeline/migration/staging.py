"""The real adapters of the migration steps: staging replay and the promoted model's baseline.

`ReplayStagingRunner` is the `review.StagingRunner` that replays a tenant agent's workflow suite (the prompts
of the baseline in force: anonymised, stratified sampled traffic, multi-step conversations with the tool
definitions and response format the agent uses) against the candidate and the pinned model, scores the
candidate against the baseline, writes the structured diff (JSON + HTML) under the tenant's prefix and
returns it. The pinned model's replay is the control: when the pinned model itself has drifted since the
baseline, the reviewer sees it beside the candidate's verdict.

`StagingBaselineCreator` is the `promotion.BaselineCreator` that snapshots the promoted version's baseline on
the very suite staging replayed (the candidate replayed twice: responses and noise floor), without
touching the manifest: the promotion writes pin and baseline in one revision.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from drift_pipeline.detection import baselines, embeddings, report, shadow
from drift_pipeline.errors import NotFoundError, RefusedError
from drift_pipeline.identifiers import check_identifier, model_key
from drift_pipeline.persistence import audit
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.objects import ObjectStore, object_key
from drift_pipeline.versioning import manifests, registry

if TYPE_CHECKING:
    from drift_pipeline.detection.embeddings import Embedder
    from drift_pipeline.migration.states import MigrationInfo

MAX_ERRORS = 3  # replay errors quoted in a staging failure


def staging_prefix(tenant_id: str, agent_id: str) -> str:
    """Where staging reports of a tenant agent live (under the tenant's prefix, like every tenant object)."""
    return object_key(
        "reports",
        f"tenant={check_identifier(tenant_id, 'tenant id')}",
        "staging",
        check_identifier(agent_id, "agent id"),
    )


@dataclass
class ReplayStagingRunner:
    """Replay the agent's workflow suite on the candidate (and the pinned model as control); return the
    candidate's drift report with `report_uri`/`html_uri`, `suite_baseline_id` and `control` added.

    `cache_namespace` defaults to one per UTC day, so a staging retried the same day re-calls only what is
    missing, and a staging on a later day asks the models again.
    """

    store: Store
    objects: ObjectStore
    embedder: Embedder | None = None
    progress: bool = False
    cache_namespace: str | None = None

    def __call__(self, manifest: manifests.Manifest, candidate: registry.VersionInfo) -> dict[str, Any]:
        if candidate.model_id == manifest.pinned_model_id:
            raise RefusedError(f"{candidate.model_id!r} is the pinned version itself: nothing to stage")
        now = audit.utcnow()
        namespace = self.cache_namespace or f"staging:{now.date().isoformat()}"
        replays = shadow.replay_agent(
            self.store,
            self.objects,
            manifest,
            candidates=[candidate.model_id],
            cache_namespace=namespace,
            progress=self.progress,
        )
        drifts = {
            d.role: d
            for d in shadow.score_agent(
                self.store, self.objects, manifest, replays, embedder=self.embedder or embeddings.shared()
            )
        }
        scored = drifts.get(shadow.CANDIDATE)
        if scored is None:
            raise RefusedError(_no_pairs_message(manifest, candidate.model_id, replays))
        body = dict(scored.result.report)
        body["suite_baseline_id"] = scored.baseline_id
        body["replay"] = _replay_summary(replays, namespace)
        body["control"] = _control(drifts.get(shadow.PINNED), manifest.pinned_model_id)
        return self._write(manifest, candidate.model_id, body, now.strftime("%Y%m%dT%H%M%S%fZ"))

    def _write(self, manifest: manifests.Manifest, model_id: str, body: dict[str, Any], stamp: str) -> dict[str, Any]:
        base = f"{staging_prefix(manifest.tenant_id, manifest.agent_id)}/{model_key(model_id)}-{stamp}"
        body = {**body, "report_uri": self.objects.uri(f"{base}.json"), "html_uri": self.objects.uri(f"{base}.html")}
        self.objects.write_bytes(f"{base}.html", report.render_html(body).encode("utf-8"))
        self.objects.write_bytes(f"{base}.json", json.dumps(body, indent=2, sort_keys=True, default=str).encode())
        return body


@dataclass
class StagingBaselineCreator:
    """Snapshot the promoted version's baseline on the suite its staging replayed; return the baseline id.

    The manifest is not touched (`point_manifest=False`): `promotion.promote` pins the candidate and this
    baseline in one revision.
    """

    store: Store
    objects: ObjectStore
    actor: str
    embedder: Embedder | None = None
    progress: bool = False

    def __call__(self, manifest: manifests.Manifest, migration: MigrationInfo) -> str:
        suite_id = suite_baseline_id(manifest, migration)
        suite = baselines.load_frame(self.objects, baselines.get(self.store, suite_id))
        prompts = suite[[c for c in baselines.PROMPT_COLUMNS if c in suite.columns]]
        info = baselines.build_baseline(
            self.store,
            self.objects,
            manifest,
            prompts,
            max_prompts=len(prompts),
            embedder=self.embedder or embeddings.shared(),
            actor=self.actor,
            reason=f"migration {migration.id}: baseline of {migration.to_model_id} on the staging suite ({suite_id})",
            progress=self.progress,
            point_manifest=False,
            model_id=migration.to_model_id,
        )
        return info.baseline_id


def suite_baseline_id(manifest: manifests.Manifest, migration: MigrationInfo) -> str:
    """The baseline whose prompts staging replayed (recorded in the staging report), else the one in force."""
    staged = ((migration.details.get("staging") or {}).get("report") or {}).get("suite_baseline_id")
    found = staged or manifest.behavioral_baseline_id
    if not found:
        raise NotFoundError(
            f"{manifest.tenant_id}/{manifest.agent_id} has no baseline: there is no workflow suite to snapshot"
        )
    return str(found)


def _replay_summary(replays: Any, namespace: str) -> dict[str, Any]:
    errors = replays["error"].fillna("").astype(str)
    return {
        "cache_namespace": namespace,
        "requests": len(replays),
        "failed": int(errors.ne("").sum()),
        "cached": int(replays["cache_hit"].fillna(False).astype(bool).sum()) if "cache_hit" in replays else 0,
        "by_model": {str(m): int(n) for m, n in replays.groupby("model").size().items()},
    }


def _control(pinned: shadow.AgentDrift | None, model_id: str) -> dict[str, Any]:
    """The pinned model's replay against the same baseline: did the ground move under the candidate?"""
    if pinned is None:
        return {"model_id": model_id, "assessed": False}
    rep = pinned.result.report
    return {
        "model_id": model_id,
        "assessed": True,
        "drift_detected": bool(rep["drift_detected"]),
        "drifted": [d["name"] for d in rep["dimensions"] if d.get("drifted")],
        "n_pairs": rep.get("n_pairs"),
    }


def _no_pairs_message(manifest: manifests.Manifest, model_id: str, replays: Any) -> str:
    rows = replays[replays["model"] == model_id]
    errors = [e for e in rows["error"].fillna("").astype(str) if e][:MAX_ERRORS]
    why = "; ".join(errors) if errors else "no prompt of the suite could be paired with the baseline"
    return f"staging replay of {model_id} for {manifest.tenant_id}/{manifest.agent_id} produced no pairs: {why}"
