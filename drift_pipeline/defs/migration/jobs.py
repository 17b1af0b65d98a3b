"""Migration jobs: staging replay, readiness assessment and a review decision, launchable from the UI.

Each job is one op around the migration steps (`drift_pipeline.migration.review`, `.forced`) with the real
adapters of `drift_pipeline.migration.staging`; the state machine (`drift_pipeline.migration.states`) does the
locking, the state checks and the audit entries, so a job launched twice, or beside a CLI command, is
refused with the same one-line error the CLI prints.
"""

from datetime import UTC, date, datetime
from typing import Any

import dagster as dg
from pydantic import Field

from drift_pipeline.defs.report_links import report_links
from drift_pipeline.defs.resources import DriftStore, ObjectStorage
from drift_pipeline.migration import approvals, forced, review, staging, states
from drift_pipeline.persistence.objects import ObjectStore
from drift_pipeline.versioning import manifests, registry

ACTOR_PREFIX = "dagster:"
# Op outputs are small JSON-like summaries, not frames: pickled by the filesystem I/O manager, not Parquet.
SUMMARY_IO = "migration_summary_io_manager"


# Launchpad rules: every field says what it is and where its value comes from; nothing that decides is
# pre-filled (no default id, no default decision), so a run is launched only with an explicit choice.
MIGRATION_ID_HELP = (
    "id of the migration (column `id` of `drift-pipeline migrate status`, or `migration_id` in the metadata "
    "of the staging_replay_job run that staged it); no default: choose it explicitly"
)
EXPECTED_VERSION_HELP = (
    "optional guard: column `ver` of `drift-pipeline migrate status` when you decided; the job is refused if "
    "the migration changed since (someone else acted on it). Leave empty to skip the guard"
)


class StagingConfig(dg.Config):
    """Stage one proposed migration (`drift-pipeline migrate propose TENANT AGENT MODEL` opens one)."""

    migration_id: int = Field(description=MIGRATION_ID_HELP + ". Its state must be `proposed`.")
    expected_version: int | None = Field(default=None, description=EXPECTED_VERSION_HELP)


class ReviewConfig(dg.Config):
    """The launchpad authenticates nobody (Dagster OSS), so the decision is not a field here: it is inside
    the reviewer's signed statement. Whoever launches the run only carries it."""

    migration_id: int = Field(description=MIGRATION_ID_HELP + ". Its state must be `review`.")
    signed_approval: str = Field(
        description="paste the JSON printed by `drift-pipeline migrate sign-approval ID --reviewer NAME --key FILE "
        "--reason TEXT` (add `--reject` to reject). Reviewer rules: NAME must be registered with its public key "
        "(`drift-pipeline reviewers list`; added by `reviewers add`); the signature, the reviewer, the migration "
        "id, the candidate and the staging report's hash are verified before anything changes; for a regulated "
        "tenant the proposer cannot approve their own migration (names compared case- and width-insensitively). "
        "The decision (approved or rejected) and the reason are the signed ones; nothing here can change them"
    )
    expected_version: int | None = Field(default=None, description=EXPECTED_VERSION_HELP)


class ReadinessConfig(dg.Config):
    """Which agents to assess; the defaults are safe (they open forced migrations only past a sunset)."""

    on: str | None = Field(
        default=None,
        description="as-of date YYYY-MM-DD (e.g. a future date to rehearse a sunset); today (UTC) if empty",
    )
    horizon_days: int = Field(
        default=90,
        ge=0,
        description="also assess agents whose pinned version sunsets within this many days (`drift-pipeline "
        "registry list` shows sunset dates)",
    )
    assess_upcoming: bool = Field(
        default=True,
        description="replay agents with an upcoming sunset against the successor and report ready / not ready "
        "(opens no migration; costs one staging replay per agent)",
    )


def _migration_metadata(m: states.MigrationInfo, objects: ObjectStore) -> dict[str, Any]:
    staged = m.details.get("staging") or {}
    report = staged.get("report") or {}
    meta: dict[str, Any] = {
        "migration_id": m.id,
        "tenant/agent": f"{m.tenant_id}/{m.agent_id}",
        "from -> to": f"{m.from_model_id} -> {m.to_model_id}",
        "state": m.state,
        "version": m.version,
        "readiness": m.readiness,
        "next_steps": ", ".join(m.next_steps) or "none",
    }
    if staged:
        meta["checks"] = dg.MetadataValue.md(
            "| check | passed |\n|---|---|\n"
            + "\n".join(f"| {c['name']} | {'yes' if c['passed'] else '**no**'} |" for c in staged.get("checks", []))
        )
    links = report_links(objects, [report["html_uri"]] if report.get("html_uri") else [])
    for url in links.values():  # an http(s) link to the HTML page, never a local path
        meta["report"] = dg.MetadataValue.url(url)
    return meta


@dg.op(
    description="Replay the tenant agent's workflow suite against the migration's candidate, score it against "
    "the baseline and move the migration to review (auto-approved only for non-regulated tenants whose checks "
    "all pass).",
    tags={"drift_pipeline/kind": "migration"},
    out=dg.Out(io_manager_key=SUMMARY_IO),
)
def stage_migration(
    context: dg.OpExecutionContext, config: StagingConfig, drift_store: DriftStore, object_storage: ObjectStorage
) -> dg.Output[dict[str, Any]]:
    store = drift_store.get()
    objects = object_storage.get()
    runner = staging.ReplayStagingRunner(store, objects)
    m = review.run_staging(
        store,
        config.migration_id,
        runner,
        actor=f"{ACTOR_PREFIX}{context.run_id[:8]}",
        expected_version=config.expected_version,
        objects=objects,
    )
    context.log.info(f"migration {m.id} is {m.state} ({m.readiness})")
    return dg.Output(m.to_dict(), metadata=_migration_metadata(m, objects))


@dg.op(
    description="Apply a registered reviewer's signed decision (approved or rejected) on a migration in review, "
    "verified against the reviewer's key and the stored staging report, audited. Regulated tenants: the "
    "proposer cannot approve their own migration.",
    tags={"drift_pipeline/kind": "migration"},
    out=dg.Out(io_manager_key=SUMMARY_IO),
)
def review_migration(
    context: dg.OpExecutionContext, config: ReviewConfig, drift_store: DriftStore, object_storage: ObjectStorage
) -> dg.Output[dict[str, Any]]:
    objects = object_storage.get()
    m = review.decide(
        drift_store.get(),
        config.migration_id,
        approvals.parse_signed(config.signed_approval),
        expected_version=config.expected_version,
        objects=objects,
    )
    review_ = m.details.get("review") or {}
    context.log.info(f"migration {m.id} {m.state} by {review_.get('reviewer')}: {review_.get('reason')}")
    return dg.Output(m.to_dict(), metadata=_migration_metadata(m, objects))


@dg.op(
    description="Migration readiness: open (and stage) forced migrations for agents whose pinned version's "
    "sunset has passed, stage forced migrations not yet assessed, replay upcoming sunsets against the "
    "successor, and report every agent's readiness.",
    tags={"drift_pipeline/kind": "migration"},
    out=dg.Out(io_manager_key=SUMMARY_IO),
)
def assess_readiness(
    context: dg.OpExecutionContext, config: ReadinessConfig, drift_store: DriftStore, object_storage: ObjectStorage
) -> dg.Output[list[dict[str, Any]]]:
    store, actor = drift_store.get(), f"{ACTOR_PREFIX}readiness"
    today = date.fromisoformat(config.on) if config.on else datetime.now(UTC).date()
    runner = staging.ReplayStagingRunner(store, object_storage.get())
    opened = forced.open_forced_migrations(store, today, actor=actor, runner=runner)
    for f in opened:
        context.log.info(f"{f.tenant_id}/{f.agent_id}: {f.from_model_id} -> {f.to_model_id or '-'}: {f.readiness}")
    for m in states.list_migrations(store, open_only=True):
        if m.state == "proposed" and m.details.get("forced"):  # opened earlier without an assessment
            try:
                review.run_staging(store, m.id, runner, actor=actor, objects=runner.objects)
            except Exception as exc:  # one tenant's failed replay must not stop the others
                context.log.warning(f"staging of migration {m.id} failed: {exc}")
    rows = forced.readiness_report(store, today, horizon_days=config.horizon_days)
    if config.assess_upcoming:
        rows = [_assess_upcoming(context, store, runner, r) if _upcoming(r) else r for r in rows]
    return dg.Output(rows, metadata=_readiness_metadata(rows, opened))


def _upcoming(row: dict[str, Any]) -> bool:
    return row["migration_id"] is None and bool(row["successor_id"]) and row["days_left"] >= 0


def _assess_upcoming(
    context: dg.OpExecutionContext, store: Any, runner: staging.ReplayStagingRunner, row: dict[str, Any]
) -> dict[str, Any]:
    """Replay an agent whose sunset is still ahead against the successor, without opening a migration."""
    try:
        manifest = manifests.current(store, row["tenant_id"], row["agent_id"])
        report = runner(manifest, registry.get_version(store, row["successor_id"]))
        passed = all(c["passed"] for c in review.staging_checks(report))
    except Exception as exc:  # reported per agent; the others are still assessed
        context.log.warning(f"readiness replay of {row['tenant_id']}/{row['agent_id']} failed: {exc}")
        return {**row, "readiness": f"assessment failed: {exc}"}
    return {**row, "readiness": "ready" if passed else "not ready", "report_uri": report.get("report_uri")}


def _readiness_metadata(rows: list[dict[str, Any]], opened: list[forced.ForcedMigration]) -> dict[str, Any]:
    table = "| tenant/agent | model | sunset | days left | successor | migration | readiness |\n|---|---|---|---|---|---|---|\n"
    table += "\n".join(
        f"| {r['tenant_id']}/{r['agent_id']} | {r['model_id']} | {r['sunset_date']} | {r['days_left']} | "
        f"{r['successor_id'] or '-'} | {r['migration_id'] or '-'} ({r['migration_state'] or '-'}) | {r['readiness']} |"
        for r in rows
    )
    return {
        "agents": len(rows),
        "ready": sum(r["readiness"] == "ready" for r in rows),
        "forced_opened": sum(f.created for f in opened),
        "readiness": dg.MetadataValue.md(table if rows else "no agent is pinned to a version near its sunset"),
    }


@dg.job(
    description="Staging replay of one migration (config: migration_id): replay the workflow suite against the "
    "candidate, store the drift report and checks, move to review.",
    tags={"drift_pipeline/kind": "migration"},
)
def staging_replay_job() -> None:
    stage_migration()


@dg.job(
    description="Approve or reject a migration in review from the launchpad with a reviewer's signed statement "
    "(config: migration_id, signed_approval from `drift-pipeline migrate sign-approval`).",
    tags={"drift_pipeline/kind": "migration"},
)
def approve_migration_job() -> None:
    review_migration()


@dg.job(
    description="Migration readiness of every agent pinned to a deprecated or sunset version: forced "
    "migrations opened and staged, upcoming sunsets replayed against the successor.",
    tags={"drift_pipeline/kind": "migration"},
)
def readiness_job() -> None:
    assess_readiness()
