"""score_pairs end to end on real LLMDrift outputs with controlled shifts injected."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from drift_pipeline.detection.scoring import measure_noise_floor, score_pairs
from drift_pipeline.errors import InvalidInputError
from drift_pipeline_tests.plugins.scoring import answers

REPORT_KEYS = {"schema_version", "tenant_id", "agent_id", "baseline", "candidate", "n_pairs", "alpha", "threshold"}
REPORT_KEYS |= {"drift_detected", "dimensions", "examples", "generated_at"}
DIMENSION_KEYS = {"name", "kind", "baseline_value", "candidate_value", "effect", "relative_effect", "ci_low"}
DIMENSION_KEYS |= {"ci_high", "p_value", "p_adjusted", "test", "noise_floor", "n", "drifted", "near_miss", "direction"}


def pairs_from(base: pd.DataFrame, candidate_texts) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "pair_id": base["id"].astype(str),
            "prompt": base["query"],
            "baseline_text": base["answer"],
            "candidate_text": list(candidate_texts),
        }
    )


@pytest.fixture(scope="module")
def prime_gpt4(prime) -> pd.DataFrame:
    return answers(prime, "gpt-4-0314").head(300)


def test_injected_refusal_shift_in_real_outputs_is_detected(prime_gpt4, sensitiveq, embedder):
    refusals = answers(sensitiveq, "gpt-4-0613")["answer"]
    refusals = refusals[refusals.str.startswith("Sorry")].tolist()
    rng = np.random.default_rng(7)
    flip = rng.choice(len(prime_gpt4), size=30, replace=False)  # +10 points of refusals
    candidate = prime_gpt4["answer"].tolist()
    for i in flip:
        candidate[i] = refusals[i % len(refusals)]
    result = score_pairs(
        pairs_from(prime_gpt4, candidate), baseline="pinned", candidate="cand", threshold=0.05, embedder=embedder
    )
    dims = {d["name"]: d for d in result.report["dimensions"]}
    assert result.drift_detected
    assert dims["refusal"]["drifted"] and dims["refusal"]["direction"] == "up"
    assert dims["refusal"]["effect"] == pytest.approx(0.10)
    assert dims["refusal"]["ci_low"] > 0
    # The most changed examples are the injected refusals, with both responses.
    example = result.report["examples"][0]
    assert "refusal" in example["changed"] and example["candidate_text"] in refusals
    assert set(result.report) >= REPORT_KEYS and all(set(d) >= DIMENSION_KEYS for d in result.report["dimensions"])
    json.dumps(result.report)  # JSON-safe


def test_same_outputs_report_no_drift_without_embedding(prime_gpt4, embedder):
    before = embedder.texts_embedded
    result = score_pairs(
        pairs_from(prime_gpt4, prime_gpt4["answer"]), baseline="a", candidate="a", threshold=0.05, embedder=embedder
    )
    assert not result.drift_detected and result.report["verdict"] in ("equivalent", "inconclusive")
    assert embedder.texts_embedded == before  # exact-match shortcut
    sims = result.per_pair[result.per_pair["dimension"] == "similarity"]["candidate_value"]
    assert (sims == 1.0).all()
    assert result.report["examples"] == []


def test_per_pair_table_and_not_applicable(prime_gpt4):
    result = score_pairs(
        pairs_from(prime_gpt4.head(20), prime_gpt4["answer"].head(20)),
        baseline="a",
        candidate="b",
        threshold=0.05,
        dimensions=["refusal", "schema_compliance", "tool_choice"],
    )
    per_pair = result.per_pair
    assert list(per_pair.columns) == ["pair_id", "dimension", "kind", "baseline_value", "candidate_value", "difference"]
    assert len(per_pair) == 60
    assert per_pair[per_pair["dimension"] == "schema_compliance"]["baseline_value"].isna().all()
    assert result.report["not_applicable"] == ["schema_compliance", "tool_choice"]
    assert [d["name"] for d in result.report["dimensions"]] == ["refusal"]


def test_malformed_rows_are_quarantined_and_counted(prime_gpt4):
    pairs = pairs_from(prime_gpt4.head(10), prime_gpt4["answer"].head(10))
    pairs["baseline_tool_calls"] = "null"
    pairs["candidate_tool_calls"] = "null"
    pairs.loc[3, "candidate_tool_calls"] = "{not json"
    pairs = pd.concat([pairs, pairs.head(1)], ignore_index=True)  # a duplicate pair id
    result = score_pairs(pairs, baseline="a", candidate="b", threshold=0.05, dimensions=["length"])
    assert result.report["n_pairs"] == 9
    assert result.report["quarantined"]["count"] == 2
    reasons = {q["reason"] for q in result.report["quarantined"]["items"]}
    assert reasons == {"candidate_tool_calls is not valid JSON", "duplicate pair_id"}


def test_bad_input_gives_one_line_errors():
    with pytest.raises(InvalidInputError, match="lacks column"):
        score_pairs(pd.DataFrame({"pair_id": ["1"]}), baseline="a", candidate="b", threshold=0.05)
    ok = pd.DataFrame({"pair_id": ["1"], "prompt": ["q"], "baseline_text": ["a"], "candidate_text": ["b"]})
    with pytest.raises(InvalidInputError, match="not valid JSON Schema"):
        score_pairs(ok, baseline="a", candidate="b", threshold=0.05, response_schema={"type": 12})


def test_similarity_is_tested_against_a_measured_noise_floor(sensitiveq, embedder):
    base = answers(sensitiveq, "gpt-4-0314").head(40)
    # A pinned replay that only re-punctuates: the model's self-similarity stays near 1.
    replay = base["answer"].str.replace(".", " .", regex=False)
    noise = measure_noise_floor(pairs_from(base, replay), dimensions=["similarity", "length"], embedder=embedder)
    assert noise.n_pairs == 40 and np.mean(noise.similarities) > 0.95
    drifted = answers(sensitiveq, "gpt-4-0613").head(40)["answer"]
    kwargs = {"baseline": "a", "candidate": "b", "threshold": 0.05, "noise_floor": noise, "embedder": embedder}
    result = score_pairs(pairs_from(base, drifted), dimensions=["similarity"], **kwargs)
    (sim,) = result.report["dimensions"]
    assert sim["test"] == "welch-vs-noise-floor" and sim["drifted"] and sim["direction"] == "down"
    same = score_pairs(pairs_from(base, replay), dimensions=["similarity"], **kwargs)
    assert not same.drift_detected
