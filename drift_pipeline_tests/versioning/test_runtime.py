"""Runtime resolution: exact model, never a silent default, cache invalidated on manifest change."""

import pytest

from drift_pipeline.errors import NotFoundError
from drift_pipeline.versioning import manifests, registry, tenants
from drift_pipeline.versioning.runtime import Resolver


@pytest.fixture
def pinned(store):
    registry.add_version(store, "openai", "m-1", decoding={"temperature": 0.2}, actor="t")
    registry.add_version(store, "local", "m-2", litellm_params={"api_base": "http://127.0.0.1:8000/v1"}, actor="t")
    tenants.add_tenant(store, "acme", actor="t")
    manifests.pin(store, "acme", "support", "m-1", config=manifests.AgentConfig(decoding={"max_tokens": 64}), actor="t")
    return store


def test_resolves_exact_model_with_decoding(pinned):
    r = Resolver(pinned).resolve("acme", "support")
    assert (r.model_id, r.provider, r.litellm_model, r.manifest_revision) == ("m-1", "openai", "openai/m-1", 1)
    assert r.decoding == {"temperature": 0.2, "max_tokens": 64}


def test_unknown_tenant_or_agent_is_an_error_not_a_default(pinned):
    resolver = Resolver(pinned)
    with pytest.raises(NotFoundError, match="unknown tenant 'nobody'"):
        resolver.resolve("nobody", "support")
    with pytest.raises(NotFoundError, match="no manifest for agent 'other'"):
        resolver.resolve("acme", "other")


def test_in_process_change_invalidates_at_once(pinned):
    resolver = Resolver(pinned, poll_interval=3600)
    assert resolver.resolve("acme", "support").model_id == "m-1"
    manifests.pin(pinned, "acme", "support", "m-2", actor="t")
    r = resolver.resolve("acme", "support")
    assert (r.model_id, r.litellm_params) == ("m-2", {"api_base": "http://127.0.0.1:8000/v1"})
