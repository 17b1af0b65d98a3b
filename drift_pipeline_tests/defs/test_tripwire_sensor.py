"""The silent-change sensor checks the logprob tripwire first, against a real local OpenAI-compatible server:
quiet ticks cost only one-token completions, a moved fingerprint registers a revision and asks for replays,
and a server without logprobs falls back to the text probes, saying so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from drift_pipeline.defs.detection import sensors
from drift_pipeline.detection import probes, tripwire
from drift_pipeline.persistence import audit
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.objects import ObjectStore
from drift_pipeline.versioning import manifests, registry, tenants
from drift_pipeline_tests.plugins.migration import add_baseline
from drift_pipeline_tests.plugins.providers import FakeOpenAI

MODEL = "llm-2026-01-01"
PROMPTS = ("capital of Italy?",)
TRIP = ("one token please",)


@pytest.fixture
def setup(home: Path, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("FAKE_OPENAI_KEY", "sk-test")
    store = Store.open(f"sqlite:///{home / 'drift.db'}")
    params = {"api_base": fake_openai.api_base, "api_key_env": "FAKE_OPENAI_KEY"}
    registry.add_version(store, "openai", MODEL, actor="t", litellm_params=params)
    tenants.add_tenant(store, "acme", actor="t")
    manifests.pin(store, "acme", "support", MODEL, actor="t")
    add_baseline(store, "bl-acme", "acme", "support", MODEL)  # pins need a real baseline of the pinned model
    manifests.set_baseline(store, "acme", "support", "bl-acme", actor="t")
    return {"store": store, "objects": ObjectStore(str(home / "data")), "fake": fake_openai}


def words(left: list[str], right: list[str]) -> list[float]:
    """Word-overlap similarity: keeps these tests off the embedding model."""
    return [
        len(set(a.split()) & set(b.split())) / max(1, len(set(a.split()) | set(b.split())))
        for a, b in zip(left, right, strict=True)
    ]


def tick(setup: dict[str, Any], cursor: dict[str, Any] | None) -> Any:
    return sensors.silent_change_tick(
        setup["store"], setup["objects"], cursor, similarity=words, prompts=PROMPTS, tripwire_prompts=TRIP
    )


def text_probe_calls(fake: FakeOpenAI) -> int:
    return sum(1 for b in fake.bodies if not b.get("logprobs"))


def test_tripwire_gates_the_text_probe_and_catches_a_moved_fingerprint(setup: dict[str, Any]) -> None:
    fake, store = setup["fake"], setup["store"]
    fake.logprobs = {"Rome": -0.05, "The": -3.2, "Milan": -4.0}
    first = tick(setup, None)
    assert not first.run_requests and "tripwire tolerance" in first.log[0], first.log
    assert tripwire.load_reference(setup["objects"], MODEL).available
    probes_before = text_probe_calls(fake)

    quiet = tick(setup, first.cursor)
    assert not quiet.run_requests and "tripwire: max |d logprob| 0.0000" in quiet.log[0], quiet.log
    assert text_probe_calls(fake) == probes_before  # nothing moved: no text probe, no replay

    fake.logprobs = {"Rome": -0.3, "The": -2.0, "Milan": -4.0}  # same answers, different numbers
    changed = tick(setup, first.cursor)
    assert text_probe_calls(fake) == probes_before + len(PROMPTS)  # the text probe runs as evidence
    [request] = changed.run_requests
    assert request.tags["drift_pipeline/reason"] == "silent-change"
    assert request.tags["drift_pipeline/provider"] == registry.get_version(store, MODEL).provider
    assert registry.get_version(store, MODEL).fingerprint.endswith(":r1")
    [entry] = audit.entries(store, action_prefix="model.silent_change")
    assert entry["after"]["tripwire"]["fired"] and entry["after"]["tripwire"]["distance"] == pytest.approx(1.2)
    assert not entry["after"]["changed"]  # the text probe saw the same answer: the tripwire alone caught it
    again = tick(setup, changed.cursor)
    assert not again.run_requests and "unchanged (tripwire" in again.log[0]  # the new fingerprint is the reference


def test_server_without_logprobs_falls_back_to_text_probes_and_says_so(setup: dict[str, Any]) -> None:
    fake = setup["fake"]  # logprobs None: the server ignores logprobs=true
    first = tick(setup, None)
    assert sensors.NO_LOGPROBS in first.log[0] and not tripwire.load_reference(setup["objects"], MODEL).available
    quiet = tick(setup, first.cursor)
    assert not quiet.run_requests and quiet.log == [f"{MODEL}: unchanged ({sensors.NO_LOGPROBS}; identical)"]
    fake.reply = "I'm sorry, but I can't help with that."
    changed = tick(setup, first.cursor)
    assert [r.tags["drift_pipeline/reason"] for r in changed.run_requests] == ["silent-change"]
    assert sensors.NO_LOGPROBS in changed.log[0] and "SILENT CHANGE" in changed.log[0]
    [entry] = audit.entries(setup["store"], action_prefix="model.silent_change")
    assert entry["after"]["tripwire"] == {"available": False, "reason": sensors.NO_LOGPROBS}
    assert probes.load_reference(setup["objects"], MODEL).revision == 1
