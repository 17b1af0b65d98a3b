"""A hostile OpenAI-compatible provider through the real sensors, and hostile Dagster partition keys."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import pytest

from drift_pipeline.defs import partitions
from drift_pipeline.defs.detection import sensors as detection_sensors
from drift_pipeline.defs.resources import ParquetIOManager
from drift_pipeline.defs.versioning import sensors as versioning_sensors
from drift_pipeline.detection import probes
from drift_pipeline.errors import InvalidInputError
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.objects import ObjectStore
from drift_pipeline.versioning import manifests, registry, tenants
from drift_pipeline.versioning.discovery import ProviderSource
from drift_pipeline_tests.plugins.providers import FakeOpenAI

SLASHED = "meta-llama/Llama-3.1-8B-Instruct"  # a real id with '/' and capitals: never a raw path


def _files(folder: Path, skip: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if skip not in p.parents and p != skip}


def test_a_hostile_model_list_registers_nothing_and_writes_nothing_outside_the_root(
    fake_openai: FakeOpenAI, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reported chain: `/v1/models` lists `../../../../<outside>/pwned-2024-01-01`, discovery registers
    it, the silent-change probe saves its reference under a path built from the id. Now: skipped, reported,
    and the probe of the legitimate id (through litellm, over HTTP) stays under the root."""
    store, objects = Store.open(f"sqlite:///{home / 'drift.db'}"), ObjectStore(str(home / "data"), {})
    outside = tmp_path / "outside"
    outside.mkdir()
    climbs = [f"{'../' * n}outside/pwned-2024-01-01" for n in range(1, 6)]
    fake_openai.models = [SLASHED, *climbs, "pwned-2024-01-01\n", "pwned\\..\\..\\x-2024-01-01"]
    before = _files(tmp_path, home)
    monkeypatch.setenv("FAKE_OPENAI_KEY", "sk-test")
    source = ProviderSource("openai", "openai-compatible", api_base=fake_openai.api_base, api_key_env="FAKE_OPENAI_KEY")

    tick = versioning_sensors.new_model_version_tick(store, None, sources=[source])
    assert [v.model_id for v in registry.list_versions(store)] == [SLASHED]
    assert any("skipped 7 id(s) that break the model-id rule" in line for line in tick.log), tick.log

    tenants.add_tenant(store, "acme", actor="t")
    manifests.pin(store, "acme", "support", SLASHED, actor="t")
    probe = detection_sensors.silent_change_tick(
        store, objects, None, prompts=probes.PROBE_PROMPTS[:1], similarity=lambda a, b: [1.0] * len(a)
    )
    assert any(line.startswith(f"{SLASHED}: probe reference stored") for line in probe.log), probe.log
    assert ("POST", "/v1/chat/completions") in fake_openai.requests
    assert probes.load_reference(objects, SLASHED) is not None
    assert list(outside.iterdir()) == [] and _files(tmp_path, home) == before
    [reference] = (home / "data" / "probes").iterdir()
    assert reference.name.startswith("_meta-llama-llama-3.1-8b-instruct-") and reference.suffix == ".json"


@pytest.mark.parametrize("tenant", ["acme\n", "a..b", "../acme", "acme/x", "2024-05-01|acme"])
def test_hostile_tenant_partition_keys_never_become_paths(tenant: str) -> None:
    """A tenant partition added by hand through Dagster's UI or API is checked like any other entry point."""
    with pytest.raises(InvalidInputError, match="invalid tenant id"):
        partitions.key(tenant, "2024-05-01")
    context = SimpleNamespace(
        asset_key=dg.AssetKey(["sampled_inputs"]), has_asset_partitions=True, asset_partition_key=tenant
    )
    with pytest.raises(InvalidInputError, match="invalid partition key"):
        ParquetIOManager._path(context, day="2024-05-01")


@pytest.mark.parametrize("day", ["2024-13-01", "../2024-05-01", "2024-05-01/x", "yesterday", "2024-05-01\n"])
def test_hostile_day_tags_are_refused(day: str) -> None:
    """The day tag can be typed into the UI's launchpad: it is checked before it names a path or a cache."""
    with pytest.raises(InvalidInputError, match="invalid day"):
        partitions.day_from_tags({partitions.DAY_TAG: day})
    with pytest.raises(InvalidInputError, match="invalid day"):
        partitions.key("acme", day)


def test_valid_partition_keys_keep_their_paths() -> None:
    context = SimpleNamespace(
        asset_key=dg.AssetKey(["sampled_inputs"]), has_asset_partitions=True, asset_partition_key="acme"
    )
    assert partitions.key("acme", "2024-05-01") == "acme"
    assert (
        ParquetIOManager._path(context, day="2024-05-01") == "assets/sampled_inputs/tenant=acme/day=2024-05-01.parquet"
    )
    assert (
        ParquetIOManager._path(context, day="2024-05-02") == "assets/sampled_inputs/tenant=acme/day=2024-05-02.parquet"
    )
    unpartitioned = SimpleNamespace(asset_key=dg.AssetKey(["a", "b"]), has_asset_partitions=False)
    assert ParquetIOManager._path(unpartitioned, day=None) == "assets/a/b.parquet"


def test_a_run_without_a_day_tag_works_on_its_utc_creation_day() -> None:
    late = datetime(2024, 5, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5)))  # 04:30 UTC the next day
    assert partitions.day_from_tags({}, late) == "2024-05-02"
    assert partitions.day_from_tags({partitions.DAY_TAG: "2024-04-30"}, late) == "2024-04-30"
