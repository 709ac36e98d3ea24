"""The dashboard's script and pages run by Streamlit's own test runner (`AppTest`: the real
script, no browser) on SQLite and PostgreSQL: "no data yet" on empty databases, every page on a
seeded state with no exception, and the numbers shown are the stored ones."""

import datetime as dt
import sys
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from credit_drift.dashboard import launch
from credit_drift.dashboard.app import NO_DATA
from credit_drift.storage import db
from credit_drift.storage.outcomes import read_cohort
from credit_drift_tests import dashboard_seed as seed

APP = str(Path(launch.__file__).with_name("app.py"))
TIMEOUT_S = 120


@pytest.fixture
def env(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("CREDIT_DRIFT_HOME", str(tmp_path))
    monkeypatch.setenv("CREDIT_DRIFT_REPORTS_DIR", str(tmp_path / "reports"))
    return db_url


def _render_page(name: str, day: str | None = None) -> None:
    """Runs inside AppTest: one page of the registry on the seeded days."""
    import datetime as dt

    import streamlit as st

    from credit_drift.dashboard import pages
    from credit_drift.settings import Settings

    if day:
        st.query_params["day"] = day
    spec = {p.url_path: p for p in pages.PAGES}[name]
    spec.render(pages.View(Settings.from_env(), dt.date(2026, 11, 1), dt.date(2026, 11, 3)))


def _run(make) -> AppTest:
    """Run a fresh AppTest from `make()`. CPython 3.11.7's ast module keeps the recursion depth
    of its AST conversion in state that threads share: an `ast.parse` in another thread at the
    same moment makes Streamlit's compile of the script fail ("AST constructor recursion depth
    mismatch", seen once in CI) and the app render nothing at all. That race is the
    interpreter's, not the app's: an app that rendered no element is run once more."""
    at = make().run()
    if not at.exception and not at.main.children:
        at = make().run()
    return at


def _app() -> AppTest:
    return _run(lambda: AppTest.from_file(APP, default_timeout=TIMEOUT_S))


def _page(name: str, day: str | None = None) -> AppTest:
    at = _run(
        lambda: AppTest.from_function(_render_page, args=(name, day), default_timeout=TIMEOUT_S)
    )
    assert not at.exception, [e.value for e in at.exception]
    return at


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_unmigrated_database_says_no_data_yet(env):
    at = _app()
    assert not at.exception
    assert len(at.info) == 1 and NO_DATA in at.info[0].value
    assert "db upgrade" in at.info[0].value
    # Reading never migrates: the tables are still absent.
    from credit_drift.storage.dashboard_queries import has_dashboard_tables

    assert not has_dashboard_tables(db.make_engine(env))


def test_migrated_empty_database_says_no_data_yet(env):
    db.upgrade(env)
    at = _app()
    assert not at.exception
    assert len(at.info) == 1 and NO_DATA in at.info[0].value
    assert "no predictions" in at.info[0].value


def test_unreachable_database_is_said_not_raised(tmp_path, monkeypatch):
    from credit_drift_tests.browser import free_port

    url = f"postgresql+psycopg2://postgres@127.0.0.1:{free_port()}/nothing"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("CREDIT_DRIFT_HOME", str(tmp_path))
    at = _app()
    assert not at.exception
    assert len(at.error) == 1 and "Cannot reach the database" in at.error[0].value
    assert "DATABASE_URL" in at.error[0].value


def test_seeded_app_opens_on_the_timeline(env):
    seed.seed(env)
    at = _app()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.info and not at.error
    assert [h.value for h in at.header] == ["Drift timeline"]
    metrics = _metrics(at)
    assert metrics["days monitored"] == "3"
    assert metrics["latest day (2026-11-03)"] == "ALERT"
    assert metrics["alerts raised"] == "1"
    # The sidebar's range is the data's.
    assert at.sidebar.date_input[0].value == (seed.DAYS[0], seed.DAYS[-1])


def test_timeline_page_lists_each_day_with_its_stored_status(env):
    seed.seed(env)
    at = _page("timeline")
    days = at.dataframe[0].value
    assert list(days["status"]) == seed.STATUSES
    assert list(days["drift_percentage"]) == seed.DRIFT_PCT
    assert list(days["alert"]) == ["", "", "alert raised"]
    assert list(days["day"]) == [f"day?day={d}" for d in seed.DAYS]  # links to the drill-down
    alerts = at.dataframe[1].value
    assert list(alerts["report_date"]) == [seed.ALERT_DAY]


def test_timeline_page_lists_an_estimated_alert_with_its_kind(env):
    from credit_drift.storage.alert_outbox import AlertIntent, record_alert

    seed.seed(env)
    details = {"estimated_auc": 0.55, "min_auc": 0.6, "auc_band": [0.66, 0.78]}
    record_alert(
        db.make_engine(env),
        AlertIntent(
            seed.ALERT_DAY,
            "ALERT",
            None,
            (),
            deliver=False,
            kind="estimated_performance",
            details=details,
        ),
    )
    at = _page("timeline")
    assert list(at.dataframe[0].value["alert"]) == ["", "", "alert raised"]
    alerts = at.dataframe[1].value
    assert list(alerts["kind"]) == ["drift", "estimated_performance"]
    assert list(alerts["about"]) == [
        "EXT_SOURCE_1, AMT_CREDIT, DAYS_BIRTH",
        "estimated AUC 0.550 (bound 0.6)",
    ]


def test_day_page_ranks_drifted_features_and_shows_the_first(env):
    seed.seed(env)
    at = _page("day")  # default: the last day of the range, the ALERT day
    metrics = _metrics(at)
    assert metrics["status"] == "ALERT"
    assert metrics["drifted features"] == "3/4"
    table = at.dataframe[0].value
    assert list(table["feature"]) == ["AMT_CREDIT", "DAYS_BIRTH", "OCCUPATION_TYPE"]
    assert at.selectbox[1].value == "AMT_CREDIT"
    assert metrics["ks statistic"] == f"{0.05 + 0.1 * 1 + 75 / 200:.3f}"  # as stored
    assert any("values logged on 2026-11-03" in c.value for c in at.caption)
    # The missing Evidently report is said, not hidden.
    assert any("No Evidently report" in c.value for c in at.caption)

    # A categorical feature: the unseen category is named under the chart.
    at.selectbox[1].set_value("OCCUPATION_TYPE").run()
    assert not at.exception
    assert any("never seen in training: Astronaut" in c.value for c in at.caption)

    # Every feature on request.
    at.toggle[0].set_value(True).run()
    assert len(at.dataframe[0].value) == 4


def test_day_page_follows_the_day_query_parameter(env):
    seed.seed(env)
    at = _page("day", "2026-11-02")
    assert _metrics(at)["status"] == "WARNING"
    assert list(at.dataframe[0].value["feature"]) == ["OCCUPATION_TYPE"]
    at = _page("day", "2031-01-01")
    assert any("No drift report for 2031-01-01" in w.value for w in at.warning)


def test_day_page_offers_the_evidently_report_when_it_exists(env, tmp_path):
    seed.seed(env)
    report = tmp_path / "reports" / "2026-11-03" / "evidently_report.html"
    report.parent.mkdir(parents=True)
    report.write_text("<html>report</html>")
    at = _page("day")
    assert any(f"on disk: {report}" in c.value for c in at.caption)


def test_scores_and_operations_pages(env):
    seeded = seed.seed(env)
    at = _page("scores")
    n = len(seeded.predictions)
    approved = (seeded.predictions["decision"] == "APPROVED").mean()
    assert _metrics(at)["predictions"] == f"{n:,}"
    assert _metrics(at)["approval rate (whole range)"] == f"{100 * approved:.1f}%"
    at = _page("operations")
    traffic = at.dataframe[0].value
    assert list(traffic["requests"]) == list(seeded.api_logs.groupby("day").size())


def test_dashboard_command_runs_this_python_streamlit(tmp_path):
    from credit_drift.demo import MARKER

    argv, env = launch.streamlit_command(port=8765, home=tmp_path, environ={"PATH": "/nowhere"})
    assert argv[:4] == [sys.executable, "-m", "streamlit", "run"]
    assert argv[4] == APP
    assert argv[argv.index("--server.port") + 1] == "8765"
    assert env["CREDIT_DRIFT_HOME"] == str(tmp_path.resolve())
    assert "DATABASE_URL" not in env
    # A demo folder brings its whole layout (its own database, reports, DAGSTER_HOME).
    (tmp_path / MARKER).write_text("demo")
    _, env = launch.streamlit_command(port=8765, home=tmp_path, environ={})
    assert env["DATABASE_URL"] == f"sqlite:///{tmp_path.resolve() / 'credit_drift.db'}"


def test_cli_parses_the_dashboard_command():
    from credit_drift.cli import build_parser, cmd_dashboard

    args = build_parser().parse_args(["dashboard", "--home", "x", "--port", "9000"])
    assert (args.func, args.home, args.port, args.host) == (cmd_dashboard, "x", 9000, "127.0.0.1")


def test_partition_link_points_at_the_dagster_ui():
    from credit_drift.dashboard.pages import dagster_partition_url
    from credit_drift.settings import Settings

    settings = Settings.from_env({"CREDIT_DRIFT_DAGSTER_URL": "http://dagster:3000/"})
    assert (
        dagster_partition_url(settings, dt.date(2026, 11, 7))
        == "http://dagster:3000/assets/drift_report?view=partitions&partition=2026-11-07"
    )


def _frames_equal(shown, expected, columns) -> None:
    for column in columns:
        np.testing.assert_allclose(
            shown[column].to_numpy(float), expected[column].to_numpy(float), rtol=1e-12
        )


def test_performance_page_shows_the_console_numbers(
    db_url, model_dir, tmp_path, monkeypatch, capsys
):
    """Three replayed days of the small model: the first with every outcome, the second with
    half, the third with none. Before any outcome: "no outcomes yet" beside the estimate. Then
    the page's table holds the same numbers as `credit-drift status` prints."""
    import streamlit as st
    from sklearn.metrics import roc_auc_score

    from credit_drift.console import print_estimated, print_realized
    from credit_drift.model.artifacts import load_artifacts
    from credit_drift.pipeline.config import PipelineConfig
    from credit_drift.pipeline.estimated import cbpe_reference
    from credit_drift.pipeline.performance_by_day import (
        estimated_by_day,
        model_metrics,
        realized_by_day,
    )
    from credit_drift.settings import Settings
    from credit_drift_tests.test_realized_performance import DAYS, _engine_with_ids, _send_outcomes

    engine = _engine_with_ids(db_url, model_dir, tmp_path, monkeypatch)
    settings = Settings.from_env()
    artifacts = load_artifacts(settings.artifacts_dir)
    estimate = estimated_by_day(
        engine, artifacts, cbpe_reference(artifacts), DAYS, PipelineConfig.from_settings(settings)
    )
    assert list(estimate["n_predictions"]) == [300, 300, 300]
    assert np.isfinite(estimate[["estimated_auc", "estimated_default_rate"]].to_numpy()).all()

    at = _page("performance")
    assert any("No outcomes yet" in i.value for i in at.info)
    table = at.dataframe[0].value
    assert list(table["day"]) == list(DAYS) and "cohort_status" not in table
    assert list(table["estimate_status"]) == list(estimate["status"])
    _frames_equal(table, estimate, ["estimated_auc", "estimated_default_rate"])

    y1 = _send_outcomes(engine, DAYS[0], 1.0, seed=1)
    _send_outcomes(engine, DAYS[1], 0.5, seed=2)
    st.cache_data.clear()  # the page's reads are cached for CACHE_TTL_S
    at = _page("performance")
    assert not at.info and not at.warning
    table = at.dataframe[0].value
    assert list(table["cohort_status"]) == ["mature", "partial", "immature"]
    assert list(table["labeled_share"].iloc[:2]) == [1.0, 0.5]
    realized = realized_by_day(
        engine,
        DAYS,
        as_of=dt.datetime.now(dt.UTC),
        horizon_days=settings.outcome_horizon_days,
        model_metrics=model_metrics(settings.artifacts_dir),
    )
    _frames_equal(table, realized, ["observed_default_rate", "mean_pd", "auc"])
    _frames_equal(table, estimate, ["estimated_auc", "estimated_default_rate"])
    cohort = read_cohort(engine, DAYS[0])
    assert table["auc"].iloc[0] == pytest.approx(roc_auc_score(y1, cohort["probability"]))
    assert table["observed_default_rate"].iloc[0] == pytest.approx(y1.mean())
    assert np.isnan(table["auc"].iloc[2])  # no outcome yet: no number
    assert _metrics(at)["outcomes observed"] == f"{300 + 150:,}"

    # `credit-drift status` prints the same numbers.
    capsys.readouterr()
    print_realized(settings, engine, list(DAYS))
    print_estimated(settings, engine, list(DAYS))
    printed = {}
    for line in capsys.readouterr().out.splitlines():
        if line[:10] in DAYS:
            printed.setdefault(line[:10], []).append(line.split())
    for i, day in enumerate(DAYS):
        (real_line, est_line) = printed[day]
        row = table.iloc[i]
        assert real_line[1] == row["cohort_status"]
        assert real_line[3] == _three(row["observed_default_rate"])
        assert real_line[5] == _three(row["auc"])
        assert est_line[1:4] == [
            row["estimate_status"],
            _three(row["estimated_auc"]),
            _three(row["estimated_default_rate"]),
        ]


def _three(value) -> str:
    return "-" if np.isnan(value) else f"{value:.3f}"


def test_performance_page_without_outcomes_or_hold_out_says_so(env, tmp_path, monkeypatch):
    seed.seed(env)
    monkeypatch.setenv("CREDIT_DRIFT_ARTIFACTS_DIR", str(tmp_path / "no-model"))
    at = _page("performance")
    assert len(at.info) == 1 and "No outcomes yet" in at.info[0].value
    assert len(at.warning) == 1 and "No label-free estimate" in at.warning[0].value
    assert str(tmp_path / "no-model") in at.warning[0].value  # names what is missing
    assert not at.dataframe
