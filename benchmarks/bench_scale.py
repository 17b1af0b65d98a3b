"""What N tenants cost the Dagster side, on PostgreSQL: partitions, sensor and schedule ticks, UI queries.

Creates two fresh databases on the local server (a Dagster instance via dagster-postgres, and a
drift-pipeline store), seeds N tenants with `--agents` agents each pinned to one model family, then times:

- adding N `tenants` dynamic partitions (the only partitions: the day is a run tag);
- the nightly schedule (one run request per shard of `DRIFT_PIPELINE_SHARD_TENANTS` tenants);
- `--days` nights of history, as shard runs record them: a `drift_report` materialization (with `day`
  metadata) per tenant partition and night, and both drift checks for `--checked` tenants one more night;
- the queries behind the UI's per-tenant views, through the real GraphQL schema on a real code server:
  the asset's partition status and counts, and one tenant's materialization history (its metadata plot);
- one tick of each sensor with N tenants affected (new tenants, new model version from a local
  OpenAI-compatible listing, silent change with a scripted probe responder, deprecation with N notices).

No real model call is made (the probe responder is scripted, alerts go to no channel); what is timed is the
sensors' own work: registry and manifest queries, audit writes, cursor and run-request building.

    .venv/bin/python benchmarks/bench_scale.py [--tenants 1000] [--agents 3] [--days 2] [--db-prefix dp_fleet] \
        [--pg postgresql+psycopg2://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import dagster as dg
from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, make_url, text
from tqdm import tqdm

from drift_pipeline.alerts.channels import ChannelConfig
from drift_pipeline.alerts.router import AlertRouter
from drift_pipeline.config import Settings
from drift_pipeline.defs.detection import schedules
from drift_pipeline.defs.detection import sensors as detection_sensors
from drift_pipeline.defs.migration import sensors as migration_sensors
from drift_pipeline.defs.resources import DriftStore
from drift_pipeline.defs.traffic import sensors as traffic_sensors
from drift_pipeline.defs.versioning import sensors as versioning_sensors
from drift_pipeline.detection import tripwire
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.objects import ObjectStore
from drift_pipeline.versioning import discovery, manifests, registry, tenants

console = Console()
ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def database(admin_url: str, prefix: str) -> Iterator[str]:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield str(make_url(admin_url).set(database=name).render_as_string(hide_password=False))
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def dagster_instance(url: str) -> Iterator[dg.DagsterInstance]:
    """A fresh instance on PostgreSQL, configured like deploy/dagster.postgres.yaml."""
    u = make_url(url)
    postgres_db = {
        "hostname": u.host,
        "username": u.username,
        "password": u.password or "",
        "db_name": u.database,
        "port": u.port or 5432,
        "scheme": "postgresql+psycopg2",
    }
    with tempfile.TemporaryDirectory() as home:
        overrides = {"storage": {"postgres": {"postgres_db": postgres_db}}}
        with dg.instance_for_test(temp_dir=home, overrides=overrides) as instance:
            yield instance


def model_list_server(models: list[str]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = json.dumps({"object": "list", "data": [{"id": m} for m in models]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def timed(label: str, fn: Callable[[], Any], figures: list[tuple[str, float, str]], note: str = "") -> Any:
    start = time.perf_counter()
    out = fn()
    figures.append((label, time.perf_counter() - start, note))
    return out


def seed(store: Store, n: int, agents: int, api_base: str) -> None:
    """Tenant 0 through the audited API; the other N - 1 as SQL copies of it (same config, no audit rows):
    seeding 10,000 tenants x 3 agents through the API takes about an hour here, and is not what is timed."""
    params = {"api_base": api_base}
    registry.add_version(store, "openai", "llm-2025-06-01", actor="bench", litellm_params=params)
    tenants.add_tenant(store, "tenant-00000", actor="bench", cadence="hourly")
    for agent in AGENTS[:agents]:
        manifests.pin(store, "tenant-00000", agent, "llm-2025-06-01", actor="bench")
    new_id = "'tenant-' || lpad(i::text, 5, '0')"
    with store.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO tenants (tenant_id, contact, regulated, sampling_consent, cadence, pii_patterns, created_at)"
                f" SELECT {new_id}, contact, regulated, sampling_consent,"
                " CASE WHEN i % 10 = 0 THEN 'hourly' ELSE 'daily' END, pii_patterns, created_at"
                " FROM tenants, generate_series(1, :last) AS i WHERE tenant_id = 'tenant-00000'"
            ),
            {"last": n - 1},
        )
        conn.execute(
            text(
                "INSERT INTO manifest_revisions (tenant_id, agent_id, revision, pinned_model_id, pinned_at,"
                " behavioral_baseline_id, drift_alert_threshold, config, created_at, created_by, reason)"
                f" SELECT {new_id}, agent_id, revision, pinned_model_id, pinned_at, behavioral_baseline_id,"
                f" drift_alert_threshold, CAST(replace(CAST(config AS text), 'tenant-00000', {new_id}) AS json),"
                " created_at, created_by, reason"
                " FROM manifest_revisions, generate_series(1, :last) AS i WHERE tenant_id = 'tenant-00000'"
            ),
            {"last": n - 1},
        )


AGENTS = ("support", "sales", "triage", "billing", "onboarding")


def history(instance: dg.DagsterInstance, tenant_ids: list[str], days: list[str], shard: int, checks: bool) -> None:
    """What nights leave in Dagster's event log, as shard runs record them (one run id per shard and night):
    per tenant partition a `drift_report` materialization with its `day` (batched, as the event log allows)
    and, with `checks`, both drift check evaluations (one write each: Dagster has no batch for them)."""
    from dagster._core.events import DagsterEvent, DagsterEventType, StepMaterializationData
    from dagster._core.events.log import EventLogEntry

    report = dg.AssetKey("drift_report")

    def entry(kind: DagsterEventType, data: Any, run_id: str) -> EventLogEntry:
        event = DagsterEvent(event_type_value=kind.value, event_specific_data=data, job_name="nightly_drift_job")
        return EventLogEntry(
            error_info=None, level=20, user_message="", run_id=run_id, timestamp=time.time(), dagster_event=event
        )

    for day in days:
        for start in tqdm(range(0, len(tenant_ids), shard), desc=f"night {day}", unit="shard"):
            run_id = str(uuid.uuid4())
            batch = tenant_ids[start : start + shard]
            materializations = [
                dg.AssetMaterialization(
                    report, partition=t, metadata={"day": day, "effect support/pinned/semantic": (i % 17) / 100}
                )
                for i, t in enumerate(batch, start)
            ]
            instance.event_log_storage.store_event_batch(
                [
                    entry(DagsterEventType.ASSET_MATERIALIZATION, StepMaterializationData(m), run_id)
                    for m in materializations
                ]
            )
            for i, tenant_id in enumerate(batch if checks else [], start):
                for check in ("drift_within_threshold", "equivalence_shown"):
                    evaluation = dg.AssetCheckEvaluation(
                        asset_key=report,
                        check_name=check,
                        passed=i % 50 != 0,
                        metadata={"tenant_id": tenant_id, "day": day},
                        partition=tenant_id,
                    )
                    instance.event_log_storage.store_event(
                        entry(DagsterEventType.ASSET_CHECK_EVALUATION, evaluation, run_id)
                    )


PARTITION_STATUS = """
query PartitionStatus($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) {
    ... on AssetNode {
      partitionStats { numMaterialized numPartitions numFailed }
      assetPartitionStatuses { ... on DefaultPartitionStatuses { materializedPartitions failedPartitions } }
    }
  }
}"""

TENANT_HISTORY = """
query TenantHistory($key: AssetKeyInput!, $partition: String!) {
  assetOrError(assetKey: $key) {
    ... on Asset { assetMaterializations(partitions: [$partition], limit: 100) { partition timestamp metadataEntries { label } } }
  }
}"""


def ui_queries(instance: dg.DagsterInstance, tenant_id: str, figures: list[tuple[str, float, str]]) -> None:
    """The UI's partition views through the real GraphQL schema, against a code server started for it."""
    from dagster_graphql.test.utils import define_out_of_process_context, execute_dagster_graphql

    key = {"path": ["drift_report"]}
    with define_out_of_process_context(str(ROOT / "workspace.yaml"), None, instance) as context:
        status = timed(
            "UI: drift_report partition status (GraphQL)",
            lambda: execute_dagster_graphql(context, PARTITION_STATUS, {"key": key}),
            figures,
        )
        node = status.data["assetNodeOrError"]
        stats = node["partitionStats"]
        figures[-1] = (
            *figures[-1][:2],
            f"{stats['numMaterialized']}/{stats['numPartitions']} materialized, {stats['numFailed']} failed",
        )
        timed(
            "UI: drift_report partition status again (cached)",
            lambda: execute_dagster_graphql(context, PARTITION_STATUS, {"key": key}),
            figures,
        )
        hist = timed(
            "UI: one tenant's materialization history (GraphQL)",
            lambda: execute_dagster_graphql(context, TENANT_HISTORY, {"key": key, "partition": tenant_id}),
            figures,
        )
        points = hist.data["assetOrError"]["assetMaterializations"]
        figures[-1] = (*figures[-1][:2], f"{len(points)} nights of {tenant_id}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--agents", type=int, default=3, choices=range(1, len(AGENTS) + 1))
    parser.add_argument("--days", type=int, default=2, help="nights of materialization history to write")
    parser.add_argument("--checked", type=int, default=1000, help="tenants whose check results are written")
    parser.add_argument(
        "--db-prefix", default="bench", help="fresh databases are named <prefix>_dagster_*, <prefix>_drift_*"
    )
    parser.add_argument("--pg", default="postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    n = args.tenants
    figures: list[tuple[str, float, str]] = []
    listed = ["llm-2025-06-01"]
    server = model_list_server(listed)
    api_base = f"http://127.0.0.1:{server.server_address[1]}/v1"
    with (
        database(args.pg, f"{args.db_prefix}_dagster") as dagster_url,
        database(args.pg, f"{args.db_prefix}_drift") as drift_url,
        dagster_instance(dagster_url) as instance,
        tempfile.TemporaryDirectory() as data,
    ):
        store = Store.open(drift_url)
        objects = ObjectStore(data)
        seed(store, n, args.agents, api_base)
        now = datetime.now(UTC)

        tick = timed(
            "new_tenants tick",
            lambda: traffic_sensors.new_tenants_tick(store, objects, instance, None, now=now),
            figures,
        )
        figures[-1] = (*figures[-1][:2], f"{len(tick.run_requests)} run requests, {len(tick.partitions_to_add)} new")
        timed(
            f"add {n} tenant partitions",
            lambda: instance.add_dynamic_partitions("tenants", tick.partitions_to_add),
            figures,
        )
        ids = timed("read tenant partitions", lambda: instance.get_dynamic_partitions("tenants"), figures)
        figures[-1] = (*figures[-1][:2], f"{len(ids)} partitions per asset, 5 assets, 2 partitioned checks")

        ctx = dg.build_schedule_context(instance=instance, scheduled_execution_time=now.replace(hour=2, minute=0))
        reqs = timed("nightly schedule evaluation", lambda: schedules.nightly_drift_schedule(ctx), figures)
        figures[-1] = (*figures[-1][:2], f"{len(reqs)} run requests (shards)")
        hourly_ctx = dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=now.replace(minute=15),
            resources={"drift_store": DriftStore(database_url=drift_url)},
        )
        reqs = timed("hourly schedule evaluation", lambda: schedules.hourly_drift_schedule(hourly_ctx), figures)
        figures[-1] = (*figures[-1][:2], f"{len(reqs)} run requests (10 % hourly tenants)")

        shard_size = Settings.from_env().shard_tenants
        nights = [(now.date() - timedelta(days=d)).isoformat() for d in range(args.days, 0, -1)]
        timed(
            f"write {args.days} nights of materializations",
            lambda: history(instance, list(ids), nights, shard_size, checks=False),
            figures,
        )
        figures[-1] = (*figures[-1][:2], f"{len(ids) * args.days} materializations (day metadata), batched per shard")
        timed(
            "write one night's check results",
            lambda: history(instance, list(ids)[: args.checked], nights[-1:], shard_size, checks=True),
            figures,
        )
        checked = min(args.checked, len(ids))
        figures[-1] = (*figures[-1][:2], f"{2 * checked} evaluations of {checked} tenants (+ their materializations)")
        ui_queries(instance, ids[len(ids) // 2], figures)

        source = discovery.ProviderSource("openai", "openai-compatible", api_base=api_base)
        first = versioning_sensors.new_model_version_tick(store, None, sources=[source], now=now)
        listed.append("llm-2026-01-01")
        tick = timed(
            "new_model_version tick",
            lambda: versioning_sensors.new_model_version_tick(store, first.cursor, sources=[source], now=now),
            figures,
        )
        figures[-1] = (*figures[-1][:2], f"{len(tick.run_requests)} replay requests")
        tick = timed(
            "new_model_version tick (nothing new)",
            lambda: versioning_sensors.new_model_version_tick(store, tick.cursor, sources=[source], now=now),
            figures,
        )

        answers = {"text": ["Paris.", '{"status": "ok"}', "Use a pick.", "5pm."]}

        def complete(model: str, params: dict[str, Any], prompts: Any) -> list[str]:
            return list(answers["text"])

        def overlap(a: list[str], b: list[str]) -> list[float]:
            return [float(x == y) for x, y in zip(a, b, strict=True)]

        def no_logprobs(model: str, params: dict[str, Any], prompts: Any, k: int) -> Any:
            raise tripwire.LogprobsUnavailable("scripted provider: no logprobs")  # the text-probe path is timed

        first = detection_sensors.silent_change_tick(
            store, objects, None, complete=complete, similarity=overlap, fetch_logprobs=no_logprobs, now=now
        )
        answers["text"] = ["Paris.", '{"status": "ok"}', "I'm sorry, I can't help.", "5pm."]
        tick = timed(
            "silent_change tick (scripted probe)",
            lambda: detection_sensors.silent_change_tick(
                store, objects, first.cursor, complete=complete, similarity=overlap, fetch_logprobs=no_logprobs, now=now
            ),
            figures,
        )
        figures[-1] = (*figures[-1][:2], f"{len(tick.run_requests)} replay requests")

        registry.deprecate(
            store,
            "llm-2025-06-01",
            sunset=now.date() + timedelta(days=10),
            successor="llm-2026-01-01",
            actor="bench",
        )
        router = AlertRouter(store, ChannelConfig(), actor="sensor:deprecation")
        batch = migration_sensors.DEPRECATION_BATCH
        tick = timed(
            f"deprecation tick (batch {batch})",
            lambda: migration_sensors.deprecation_tick(store, router, None, batch=batch, now=now),
            figures,
        )
        figures[-1] = (*figures[-1][:2], f"{len(tick.run_requests)} notices + readiness requests")
        store.dispose()
    server.shutdown()

    table = Table(title=f"{n} tenants on PostgreSQL (Dagster instance + drift-pipeline store)")
    table.add_column("step")
    table.add_column("seconds", justify="right")
    table.add_column("note")
    for label, seconds, note in figures:
        table.add_row(label, f"{seconds:.2f}", note)
    console.print(table)


if __name__ == "__main__":
    main()
