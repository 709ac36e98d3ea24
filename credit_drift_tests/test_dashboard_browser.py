"""`credit-drift dashboard` as a user sees it: the real CLI starts a real Streamlit server on the
demo's state (`credit-drift demo` at small sizes, run once for this module), and a real headless
Chromium renders its pages. Also on an empty state: a clear "no data yet".

Set CREDIT_DRIFT_UPDATE_DOCS=1 to copy the timeline's screenshot to docs/dashboard.png.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from credit_drift.demo import DemoPaths, run_demo
from credit_drift_tests.browser import Browser, chromium_or_skip, free_port

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
DOCS_SCREENSHOT = REPO / "docs" / "dashboard.png"
# The smallest sizes measured (test_demo_ui.py) to give the full demo's timeline.
# The notebook's 8 days: the default `demo` scenario's 3 downturn days after them are
# test_demo_scenario.py's.
SIZES = {
    "batch_size": 400,
    "train_rows": 5000,
    "n_estimators": 30,
    "seed": 42,
    "scenario": "notebook",
}
EXPECTED_STATUS = ["OK", "OK", "OK", "OK", "WARNING", "WARNING", "ALERT", "ALERT"]
DAYS = [f"2026-11-0{i}" for i in range(1, 9)]
ALERT_DAY = "2026-11-07"
START_TIMEOUT_S = 90.0


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> DemoPaths:
    home = tmp_path_factory.mktemp("dash-demo") / "home"
    with pytest.MonkeyPatch.context() as mp:
        for key in DemoPaths(home).environment():
            mp.setenv(key, os.environ.get(key, ""))
        try:
            paths = run_demo(home, progress=False, **SIZES)
        finally:
            from credit_drift.storage.db import dispose_engines

            dispose_engines()
    return paths


def _serve(home: Path, log_path: Path):
    """`credit-drift dashboard --home HOME --port N` (the CLI, which execs Streamlit)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in DemoPaths(home).environment()}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "credit_drift.cli", "dashboard", "--home", str(home)]
            + ["--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            pytest.fail(f"the dashboard exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{url}/_stcore/health", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            _stop(process)
            pytest.fail(f"no answer from {url} in time:\n{log_path.read_text()}")
        time.sleep(0.5)


def _stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def dashboard(demo, tmp_path_factory):
    process, url = _serve(demo.home, tmp_path_factory.mktemp("dash-log") / "streamlit.log")
    yield url
    _stop(process)


@pytest.fixture
def browser(tmp_path):
    b = Browser(chromium_or_skip(), tmp_path / "profile", width=1400, height=1000)
    yield b
    b.close()


def _no_error_box(browser: Browser, text: str) -> None:
    assert browser.count('[data-testid="stException"]') == 0, text[:3000]
    assert browser.count('[data-testid="stAlertContentError"]') == 0, text[:3000]
    for needle in ("Traceback", "Error:", "No data yet"):
        assert needle not in text, (needle, text[:3000])


def test_timeline_shows_the_demo_statuses(dashboard, browser, tmp_path):
    browser.goto(dashboard)
    text = browser.wait_for_text("Drift timeline", "days monitored", f"{DAYS[-1]} ALERT")
    _no_error_box(browser, text)
    # One badge per day, with the stored status.
    for day, status in zip(DAYS, EXPECTED_STATUS, strict=True):
        assert f"{day} {status}" in text, (day, status, text[:3000])
    assert "alerts raised\n\n2" in text, text[:3000]
    shot = tmp_path / "dashboard.png"
    data = browser.screenshot(shot)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image  # matplotlib's dependency

    with Image.open(shot) as image:
        assert image.size == (1400, 1000)
        colors = image.convert("RGB").getcolors(maxcolors=1_000_000)
    assert colors is not None and len(colors) > 200, "the screenshot looks blank"
    if os.environ.get("CREDIT_DRIFT_UPDATE_DOCS") == "1":
        shutil.copyfile(shot, DOCS_SCREENSHOT)


def test_alert_day_drill_down(dashboard, browser, demo):
    import datetime as dt

    from credit_drift.storage import dashboard_queries as q
    from credit_drift.storage.db import make_engine

    engine = make_engine(demo.database_url)
    ranked = q.day_features(engine, dt.date.fromisoformat(ALERT_DAY))
    engine.dispose()
    first = ranked.iloc[0]
    assert first["drifted"]
    browser.goto(f"{dashboard}/day?day={ALERT_DAY}")
    text = browser.wait_for_text("One day in detail", "distribution of", "training reference")
    _no_error_box(browser, text)
    assert "status\n\nALERT" in text, text[:3000]
    assert f"Evidently report of {ALERT_DAY}" in text  # the demo materialized it
    assert "Open the day in Dagster" in text
    # The most important drifted feature is the one whose distribution is drawn first.
    assert f"values logged on {ALERT_DAY}" in text
    assert f"{first['statistic']:.3f}" in text


@pytest.mark.parametrize("page", ["scores", "performance", "operations"])
def test_scores_performance_and_operations_render(dashboard, browser, page):
    browser.goto(f"{dashboard}/{page}")
    needle = {
        "scores": "Approval rate over time",
        "performance": "Default rate per day",
        "operations": "API requests",
    }[page]
    text = browser.wait_for_text(needle)
    _no_error_box(browser, text.replace("No data yet", ""))
    if page == "performance":  # the demo posts outcomes and its model keeps its hold-out
        assert "No outcomes yet" not in text and "No label-free estimate" not in text


def test_empty_state_says_no_data_yet(browser, tmp_path):
    home = tmp_path / "empty-home"
    home.mkdir()
    process, url = _serve(home, tmp_path / "streamlit.log")
    try:
        browser.goto(url)
        text = browser.wait_for_text("No data yet")
        assert browser.count('[data-testid="stException"]') == 0, text
        assert "credit-drift demo" in text
    finally:
        _stop(process)
