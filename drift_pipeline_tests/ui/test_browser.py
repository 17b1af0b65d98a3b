"""What a data engineer sees in the Dagster UI after `make demo` and `make ui`, in a real browser.

The demo runs once per session into a temporary home (its own process, as `make demo` does); `dagster dev`
serves that instance and Playwright drives the system Chromium. Each test starts where a person would
and asserts on what the page shows, never on partition-key formats or layout sizes.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from drift_pipeline.definitions import defs
from drift_pipeline_tests.plugins.browser import UI_TIMEOUT_MS, DagsterDev, blocked_run, dismiss_popups

# The first test also waits for the session's demo (minutes on a loaded 2-core machine).
pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(2400)]

DRIFTED, AGENT, STEADY = "acme", "extractor", "globex"


def open_view(page: Page, dev: DagsterDev, path: str, ready: str) -> None:
    page.goto(dev.url + path)
    page.get_by_text(ready).first.wait_for(state="visible")
    page.wait_for_load_state("networkidle", timeout=UI_TIMEOUT_MS)
    dismiss_popups(page)


def test_a_failed_drift_check_shows_the_tenant_agent_and_reason(ui_page: Page, dagster_ui: DagsterDev) -> None:
    open_view(
        ui_page,
        dagster_ui,
        "/assets/drift_report?view=checks&checkDetail=drift_within_threshold",
        "drift_within_threshold",
    )
    # A DOM click on the tab itself: Dagster's community dialog can open late, over the page, and would take
    # a mouse click (the dialog is not what this test is about).
    ui_page.get_by_text("Execution history", exact=True).first.dispatch_event("click")
    failed = ui_page.get_by_role("row").filter(has_text="Failed").filter(has_text=f"{DRIFTED}/{AGENT}")
    expect(failed.first).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(failed.first).to_contain_text("margin")  # the figure with its margin: "similarity -0.75 (margin ±0.05 ..."
    # The steady tenant's evaluations passed: the failure is about the tenant that drifted, not everyone.
    steady = ui_page.get_by_role("row").filter(has_text=STEADY)
    expect(steady.first).to_contain_text("Passed")
    expect(steady.filter(has_text="Failed")).to_have_count(0)


def test_the_runs_are_the_code_locations_named_jobs(ui_page: Page, dagster_ui: DagsterDev) -> None:
    """The demo's runs carry the code location's origin: they show on the timeline under their job names."""
    open_view(ui_page, dagster_ui, "/overview/activity/timeline", "Timeline")
    main = ui_page.locator("body")
    for job in ("sampling_job", "baseline_job", "nightly_drift_job", "replay_job"):
        expect(main.get_by_text(job, exact=True).first).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(main.get_by_text("No runs or scheduled ticks in this time period")).to_have_count(0)
    assert not main.get_by_text("__ASSET_JOB").count(), "an anonymous asset-selection run in the demo"


def test_a_drift_reads_as_a_block_not_a_crash(ui_page: Page, dagster_ui: DagsterDev, demo_home: Path) -> None:
    """The drifted replay_job run succeeded (a finding, not a crash) and says what it blocked, with figures."""
    run_id = blocked_run(demo_home / "dagster")
    assert run_id, "the demo left no run tagged drift_pipeline/verdict=DRIFT"
    open_view(ui_page, dagster_ui, f"/runs/{run_id}", "replay_job")
    expect(ui_page.get_by_text(re.compile(r"blocked by drift_within_threshold for acme/")).first).to_be_visible(
        timeout=UI_TIMEOUT_MS
    )
    expect(ui_page.get_by_text("Success").first).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(ui_page.get_by_text("DagsterAssetCheckFailedError")).to_have_count(0)


def test_schedules_and_sensors_show_their_default_state(ui_page: Page, dagster_ui: DagsterDev) -> None:
    """Each schedule's and sensor's toggle is in the state the code location declares for a fresh deployment."""
    open_view(ui_page, dagster_ui, "/automation", "nightly_drift_schedule")
    expected = {s.name: s.default_status.value == "RUNNING" for s in defs.schedules or []}
    expected |= {s.name: s.default_status.value == "RUNNING" for s in defs.sensors or []}
    for name, running in sorted(expected.items()):
        # Each entry is a row of divs: a selection box on the left, its on/off toggle on the right.
        checkboxes = ui_page.locator("input[type=checkbox]")
        row = ui_page.locator("div").filter(has=ui_page.get_by_text(name, exact=True)).filter(has=checkboxes).last
        expect(row.locator("input[type=checkbox]")).to_have_count(2, timeout=UI_TIMEOUT_MS)
        toggle = row.locator("input[type=checkbox]").last
        if running:
            expect(toggle, f"{name} should be running").to_be_checked()
        else:
            expect(toggle, f"{name} should be stopped").not_to_be_checked()


def test_the_drifted_tenant_is_visible_from_the_asset_overview(ui_page: Page, dagster_ui: DagsterDev) -> None:
    open_view(ui_page, dagster_ui, "/assets/drift_report", "Latest materialization")
    # Whichever tenant materialized last: a row with the drifted tenant, its verdict and the figure behind it,
    # not merely its name somewhere in the metadata.
    row = verdict_rows(ui_page, DRIFTED, "DRIFT")
    expect(row.last).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(row.last).to_contain_text("margin")
    expect(verdict_rows(ui_page, STEADY, "DRIFT")).to_have_count(0)


def verdict_rows(page: Page, tenant: str, verdict: str) -> Locator:
    """Innermost table rows (the metadata table holds the verdict table) with a cell that is exactly the
    tenant and one that is exactly the verdict."""
    rows = page.get_by_role("row").filter(has_not=page.get_by_role("row"))
    cell = page.get_by_role("cell", name=tenant, exact=True)
    return rows.filter(has=cell).filter(has=page.get_by_role("cell", name=verdict, exact=True))


def test_a_report_link_opens_the_html_report(ui_page: Page, dagster_ui: DagsterDev) -> None:
    open_view(ui_page, dagster_ui, "/assets/drift_report", "Latest materialization")
    ui_page.get_by_role("link", name=re.compile(r"\.html$")).first.click()  # Dagster opens it in the same tab
    ui_page.wait_for_url(re.compile(r"^http://127\.0\.0\.1:\d+/reports/.+\.html$"), timeout=UI_TIMEOUT_MS)
    expect(ui_page.locator("body")).to_contain_text("Drift report", timeout=UI_TIMEOUT_MS)
    expect(ui_page.locator("body")).not_to_contain_text("Dagster")
