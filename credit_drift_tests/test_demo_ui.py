"""`credit-drift demo` end to end on small sizes, then its state seen the way a user sees it: a
real `dagster-webserver` process answering GraphQL, and the Dagster UI and an Evidently report
rendered by a real headless Chromium.

One demo run per module (about a minute, dominated by the 8 partitions' materializations). The
sizes below are the smallest measured to give the full-size demo's timeline (seed 42):

    batch  clean (1-3)    gradual 0.1 / 0.2 / 0.3      sudden 0.5 / 0.7
     200   0.0 0.0 0.0    4.5 OK  11.5 W  10.7 W       49.9 A  52.0 A   (gradual share dips)
     250   0.0 0.0 0.0    1.7 OK  13.4 W  13.4 W       53.2 A  56.6 A
     400   0.0 0.0 0.0    2.9 OK  12.9 W  17.4 W       54.4 A  55.8 A   <- used here
     500   0.0 0.0 7.4    3.1 OK  12.6 W  15.3 W       53.0 A  56.8 A   (day 3: NaN-share noise)
    1000   0.0 0.0 0.0    6.7 OK  14.1 W  16.0 W       55.6 A  56.8 A

(drifted-feature share in %, 5,000 training rows, 30 trees). The batch size barely changes the
run time; 400 keeps every status at least 2.5 points away from its threshold.

Set CREDIT_DRIFT_UPDATE_DOCS=1 to copy the asset page's screenshot to docs/drift_report_asset.png.
"""

import datetime as dt
import html.parser
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from credit_drift.demo import MARKER, DemoError, DemoPaths, fresh_state, run_demo
from credit_drift_tests.browser import chromium_or_skip, free_port

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
DOCS_SCREENSHOT = REPO / "docs" / "drift_report_asset.png"

# The notebook's 8 days: the default `demo` scenario's 3 downturn days after them are
# test_demo_scenario.py's.
SIZES = {
    "batch_size": 400,
    "train_rows": 5000,
    "n_estimators": 30,
    "seed": 42,
    "scenario": "notebook",
}
# A deliberately different, tiny first run on the same home: the real run must replace it.
FIRST_RUN_SIZES = {"batch_size": 50, "train_rows": 2000, "n_estimators": 5, "seed": 7}
DAYS = [(dt.date(2026, 11, 1) + dt.timedelta(days=i)).isoformat() for i in range(8)]
KINDS = ["clean"] * 3 + ["gradual"] * 3 + ["sudden"] * 2
EXPECTED_STATUS = ["OK", "OK", "OK", "OK", "WARNING", "WARNING", "ALERT", "ALERT"]
WINDOWED = ["production_window", "feature_drift", "evidently_report", "drift_report"]
WINDOWED += ["operational_metrics", "stability_report", "realized_performance"]
PNG = b"\x89PNG\r\n\x1a\n"
FIGURES = ["ks_top_features.png", "distributions.png", "drift_timeline.png", "operational.png"]
FIGURES += ["reliability.png"]
ALERT_DAY = "2026-11-07"
SERVER_START_TIMEOUT_S = 120.0
ERROR_PAGE_TEXT = ["Something went wrong", "Unexpected error", "Page not found", "Error"]


# -- fixtures -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> DemoPaths:
    """The demo run twice in this process on the same home (a tiny run, then the real one): the
    tests read the second run's state, so every check below also checks that a re-run starts
    clean (no leftover report, alert or materialization; no database connection kept open on
    the deleted first-run database). The first run costs about a minute more."""
    home = tmp_path_factory.mktemp("demo") / "home"
    with pytest.MonkeyPatch.context() as mp:
        # run_demo exports the state's environment; restore the test process's afterwards.
        for key in DemoPaths(home).environment():
            mp.setenv(key, os.environ.get(key, ""))
        try:
            run_demo(home, progress=False, **FIRST_RUN_SIZES)
            paths = run_demo(home, progress=False, **SIZES)
        finally:
            from credit_drift.storage.db import dispose_engines

            dispose_engines()
    return paths


@pytest.fixture(scope="module")
def reports(demo):
    from credit_drift.storage.alert_outbox import read_alerts
    from credit_drift.storage.db import make_engine
    from credit_drift.storage.drift_results import read_drift_reports

    engine = make_engine(demo.database_url)
    frame = read_drift_reports(engine)
    alerts = read_alerts(engine)
    engine.dispose()
    frame["day"] = frame["report_date"].astype(str).str[:10]
    alerts["day"] = alerts["report_date"].astype(str).str[:10]
    return frame, alerts


def demo_settings(demo: DemoPaths):
    from credit_drift.settings import Settings

    return Settings.from_env({**os.environ, **demo.environment()})


@pytest.fixture(scope="module")
def webserver(demo, tmp_path_factory) -> str:
    """`dagster-webserver -m credit_drift.definitions` on the demo's DAGSTER_HOME, run from a
    scratch directory, as a deployment would."""
    cwd = tmp_path_factory.mktemp("webserver")
    log_path = cwd / "webserver.log"
    port = free_port()
    env = {**os.environ, **demo.environment()}  # DAGSTER_HOME=<home>/dagster included
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "dagster_webserver", "-m", "credit_drift.definitions"]
            + ["-h", "127.0.0.1", "-p", str(port)],
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the code server goes with it
        )
    url = f"http://127.0.0.1:{port}"

    def log_tail() -> str:
        return log_path.read_text(errors="replace")[-5000:]

    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"dagster-webserver exited with code {process.returncode}:\n{log_tail()}"
                )
            try:
                if httpx.get(f"{url}/server_info", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"no answer from {url}/server_info in time:\n{log_tail()}")
            time.sleep(0.5)
        # What clicking "Skip" on the UI's first-visit "Join the Dagster community" dialog does
        # (a file under DAGSTER_HOME), so the screenshots show the page, not the dialog.
        assert graphql(url, "mutation { setNuxSeen }") == {"setNuxSeen": True}
        yield url
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def graphql(url: str, query: str) -> dict:
    response = httpx.post(f"{url}/graphql", json={"query": query}, timeout=60)
    response.raise_for_status()
    body = response.json()
    assert not body.get("errors"), body["errors"]
    return body["data"]


@pytest.fixture(scope="module")
def chromium() -> str:
    return chromium_or_skip()


def browse(exe: str, tmp_path: Path, url: str, *mode: str) -> subprocess.CompletedProcess:
    """One headless Chromium load of `url` with a fresh profile. The virtual-time budget lets
    the page's scripts and GraphQL requests settle before the DOM is dumped or captured."""
    profile = tmp_path / f"profile-{time.monotonic_ns()}"
    command = [
        exe,
        "--headless",
        "--no-sandbox",  # the tests may run as root (CI containers)
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--window-size=1500,1100",
        "--virtual-time-budget=15000",
        *mode,
        url,
    ]
    result = subprocess.run(command, capture_output=True, timeout=180, check=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-3000:]
    return result


class _Text(html.parser.HTMLParser):
    """The visible text of a document: script and style contents excluded, so embedded data
    (Evidently ships its report as JSON in a script) only counts once rendered into elements."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs) -> None:
        if tag in ("script", "style", "template"):
            self._skip += 1

    def handle_endtag(self, tag) -> None:
        if tag in ("script", "style", "template") and self._skip:
            self._skip -= 1

    def handle_data(self, data) -> None:
        if not self._skip:
            self.parts.append(data)


def visible_text(dom: str) -> str:
    parser = _Text()
    parser.feed(dom)
    return " ".join(" ".join(parser.parts).split())


def rendered_text(exe: str, tmp_path: Path, url: str, expected: str) -> str:
    """The page's visible text once `expected` shows up (a second load if the first one was
    captured before the data arrived: the machine running the tests may be busy)."""
    text = ""
    for _ in range(2):
        dom = browse(exe, tmp_path, url, "--dump-dom").stdout.decode("utf-8", errors="replace")
        text = visible_text(dom)
        if expected in text:
            break
    return text


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG, "not a PNG file"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


# -- 1. the demo --------------------------------------------------------------------------------
def test_demo_timeline_matches_the_scenario(demo, reports):
    frame, _ = reports
    assert list(frame["day"]) == DAYS
    assert list(frame["status"]) == EXPECTED_STATUS, frame[["day", "drift_percentage", "status"]]
    assert (frame["n_predictions"] == SIZES["batch_size"]).all()
    pct = list(frame["drift_percentage"])
    clean = [p for p, kind in zip(pct, KINDS, strict=True) if kind == "clean"]
    drifted = [p for p, kind in zip(pct, KINDS, strict=True) if kind != "clean"]
    settings = demo_settings(demo)
    assert max(clean) < 100 * settings.warning_share
    # The drifted share rises with the drift: gradual 0.1 <= 0.2 <= 0.3 <= sudden 0.5 <= 0.7,
    # and every drifted day is above every clean one.
    assert drifted == sorted(drifted), pct
    assert min(drifted) > max(clean), pct
    assert min(pct[6:]) > 100 * settings.alert_share


def test_demo_alerts_the_alert_days_once(reports):
    frame, alerts = reports
    alert_days = list(frame.loc[frame["status"] == "ALERT", "day"])
    assert alert_days == DAYS[6:]
    assert list(alerts["day"]) == alert_days  # one each: the first run's alerts are gone
    assert set(alerts["severity"]) == {"ALERT"}
    expected = frame.set_index("day").loc[alert_days, "drift_percentage"]
    assert list(alerts["drift_percentage"]) == pytest.approx(list(expected))
    assert all(len(top) > 0 for top in alerts["top_features"])


def test_demo_writes_reports_and_plots(demo):
    reports_dir = demo_settings(demo).reports_dir
    assert sorted(p.name for p in reports_dir.iterdir()) == DAYS
    for day in DAYS:
        html_report = reports_dir / day / "evidently_report.html"
        assert html_report.stat().st_size > 10_000, html_report
        assert "<html" in html_report.read_text(errors="replace")[:2000].lower()
        for name in FIGURES:
            data = (reports_dir / day / name).read_bytes()
            width, height = png_size(data)
            assert width > 100 and height > 100, (day, name)
    assert (demo.home / MARKER).exists()
    assert (demo.home / "api.log").exists()


def test_fresh_state_refuses_a_folder_that_is_not_a_demo(tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(DemoError, match="not a credit-drift demo folder"):
        fresh_state(foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"
    # An empty folder and a demo's own folder are fine; the demo's old content is removed.
    empty = tmp_path / "empty"
    empty.mkdir()
    assert fresh_state(empty).home == empty.resolve()
    (empty / "old.db").write_text("previous run")
    fresh_state(empty)
    assert sorted(p.name for p in empty.iterdir()) == [MARKER]


# -- 2. GraphQL ---------------------------------------------------------------------------------
def test_graphql_lists_the_partitioned_assets(webserver):
    data = graphql(
        webserver,
        """{ assetNodes { assetKey { path } isPartitioned
               partitionDefinition { type description }
               partitionStats { numMaterialized numFailed } } }""",
    )
    nodes = {"/".join(n["assetKey"]["path"]): n for n in data["assetNodes"]}
    assert set(WINDOWED) | {"reference_profile"} <= set(nodes)
    assert not nodes["reference_profile"]["isPartitioned"]
    for key in WINDOWED:
        node = nodes[key]
        assert node["isPartitioned"], key
        assert node["partitionDefinition"]["type"] == "TIME_WINDOW", key
        assert "Daily" in node["partitionDefinition"]["description"], key
        assert node["partitionStats"] == {"numMaterialized": 8, "numFailed": 0}, key


def test_graphql_drift_report_materializations_match_the_table(webserver, reports):
    frame, _ = reports
    data = graphql(
        webserver,
        """{ assetOrError(assetKey: {path: ["drift_report"]}) { __typename
               ... on Asset { assetMaterializations(limit: 50) { partition
                   metadataEntries { label __typename
                     ... on FloatMetadataEntry { floatValue }
                     ... on TextMetadataEntry { text }
                     ... on IntMetadataEntry { intValue } } } } } }""",
    )
    asset = data["assetOrError"]
    assert asset["__typename"] == "Asset", asset
    events = asset["assetMaterializations"]
    # Exactly one per day: the first demo run's Dagster instance did not survive the re-run.
    assert sorted(e["partition"] for e in events) == DAYS
    expected = frame.set_index("day")
    for event in events:
        meta = {m["label"]: m for m in event["metadataEntries"]}
        row = expected.loc[event["partition"]]
        assert meta["drift_percentage"]["__typename"] == "FloatMetadataEntry"
        # Rounded for people in the UI; the table keeps the exact share.
        assert meta["drift_percentage"]["floatValue"] == round(row["drift_percentage"], 2)
        assert meta["status"]["text"] == row["status"]
        assert meta["n_predictions"]["intValue"] == row["n_predictions"]
        assert meta["report_date"]["text"] == event["partition"]
        for figure in ("ks_top_features", "drift_timeline"):
            assert meta[figure]["__typename"] == "MarkdownMetadataEntry"


# -- 3. the browser -----------------------------------------------------------------------------
def test_browser_shows_the_drift_report_partition(webserver, chromium, reports, tmp_path):
    frame, _ = reports
    row = frame.set_index("day").loc[ALERT_DAY]
    # The asset's Partitions tab with one partition selected: the partition health bar and
    # list, and the selected materialization with its metadata.
    url = f"{webserver}/assets/drift_report?view=partitions&partition={ALERT_DAY}"
    text = rendered_text(chromium, tmp_path, url, "drift_percentage")
    for expected in ["drift_report", "drift_percentage", ALERT_DAY, "ALERT", "daily_drift_job"]:
        assert expected in text, (expected, text[:3000])
    assert repr(round(float(row["drift_percentage"]), 2)) in text, text[:3000]
    for error in ERROR_PAGE_TEXT:
        assert error not in text, (error, text[:3000])

    screenshot = tmp_path / "drift_report_asset.png"
    browse(chromium, tmp_path, url, f"--screenshot={screenshot}")
    data = screenshot.read_bytes()
    assert png_size(data) == (1500, 1100)
    from PIL import Image  # matplotlib's dependency

    with Image.open(screenshot) as image:
        colors = image.convert("RGB").getcolors(maxcolors=1_000_000)
    assert colors is not None and len(colors) > 200, "the screenshot looks blank"
    if os.environ.get("CREDIT_DRIFT_UPDATE_DOCS") == "1":
        DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(screenshot, DOCS_SCREENSHOT)


def test_browser_renders_the_evidently_report(demo, chromium, tmp_path):
    from credit_drift.storage.db import make_engine
    from credit_drift.storage.drift_results import read_feature_drift

    engine = make_engine(demo.database_url)
    results = read_feature_drift(engine, dt.date.fromisoformat(ALERT_DAY))
    engine.dispose()
    drifted = set(results.loc[results["drifted"], "feature"])
    assert drifted
    report = demo_settings(demo).reports_dir / ALERT_DAY / "evidently_report.html"
    text = rendered_text(chromium, tmp_path, report.as_uri(), "Drift")
    assert "Dataset Drift" in text, text[:2000]
    assert "Drift is detected" in text, text[:2000]
    assert any(feature in text for feature in drifted), text[:2000]
