"""Shard runs: many tenant partitions in one run, each still with its own materializations and check results.

A real `replay_job` over a range of three tenant partitions, replayed through two real local
OpenAI-compatible servers (one tenant's model changes its answers), scored with the real embedder.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest

from drift_pipeline.alerts.channels import ChannelConfig
from drift_pipeline.alerts.router import AlertRouter
from drift_pipeline.definitions import build_defs
from drift_pipeline.defs import partitions
from drift_pipeline.defs.alerts.sensors import alerts_for_run
from drift_pipeline.defs.runs import REASON_TAG, shard_requests
from drift_pipeline.detection import baselines, shards
from drift_pipeline.errors import InvalidInputError
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.objects import ObjectStore
from drift_pipeline.versioning import manifests, registry, tenants
from drift_pipeline_tests.plugins.providers import FakeOpenAI
from drift_pipeline_tests.plugins.replay import make_sample

DAY = "2026-11-27"
TENANTS = ["acme", "globex", "initech"]  # initech's model changes its answers


def steady(prompt: str) -> str:
    return f"Your refund for {prompt.split(' for ')[-1].split('?')[0]} is on its way: expect it within five days."


def changed(prompt: str) -> str:
    return f"I am sorry, I cannot discuss {prompt.split(' for ')[-1].split('?')[0]}. Please ask a human agent."


# Ten distinct prompts: fewer paired samples cannot make a change significant after Holm's correction.
PROMPTS = [f"Where is my refund for order {n}? I paid on day {n + 3}." for n in range(10)]


def test_shards_are_consecutive_partitions_of_at_most_size() -> None:
    ordered = ["a", "b", "c", "d", "e"]
    assert [s.tenant_ids for s in shards.plan(ordered, 2)] == [("a", "b"), ("c", "d"), ("e",)]
    # A tenant not selected closes the shard: a range run never touches a tenant it was not asked for.
    picked = shards.plan(ordered, 10, selected=["a", "b", "d", "e"])
    assert [(s.first, s.last) for s in picked] == [("a", "b"), ("d", "e")]
    assert shards.plan(ordered, 3, selected=[]) == []
    with pytest.raises(InvalidInputError, match="shard size"):
        shards.plan(ordered, 0)


def test_shard_requests_are_range_runs_with_stable_keys() -> None:
    single, ranged = shard_requests(["a", "b", "c"], DAY, {REASON_TAG: "nightly"}, size=2, run_key="n")[::-1]
    assert ranged.partition_key is None and ranged.run_key == "n:a..b"
    assert ranged.tags[partitions.RANGE_START_TAG] == "a" and ranged.tags[partitions.RANGE_END_TAG] == "b"
    assert single.partition_key == "c" and single.run_key == "n:c"
    assert {r.tags[partitions.DAY_TAG] for r in (single, ranged)} == {DAY}
    with pytest.raises(InvalidInputError, match="invalid tenant id"):
        partitions.shard_tags("a", "../b", DAY)


@pytest.fixture
def fleet(home: Path, embedder: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Three tenants with a baseline each, two pinned to a steady server and one to a server about to change."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-secret")  # litellm asks for one; the servers ignore it
    steady_server, changing = FakeOpenAI(), FakeOpenAI()
    steady_server.reply = changing.reply = steady
    store, objects = Store.open(), ObjectStore.from_settings()
    registry.add_version(store, "openai", "steady-1", actor="t", litellm_params={"api_base": steady_server.api_base})
    registry.add_version(store, "openai", "changing-1", actor="t", litellm_params={"api_base": changing.api_base})
    for tenant_id in TENANTS:
        tenants.add_tenant(store, tenant_id, actor="t")
        model = "changing-1" if tenant_id == "initech" else "steady-1"
        manifest = manifests.pin(store, tenant_id, "support", model, actor="t")
        sample = make_sample(PROMPTS, tenant=tenant_id)
        baselines.build_baseline(store, objects, manifest, sample, max_prompts=10, embedder=embedder, actor="t")
    changing.reply = changed
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(partitions.TENANTS, TENANTS)
        yield {"store": store, "objects": objects, "instance": instance}
    store.dispose()
    for server in (steady_server, changing):
        server.server.shutdown()


def test_one_run_materializes_and_checks_every_tenant_partition(fleet: dict[str, Any]) -> None:
    instance, objects = fleet["instance"], fleet["objects"]
    [request] = shard_requests(TENANTS, DAY, {REASON_TAG: "nightly"}, size=50, run_key="nightly")
    result = (
        build_defs()
        .resolve_job_def("replay_job")
        .execute_in_process(instance=instance, tags=request.tags, raise_on_error=False)
    )

    reports = {m.partition: m for m in result.asset_materializations_for_node("divergence")}
    assert set(reports) == set(TENANTS)  # one materialization per tenant partition, from one run
    assert {m.metadata["day"].value for m in reports.values()} == {DAY}
    assert instance.get_materialized_partitions(dg.AssetKey("drift_report")) == set(TENANTS)
    evaluations = {(e.check_name, e.partition): e for e in result.get_asset_check_evaluations()}
    assert {p for _, p in evaluations} == set(TENANTS)
    breach = evaluations[("drift_within_threshold", "initech")]
    assert not breach.passed and breach.metadata["tenant_id"].value == "initech"
    assert all(evaluations[("drift_within_threshold", t)].passed for t in ("acme", "globex"))
    assert result.success  # a drift is a finding, not a crash: the shard run says it in its tags instead
    tags = instance.get_run_by_id(result.run_id).tags
    assert tags["drift_pipeline/verdict"] == "DRIFT" and "initech/" in tags["drift_pipeline/blocked_by"]
    assert "acme/" not in tags["drift_pipeline/blocked_by"]

    # Each tenant's rows land in its own object for the day; no tenant sees another's.
    for tenant_id in TENANTS:
        rel = f"assets/drift_report/tenant={tenant_id}/day={DAY}.parquet"
        frame = pd.read_parquet(io.BytesIO(objects.read_bytes(rel)))
        assert len(frame) and set(frame["tenant_id"]) == {tenant_id}
    # The alert sensor reads the run's evaluations: every tenant is checked, the drifted one alerted.
    router = AlertRouter(fleet["store"], ChannelConfig(), actor="sensor:drift_check_alerts")
    summary = alerts_for_run(instance, result.run_id, router)
    assert summary.tenants == set(TENANTS) and summary.notified >= 1
    alerted = [line for line in summary.outcomes if "initech" in line]
    assert alerted and not [line for line in summary.outcomes if "acme" in line and "ERROR" in line], summary.outcomes
