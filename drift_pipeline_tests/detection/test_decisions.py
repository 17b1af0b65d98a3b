"""Decision extraction and the decision, non-answer, correctness and usage dimensions, end to end."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from drift_pipeline.detection.compare import compare
from drift_pipeline.detection.decisions import decision_spec, extract, prompt_spec
from drift_pipeline.detection.dimensions.base import PairContext
from drift_pipeline.detection.scoring import score_pairs
from drift_pipeline_tests.detection.survey import survey_records, write_jsonl
from drift_pipeline_tests.plugins.scoring import answers

DECISION_DIMS = ["refusal", "non_answer", "decision_given", "decision_changed", "length"]


@pytest.mark.parametrize(
    ("prompt", "response", "expected"),
    [
        ("Pick one.\n(A) Cats\n(B) Dogs\n(C) Fish", "(B) Dogs", "B"),
        ("Pick one.\nA. Cats\nB. Dogs\nC. Fish", "I would choose C.", "C"),
        ("Pick one: A) Cats B) Dogs C) Fish", "Dogs.", "B"),
        ("Pick one.\n(A) Cats\n(B) Dogs", "A good question, but I have no pets.", None),
        ("Pick one.\n(A) Cats\n(B) Dogs", "Both (A) and (B) are lovely.", None),
        ('Is 7 prime? Think step by step and answer "[Yes]" or "[No]".', "7 has no divisors... so [Yes].", "yes"),
        ("Answer yes or no: is the sky green?", "No, it is blue.", "no"),
        ("True or false: water is wet.", "True.", "true"),
        ("Classify the review as positive, negative or neutral: 'meh'", "Neutral", "neutral"),
        ("What is 12 + 30? Put the final answer in \\boxed{}.", "12 + 30 = \\boxed{42}", "42"),
        ("How many legs does a spider have?", "A spider has 8 legs.", "8"),
    ],
)
def test_extracts_the_decision_the_prompt_asks_for(prompt, response, expected):
    spec = prompt_spec(prompt)
    assert spec is not None
    assert extract(spec, response) == expected


def test_open_prompts_have_no_checkable_decision():
    for prompt in ("Write a haiku about rain.", "Explain how vaccines work.", "A is for apple; tell me more."):
        assert prompt_spec(prompt) is None


def test_tool_and_json_field_decisions():
    tools = [{"type": "function", "function": {"name": "refund", "parameters": {"type": "object"}}}]
    calls = [{"function": {"name": "refund", "arguments": "{}"}}]
    pair = PairContext("1", "help", "", "", baseline_tool_calls=calls, tools=tools)
    spec = decision_spec(pair)
    assert spec is not None and extract(spec, "", calls) == "refund" and extract(spec, "sure", None) is None
    schema = {"type": "object", "properties": {"decision": {"enum": ["approve", "deny"]}, "why": {"type": "string"}}}
    spec = decision_spec(PairContext("2", "review this", "", "", response_schema=schema))
    assert spec is not None and extract(spec, '```json\n{"decision": "Deny", "why": "x"}\n```') == "deny"
    assert extract(spec, "not json") is None


def _pairs(prompts, base, cand, **extra) -> pd.DataFrame:
    frame = pd.DataFrame({"pair_id": [str(i) for i in range(len(prompts))], "prompt": prompts})
    frame["baseline_text"], frame["candidate_text"] = base, cand
    for key, value in extra.items():
        frame[key] = value
    return frame


def test_no_checkable_decision_is_reported_not_applicable_never_zero():
    prompts = [f"Write a short note number {i}." for i in range(12)]
    result = score_pairs(
        _pairs(prompts, ["Done."] * 12, ["Here it is."] * 12),
        baseline="a", candidate="b", threshold=0.05,
        dimensions=["decision_given", "decision_changed", "correctness", "latency"],
    )  # fmt: skip
    assert result.report["not_applicable"] == ["decision_given", "decision_changed", "correctness", "latency"]
    assert result.report["dimensions"] == []
    applies = result.report["applicability"]["decision_given"]
    assert applies["applicable_pairs"] == 0 and applies["of"] == 12 and "checkable decision" in applies["applies_when"]


def test_correctness_is_paired_accuracy_and_malformed_references_are_left_out(prime):
    base, cand = answers(prime, "gpt-4-0314").head(150), answers(prime, "gpt-4-0613").head(150)
    refs = prime[prime["model"].str.endswith("gpt-4-0314")].sort_values("id")["ref_answer"].head(150).tolist()
    refs[:10] = ["maybe"] * 10  # malformed for a [Yes]/[No] question
    result = score_pairs(
        _pairs(base["query"], base["answer"], cand["answer"], reference=refs),
        baseline="gpt-4-0314", candidate="gpt-4-0613", threshold=0.05, dimensions=["correctness"],
    )  # fmt: skip
    (dim,) = result.report["dimensions"]
    assert dim["n"] == 140 and result.report["applicability"]["correctness"]["applicable_pairs"] == 140
    assert dim["verdict"] == "drift" and dim["direction"] == "down" and dim["test"] == "tango-score"
    assert dim["in_words"].startswith("is correct: ")


def test_usage_dimensions_need_both_sides_and_skip_malformed_values():
    n = 40
    prompts = [f"Say hello {i}." for i in range(n)]
    frame = _pairs(prompts, ["hello"] * n, ["hello"] * n)
    frame["baseline_latency_ms"] = [100.0] * n
    frame["candidate_latency_ms"] = [300.0] * (n - 4) + [None, "fast", -5.0, float("nan")]
    frame["baseline_prompt_tokens"] = [12] * n  # the candidate side never reports prompt tokens
    result = score_pairs(frame, baseline="a", candidate="b", threshold=0.05, dimensions=["latency", "prompt_tokens"])
    (latency,) = result.report["dimensions"]
    assert latency["name"] == "latency" and latency["n"] == n - 4
    assert latency["verdict"] == "drift" and latency["direction"] == "up"
    assert result.report["not_applicable"] == ["prompt_tokens"]


def _dims(result) -> dict[str, dict]:
    return {d["name"]: d for d in result.report["dimensions"]}


def test_survey_candidate_that_stops_picking_options_flags_non_answer_and_decision(tmp_path, embedder):
    path = write_jsonl(survey_records(60, seed=1, deflect=0.75), tmp_path / "survey.jsonl")
    result = compare(path, fmt="jsonl", baseline="v1", candidate="v2", dimensions=DECISION_DIMS, embedder=embedder)
    dims = _dims(result)
    assert dims["non_answer"]["verdict"] == "drift" and dims["non_answer"]["direction"] == "up"
    assert dims["decision_given"]["verdict"] == "drift" and dims["decision_given"]["direction"] == "down"
    assert dims["decision_given"]["baseline_value"] == 1.0 and dims["decision_given"]["candidate_value"] < 0.4
    assert dims["decision_changed"]["verdict"] == "drift" and dims["decision_changed"]["direction"] == "up"
    assert dims["refusal"]["verdict"] != "drift"  # a deflection is not a decline
    assert "gives the decision asked for: 100.0% → " in dims["decision_given"]["in_words"]


def test_survey_candidate_that_switches_a_quarter_of_options_flags_decision_drift(tmp_path, embedder):
    path = write_jsonl(survey_records(120, seed=2, deflect=0.0, switch=0.25), tmp_path / "survey.jsonl")
    result = compare(path, fmt="jsonl", baseline="v1", candidate="v2", dimensions=DECISION_DIMS, embedder=embedder)
    dims = _dims(result)
    assert result.report["drifted_dimensions"] == ["decision_changed"]
    assert dims["decision_changed"]["direction"] == "up" and 0.15 < dims["decision_changed"]["effect"] < 0.35
    assert dims["decision_given"]["candidate_value"] == 1.0 and dims["non_answer"]["candidate_value"] == 0.0


def test_survey_self_comparison_is_clean(tmp_path, embedder):
    path = write_jsonl(survey_records(60, seed=3, deflect=0.75), tmp_path / "survey.jsonl")
    for version in ("v1", "v2"):
        result = compare(path, fmt="jsonl", baseline=version, candidate=version, embedder=embedder)
        assert not result.drift_detected
        json.dumps(result.report)
