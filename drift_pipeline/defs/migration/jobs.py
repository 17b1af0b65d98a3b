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

from drift_pipeline.defs.resources import DriftStore, ObjectStorage
from drift_pipeline.migration import approvals, forced, review, staging, states
from drift_pipeline.versioning import manifests, registry

ACTOR_PREFIX = "dagster:"
# Op outputs are small JSON-like summaries, not frames: pickled by the filesystem I/O manager, not Parquet.
SUMMARY_IO = "migration_summary_io_manager"


class StagingConfig(dg.Config):
    migration_id: int = Field(description="the migration to stage (see `drift-pipeline migrate status`)")
    expected_version: int | None = Field(
        default=None, description="refuse if the migration moved since this version was read"
    )


class ReviewConfig(dg.Config):
    """The launchpad authenticates nobody (Dagster OSS): the decision is the reviewer's signed statement."""

    migration_id: int = Field(description="the migration in review (see `drift-pipeline migrate status`)")
    signed_approval: str = Field(
        description="the JSON a registered reviewer produced with `drift-pipeline migrate sign-approval ID "
        "--reviewer NAME --key FILE --reason ...`: its signature, reviewer, migration, candidate and staging "
        "report hash are verified before anything changes; the decision and reason are the signed ones"
    )
    expected_version: int | None = Field(
        default=None, description="refuse if the migration moved since this version was read"
    )


class ReadinessConfig(dg.Config):
    on: str | None = Field(default=None, description="as-of date YYYY-MM-DD; today (UTC) by default")
    horizon_days: int = Field(default=90, description="also assess agents whose version sunsets within this many days")
    assess_upcoming: bool = Field(
        default=True, description="replay upcoming sunsets against the successor (no migration is opened)"
    )


def _migration_metadata(m: states.MigrationInfo) -> dict[str, Any]:
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
    for key in ("report_uri", "html_uri"):
        if report.get(key):
            meta[key] = dg.MetadataValue.path(report[key])
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
    return dg.Output(m.to_dict(), metadata=_migration_metadata(m))


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
    m = review.decide(
        drift_store.get(),
        config.migration_id,
        approvals.parse_signed(config.signed_approval),
        expected_version=config.expected_version,
        objects=object_storage.get(),
    )
    review_ = m.details.get("review") or {}
    context.log.info(f"migration {m.id} {m.state} by {review_.get('reviewer')}: {review_.get('reason')}")
    return dg.Output(m.to_dict(), metadata=_migration_metadata(m))


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
