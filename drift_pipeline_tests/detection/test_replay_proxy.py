"""Replay through a LiteLLM proxy (provider `litellm_proxy`) by configuration alone, against a real local
OpenAI-compatible HTTP server standing in for the proxy."""

from __future__ import annotations

import json

import pytest

from drift_pipeline.detection.replay import Decoding, ReplayTarget, replay
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.tables import ReplayOutput
from drift_pipeline.versioning import registry
from drift_pipeline_tests.plugins.providers import FakeOpenAI
from drift_pipeline_tests.plugins.replay import make_sample

DEC = Decoding(temperature=0, seed=3, max_tokens=16)


def test_replay_through_a_litellm_proxy_by_configuration_only(
    sqlite_store: Store, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEAM_PROXY_KEY", "sk-proxy-team")
    fake_openai.reply = "answered by the proxy's upstream"
    proxy = fake_openai.api_base.removesuffix("/v1")  # a LiteLLM proxy serves /chat/completions at its root
    registry.add_version(
        sqlite_store,
        "litellm_proxy",
        "team-gpt",
        actor="t",
        litellm_params={"api_base": proxy, "api_key_env": "TEAM_PROXY_KEY"},
    )
    target = ReplayTarget.from_version(registry.get_version(sqlite_store, "team-gpt"))
    df = replay(make_sample(["where is my refund?"]), [target], store=sqlite_store, decoding=DEC, progress=False)

    assert df["error"].tolist() == [""] and df["response_text"].tolist() == ["answered by the proxy's upstream"]
    assert fake_openai.requests == [("POST", "/chat/completions")]
    [body] = fake_openai.bodies
    assert body["model"] == "team-gpt"  # the proxy's model alias, unprefixed: the proxy routes it
    assert body["seed"] == 3 and body["temperature"] == 0 and body["max_tokens"] == 16
    with sqlite_store.session() as s:
        stored = s.get(ReplayOutput, df["cache_key"].iloc[0])
    assert "sk-proxy-team" not in json.dumps(stored.request)

    again = replay(make_sample(["where is my refund?"]), [target], store=sqlite_store, decoding=DEC, progress=False)
    assert again["cache_hit"].all() and len(fake_openai.requests) == 1
