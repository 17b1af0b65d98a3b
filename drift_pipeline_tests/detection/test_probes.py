"""Probe fingerprints and the noise-floor rule (scripted responders; the real model runs in test_sensors)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from drift_pipeline.detection import probes
from drift_pipeline.errors import InvalidInputError
from drift_pipeline.persistence.objects import ObjectStore

TARGET = probes.ProbeTarget("m-1", "offline")


def scripted(*rounds: list[str]) -> probes.Completer:
    """A responder answering round i with rounds[i] (the last round repeats)."""
    calls = {"n": 0}

    def complete(model: str, params: dict[str, Any], prompts: Sequence[str]) -> list[str]:
        answer = rounds[min(calls["n"], len(rounds) - 1)]
        calls["n"] += 1
        assert model == "offline/m-1" and len(prompts) == len(probes.PROBE_PROMPTS)
        return list(answer)

    return complete


def word_overlap(left: list[str], right: list[str]) -> list[float]:
    """Jaccard word overlap: a transparent stand-in for embedding similarity."""
    out = []
    for a, b in zip(left, right, strict=True):
        sa, sb = set(a.split()), set(b.split())
        out.append(len(sa & sb) / max(1, len(sa | sb)))
    return out


BASE = ["Paris.", '{"status": "ok"}', "Use a lock pick and a tension wrench.", "It arrives at 5pm."]
REFUSING = ["Paris.", '{"status": "ok"}', "I'm sorry, but I can't help with that.", "It arrives at 5pm."]


def test_fingerprint_ignores_case_and_whitespace_only() -> None:
    assert probes.fingerprint(["Paris.\n", "a  b"]) == probes.fingerprint(["paris.", "A b"])
    assert probes.fingerprint(["Paris."]) != probes.fingerprint(["Lyon."])


def test_deterministic_model_has_a_zero_floor_and_any_real_change_is_beyond_it() -> None:
    ref = probes.measure_reference(TARGET, complete=scripted(BASE), similarity=word_overlap)
    assert (ref.noise_distance, ref.noise_changed_rate, ref.revision) == (0.0, 0.0, 0)
    same = probes.run_probe(TARGET, complete=scripted(BASE))
    assert probes.compare(ref, same, similarity=word_overlap).reason == "identical"
    changed = probes.compare(ref, probes.run_probe(TARGET, complete=scripted(REFUSING)), similarity=word_overlap)
    assert changed.changed and changed.changed_prompts == [2] and changed.distance > 0.2


def test_a_noisy_model_needs_more_than_its_own_jitter() -> None:
    jitter = [BASE[0], BASE[1], "Use a lock pick and a tension wrench, carefully.", BASE[3]]
    ref = probes.measure_reference(TARGET, complete=scripted(BASE, jitter), similarity=word_overlap)
    assert ref.noise_changed_rate == 0.25 and ref.noise_distance > 0
    again = probes.compare(ref, probes.run_probe(TARGET, complete=scripted(jitter)), similarity=word_overlap)
    assert not again.changed  # the same amount of change as between the two registration probes
    refused = probes.compare(
        ref, probes.run_probe(TARGET, complete=scripted(["Lyon.", "no", *REFUSING[2:]])), similarity=word_overlap
    )
    assert refused.changed and "noise floor" in refused.reason


def test_reference_round_trips_through_object_storage(tmp_path: Path) -> None:
    objects = ObjectStore(str(tmp_path / "data"))
    assert probes.load_reference(objects, "m-1") is None
    ref = probes.measure_reference(TARGET, complete=scripted(BASE), similarity=word_overlap)
    probes.save_reference(objects, ref)
    loaded = probes.load_reference(objects, "m-1")
    assert loaded == ref and loaded.registry_fingerprint.startswith("probe-v1:")


def test_wrong_number_of_answers_is_refused() -> None:
    ref = probes.measure_reference(TARGET, complete=scripted(BASE), similarity=word_overlap)
    short = probes.ProbeResult("m-1", BASE[:2], probes.fingerprint(BASE[:2]), "now")
    with pytest.raises(InvalidInputError, match="2 responses, reference has 4"):
        probes.compare(ref, short)
