"""Model version registry: exact versions, aliases with history, deprecation, usage (SQLite and Postgres)."""

from datetime import date

import pytest

from drift_pipeline.errors import NotFoundError, RefusedError
from drift_pipeline.persistence import audit
from drift_pipeline.versioning import manifests, registry, tenants

ACTOR = "test"


def test_alias_history_records_when_an_alias_moved(store):
    registry.add_version(store, "openai", "gpt-4-0314", aliases=["gpt-4"], actor=ACTOR)
    registry.add_version(store, "openai", "gpt-4-0613", actor=ACTOR)
    assert registry.resolve_alias(store, "gpt-4") == "gpt-4-0314"

    assert registry.set_alias(store, "gpt-4", "gpt-4-0613", actor=ACTOR, observed_by="sensor")
    assert not registry.set_alias(store, "gpt-4", "gpt-4-0613", actor=ACTOR)  # no-op, no new period

    periods = registry.alias_history(store, "gpt-4")
    assert [p.model_id for p in periods] == ["gpt-4-0314", "gpt-4-0613"]
    assert periods[0].valid_to is not None and periods[0].valid_to == periods[1].valid_from
    assert periods[1].valid_to is None and periods[1].observed_by == "sensor"
    assert registry.get_version(store, "gpt-4-0613").aliases == ("gpt-4",)
    assert registry.get_version(store, "gpt-4-0314").aliases == ()


def test_names_are_either_a_version_or_an_alias(store):
    registry.add_version(store, "openai", "gpt-4-0613", aliases=["gpt-4"], actor=ACTOR)
    with pytest.raises(RefusedError, match="already an alias"):
        registry.add_version(store, "openai", "gpt-4", actor=ACTOR)
    with pytest.raises(RefusedError, match="already registered"):
        registry.add_version(store, "openai", "gpt-4-0613", actor=ACTOR)
    with pytest.raises(RefusedError, match="registered version id"):
        registry.set_alias(store, "gpt-4-0613", "gpt-4-0613", actor=ACTOR)
    with pytest.raises(NotFoundError):
        registry.set_alias(store, "gpt-5", "no-such-model", actor=ACTOR)
    assert [v.model_id for v in registry.list_versions(store)] == ["gpt-4-0613"]


def test_deprecation_successor_and_usage(store):
    registry.add_version(store, "openai", "old-1", actor=ACTOR)
    registry.add_version(store, "openai", "new-2", actor=ACTOR)
    tenants.add_tenant(store, "acme", actor=ACTOR)
    manifests.pin(store, "acme", "support", "old-1", actor=ACTOR)
    manifests.pin(store, "acme", "triage", "old-1", actor=ACTOR)
    manifests.pin(store, "acme", "triage", "new-2", actor=ACTOR)  # only the current revision counts

    info = registry.deprecate(store, "old-1", sunset=date(2099, 1, 1), successor="new-2", actor=ACTOR)
    assert (info.status, info.successor_id, info.sunset_date) == ("deprecated", "new-2", date(2099, 1, 1))
    past = registry.deprecate(store, "new-2", sunset=date(2000, 1, 1), actor=ACTOR)
    assert past.status == "sunset"
    with pytest.raises(RefusedError):
        registry.deprecate(store, "old-1", sunset=date(2099, 1, 1), successor="old-1", actor=ACTOR)
    assert registry.usage(store) == {"old-1": 1, "new-2": 1}


def test_every_registry_change_is_audited(store):
    registry.add_version(store, "openai", "a-1", aliases=["a"], actor="alice")
    registry.add_version(store, "openai", "a-2", actor="alice")
    registry.set_alias(store, "a", "a-2", actor="bob", reason="provider moved it")
    registry.record_fingerprint(store, "a-2", "fp_123", actor="sensor")
    actions = [(e["action"], e["actor"]) for e in audit.entries(store)]
    assert actions == [
        ("registry.add", "alice"),
        ("registry.alias", "alice"),
        ("registry.add", "alice"),
        ("registry.alias", "bob"),
        ("registry.fingerprint", "sensor"),
    ]
    moved = audit.entries(store)[3]
    assert moved["before"] == {"alias": "a", "model_id": "a-1"} and moved["after"]["model_id"] == "a-2"
    assert audit.verify(store).ok
