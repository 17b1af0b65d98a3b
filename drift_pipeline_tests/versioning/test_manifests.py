"""Tenant manifests: exact pins only, revisions, history, refusals that store nothing."""

import json

import pytest

from drift_pipeline.errors import InvalidInputError, NotFoundError, RefusedError
from drift_pipeline.persistence import audit
from drift_pipeline.versioning import manifests, registry, tenants
from drift_pipeline.versioning.manifests import AgentConfig
from drift_pipeline_tests.plugins.migration import add_baseline

ACTOR = "test"


@pytest.fixture
def acme(store):
    registry.add_version(store, "openai", "gpt-4-0314", aliases=["gpt-4"], actor=ACTOR)
    registry.add_version(store, "openai", "gpt-4-0613", actor=ACTOR)
    tenants.add_tenant(store, "acme", contact="ops@acme.io", regulated=True, actor=ACTOR)
    return store


def _state(store):
    """Everything a refused change must leave untouched."""
    return [m.to_dict() for m in manifests.list_current(store)], len(audit.entries(store))


def test_pin_writes_revisions_and_keeps_history(acme):
    config = AgentConfig(
        system_prompt="You are helpful.",
        workflow_types=["refund"],
        tools=[
            {
                "type": "function",
                "function": {
                    "name": "lookup",
                    "parameters": {"type": "object", "properties": {"id": {"type": "string"}}},
                },
            }
        ],
    )
    first = manifests.pin(acme, "acme", "support", "gpt-4-0314", threshold=0.03, config=config, actor=ACTOR)
    add_baseline(acme, "bl-1", "acme", "support", "gpt-4-0314")
    manifests.set_baseline(acme, "acme", "support", "bl-1", actor=ACTOR)
    second = manifests.pin(acme, "acme", "support", "gpt-4-0613", actor=ACTOR, reason="opt-in migration")

    assert (first.revision, second.revision) == (1, 3)
    now = manifests.current(acme, "acme", "support")
    assert now.pinned_model_id == "gpt-4-0613" and now.drift_alert_threshold == 0.03
    assert now.config == config  # carried over unchanged
    assert now.behavioral_baseline_id is None  # a baseline belongs to the model it fingerprinted
    assert now.tenant.regulated and now.tenant.contact == "ops@acme.io"
    assert [m.behavioral_baseline_id for m in manifests.history(acme, "acme", "support")] == [None, "bl-1", None]
    assert manifests.get_revision(acme, "acme", "support", 2).pinned_model_id == "gpt-4-0314"


def test_alias_or_unknown_model_is_refused_and_nothing_changes(acme):
    manifests.pin(acme, "acme", "support", "gpt-4-0314", actor=ACTOR)
    before = _state(acme)
    with pytest.raises(RefusedError, match=r"'gpt-4' is an alias .* resolves to 'gpt-4-0314'"):
        manifests.pin(acme, "acme", "support", "gpt-4", actor=ACTOR)
    with pytest.raises(NotFoundError, match="unknown model 'gpt-5'"):
        manifests.pin(acme, "acme", "support", "gpt-5", actor=ACTOR)
    with pytest.raises(NotFoundError, match="unknown tenant 'globex'"):
        manifests.pin(acme, "globex", "support", "gpt-4-0314", actor=ACTOR)
    with pytest.raises(InvalidInputError, match="out of range"):
        manifests.pin(acme, "acme", "support", "gpt-4-0613", threshold=1.5, actor=ACTOR)
    assert _state(acme) == before


@pytest.mark.parametrize(
    ("text", "suffix", "message"),
    [
        ("tools: [{type: function, function: {name: f, parameters: {type: 12}}}]", ".yaml", "not a valid JSON Schema"),
        ("tools: [ {unclosed", ".yaml", "not valid YAML"),
        ('{"tools": [', ".json", "not valid JSON"),
        ("response_schema: {type: objekt}", ".yaml", "response_schema is not a valid JSON Schema"),
        ("surprise: 1", ".yaml", "unknown agent config keys: surprise"),
        ("- just\n- a list", ".yaml", "must be a mapping"),
    ],
)
def test_malformed_agent_config_is_refused(tmp_path, text, suffix, message):
    path = tmp_path / f"agent{suffix}"
    path.write_text(text)
    with pytest.raises(InvalidInputError, match=message):
        AgentConfig.from_file(path)


def test_valid_agent_config_loads_from_yaml_and_json(tmp_path):
    data = {
        "system_prompt": "Be brief.",
        "response_schema": {"type": "object", "required": ["answer"]},
        "workflow_types": ["faq"],
        "decoding": {"max_tokens": 64},
    }
    (tmp_path / "a.json").write_text(json.dumps(data))
    import yaml

    (tmp_path / "a.yaml").write_text(yaml.safe_dump(data))
    assert (
        AgentConfig.from_file(tmp_path / "a.json") == AgentConfig.from_file(tmp_path / "a.yaml") == AgentConfig(**data)
    )


def test_tenant_settings_are_versioned_with_the_manifest(acme):
    manifests.pin(acme, "acme", "support", "gpt-4-0314", actor=ACTOR)
    tenants.update_tenant(acme, "acme", sampling_consent=False, actor=ACTOR, reason="consent withdrawn")
    revisions = manifests.history(acme, "acme", "support")
    assert [m.tenant.sampling_consent for m in revisions] == [True, False]
    assert tenants.get_tenant(acme, "acme").sampling_consent is False
    with pytest.raises(InvalidInputError):
        tenants.update_tenant(acme, "acme", contact="not-an-email", actor=ACTOR)
    assert tenants.get_tenant(acme, "acme").contact == "ops@acme.io"


def test_ids_must_be_slugs(acme):
    with pytest.raises(InvalidInputError):
        tenants.add_tenant(acme, "Acme,Inc", actor=ACTOR)
    with pytest.raises(InvalidInputError):
        manifests.pin(acme, "acme", "a|b", "gpt-4-0314", actor=ACTOR)


def test_conditional_update_refuses_a_stale_revision(acme):
    manifests.pin(acme, "acme", "support", "gpt-4-0314", actor=ACTOR)
    manifests.update(acme, "acme", "support", {"drift_alert_threshold": 0.1}, actor=ACTOR, expected_revision=1)
    with pytest.raises(RefusedError, match="changed meanwhile"):
        manifests.update(acme, "acme", "support", {"drift_alert_threshold": 0.2}, actor=ACTOR, expected_revision=1)
    assert manifests.current(acme, "acme", "support").drift_alert_threshold == 0.1


def test_a_manifest_only_points_at_its_own_baseline(acme):
    from drift_pipeline.persistence.audit import utcnow
    from drift_pipeline.persistence.tables import Baseline

    tenants.add_tenant(acme, "globex", actor=ACTOR)
    manifests.pin(acme, "acme", "support", "gpt-4-0314", actor=ACTOR)
    manifests.pin(acme, "globex", "support", "gpt-4-0314", actor=ACTOR)
    with acme.transaction() as s:
        for bid, tenant, model in (("bl-globex", "globex", "gpt-4-0314"), ("bl-old-model", "acme", "gpt-4-0613")):
            s.add(
                Baseline(
                    baseline_id=bid,
                    tenant_id=tenant,
                    agent_id="support",
                    model_id=model,
                    uri="x",
                    n_prompts=1,
                    summary={},
                    created_at=utcnow(),
                )
            )
    before = _state(acme)
    with pytest.raises(RefusedError, match="belongs to globex/support"):
        manifests.set_baseline(acme, "acme", "support", "bl-globex", actor=ACTOR)
    with pytest.raises(RefusedError, match="on gpt-4-0613, not acme/support on gpt-4-0314"):
        manifests.set_baseline(acme, "acme", "support", "bl-old-model", actor=ACTOR)
    with pytest.raises(RefusedError, match="baseline 'bl-unknown' does not exist"):
        manifests.pin(acme, "acme", "support", "gpt-4-0314", baseline_id="bl-unknown", actor=ACTOR)
    manifests_now, entries = _state(acme)
    assert manifests_now == before[0] and entries == before[1] + 3  # nothing changed; each attempt audited
    refused = audit.entries(acme, tenant_id="acme")[-3:]
    assert [e["action"] for e in refused] == ["manifest.baseline_refused"] * 2 + ["manifest.pin_refused"]
