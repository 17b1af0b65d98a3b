"""Behavioural dimensions: each one on crafted pairs, plus the refusal detector on real labelled outputs."""

from __future__ import annotations

import json

import pytest

from drift_pipeline.detection.dimensions import PairContext, ScoringEnv, all_dimensions, get_dimension
from drift_pipeline.detection.dimensions.refusal import is_refusal
from drift_pipeline.errors import InvalidInputError

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]


def call(name: str, args: dict) -> list[dict]:
    return [{"type": "function", "function": {"name": name, "arguments": json.dumps(args)}}]


def score(name: str, **kwargs) -> tuple:
    pair = PairContext(pair_id="p", prompt=kwargs.pop("prompt", "hi"), **kwargs)
    return get_dimension(name).score([pair], ScoringEnv())[0]


def test_registry_discovers_one_module_per_dimension():
    names = [d.name for d in all_dimensions()]
    for expected in ("similarity", "refusal", "length", "json_valid", "schema_compliance", "tool_choice"):
        assert expected in names
    assert {"tool_args_valid", "tool_args_match", "reasoning", "formatting", "tone", "instruction_following"} <= set(
        names
    )
    with pytest.raises(InvalidInputError, match="unknown dimension"):
        get_dimension("nope")


def test_refusal_detector_agrees_with_llmdrift_labels(sensitiveq):
    # The dataset's own "Response Rate" column (1 = answered) is an independent label.
    predicted = sensitiveq["answer"].fillna("").astype(str).map(is_refusal)
    agreement = (predicted == (sensitiveq["Response Rate"] == 0)).mean()
    assert agreement >= 0.9


def test_not_applicable_dimensions_yield_none():
    kwargs = {"baseline_text": "Paris.", "candidate_text": "It is Paris."}
    for name in ("json_valid", "schema_compliance", "tool_choice", "tool_args_valid", "tool_args_match"):
        assert score(name, **kwargs) == (None, None), name
    assert score("instruction_following", prompt="Tell me about Paris", **kwargs) == (None, None)
    assert score("tone", baseline_text="", candidate_text="fine") == (None, None)


def test_schema_compliance_and_json_validity():
    kwargs = {"baseline_text": '```json\n{"answer": "x"}\n```', "candidate_text": '{"reply": 1}'}
    assert score("schema_compliance", response_schema=SCHEMA, **kwargs) == (1.0, 0.0)
    assert score("json_valid", response_schema=SCHEMA, **kwargs) == (1.0, 1.0)
    assert score("json_valid", response_format={"type": "json_object"}, baseline_text="{}", candidate_text="no") == (
        1.0,
        0.0,
    )


def test_tool_call_accuracy():
    base = call("get_weather", {"city": "Paris"})
    same = {"baseline_tool_calls": base, "candidate_tool_calls": call("get_weather", {"city": "Paris"})}
    other_args = {"baseline_tool_calls": base, "candidate_tool_calls": call("get_weather", {"city": "Rome"})}
    bad_args = {"baseline_tool_calls": base, "candidate_tool_calls": call("get_weather", {"town": "Rome"})}
    wrong_tool = {"baseline_tool_calls": base, "candidate_tool_calls": call("search", {"q": "weather"})}
    texts = {"baseline_text": "", "candidate_text": ""}
    assert score("tool_choice", tools=TOOLS, **same, **texts) == (1.0, 1.0)
    assert score("tool_choice", tools=TOOLS, **wrong_tool, **texts) == (1.0, 0.0)
    assert score("tool_args_match", tools=TOOLS, **same, **texts) == (1.0, 1.0)
    assert score("tool_args_match", tools=TOOLS, **other_args, **texts) == (1.0, 0.0)
    assert score("tool_args_match", tools=TOOLS, **wrong_tool, **texts) == (None, None)
    assert score("tool_args_valid", tools=TOOLS, **other_args, **texts) == (1.0, 1.0)
    assert score("tool_args_valid", tools=TOOLS, **bad_args, **texts) == (1.0, 0.0)
    assert score("tool_args_valid", tools=TOOLS, **wrong_tool, **texts) == (1.0, 0.0)


@pytest.mark.parametrize(
    ("prompt", "kept", "broken"),
    [
        ("What colour is the sky? Answer in one word.", "Blue.", "The sky is blue."),
        ("Describe Paris in 5 words or fewer.", "City of light and love", "Paris is a big and lovely city"),
        ("List three fruits. Respond in JSON.", '["apple", "pear", "fig"]', "apple, pear, fig"),
        ('Is 7 prime? Answer "[Yes]" or "[No]".', "[Yes]", "It is prime."),
        ("Is water wet? Answer yes or no.", "Yes, it is.", "Water is wet."),
        ("Why is 9 odd? Think step by step.", "9 = 2*4 + 1. So it is odd.", "Odd"),
    ],
)
def test_instruction_following_constraints(prompt, kept, broken):
    assert score("instruction_following", prompt=prompt, baseline_text=kept, candidate_text=broken) == (1.0, 0.0)


def test_text_dimensions_move_the_right_way():
    plain = "Sure. The answer is 4."
    rich = "## Steps\n1. First, add 2 and 2.\n2. Therefore the sum is **4**.\n```python\nprint(2 + 2)\n```"
    for name in ("reasoning", "formatting", "length"):
        b, c = score(name, baseline_text=plain, candidate_text=rich)
        assert c > b, name
    b, c = score("tone", baseline_text="I love this, great work!", candidate_text="This is terrible and awful.")
    assert b > 0 > c
    assert score(
        "refusal", baseline_text="Sure, here it is.", candidate_text="Sorry, but I can't assist with that."
    ) == (
        0.0,
        1.0,
    )


def test_similarity_exact_match_and_paraphrase(embedder):
    same, paraphrase, unrelated = "The cat sat on the mat.", "A cat was sitting on the mat.", "Stocks fell 3% today."
    before = embedder.texts_embedded
    assert score("similarity", baseline_text=same, candidate_text=same) == (1.0, 1.0)
    env = ScoringEnv(embedder=embedder)
    pairs = [
        PairContext("a", "q", same, same),
        PairContext("b", "q", same, paraphrase),
        PairContext("c", "q", same, unrelated),
    ]
    sims = [c for _, c in get_dimension("similarity").score(pairs, env)]
    assert sims[0] == 1.0
    assert sims[1] > 0.7 > 0.3 > sims[2]
    assert embedder.texts_embedded - before == 3  # `same` embedded once, the identical pair not at all
