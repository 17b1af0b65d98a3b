"""Hostile agent configs (`pin --config`): bombs, deep nesting, wrong types, non-finite numbers, credentials.

Each is one line and exit 1 from the CLI, on SQLite and PostgreSQL alike, and stores nothing; a config
that is already stored and invalid (an old row, a database edit) never crashes `manifest show` and is
never handed to the runtime by `resolve`.
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drift_pipeline.errors import IntegrityError, InvalidInputError, RefusedError
from drift_pipeline.persistence import audit
from drift_pipeline.persistence.tables import ManifestRevision
from drift_pipeline.versioning import manifests, registry, tenants
from drift_pipeline.versioning.agent_config import MAX_CONFIG_BYTES, MAX_DEPTH, AgentConfig, secret_looking

# "Billion laughs": 9 levels of 9 aliases expand to 9**9 strings. The 465-byte one was killed at 1.8 GB;
# the compact one (one-letter anchors) is the 369-byte kind that took 16 s and grew the database to 80 MB.
ALIAS_BOMB = "memory_config:\n" + "".join(
    f"  l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9 if i else ['"lol"'] * 9) + "]\n" for i in range(9)
)
COMPACT_BOMB = "memory_config:\n" + "".join(
    f" {c}: &{c} [" + ",".join([f"*{chr(ord(c) - 1)}"] * 9 if c > "a" else ["l"] * 9) + "]\n" for c in "abcdefghi"
)


@pytest.fixture
def cli(store, home, monkeypatch, run_cli):
    """The console script against this test's store (SQLite or PostgreSQL), with a model and a tenant."""
    monkeypatch.setenv("DRIFT_PIPELINE_DATABASE_URL", store.engine.url.render_as_string(hide_password=False))
    registry.add_version(store, "openai", "m-1", actor="t")
    tenants.add_tenant(store, "acme", actor="t")
    return run_cli


def _refused(cli, tmp_path, name: str, text: str) -> str:
    """Pin with this config file; it must be one line, exit 1, and leave the store as it was."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    code, _, err = cli("pin", "acme", "support", "m-1", "--config", str(path))
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "Traceback" not in err, err
    assert cli("manifest", "show", "acme", "support")[0] == 1  # nothing was pinned
    return lines[0]


@pytest.mark.parametrize("bomb", [COMPACT_BOMB, ALIAS_BOMB], ids=["compact", "465-byte"])
def test_yaml_alias_bombs_are_refused_before_they_expand(cli, store, tmp_path, bomb):
    assert len(bomb) <= 465
    entries = len(audit.entries(store))
    assert "anchors and aliases are not accepted" in _refused(cli, tmp_path, "bomb.yaml", bomb)
    assert len(audit.entries(store)) == entries


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("self.yaml", "memory_config: &a {loop: *a}\n", "anchors and aliases are not accepted"),
        ("anchor.yaml", "system_prompt: &p hello\n", "anchors and aliases are not accepted"),
        ("deep.yaml", "memory_config: " + "[" * 100_000 + "]" * 100_000 + "\n", f"deeper than {MAX_DEPTH}"),
        ("deep.json", '{"memory_config": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested 100001 levels"),
        ("big.yaml", "system_prompt: " + "x" * (MAX_CONFIG_BYTES + 1), f"larger than {MAX_CONFIG_BYTES} bytes"),
        ("prompt.yaml", "system_prompt: 123\n", "system_prompt: Input should be a valid string"),
        ("nan.yaml", "decoding: {temperature: .nan}\n", "not a finite number"),
        ("nan.json", '{"decoding": {"temperature": NaN}}', "NaN is not a JSON number"),
        ("inf.yaml", "decoding: {top_p: .inf}\n", "not a finite number"),
        ("range.yaml", "decoding: {temperature: 7}\n", "decoding.temperature: Input should be less than or equal"),
        ("type.yaml", "decoding: {max_tokens: '64'}\n", "decoding.max_tokens: Input should be a valid integer"),
        ("unknown.yaml", "decoding: {telemetry_url: http://x}\n", "decoding.telemetry_url: Extra inputs"),
        ("key.yaml", "decoding: {temperature: 0.2, api_key: sk-live-123}\n", "decoding.api_key: credentials are"),
        ("memkey.yaml", "memory_config: {store: {password: hunter2}}\n", "memory_config.store.password"),
        ("memnan.yaml", "memory_config: {decay: .nan}\n", "not a finite number"),
        ("membig.yaml", "memory_config: {notes: '" + "x" * 20_000 + "'}\n", "the limit is 16384"),
        ("flow.yaml", "workflow_types: [1, 2]\n", "workflow_types.0: Input should be a valid string"),
        ("bytes.yaml", "system_prompt: \udcff\n", "not UTF-8"),
    ],
    ids=lambda v: v if isinstance(v, str) and v.endswith((".yaml", ".json")) else "",
)
def test_hostile_configs_are_one_line_and_store_nothing(cli, tmp_path, name, text, message):
    if name == "bytes.yaml":
        (tmp_path / name).write_bytes(text.encode("utf-8", "surrogateescape"))
        code, _, err = cli("pin", "acme", "support", "m-1", "--config", str(tmp_path / name))
        assert code == 1 and message in err and len(err.strip().splitlines()) == 1
        return
    assert message in _refused(cli, tmp_path, name, text)


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("api_key", True),
        ("apiKey", True),
        ("openaiKey", True),
        ("openai_api_key", True),
        ("routing_key", True),
        ("Authorization", True),
        ("x-auth-token", True),
        ("client_secret", True),
        ("PASSWORD", True),
        ("private_key", True),
        ("max_tokens", False),
        ("top_k", False),
        ("key", False),
        ("monkey", False),
    ],
)
def test_secret_looking_keys(key, secret):
    assert secret_looking(key) is secret


def test_configs_built_in_code_meet_the_same_bounds(store):
    registry.add_version(store, "openai", "m-1", actor="t")
    tenants.add_tenant(store, "acme", actor="t")
    for bad in (
        AgentConfig(decoding={"temperature": math.nan}),
        AgentConfig(decoding={"api_key": "sk-live-123"}),
        AgentConfig(system_prompt=123),  # type: ignore[arg-type]
    ):
        with pytest.raises(InvalidInputError):
            manifests.pin(store, "acme", "support", "m-1", config=bad, actor="t")
    assert manifests.list_current(store) == []


def test_an_invalid_stored_config_is_shown_but_never_resolved(cli, store, tmp_path):
    good = tmp_path / "agent.yaml"
    good.write_text("system_prompt: Be brief.\ndecoding: {temperature: 0.1}\n")
    assert cli("pin", "acme", "support", "m-1", "--config", str(good))[0] == 0
    # An insider (or a row from before validation) puts a wrong type and a credential into the stored config.
    with store.transaction() as session:
        row = session.query(ManifestRevision).one()
        row.config = {**row.config, "agent": {"system_prompt": 123, "decoding": {"api_key": "sk-live-123"}}}

    code, out, err = cli("manifest", "show", "acme", "support")
    assert code == 0 and "invalid stored config" in out, err
    code, out, _ = cli("manifest", "show", "acme", "support", "--json")
    assert code == 0 and "credentials are not accepted" in json.loads(out)["config_error"]
    code, out, err = cli("resolve", "acme", "support")
    assert code == 1 and out == "" and "holds an invalid config" in err and len(err.strip().splitlines()) == 1
    assert "sk-live-123" not in out + err
    with pytest.raises(IntegrityError):
        manifests.current(store, "acme", "support").require_valid_config()

    # A change that keeps the broken config is refused; pinning a corrected one repairs the manifest.
    with pytest.raises(RefusedError, match="holds an invalid config"):
        manifests.update(store, "acme", "support", {"drift_alert_threshold": 0.1}, actor="t")
    assert cli("pin", "acme", "support", "m-1", "--config", str(good))[0] == 0
    code, out, _ = cli("resolve", "acme", "support")
    assert code == 0 and json.loads(out)["decoding"]["temperature"] == 0.1


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=12,
)
_fields = st.sampled_from(["system_prompt", "tools", "response_schema", "memory_config", "workflow_types", "decoding"])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(_fields | st.text(max_size=6), _json, max_size=4), st.dictionaries(st.text(max_size=12), _json))
def test_any_config_is_accepted_whole_or_refused_in_one_line(data, decoding):
    """Whatever the mapping, `from_dict` returns a valid config or raises `InvalidInputError`: nothing else."""
    data = {**data, "decoding": decoding} if decoding else data
    try:
        config = AgentConfig.from_dict(data)
    except InvalidInputError as exc:
        assert "\n" not in str(exc)
        return
    assert all(isinstance(v, (int, float, str, list, dict)) for v in config.decoding.values())
    assert not any(isinstance(v, float) and not math.isfinite(v) for v in config.decoding.values())
    assert not any(secret_looking(k) for k in config.decoding)
    json.dumps(config.memory_config, allow_nan=False)  # storable on PostgreSQL


def test_registry_versions_meet_the_same_decoding_rules(store):
    """A version's default decoding reaches `resolve` too: typed and finite, and no credential anywhere."""
    for decoding, params in (
        ({"temperature": math.inf}, None),
        ({"api_key": "sk-live-123"}, None),
        ({"max_tokens": "64"}, None),
        ({}, {"api_key": "sk-live-123"}),
        ({}, {"extra_headers": {"Authorization": "Bearer sk-live-123"}}),
    ):
        with pytest.raises(InvalidInputError):
            registry.add_version(store, "openai", "m-1", decoding=decoding, litellm_params=params, actor="t")
    assert registry.list_versions(store) == []
    registry.add_version(
        store, "openai", "m-1", decoding={"temperature": 0.2}, litellm_params={"api_key_env": "K"}, actor="t"
    )
    assert registry.get_version(store, "m-1").decoding == {"temperature": 0.2}
