"""The Dagster UI in a real browser: `dagster dev` on a demo instance, and Playwright driving the system Chromium.

Chromium comes from the Debian package (`.ci/run` installs it); Playwright never downloads a browser here.
Run as a script it takes the four screenshots of issue 17 on an instance the demo built:

    DRIFT_PIPELINE_HOME=.drift-pipeline python -m drift_pipeline_tests.plugins.browser --out screens/
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from drift_pipeline_tests.plugins.processes import free_port

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
# A loaded 2-core machine: the UI's first GraphQL queries load the whole asset graph.
UI_TIMEOUT_MS = 120_000
START_TIMEOUT_S = 300.0
VIEWPORT = {"width": 1600, "height": 1000}
DEMO_TIMEOUT_S = 1800.0  # the whole demo on a loaded 2-core machine
# A home an earlier `make demo` filled, to iterate on the UI tests without re-running the demo (it is
# used as is: the daemon of `dagster dev` will tick on it). Unset, the session runs the demo itself.
DEMO_HOME_ENV = "DRIFT_PIPELINE_UI_DEMO_HOME"
ARTIFACTS_ENV = "DRIFT_PIPELINE_UI_ARTIFACTS"  # where failure screenshots go (default: the test's tmp_path)
SCREENSHOT_DIR = pytest.StashKey[Path]()


def chromium_path() -> str | None:
    """The system Chromium (Debian `chromium`), or None when it is not installed."""
    override = os.environ.get("DRIFT_PIPELINE_CHROMIUM")
    if override:
        return override
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


@dataclass
class DagsterDev:
    """A running `dagster dev` (webserver + daemon + code server) bound to 127.0.0.1."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path


def _wait_until_up(dev: DagsterDev, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if dev.process.poll() is not None:
            raise RuntimeError(f"dagster dev exited with {dev.process.returncode}; log: {dev.log}")
        try:
            with urllib.request.urlopen(f"{dev.url}/server_info", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise RuntimeError(f"dagster dev did not answer at {dev.url} within {timeout_s:.0f} s; log: {dev.log}")


@contextmanager
def dagster_dev(home: Path, log: Path, *, env: dict[str, str] | None = None) -> Iterator[DagsterDev]:
    """`dagster dev -w workspace.yaml` on `home` (DRIFT_PIPELINE_HOME; DAGSTER_HOME is home/dagster), stopped on exit."""
    dagster_home = home / "dagster"
    dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    port = free_port()
    environment = {
        **os.environ,
        "DRIFT_PIPELINE_HOME": str(home),
        "DAGSTER_HOME": str(dagster_home),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "HF_HUB_OFFLINE": "1",
        **(env or {}),
    }
    dagster = Path(sys.executable).with_name("dagster")
    command = [str(dagster), "dev", "-w", str(ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)]
    with log.open("wb") as out:
        # A session of its own: stopping it stops the webserver, daemon and code server it started.
        process = subprocess.Popen(
            command, cwd=ROOT, env=environment, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    dev = DagsterDev(url=f"http://127.0.0.1:{port}", process=process, log=log)
    try:
        _wait_until_up(dev, START_TIMEOUT_S)
        yield dev
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()  # dagster dev shuts its children down on SIGTERM
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        process.wait(timeout=30)


@contextmanager
def browser() -> Iterator[Browser]:
    """Headless system Chromium under Playwright."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    if executable is None:
        raise RuntimeError("no system Chromium: install the Debian package `chromium` (.ci/run does)")
    with sync_playwright() as playwright:
        # --no-sandbox: CI containers run as root, where Chromium's sandbox refuses to start.
        instance = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield instance
        finally:
            instance.close()


def new_page(instance: Browser) -> Page:
    page = instance.new_page(viewport=VIEWPORT)
    page.set_default_timeout(UI_TIMEOUT_MS)
    return page


def settle(page: Page, text: str) -> None:
    """Wait for `text` to show, then for the UI's queries to finish, and close the community pop-up."""
    page.get_by_text(text).first.wait_for(state="visible")
    page.wait_for_load_state("networkidle", timeout=UI_TIMEOUT_MS)
    page.evaluate("document.fonts.ready.then(() => true)")  # the icon font, or icons show as empty boxes
    dismiss_popups(page)


def dismiss_popups(page: Page) -> None:
    """Dagster's first-visit "Join the Dagster community" dialog covers the page until skipped."""
    skip = page.get_by_role("dialog").get_by_role("button", name="Skip")
    if skip.count():
        skip.first.click()
        skip.first.wait_for(state="hidden")


# name -> (path, text to wait for, tab to click first or None)
VIEWS = {
    "1-drift_report-overview": ("/assets/drift_report", "Latest materialization", None),
    "2-drift_within_threshold-history": (
        "/assets/drift_report?view=checks&checkDetail=drift_within_threshold",
        "drift_within_threshold",
        "Execution history",
    ),
    "4-approve_migration_job-launchpad": (
        "/locations/drift_pipeline/jobs/approve_migration_job/playground",
        "Launchpad",
        None,
    ),
    "5-overview-timeline": ("/overview/activity/timeline", "Timeline", None),
    "6-automation": ("/automation", "nightly_drift_schedule", None),
}


def screenshots(url: str, out: Path, blocked_run_id: str | None) -> list[Path]:
    """The four views of issue 17 (plus the timeline and the automation page) as PNGs in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    views = dict(VIEWS)
    if blocked_run_id:
        views["3-blocked-run"] = (f"/runs/{blocked_run_id}", "RUN_SUCCESS", None)
    shots = []
    with browser() as instance:
        page = new_page(instance)
        for name, (path, text, tab) in sorted(views.items()):
            page.goto(url + path)
            settle(page, text)
            if tab:
                page.get_by_role("tab", name=tab).or_(page.get_by_text(tab, exact=True)).first.click()
                page.wait_for_load_state("networkidle", timeout=UI_TIMEOUT_MS)
                page.evaluate("document.fonts.ready.then(() => true)")
            shots.append(out / f"{name}.png")
            page.screenshot(path=str(shots[-1]), full_page=True)
    return shots


def blocked_run(dagster_home: Path) -> str | None:
    """The newest run a drift check blocked (tagged `drift_pipeline/verdict=DRIFT`), if any."""
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(dagster_home)
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs(dg.RunsFilter(tags={"drift_pipeline/verdict": "DRIFT"}), limit=1)
        return runs[0].run_id if runs else None


def run_demo(home: Path, log: Path, *, report_base_url: str | None = None) -> None:
    """`drift-pipeline demo` on a fresh home, as `make demo` runs it (its own process, the instance in home/dagster)."""
    (home / "dagster").mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "dagster.yaml", home / "dagster" / "dagster.yaml")
    env = {
        **os.environ,
        "DRIFT_PIPELINE_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "HF_HUB_OFFLINE": "1",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        **({"DRIFT_PIPELINE_REPORT_BASE_URL": report_base_url} if report_base_url else {}),
    }
    cli = Path(sys.executable).with_name("drift-pipeline")
    with log.open("wb") as out:
        proc = subprocess.run(
            [str(cli), "demo"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=DEMO_TIMEOUT_S,
            check=False,
        )
    if proc.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise RuntimeError(f"drift-pipeline demo exited with {proc.returncode}; log {log}:\n{tail}")


@pytest.fixture(scope="session")
def report_port() -> int:
    """The port of the session's report server: the demo's report links point at it (as `make ui`'s 3080)."""
    return free_port()


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory: pytest.TempPathFactory, report_port: int) -> Path:
    """A home the demo filled: a drifted tenant (acme), a blocked run, reports, schedules and sensors."""
    if os.environ.get(DEMO_HOME_ENV):
        return Path(os.environ[DEMO_HOME_ENV]).resolve()
    home = tmp_path_factory.mktemp("ui-demo")
    run_demo(home / "home", home / "demo.log", report_base_url=f"http://127.0.0.1:{report_port}")
    return home / "home"


@pytest.fixture(scope="session")
def dagster_ui(demo_home: Path, tmp_path_factory: pytest.TempPathFactory, report_port: int) -> Iterator[DagsterDev]:
    """`dagster dev` (webserver, daemon, code server) on the demo's instance, and the read-only report server
    its links open, for the whole session (what `make ui` starts)."""
    from drift_pipeline.persistence.objects import ObjectStore
    from drift_pipeline.persistence.report_server import ReportServer

    reports = ReportServer(ObjectStore(str(demo_home / "data")), "127.0.0.1", report_port).start()
    try:
        with dagster_dev(demo_home, tmp_path_factory.mktemp("ui-dev") / "dagster-dev.log") as dev:
            yield dev
    finally:
        reports.close()


@pytest.fixture(scope="session")
def ui_browser() -> Iterator[Browser]:
    with browser() as instance:
        yield instance


@pytest.fixture
def ui_page(ui_browser: Browser, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Page]:
    """A fresh page (its own context: no state shared between tests); screenshotted when the test fails."""
    request.node.stash[SCREENSHOT_DIR] = Path(os.environ.get(ARTIFACTS_ENV) or tmp_path)
    context = ui_browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    yield page
    context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """On a failed UI test, a screenshot of every open page; the paths go into the failure report."""
    outcome = yield
    report = outcome.get_result()
    page = getattr(item, "funcargs", {}).get("ui_page")
    if report.when != "call" or not report.failed or page is None:
        return
    folder = item.stash[SCREENSHOT_DIR]
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for n, open_page in enumerate(page.context.pages):
        shot = folder / f"{item.name}-{n}.png"
        try:
            open_page.screenshot(path=str(shot), full_page=True)
            lines.append(f"{shot} (at {open_page.url})")
        except Exception as exc:  # a crashed page must not hide the test's own failure
            lines.append(f"{shot} not taken: {exc}")
    report.sections.append(("UI screenshots", "\n".join(lines)))


def main() -> None:
    parser = argparse.ArgumentParser(description="Screenshots of the Dagster UI on a demo instance.")
    parser.add_argument("--home", type=Path, default=Path(os.environ.get("DRIFT_PIPELINE_HOME", ".drift-pipeline")))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    home = args.home.resolve()
    run_id = blocked_run(home / "dagster")
    args.out.mkdir(parents=True, exist_ok=True)
    with dagster_dev(home, args.out.resolve() / "dagster-dev.log") as dev:
        for shot in screenshots(dev.url, args.out.resolve(), run_id):
            print(shot)


if __name__ == "__main__":
    main()
