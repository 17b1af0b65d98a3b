"""Drift checks validated by Great Expectations 1.x: breach -> ERROR, near miss -> WARN, clean -> pass."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from drift_pipeline.alerts.channels import ChannelConfig
from drift_pipeline.alerts.events import DriftEvent, episode_key
from drift_pipeline.alerts.router import AlertRouter
from drift_pipeline.detection.expectation_suite import build_suite
from drift_pipeline.detection.expectations import check_report, check_report_for_manifest
from drift_pipeline.errors import InvalidInputError, NotFoundError
from drift_pipeline.versioning import manifests, registry, tenants


def dim(name: str, effect: float, p_adjusted: float, *, drifted: bool = False, near_miss: bool = False, **kw: Any):
    return {
        "name": name,
        "kind": kw.pop("kind", "binary"),
        "effect": effect,
        "relative_effect": effect * 3,
        "p_adjusted": p_adjusted,
        "noise_floor": kw.pop("noise_floor", 0.0),
        "drifted": drifted,
        "near_miss": near_miss,
        # The 98 % interval of the effect (a tight one: these reports have many pairs).
        "equivalence_low": kw.pop("equivalence_low", effect - 0.02 if isinstance(effect, float) else None),
        "equivalence_high": kw.pop("equivalence_high", effect + 0.02 if isinstance(effect, float) else None),
        **kw,
    }


def report(*dims: dict[str, Any], threshold: float = 0.05, tenant: str = "acme") -> dict[str, Any]:
    return {
        "schema_version": "2.0",
        "tenant_id": tenant,
        "agent_id": "support",
        "baseline": "bl-1",
        "candidate": "gpt-4-0613",
        "n_pairs": 100,
        "alpha": 0.01,
        "threshold": threshold,
        "drift_detected": any(d["drifted"] for d in dims),
        "dimensions": list(dims),
    }


CLEAN = [dim("refusal", 0.01, 0.6), dim("length", -0.02, 0.3), dim("similarity", -0.005, 0.9)]


def test_clean_report_passes() -> None:
    result = check_report(report(*CLEAN), report_uri="reports/acme.json")

    assert result.passed and result.severity is None and not result.blocking
    assert result.failing_dimensions == []
    assert all(e.success for e in result.expectations)
    meta = result.metadata()
    assert meta["severity"] == "PASS" and meta["threshold"] == 0.05 and meta["report"] == "reports/acme.json"
    assert meta["effect/length"] == pytest.approx(-0.02)  # signed, like the report
    json.dumps(meta)  # plain types only: Dagster rejects numpy scalars
    assert result.description.startswith("EQUIVALENT acme/support")


def test_significant_change_beyond_threshold_is_a_blocking_breach() -> None:
    data = report(dim("refusal", -0.16, 0.003, drifted=True), *CLEAN[1:])
    result = check_report(data, report_uri="s3://reports/acme/support.json")

    assert not result.passed and result.severity == "ERROR" and result.blocking
    assert result.breached_dimensions == ["refusal"]
    assert result.observed_value == pytest.approx(0.16)
    by_key = {e.key: e for e in result.expectations}
    assert not by_key["threshold"].success and by_key["threshold"].failing_dimensions == ["refusal"]
    assert by_key["threshold"].observed_value == pytest.approx(0.16) and by_key["threshold"].limit == 0.05
    assert not by_key["verdict_drifted"].success and by_key["verdict_drifted"].observed_value == 1
    meta = result.metadata()
    assert meta["severity"] == "ERROR" and meta["largest_significant_effect"] == pytest.approx(0.16)
    assert meta["verdict"] == "DRIFT" and meta["expectations"]["verdict_drifted"]["dimensions_flagged"] == 1
    assert meta["report"] == "s3://reports/acme/support.json"
    assert result.description.startswith("DRIFT acme/support: refusal -0.160 (margin ±0.05, p_adj 0.003)")
    assert "Blocking" in result.description


def test_near_threshold_or_flagged_near_miss_warns_without_blocking() -> None:
    close = check_report(report(dim("refusal", 0.045, 0.001), *CLEAN[1:]))
    assert (close.passed, close.severity, close.blocking) == (False, "WARN", False)
    assert close.near_miss_dimensions == ["refusal"] and close.breached_dimensions == []

    flagged = check_report(report(dim("tone", 0.03, 0.02, near_miss=True), *CLEAN))
    assert flagged.severity == "WARN" and flagged.near_miss_dimensions == ["tone"]

    # Large but not significant (underpowered): not a breach, still worth a look.
    unproven = check_report(report(dim("refusal", 0.2, 0.03), *CLEAN[1:]))
    assert unproven.severity == "WARN" and unproven.observed_value == 0.0


def test_noise_floor_raises_the_bar_like_scoring_does() -> None:
    # Bar = max(threshold, noise floor) = 0.1: 0.04 is below half of it, 0.09 a near miss, 0.1 a breach.
    under_half = check_report(report(dim("tone", -0.04, 0.0001, noise_floor=0.1), *CLEAN[:2]))
    # Not a near miss; its interval [-0.06, -0.02] is not inside +/-0.05 though, so equivalence is not shown.
    assert under_half.near_miss_dimensions == [] and under_half.unproven_dimensions == ["tone"]
    assert check_report(report(dim("tone", -0.04, 0.0001), *CLEAN[:2])).severity == "WARN"
    assert check_report(report(dim("tone", -0.09, 0.0001, noise_floor=0.1), *CLEAN[:2])).severity == "WARN"
    assert check_report(report(dim("tone", -0.1, 0.0001, noise_floor=0.1), *CLEAN[:2])).severity == "ERROR"
    # Similarity's noise is already inside its effect: the threshold alone is the bar.
    sim = dim("similarity", -0.06, 0.0001, noise_floor=0.2, kind="similarity", practical_effect=0.06)
    assert check_report(report(sim, *CLEAN[:2])).severity == "ERROR"


def test_manifest_threshold_overrides_the_one_the_report_was_scored_with() -> None:
    data = report(dim("refusal", -0.16, 0.003, drifted=True), *CLEAN[1:])
    loose = check_report(data, threshold=0.4)
    assert loose.passed and "manifest now 0.4" in loose.description
    assert {e.key for e in loose.expectations} == {"threshold", "near_threshold", "almost_significant", "equivalence"}
    strict = check_report(report(dim("refusal", 0.03, 0.001), *CLEAN[1:]), threshold=0.02)
    assert strict.severity == "ERROR" and strict.breached_dimensions == ["refusal"]


def test_suite_is_a_real_gx_suite_per_tenant_and_agent() -> None:
    import great_expectations as gx

    suite = build_suite("acme", "support", 0.05)
    assert isinstance(suite, gx.ExpectationSuite) and suite.name == "drift.acme.support"
    severities = {e.meta["key"]: e.meta["severity"] for e in suite.expectations}
    assert severities == {
        "threshold": "ERROR",
        "verdict_drifted": "ERROR",
        "near_threshold": "WARN",
        "almost_significant": "WARN",
        "equivalence": "WARN",
        "verdict_near_miss": "WARN",
    }


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({**report(*CLEAN), "dimensions": []}, "no dimensions"),
        (report({"name": "x", "effect": 0.1, "drifted": False}), "lacks p_adjusted"),
        (report(dim("x", 0.1, 1.5)), "outside"),
        (report(dim("x", "big", 0.5)), "non-numeric effect"),  # type: ignore[arg-type]
        (report(dim("x", 0.1, 0.5), dim("x", 0.2, 0.5)), "repeats dimension"),
        ({**report(*CLEAN), "alpha": None}, "alpha"),
    ],
)
def test_malformed_reports_get_one_line_errors(data: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        check_report(data)


def test_report_file_and_manifest_threshold(sqlite_store, tmp_path, alert_receiver) -> None:
    registry.add_version(sqlite_store, "openai", "gpt-4-0613", release_date=date(2023, 6, 13), actor="t")
    tenants.add_tenant(sqlite_store, "acme", actor="t")
    manifests.pin(sqlite_store, "acme", "support", "gpt-4-0613", actor="t", threshold=0.1)
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report(dim("refusal", -0.16, 0.003, drifted=True), *CLEAN[1:])))

    result = check_report_for_manifest(sqlite_store, path)
    assert result.threshold == 0.1 and result.severity == "ERROR" and result.report_uri == str(path)

    # The failed check becomes one alert at a real receiver.
    cfg = ChannelConfig.from_dict({"platform": [{"type": "slack", "webhook_url": alert_receiver.url("/slack")}]})
    outcome = AlertRouter(sqlite_store, cfg).notify(
        DriftEvent.from_check(result, episode=episode_key("gpt-4-0613", "bl-1"))
    )
    assert outcome.delivered == ["slack"]
    assert str(path) in json.dumps(alert_receiver.requests("/slack")[0].json())

    with pytest.raises(NotFoundError):
        check_report_for_manifest(sqlite_store, report(*CLEAN, tenant="globex"))
    with pytest.raises(NotFoundError):
        check_report(tmp_path / "missing.json")
    with pytest.raises(InvalidInputError, match="only a failed drift check"):
        DriftEvent.from_check(check_report(report(*CLEAN)), episode="e")


def test_equivalence_not_shown_is_a_warning_never_a_pass() -> None:
    wide = dim("length", -0.02, 0.3, equivalence_low=-0.09, equivalence_high=0.05)
    no_interval = {k: v for k, v in dim("tone", 0.0, 1.0).items() if not k.startswith("equivalence")}
    result = check_report(report(CLEAN[0], wide, no_interval))

    assert not result.passed and result.severity == "WARN" and not result.blocking
    assert result.unproven_dimensions == ["length", "tone"] and result.near_miss_dimensions == []
    assert result.description.startswith("INCONCLUSIVE acme/support: no drift")
    # The interval does not depend on the margin: a wider manifest threshold can show equivalence.
    assert check_report(report(CLEAN[0], wide), threshold=0.1).passed


def test_distribution_test_drift_breaches_through_the_verdict_check() -> None:
    shifted = {"applicable": True, "drift": True, "p_value": 0.0005, "p_adjusted": 0.002}
    data = {**report(*CLEAN), "distribution": shifted, "drift_detected": True}
    result = check_report(data, report_uri="reports/acme.json")
    assert not result.passed and result.severity == "ERROR" and result.blocking
    by_key = {e.key: e for e in result.expectations}
    assert not by_key["verdict_drifted"].success and by_key["verdict_drifted"].failing_dimensions == ["distribution"]
    assert by_key["threshold"].success  # it has no effect on the threshold's scale
    quiet = {**report(*CLEAN), "distribution": {**shifted, "drift": False}}
    assert check_report(quiet, report_uri="reports/acme.json").passed


def test_descriptions_use_the_report_words_and_signed_rounded_figures() -> None:
    far = check_report(report(dim("refusal", -0.13868613138686137, 0.013), *CLEAN[1:]))
    # Far past the margin but not significant at alpha 0.01: inconclusive, and never "close to" the threshold.
    assert far.severity == "WARN"
    assert far.description.startswith(
        "INCONCLUSIVE acme/support (near miss): refusal -0.139 (margin ±0.05, p_adj 0.013) beyond the margin"
    )
    assert "close to" not in far.description and "13868" not in far.description
    near = check_report(report(dim("refusal", 0.03, 0.001), *CLEAN[1:]))
    assert "refusal +0.030 (margin ±0.05, p_adj 0.001) significant, at 60% of the margin" in near.description
    for result in (far, near, check_report(report(*CLEAN))):
        words = {w for w in ("DRIFT", "INCONCLUSIVE", "EQUIVALENT", "BREACH", "NEAR MISS") if w in result.description}
        assert len(words) == 1 and words <= {"DRIFT", "INCONCLUSIVE", "EQUIVALENT"}
        assert result.metadata()["verdict"] in result.description
        assert all(
            isinstance(v, float) and v == round(v, 4) for k, v in result.metadata().items() if k.startswith("effect/")
        )
