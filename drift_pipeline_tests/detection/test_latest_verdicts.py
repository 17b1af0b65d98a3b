"""Latest verdicts across tenants, read back from stored reports (SQLite and PostgreSQL): what the drift_report
overview lists whichever tenant materialized last."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update

from drift_pipeline.defs.detection.latest_verdicts import latest_verdicts_metadata
from drift_pipeline.detection import latest_verdicts
from drift_pipeline.persistence import reports
from drift_pipeline.persistence.objects import ObjectStore
from drift_pipeline.persistence.tables import StoredReport
from drift_pipeline_tests.plugins.migration import drift_report


def _record(store, tenant_id: str, body: dict[str, Any], *, agent_id: str = "support", model_id: str = "m-1", **extra):
    with store.transaction() as session:
        return reports.record(
            store, session, kind="drift", tenant_id=tenant_id, agent_id=agent_id, model_id=model_id,
            body={**body, **extra}, actor="nightly",
        )  # fmt: skip


def _age(store, report_id: str, hours: float) -> None:
    with store.transaction() as session:
        at = datetime.now(UTC) - timedelta(hours=hours)
        session.execute(update(StoredReport).where(StoredReport.report_id == report_id).values(created_at=at))


def test_the_newest_pinned_verdict_per_tenant_agent_is_listed_worst_first(store) -> None:
    _record(store, "zeta", drift_report("m-0", "m-1", equivalent=False), role="pinned")
    _record(store, "acme", drift_report("m-0", "m-1", drifted=("refusal",)), role="pinned")
    _record(store, "globex", drift_report("m-0", "m-1"), role="pinned")
    # A candidate's drift is a migration question, not a drift of what runs today.
    _record(store, "globex", drift_report("m-0", "m-2", drifted=("length",)), model_id="m-2", role="candidate")
    # initech drifted yesterday morning, then a later replay found it equivalent: the newest report counts.
    old = _record(store, "initech", drift_report("m-0", "m-1", drifted=("length",)), role="pinned")
    _age(store, old.report_id, 20)
    _record(store, "initech", drift_report("m-0", "m-1"), role="pinned")
    # A report from before the window is not last night's.
    stale = _record(store, "hooli", drift_report("m-0", "m-1", drifted=("length",)), role="pinned")
    _age(store, stale.report_id, 72)

    summary = latest_verdicts.summary(store, now=datetime.now(UTC))

    assert [(s.tenant_id, s.verdict) for s in summary.attention] == [("acme", "DRIFT"), ("zeta", "INCONCLUSIVE")]
    assert dict(summary.counts) == {"DRIFT": 1, "INCONCLUSIVE": 1, "EQUIVALENT": 2}
    assert summary.attention[0].why == "refusal +0.200 (margin ±0.05, p_adj 0.003)"
    assert "900 pairs needed" in summary.attention[1].why and summary.more == 0


def test_the_list_is_bounded_and_says_how_many_were_left_out(store) -> None:
    for n in range(5):
        _record(store, f"tenant-{n}", drift_report("m-0", "m-1", drifted=("refusal",)), role="pinned")
    summary = latest_verdicts.summary(store, now=datetime.now(UTC), limit=3)
    assert len(summary.attention) == 3 and summary.more == 2 and summary.total == 5


def test_the_metadata_names_the_drifted_tenant_and_counts_for_plots(store, tmp_path) -> None:
    _record(store, "acme", drift_report("m-0", "m-1", drifted=("refusal",)), role="pinned")
    _record(store, "globex", drift_report("m-0", "m-1"), role="pinned")
    meta = latest_verdicts_metadata(latest_verdicts.summary(store, now=datetime.now(UTC)), ObjectStore(str(tmp_path)))
    assert meta["latest_verdicts"].startswith("1 drifted, 0 inconclusive, 1 equivalent of 2 tenant agents")
    [row] = [record.data for record in meta["needs_attention"].records]
    assert row["tenant"] == "acme" and row["verdict"] == "DRIFT" and row["why"].startswith("refusal +0.200")
    assert (meta["tenant_agents/drift"], meta["tenant_agents/equivalent"]) == (1, 1)


def test_a_long_list_says_how_many_are_not_shown(store, tmp_path) -> None:
    for n in range(3):
        _record(store, f"tenant-{n}", drift_report("m-0", "m-1", equivalent=False), role="pinned")
    summary = latest_verdicts.summary(store, now=datetime.now(UTC), limit=1)
    meta = latest_verdicts_metadata(summary, ObjectStore(str(tmp_path)))
    assert "1 listed, 2 more not shown" in meta["latest_verdicts"] and len(meta["needs_attention"].records) == 1


def test_why_names_the_largest_changes_and_counts_the_rest() -> None:
    body = drift_report("m-0", "m-1", drifted=("refusal", "length", "semantic_similarity"))
    body["dimensions"][1]["effect"] = -0.4  # length: the largest change, a drop
    assert latest_verdicts.why(body) == (
        "length -0.400 (margin ±0.05, p_adj 0.003); refusal +0.200 (margin ±0.05, p_adj 0.003); and 1 more"
    )


def _edit(store, report_id: str, body: Any, *, rehash: bool) -> None:
    """An insider's UPDATE: a new body, and with `rehash` the matching sha256 column too."""
    values: dict[str, Any] = {"body": body}
    if rehash:
        values["sha256"] = reports.content_hash(body)
    with store.transaction() as session:
        session.execute(update(StoredReport).where(StoredReport.report_id == report_id).values(**values))


def test_an_edited_report_is_listed_as_unverified_not_as_its_claimed_verdict(store, tmp_path) -> None:
    drifted = drift_report("m-0", "m-1", drifted=("refusal",))
    edited = _record(store, "acme", drifted, role="pinned")
    rehashed = _record(store, "globex", drifted, role="pinned")
    _record(store, "initech", drift_report("m-0", "m-1", drifted=("length",)), role="pinned")
    quiet = {**drift_report("m-0", "m-1"), "role": "pinned"}
    _edit(store, edited.report_id, quiet, rehash=False)  # the body no longer matches its row's hash
    _edit(store, rehashed.report_id, quiet, rehash=True)  # row consistent, but not what the audit log recorded

    summary = latest_verdicts.summary(store, now=datetime.now(UTC))

    assert [(s.tenant_id, s.verdict) for s in summary.attention] == [
        ("acme", "UNVERIFIED"), ("globex", "UNVERIFIED"), ("initech", "DRIFT"),
    ]  # fmt: skip
    assert "does not match its stored hash" in summary.attention[0].why
    assert "audit log recorded" in summary.attention[1].why
    assert summary.counts["EQUIVALENT"] == 0 and summary.attention[0].html_uri is None
    meta = latest_verdicts_metadata(summary, ObjectStore(str(tmp_path)))
    assert meta["latest_verdicts"].endswith("; 2 whose stored report fails verification")
    assert meta["tenant_agents/unverified"] == 2 and meta["tenant_agents/drift"] == 1


def test_a_malformed_report_is_unverified_and_does_not_break_the_summary(store) -> None:
    body = {**drift_report("m-0", "m-1", drifted=("refusal",)), "role": "pinned"}
    body["dimensions"][0]["effect"] = "lots"  # would raise in float() if it were trusted
    report = _record(store, "acme", drift_report("m-0", "m-1"), role="pinned")
    _edit(store, report.report_id, body, rehash=True)
    listed = _record(store, "globex", drift_report("m-0", "m-1"), role="pinned")
    _edit(store, listed.report_id, ["not", "a", "report"], rehash=True)

    summary = latest_verdicts.summary(store, now=datetime.now(UTC))

    assert {(s.tenant_id, s.verdict) for s in summary.attention} == {("acme", "UNVERIFIED"), ("globex", "UNVERIFIED")}
    assert all(s.why for s in summary.attention)
