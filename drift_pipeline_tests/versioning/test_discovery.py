"""Model discovery: families, a real local OpenAI-compatible server, diffing and applying to the registry."""

from __future__ import annotations

from typing import Any

import pytest

from drift_pipeline.detection import probes
from drift_pipeline.errors import InvalidInputError
from drift_pipeline.persistence.db import Store
from drift_pipeline.versioning import discovery, manifests, model_ids, registry, tenants
from drift_pipeline.versioning.discovery import Observation, ProviderSource
from drift_pipeline_tests.plugins.providers import FakeOpenAI


@pytest.mark.parametrize(
    ("model_id", "expected"),
    [
        ("gpt-4-0613", "gpt-4"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
        ("claude-3-5-sonnet-latest", "claude-3-5-sonnet"),
        ("openai/gpt-4-0314", "gpt-4"),
        ("smollm2-135m-instruct", "smollm2-135m-instruct"),
    ],
)
def test_family_strips_the_version_suffix(model_id: str, expected: str) -> None:
    assert model_ids.family(model_id) == expected


def test_list_models_from_a_real_openai_compatible_server(fake_openai: FakeOpenAI) -> None:
    fake_openai.models = ["llm-2026-01-01", "llm-2025-06-01"]
    source = ProviderSource("openai", "openai-compatible", api_base=fake_openai.api_base)
    assert discovery.list_models(source) == ["llm-2025-06-01", "llm-2026-01-01"]
    assert fake_openai.requests == [("GET", "/v1/models")]


def test_an_unreachable_source_is_an_error_not_an_exception() -> None:
    source = ProviderSource("openai", "openai-compatible", api_base="http://127.0.0.1:9/v1", timeout_s=0.5)
    [obs] = discovery.observe([source])
    assert obs.models == () and obs.error is not None and "GET http://127.0.0.1:9/v1/models failed" in obs.error


def test_bad_source_config_is_refused_in_one_line(tmp_path: Any) -> None:
    path = tmp_path / "providers.yaml"
    path.write_text("- {provider: x, kind: ftp}\n")
    with pytest.raises(InvalidInputError, match="kind must be one of"):
        discovery.load_sources(path)
    path.write_text("- {provider: x, kind: openai-compatible}\n")
    with pytest.raises(InvalidInputError, match="needs api_base"):
        discovery.load_sources(path)


def _seed(store: Store) -> None:
    registry.add_version(store, "openai", "llm-2025-06-01", actor="t", aliases=["llm-latest"])
    registry.add_version(store, "openai", "gpt-4-0613", actor="t")
    tenants.add_tenant(store, "acme", actor="t")
    manifests.pin(store, "acme", "support", "llm-2025-06-01", actor="t")


def test_diff_registers_family_members_only_from_hosted_lists(sqlite_store: Store) -> None:
    _seed(sqlite_store)
    versions = registry.list_versions(sqlite_store)
    aliases = {a: v.model_id for v in versions for a in v.aliases}
    hosted = Observation(
        ProviderSource("openai", "litellm"), models=("gpt-4-1106", "gpt-4", "dall-e-3", "llm-2025-06-01")
    )
    changes = discovery.diff([hosted], versions, aliases)
    # gpt-4 is a moving alias, dall-e-3 is no family of ours, llm-2025-06-01 is known.
    assert [n.model_id for n in changes.new_versions] == ["gpt-4-1106"]
    assert changes.alias_moves == []


def test_alias_move_is_noticed_applied_and_audited(sqlite_store: Store) -> None:
    _seed(sqlite_store)
    versions = registry.list_versions(sqlite_store)
    aliases = {a: v.model_id for v in versions for a in v.aliases}
    source = ProviderSource("openai", "openai-compatible", api_base="http://x/v1", aliases=("llm-latest",))
    obs = Observation(source, models=("llm-2025-06-01",), aliases={"llm-latest": "llm-2026-01-01"})
    changes = discovery.diff([obs], versions, aliases)
    assert [n.model_id for n in changes.new_versions] == ["llm-2026-01-01"]
    assert [(m.alias, m.old_model_id, m.new_model_id) for m in changes.alias_moves] == [
        ("llm-latest", "llm-2025-06-01", "llm-2026-01-01")
    ]
    done = discovery.apply(sqlite_store, changes, actor="sensor:new_model_version")
    assert registry.resolve_alias(sqlite_store, "llm-latest") == "llm-2026-01-01"
    assert registry.get_version(sqlite_store, "llm-2026-01-01").litellm_params == {"api_base": "http://x/v1"}
    assert [p.observed_by for p in registry.alias_history(sqlite_store, "llm-latest")][-1] == "sensor:new_model_version"
    assert len(done.new_versions) == 1 and len(done.alias_moves) == 1
    # Applying the same news again changes nothing.
    again = discovery.diff([obs], registry.list_versions(sqlite_store), {"llm-latest": "llm-2026-01-01"})
    assert not again


def test_pinned_in_family_uses_prefix_and_alias_history(sqlite_store: Store) -> None:
    _seed(sqlite_store)
    registry.add_version(sqlite_store, "openai", "renamed-model", actor="t")
    tenants.add_tenant(sqlite_store, "globex", actor="t")
    manifests.pin(sqlite_store, "globex", "bot", "renamed-model", actor="t")
    current = manifests.list_current(sqlite_store)
    providers = {"llm-2025-06-01": "openai", "renamed-model": "openai", "llm-2026-01-01": "openai"}
    assert discovery.pinned_in_family(current, providers, "llm-2026-01-01") == {"acme": {"llm-2025-06-01"}}
    linked = discovery.pinned_in_family(current, providers, "llm-2026-01-01", alias_versions=["renamed-model"])
    assert linked == {"acme": {"llm-2025-06-01"}, "globex": {"renamed-model"}}


def test_alias_resolution_through_litellm_reads_the_served_model(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_OPENAI_KEY", "sk-test")
    fake_openai.models = ["llm-2025-06-01"]
    fake_openai.serves = {"llm-latest": "llm-2026-01-01"}
    source = ProviderSource(
        "openai",
        "openai-compatible",
        api_base=fake_openai.api_base,
        api_key_env="FAKE_OPENAI_KEY",
        aliases=("llm-latest",),
    )
    [obs] = discovery.observe([source], resolve_alias=probes.litellm_alias_resolver)
    assert obs.error is None, obs.error
    assert obs.aliases == {"llm-latest": "llm-2026-01-01"}
    assert ("POST", "/v1/chat/completions") in fake_openai.requests
    [unresolved] = discovery.observe([source])  # no resolver: a clear error for that source, not a guess
    assert unresolved.error and "no alias resolver" in unresolved.error
