"""The shared vocabulary and number format (`detection/wording.py`)."""

import pytest

from drift_pipeline.detection import wording


def test_figures_are_signed_rounded_and_carry_their_margin() -> None:
    assert wording.figure("similarity", -0.13868613138686137, 0.05, 0.0131) == (
        "similarity -0.139 (margin ±0.05, p_adj 0.013)"
    )
    assert wording.figure("refusal", 0.16, 0.05) == "refusal +0.160 (margin ±0.05)"
    assert wording.signed(-0.0001) == "0.000" and wording.signed(0.0) == "0.000"


@pytest.mark.parametrize(
    ("practical", "p_adjusted", "expected"),
    [
        (0.747, 0.02, "beyond the margin but not significant"),
        (0.2, 0.001, "beyond the margin but within the noise floor"),
        (0.03, 0.001, "at 60% of the margin"),
    ],
)
def test_near_miss_reason_never_calls_a_far_value_close(practical: float, p_adjusted: float, expected: str) -> None:
    reason = wording.near_miss_reason(practical, 0.05, p_adjusted, 0.01)
    assert expected in reason and "close" not in reason


def test_verdict_words_and_metrics() -> None:
    assert [wording.verdict_word(s) for s in ("ERROR", "WARN", None)] == ["DRIFT", "INCONCLUSIVE", "EQUIVALENT"]
    assert wording.metric(0.13868613138686137) == 0.1387 and isinstance(wording.metric(1), float)
    assert str(wording.metric(-0.00001)) == "0.0"
    assert wording.blocked("drift_within_threshold", "acme/extractor", ["similarity -0.747 (margin ±0.05)"]) == (
        "blocked by drift_within_threshold for acme/extractor: similarity -0.747 (margin ±0.05)"
    )
