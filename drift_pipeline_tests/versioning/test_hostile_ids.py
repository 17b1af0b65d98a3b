"""Hostile ids at the versioning entry points: the CLI, the registry, and a hostile OpenAI-compatible server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drift_pipeline.cli.app import main
from drift_pipeline.detection import probes
from drift_pipeline.errors import InvalidInputError
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.objects import ObjectStore
from drift_pipeline.versioning import discovery, registry
from drift_pipeline.versioning.discovery import ProviderSource
from drift_pipeline_tests.plugins.providers import FakeOpenAI

LEGIT = ["gpt-4o-2024-08-06", "meta-llama/Llama-3.1-8B-Instruct", "anthropic.claude-v2:1"]


def hostile_ids(outside: Path) -> list[str]:
    """What a hostile /v1/models lists: climbs to `outside` from `<root>/probes/` (and deeper), and ids a
    trailing-newline or backslash trick would have let through."""
    climbs = [f"{'../' * n}{outside.name}/pwned-2024-01-01" for n in range(1, 6)]
    return [*climbs, f"{outside}/pwned-2024-01-01", "gpt-4o-2024-08-06\n", "a\\..\\..\\x", "x" * 500, "-rf"]


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    monkeypatch.setattr("sys.argv", ["drift-pipeline", *args])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out + err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("openai", "../../x"), "invalid model id '../../x'"),
        (("../x", "gpt-4o-2024-08-06"), "invalid provider '../x'"),
        (("openai", "gpt-4o-2024-08-06\n"), "invalid model id"),
        (("openai", "gpt-4o-2024-08-06", "--alias", "../gpt-4o"), "invalid alias '../gpt-4o'"),
    ],
)
def test_registry_add_refuses_hostile_ids_in_one_line(
    args: tuple[str, ...], message: str, home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = run_cli(monkeypatch, capsys, "registry", "add", *args)
    assert code == 1 and message in output and "Traceback" not in output
    assert len(output.strip().splitlines()) == 1
    code, output = run_cli(monkeypatch, capsys, "registry", "list", "--json")
    assert code == 0 and json.loads(output) == []  # nothing registered, not even the version before its alias


def test_registry_accepts_real_ids_and_refuses_hostile_ones(store: Store) -> None:
    for model_id in LEGIT:
        registry.add_version(store, "openai", model_id, actor="t")
    for bad in ("../../x", "x\n", "a//b", "a b"):
        with pytest.raises(InvalidInputError):
            registry.add_version(store, "openai", bad, actor="t")
        with pytest.raises(InvalidInputError):
            registry.set_alias(store, bad, LEGIT[0], actor="t")
    assert sorted(v.model_id for v in registry.list_versions(store)) == sorted(LEGIT)


def test_discovery_skips_and_reports_ids_a_hostile_server_lists(
    fake_openai: FakeOpenAI, sqlite_store: Store, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    fake_openai.models = [*LEGIT, *hostile_ids(outside)]
    source = ProviderSource("local", "openai-compatible", api_base=fake_openai.api_base)
    [observation] = discovery.observe([source])
    assert observation.error is None and len(observation.models) == len(fake_openai.models)

    changes = discovery.diff([observation], [], {})
    assert sorted(n.model_id for n in changes.new_versions) == sorted(LEGIT)
    [error] = changes.errors
    assert error.startswith(f"{source.name}: skipped 10 id(s) that break the model-id rule")
    applied = discovery.apply(sqlite_store, changes, actor="sensor")
    assert sorted(v.model_id for v in registry.list_versions(sqlite_store)) == sorted(LEGIT)
    assert applied.errors == [error]


def test_an_alias_served_as_a_hostile_id_is_skipped_not_registered(fake_openai: FakeOpenAI) -> None:
    source = ProviderSource("local", "openai-compatible", api_base=fake_openai.api_base, aliases=("llm-latest",))
    observation = discovery.Observation(source, ("llm-2025-06-01",), {"llm-latest": "../../llm-2026-01-01"})
    changes = discovery.diff([observation], [], {})
    assert [n.model_id for n in changes.new_versions] == ["llm-2025-06-01"]
    assert not changes.alias_moves and "'../../llm-2026-01-01'" in changes.errors[0]


def test_a_source_config_naming_a_hostile_provider_or_alias_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="invalid provider"):
        discovery.source_from_dict({"provider": "../x", "kind": "litellm"})
    with pytest.raises(InvalidInputError, match="invalid alias"):
        discovery.source_from_dict({"provider": "openai", "kind": "litellm", "aliases": ["gpt-4\n"]})


def test_probe_references_never_leave_the_storage_root(tmp_path: Path) -> None:
    """The reported attack: `save_reference` of a listed id `../../../../<outside>/pwned-2024-01-01`."""
    outside = tmp_path / "outside"
    outside.mkdir()
    objects = ObjectStore(str(tmp_path / "home" / "data"), {})
    for model_id in hostile_ids(outside):
        reference = probes.ProbeReference(model_id, ["pong"], "fp", 0.0, 0.0, "2024-01-01T00:00:00+00:00")
        with pytest.raises(InvalidInputError, match="invalid model id"):
            probes.save_reference(objects, reference)
    assert _files(tmp_path) == {"outside"}
    for model_id in LEGIT:  # real ids with '/', ':' and capitals: one file each, directly under probes/
        probes.save_reference(objects, probes.ProbeReference(model_id, ["pong"], "fp", 0.0, 0.0, "now"))
        assert probes.load_reference(objects, model_id).model_id == model_id  # type: ignore[union-attr]
    assert len(objects.list_names("probes")) == len(LEGIT)
    assert {p.parent for p in (tmp_path / "home" / "data").rglob("*.json")} == {tmp_path / "home" / "data" / "probes"}
