"""The one identifier rule (tenant, agent, provider, model ids) and the path segment a model id becomes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drift_pipeline.errors import InvalidInputError
from drift_pipeline.identifiers import check_identifier, check_model_id, check_provider, model_key

PACKAGE = Path(__file__).resolve().parents[1] / "drift_pipeline"
HOSTILE = ["../../x", "a..b", "acme\n", "a/b", "a\\b", "a\x00b", "a\tb", "a\x7fb", " acme", "", "x" * 101]
REAL_MODEL_IDS = [
    "gpt-4o-2024-08-06",
    "claude-3-5-sonnet-20241022",
    "meta-llama/Llama-3.1-8B-Instruct",
    "anthropic.claude-v2:1",
    "text-bison@001",
    "ft:gpt-4o-mini-2024-07-18:acme::9abcDEF1",
    "llama3.1:8b-instruct-q4_K_M",
    "models/gemini-1.5-pro-002",
]


@pytest.mark.parametrize("bad", HOSTILE)
def test_identifiers_refuse_traversal_separators_control_characters_and_length(bad: str) -> None:
    with pytest.raises(InvalidInputError, match="invalid tenant id"):
        check_identifier(bad, "tenant id")
    with pytest.raises(InvalidInputError, match="invalid provider"):
        check_provider(bad)


def test_provider_names_follow_the_identifier_rule() -> None:
    assert [check_provider(p) for p in ("openai", "hosted_vllm", "vertex_ai")] == ["openai", "hosted_vllm", "vertex_ai"]
    with pytest.raises(InvalidInputError):
        check_provider("../x")


@pytest.mark.parametrize("model_id", REAL_MODEL_IDS)
def test_real_pinned_model_ids_are_accepted(model_id: str) -> None:
    assert check_model_id(model_id) == model_id


@pytest.mark.parametrize(
    "bad",
    [
        "../../x",
        "../../../../outside/pwned-2024-01-01",
        "a/../b",
        "gpt-4o-2024-08-06\n",
        "/etc/passwd",
        "a//b",
        "a/",
        "a\\b",
        "gpt 4",
        "gpt-4\x00",
        "-rf",
        "x" * 201,
        "",
    ],
)
def test_model_ids_refuse_traversal_and_control_characters(bad: str) -> None:
    with pytest.raises(InvalidInputError, match="invalid model id"):
        check_model_id(bad)


def test_model_key_keeps_plain_ids_and_hashes_the_rest_into_one_segment() -> None:
    assert model_key("gpt-4o-2024-08-06") == "gpt-4o-2024-08-06"  # unchanged: existing objects keep their names
    keys = {m: model_key(m) for m in REAL_MODEL_IDS}
    for model_id, key in keys.items():
        assert "/" not in key and ".." not in key and ":" not in key and "@" not in key, (model_id, key)
    assert len(set(keys.values())) == len(keys)
    # Case and separators matter: ids that differ only there never share a segment.
    assert model_key("meta-llama/Llama-3") != model_key("meta-llama/llama-3") != model_key("meta-llama-llama-3")
    assert model_key("meta-llama/llama-3").startswith("_")  # never equal to any plain identifier


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=250))
def test_model_key_is_always_one_safe_segment_or_a_refusal(text: str) -> None:
    try:
        key = model_key(text)
    except InvalidInputError:
        return
    assert re.fullmatch(r"[a-z0-9_][a-z0-9_.-]*", key) and ".." not in key and len(key) <= 100


def test_no_dollar_anchored_slug_pattern_in_the_package() -> None:
    """'$' matches before a trailing newline: a slug pattern (a character class anchored at both ends) must be
    applied with fullmatch or end in \\Z. Content patterns (Markdown fences, table rows) are not slugs."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"""r?["']\^?\[[^"']*\$["']""", line):
                offenders.append(f"{path.relative_to(PACKAGE)}:{n}: {line.strip()}")
    assert not offenders, "use fullmatch or \\Z:\n" + "\n".join(offenders)
