"""The fast paths of scoring (per-response dimensions, interval quantiles) give exactly the reference values."""

from __future__ import annotations

import math

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from vaderSentiment.vaderSentiment import BOOSTER_DICT, NEGATE, SPECIAL_CASES, SentimentIntensityAnalyzer

from drift_pipeline.detection.compare import load_records, pair_versions
from drift_pipeline.detection.dimensions import ScoringEnv, all_dimensions
from drift_pipeline.detection.dimensions._vader import FastSentimentIntensityAnalyzer
from drift_pipeline.detection.scoring import score_contexts, to_contexts

# Words that exercise VADER's rules: lexicon words, boosters, negations, "but", "least", "kind of", idioms
# ("the bomb", "kiss of death"), "without doubt", "never so", capitals, punctuation and emojis.
VADER_WORDS = [
    "good", "GOOD", "bad", "great", "terrible", "love", "hate", "no", "not", "never", "isn't", "without",
    "doubt", "so", "this", "very", "extremely", "kind", "of", "sort", "but", "least", "at", "the", "bomb",
    "cut", "mustard", "yeah", "right", "hand", "to", "mouth", "happy", "sad", "nor", "or", "is", "it",
    "kiss", "death", "die", "for", "bus", "stop", "broken", "beating", "heart", "badass", "shit",
    "!", "?", "!!!", ":)", ":(", "😀", "💔", "lol", "ok", "fine", "\n", "Sure,", "sorry.", "can't",
]  # fmt: skip


REFERENCE, FAST = SentimentIntensityAnalyzer(), FastSentimentIntensityAnalyzer()


def test_fast_vader_scores_real_answers_exactly_as_the_library(sensitiveq, prime):
    reference, fast = REFERENCE, FAST
    texts = [t[:2000] for t in [*sensitiveq["answer"].fillna(""), *prime["answer"].fillna("")[:1500]]]
    assert [fast.polarity_scores(t) for t in texts] == [reference.polarity_scores(t) for t in texts]


@settings(max_examples=400, deadline=None)
@given(words=st.lists(st.sampled_from(VADER_WORDS), max_size=40), raw=st.text(max_size=60))
def test_fast_vader_scores_generated_text_exactly_as_the_library(words, raw):
    reference, fast = REFERENCE, FAST
    for text in (" ".join(words), raw, " ".join(words) + raw):
        assert fast.polarity_scores(text) == reference.polarity_scores(text)


def test_fast_vader_scores_every_rule_phrase_exactly_as_the_library():
    """Each idiom, multi-word booster and negation at every distance from a sentiment word (the windows the
    fast checks read), which random text rarely lines up."""
    phrases = [*SPECIAL_CASES, *(k for k in BOOSTER_DICT if " " in k), *NEGATE, "never so", "without doubt", "at least"]
    texts = [
        f"{lead} {phrase} {gap} {tail}"
        for phrase in phrases
        for lead in ("", "we are", "x y z", "ok then well")
        for gap in ("", "x", "x y")
        for tail in ("good", "bad!", "good but bad", "")
    ]
    assert [FAST.polarity_scores(t) for t in texts] == [REFERENCE.polarity_scores(t) for t in texts]


def test_interval_quantiles_are_scipy_stats_values_exactly():
    """intervals.py calls scipy.special directly; these are the scipy.stats values it stands for."""
    from scipy import special, stats

    qs = [1 - a / 2 for a in (0.001, 0.01, 0.02, 0.05, 0.1, 0.37, 0.5, 0.9)]
    dfs = [0.7, 1, 2, 3, 9.5, 29, 199, 999, 1e6]
    xs = [0.0, 1e-300, 0.3, 1.7, 2.5758, 5.0, 40.0, math.inf]
    assert [special.ndtri(q) for q in qs] == [stats.norm.ppf(q) for q in qs]
    assert [special.ndtr(-x) for x in xs] == [stats.norm.sf(x) for x in xs]
    assert [special.stdtrit(d, q) for d in dfs for q in qs] == [stats.t.ppf(q, d) for d in dfs for q in qs]
    assert [special.stdtr(d, -x) for d in dfs for x in xs] == [stats.t.sf(x, d) for d in dfs for x in xs]
    shares = [(c, n) for n in (2, 10, 37, 200, 1000, 123.4) for c in (0, 1, 0.5, n / 3, n - 1)]
    assert [special.betaincinv(c + 1, n - c, q) for c, n in shares for q in qs] == [
        stats.beta.ppf(q, c + 1, n - c) for c, n in shares for q in qs
    ]


def reference_per_pair(contexts, embedder) -> pd.DataFrame:
    """The per-pair table as scoring built it before: one frame per dimension through pandas' nullable
    floats, concatenated."""
    env = ScoringEnv(embedder=embedder)
    frames = []
    for dimension in all_dimensions():
        values = dimension.score(contexts, env)
        frames.append(
            pd.DataFrame(
                {
                    "pair_id": [c.pair_id for c in contexts],
                    "dimension": dimension.name,
                    "kind": dimension.kind,
                    "baseline_value": pd.array([v[0] for v in values], dtype="Float64"),
                    "candidate_value": pd.array([v[1] for v in values], dtype="Float64"),
                }
            )
        )
    table = pd.concat(frames, ignore_index=True)
    table["difference"] = table["candidate_value"] - table["baseline_value"]
    return table.astype({"baseline_value": float, "candidate_value": float, "difference": float})


def test_per_pair_table_equals_the_per_dimension_reference_on_real_data(llmdrift_dir, embedder):
    records = load_records(llmdrift_dir / "SENSITIVEQ_EVAL.csv", "llmdrift")
    pairs, _ = pair_versions(records, "gpt-4-0314", "gpt-4-0613")
    contexts, _ = to_contexts(pairs, response_schema=None, tools=None)
    table = score_contexts(contexts, embedder=embedder)
    pd.testing.assert_frame_equal(table, reference_per_pair(contexts, embedder), check_exact=True)
    assert table["baseline_value"].notna().any() and table["difference"].isna().any()  # both kinds of row
