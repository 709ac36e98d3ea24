"""Alerts end to end, on SQLite and PostgreSQL: the drift report writes its alert in the same
transaction (the outbox), the sensor delivers it once to a real HTTP receiver and announces it
once (one run request per day, whatever the cursor), a down webhook loses nothing and is
delivered on a later tick, concurrent deliverers in separate processes post each alert once,
CREDIT_DRIFT_ALERT_SEVERITY=WARNING, and the estimated-performance alert (a second kind of the
same outbox: its own row, run key and body)."""

import datetime as dt
import json
import multiprocessing
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from credit_drift.definitions import defs
from credit_drift.defs.assets import (
    drift_report,
    estimated_performance,
    feature_drift,
    production_window,
    reference_profile,
    segment_drift,
)
from credit_drift.defs.resources import resources_from_settings
from credit_drift.pipeline import alerts as delivery
from credit_drift.settings import Settings
from credit_drift.stats.policy import should_alert
from credit_drift.stats.results import top_drifted
from credit_drift.storage.alert_outbox import (
    AlertIntent,
    StoredAlert,
    read_alerts,
    record_alert,
    update_alert_webhook,
)
from credit_drift.storage.db import make_engine, upgrade
from credit_drift.storage.drift_results import read_drift_reports, read_feature_drift
from credit_drift_tests.conftest import replay_batches

# drift_report depends on feature_drift and production_window (and shows segment_drift's table,
# empty with no segment configured): the alert needs nothing else.
DAY_ASSETS = [production_window, feature_drift, segment_drift, drift_report]
START = "2026-11-01"
BATCH_SIZE = 600  # measured: clean -> OK (0%), sudden 0.5/0.7 -> ALERT (50-57%), gradual 0.5 ->
# WARNING (about 19%) with the module's model and the replay's default seed


# -- fixtures ------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _fast_webhook(monkeypatch):
    """No real backoff between webhook attempts, and no webhook unless a test sets one."""
    monkeypatch.setattr(delivery, "WEBHOOK_BACKOFF_S", 0.0)
    monkeypatch.delenv("CREDIT_DRIFT_ALERT_WEBHOOK_URL", raising=False)
    monkeypatch.delenv("CREDIT_DRIFT_ALERT_SEVERITY", raising=False)
    monkeypatch.delenv("CREDIT_DRIFT_MIN_ESTIMATED_AUC", raising=False)
    monkeypatch.delenv("CREDIT_DRIFT_DAGSTER_URL", raising=False)


@pytest.fixture
def env(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("CREDIT_DRIFT_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("DATABASE_URL", db_url)
    upgrade(db_url)
    return db_url


def _resources():
    """The definitions' resources from the environment as the test set it."""
    return resources_from_settings(Settings.from_env(), evidently_max_columns=8)


@pytest.fixture
def project(env, model_dir, monkeypatch):
    """Returns `setup(batches)`: replays the batches (batch i on START + i days), materializes
    the reference profile, and gives (engine, instance)."""
    root, paths, artifacts = model_dir
    monkeypatch.setenv("CREDIT_DRIFT_ARTIFACTS_DIR", str(root / "artifacts"))
    monkeypatch.setenv("CREDIT_DRIFT_TRAINING_DATA", str(paths.train))

    def setup(batches):
        replay_batches(env, model_dir, batches, batch_size=BATCH_SIZE)
        instance = dg.DagsterInstance.ephemeral()
        assert dg.materialize(
            [reference_profile], resources=_resources(), instance=instance
        ).success
        return make_engine(env), instance

    return setup


class Webhook:
    """A real local HTTP server recording every POSTed JSON body; answers `status`, after
    `delay` seconds."""

    def __init__(self):
        self.status = 200
        self.delay = 0.0
        self.bodies: list[dict] = []
        self.answers: list[int] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                time.sleep(hook.delay)
                status = hook.status
                hook.bodies.append(body)
                hook.answers.append(status)
                payload = b"ok" if status < 300 else b"webhook down"
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def delivered(self) -> list[dict]:
        return [b for b, s in zip(self.bodies, self.answers, strict=True) if s < 300]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def webhook(monkeypatch):
    hook = Webhook()
    monkeypatch.setenv("CREDIT_DRIFT_ALERT_WEBHOOK_URL", hook.url)
    yield hook
    hook.close()


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def _materialize(instance, day):
    result = dg.materialize(
        DAY_ASSETS, partition_key=day, resources=_resources(), instance=instance
    )
    assert result.success
    return result


def _day(i: int) -> str:
    return (dt.date.fromisoformat(START) + dt.timedelta(days=i)).isoformat()


def _tick(instance, cursor):
    """One sensor evaluation; returns (result, new cursor)."""
    sensor = defs.resolve_sensor_def("drift_alert_sensor")
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources=_resources()
    ) as context:
        result = sensor(context)
        return result, context.cursor


def _config(request: dg.RunRequest) -> dict:
    """The drift_alert op's config carried by an alert RunRequest."""
    return request.run_config["ops"]["drift_alert"]["config"]


def _statuses(engine) -> dict[str, str]:
    reports = read_drift_reports(engine)
    return dict(zip(reports["report_date"].astype(str).str[:10], reports["status"], strict=True))


def _alerts(engine):
    alerts = read_alerts(engine)
    alerts.index = alerts["report_date"].astype(str).str[:10]
    return alerts


# -- a. backfill, exactly once -------------------------------------------------------------
def test_backfill_alerts_each_alert_day_exactly_once(project):
    engine, instance = project(
        [
            {"kind": "clean"},
            {"kind": "sudden", "intensity": 0.7},
            {"kind": "clean"},
            {"kind": "sudden", "intensity": 0.5},
        ]
    )
    days = [_day(i) for i in range(4)]
    for day in days:  # the whole backfill lands before the sensor's first tick
        _materialize(instance, day)
    assert _statuses(engine) == dict(zip(days, ["OK", "ALERT", "OK", "ALERT"], strict=True))
    # The alert rows exist as soon as the reports do: no sensor has run yet.
    assert list(_alerts(engine).index) == ["2026-11-02", "2026-11-04"]

    first, cursor = _tick(instance, None)
    assert isinstance(first, list)
    assert [r.run_key for r in first] == ["drift-alert-2026-11-02", "drift-alert-2026-11-04"]
    for request, day in zip(first, ["2026-11-02", "2026-11-04"], strict=True):
        config = _config(request)
        assert config["report_date"] == day
        assert config["status"] == "ALERT"
        assert config["drift_percentage"] > 30
        assert config["webhook_status"] == "disabled"
        assert request.tags == {
            "credit_drift/report_date": day,
            "credit_drift/status": "ALERT",
            "credit_drift/alert_kind": "drift",
        }

    second, cursor = _tick(instance, cursor)
    assert isinstance(second, dg.SkipReason)
    assert second.skip_message == "no new alert"

    _materialize(instance, "2026-11-02")  # re-materializing an ALERT day
    third, cursor = _tick(instance, cursor)
    assert isinstance(third, dg.SkipReason)

    # A reset cursor requests the same runs under the same run keys, which Dagster launches
    # once; the alerts themselves are not written again.
    reset, _ = _tick(instance, None)
    assert [r.run_key for r in reset] == ["drift-alert-2026-11-02", "drift-alert-2026-11-04"]

    alerts = _alerts(engine)
    assert list(alerts.index) == ["2026-11-02", "2026-11-04"]
    reports = read_drift_reports(engine)
    reports.index = reports["report_date"].astype(str).str[:10]
    for day in alerts.index:
        row = alerts.loc[day]
        assert row["severity"] == "ALERT"
        assert row["status"] == "open"
        assert row["webhook_status"] == "disabled"
        assert row["webhook_attempts"] == 0
        assert row["drift_percentage"] == pytest.approx(reports.loc[day, "drift_percentage"])
        assert row["drift_percentage"] > 30
        results = read_feature_drift(engine, dt.date.fromisoformat(day))
        expected = top_drifted(results, 10)["feature"].tolist()
        assert len(expected) == 10
        assert list(row["top_features"]) == expected
        drifted = set(results.loc[results["drifted"].astype(bool), "feature"])
        assert set(expected) <= drifted


def test_the_cli_sensor_tick_runs_each_alert_job_once(project):
    """`credit-drift materialize` and the demo evaluate the sensor in process: a run key that
    already ran is not run again, even with the cursor lost."""
    from credit_drift import orchestration

    engine, instance = project([{"kind": "sudden", "intensity": 0.7}])
    _materialize(instance, _day(0))
    assert orchestration.run_alert_sensor(instance) == [_day(0)]
    assert orchestration.run_alert_sensor(instance) == []
    instance.run_storage.set_cursor_values({"credit_drift/demo_sensor_cursor": ""})
    assert orchestration.run_alert_sensor(instance) == []
    runs = instance.get_run_records(
        filters=dg.RunsFilter(tags={"dagster/run_key": f"drift-alert-{_day(0)}"})
    )
    assert len(runs) == 1


# -- b. the webhook receives the body ------------------------------------------------------
def test_webhook_receives_one_body_per_alert_day(project, webhook):
    engine, instance = project(
        [{"kind": "sudden", "intensity": 0.7}, {"kind": "sudden", "intensity": 0.5}]
    )
    days = [_day(0), _day(1)]
    for day in days:
        _materialize(instance, day)
    assert _statuses(engine) == {d: "ALERT" for d in days}
    assert _alerts(engine)["webhook_status"].tolist() == ["pending", "pending"]

    result, _ = _tick(instance, None)
    assert [r.run_key for r in result] == [f"drift-alert-{d}" for d in days]
    assert [_config(r)["webhook_status"] for r in result] == ["sent", "sent"]
    assert webhook.answers == [200, 200]
    alerts = _alerts(engine)
    for day, body in zip(days, webhook.bodies, strict=True):
        pct = alerts.loc[day, "drift_percentage"]
        assert body["credit_drift"]["report_date"] == day
        assert body["credit_drift"]["alert_id"] == alerts.loc[day, "id"]
        assert body["credit_drift"]["status"] == "ALERT"
        assert body["credit_drift"]["drift_percentage"] == pytest.approx(pct)
        assert body["credit_drift"]["top_features"] == list(alerts.loc[day, "top_features"])
        assert day in body["text"]
        assert f"{pct:.1f}%" in body["text"]
        assert body["blocks"][0]["text"]["text"] == body["text"]
    assert alerts["webhook_status"].tolist() == ["sent", "sent"]
    assert alerts["webhook_attempts"].tolist() == [1, 1]
    assert alerts["webhook_error"].isna().all()
    assert alerts["delivered_at"].notna().all()


# -- c. a down webhook loses nothing ------------------------------------------------------
def test_down_webhook_keeps_the_alert_and_a_later_tick_delivers_it(project, webhook):
    engine, instance = project([{"kind": "sudden", "intensity": 0.7}])
    day = _day(0)
    _materialize(instance, day)
    webhook.status = 500

    result, cursor = _tick(instance, None)  # does not raise
    assert [r.run_key for r in result] == [f"drift-alert-{day}"]
    assert _config(result[0])["webhook_status"] == "failed"
    assert webhook.answers == [500] * delivery.WEBHOOK_ATTEMPTS
    row = _alerts(engine).loc[day]
    assert row["webhook_status"] == "failed"
    assert row["webhook_attempts"] == delivery.WEBHOOK_ATTEMPTS
    assert row["webhook_error"].startswith("HTTP 500")
    assert "webhook down" in row["webhook_error"]

    webhook.status = 200
    again, cursor = _tick(instance, cursor)  # no new alert
    assert isinstance(again, dg.SkipReason)
    assert len(webhook.delivered()) == 1
    body = webhook.delivered()[0]
    assert body["credit_drift"]["report_date"] == day
    row = _alerts(engine).loc[day]
    assert row["webhook_status"] == "sent"
    assert row["webhook_attempts"] == delivery.WEBHOOK_ATTEMPTS + 1
    assert row["webhook_error"] is None

    # Delivered alerts are not sent again.
    n_posts = len(webhook.bodies)
    _tick(instance, cursor)
    assert len(webhook.bodies) == n_posts
    assert len(read_alerts(engine)) == 1


def _failed_alert(engine, day: dt.date) -> None:
    """An ALERT row whose first webhook delivery failed (1 attempt, HTTP 503)."""
    assert record_alert(engine, AlertIntent(day, "ALERT", 42.0, ["AMT_CREDIT"], deliver=True))
    update_alert_webhook(engine, day, webhook_status="failed", attempts=1, error="HTTP 503")


def test_retries_stop_after_the_total_attempt_budget(env, monkeypatch):
    """Storage only (no model): an alert whose webhook is unreachable (closed port) is retried
    on each tick until WEBHOOK_MAX_TOTAL_ATTEMPTS, then left as failed, never raising."""
    engine = make_engine(env)
    _failed_alert(engine, dt.date(2026, 11, 3))
    monkeypatch.setenv("CREDIT_DRIFT_ALERT_WEBHOOK_URL", _closed_port_url())
    instance = dg.DagsterInstance.ephemeral()

    attempts = []
    cursor = None
    for _ in range(5):
        _, cursor = _tick(instance, cursor)
        attempts.append(int(read_alerts(engine)["webhook_attempts"].iloc[0]))
    assert delivery.WEBHOOK_ATTEMPTS == 3 and delivery.WEBHOOK_MAX_TOTAL_ATTEMPTS == 9
    assert attempts == [4, 7, 9, 9, 9]
    row = read_alerts(engine).iloc[0]
    assert row["webhook_status"] == "failed"
    assert "ConnectError" in row["webhook_error"]


def test_one_call_delivers_at_most_a_few_alerts_oldest_first(env, monkeypatch):
    """A webhook that stays down must not make every tick retry every old alert: at most
    WEBHOOK_ALERTS_PER_CALL per call, the oldest days first."""
    engine = make_engine(env)
    for day in [dt.date(2026, 11, d) for d in (5, 1, 4, 2, 3)]:
        _failed_alert(engine, day)
    done = delivery.deliver_alerts(engine, _closed_port_url())
    assert delivery.WEBHOOK_ALERTS_PER_CALL == 3
    assert [d.report_date.isoformat() for d in done] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert not any(d.delivered for d in done)
    attempts = _alerts(engine)["webhook_attempts"].to_dict()
    assert attempts == {
        "2026-11-01": 4,
        "2026-11-02": 4,
        "2026-11-03": 4,
        "2026-11-04": 1,
        "2026-11-05": 1,
    }


def test_a_failing_delivery_does_not_stop_the_sensor(env, monkeypatch, webhook):
    engine = make_engine(env)
    record_alert(engine, AlertIntent(dt.date(2026, 11, 2), "ALERT", 40.0, ["a"], deliver=True))

    def broken(engine, url):
        raise RuntimeError("database gone")

    monkeypatch.setattr("credit_drift.defs.sensors.deliver_alerts", broken)
    result, cursor = _tick(dg.DagsterInstance.ephemeral(), None)
    assert [r.run_key for r in result] == ["drift-alert-2026-11-02"]  # still announced
    assert cursor is not None


# -- d. concurrent deliverers, real processes ----------------------------------------------
def _deliver_in_a_process(url: str, webhook_url: str, start_at: float, out) -> None:
    time.sleep(max(0.0, start_at - time.time()))
    engine = make_engine(url)
    out.put([d.report_date.isoformat() for d in delivery.deliver_alerts(engine, webhook_url)])


def test_concurrent_deliverers_post_each_alert_once(env, webhook):
    """Two sensor ticks at once (a daemon and `credit-drift materialize`, say), in separate
    processes, against a slow receiver: each alert is posted exactly once."""
    engine = make_engine(env)
    days = [dt.date(2026, 11, d) for d in (1, 2, 3)]
    for day in days:
        record_alert(engine, AlertIntent(day, "ALERT", 40.0, ["a"], deliver=True))
    webhook.delay = 0.3
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    start_at = time.time() + 2.0  # both processes start their claims together
    procs = [
        ctx.Process(target=_deliver_in_a_process, args=(env, webhook.url, start_at, out))
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    delivered = sorted(d for r in results for d in r)
    assert delivered == [d.isoformat() for d in days]  # each day delivered by one of them
    assert sorted(b["credit_drift"]["report_date"] for b in webhook.bodies) == delivered
    assert _alerts(engine)["webhook_status"].tolist() == ["sent"] * 3


# -- e. severity ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "severity", "expected"),
    [
        ("ALERT", "ALERT", True),
        ("WARNING", "ALERT", False),
        ("OK", "ALERT", False),
        ("NO_DATA", "ALERT", False),
        (None, "ALERT", False),
        ("ALERT", "WARNING", True),
        ("WARNING", "WARNING", True),
        ("OK", "WARNING", False),
        ("NO_DATA", "WARNING", False),
        ("bogus", "WARNING", False),
    ],
)
def test_should_alert(status, severity, expected):
    assert should_alert(status, severity) is expected


def test_warning_day_alerts_only_with_severity_warning(project, monkeypatch):
    engine, instance = project([{"kind": "gradual", "intensity": 0.5}])
    day = _day(0)
    _materialize(instance, day)
    report = read_drift_reports(engine).iloc[0]
    assert report["status"] == "WARNING"
    assert 10 <= report["drift_percentage"] < 30

    # Default severity (ALERT): a WARNING day raises nothing.
    assert read_alerts(engine).empty
    result, _ = _tick(instance, None)
    assert isinstance(result, dg.SkipReason)

    monkeypatch.setenv("CREDIT_DRIFT_ALERT_SEVERITY", "WARNING")
    _materialize(instance, day)
    result, _ = _tick(instance, None)
    assert [r.run_key for r in result] == [f"drift-alert-{day}"]
    assert result[0].tags["credit_drift/status"] == "WARNING"
    alerts = _alerts(engine)
    assert list(alerts.index) == [day]
    assert alerts.loc[day, "severity"] == "WARNING"
    assert alerts.loc[day, "drift_percentage"] == pytest.approx(report["drift_percentage"])


# -- f. the estimated-performance alert -----------------------------------------------------
ESTIMATE_ASSETS = [*DAY_ASSETS, estimated_performance]
DAGSTER_URL = "http://dagster.example:3000"


def _materialize_with_estimate(instance, day):
    result = dg.materialize(
        ESTIMATE_ASSETS, partition_key=day, resources=_resources(), instance=instance
    )
    assert result.success
    return result.asset_materializations_for_node("estimated_performance")[0].metadata


def test_a_drift_and_an_estimated_alert_on_one_day_are_two_rows_and_two_deliveries(
    project, webhook, monkeypatch
):
    """A day of sudden drift whose estimated AUC is below the bound (0.99 here): the drift
    report and the estimate each write one alert of their kind; one tick posts both, once each,
    under two run keys, each body saying what it is about; re-materializing the day writes,
    posts and requests nothing more."""
    from credit_drift import orchestration
    from credit_drift.console import alert_line

    monkeypatch.setenv("CREDIT_DRIFT_MIN_ESTIMATED_AUC", "0.99")
    monkeypatch.setenv("CREDIT_DRIFT_DAGSTER_URL", DAGSTER_URL)
    engine, instance = project([{"kind": "sudden", "intensity": 0.7}])
    day = _day(0)
    meta = _materialize_with_estimate(instance, day)
    assert meta["status"].value == "ALERT" and meta["alert_raised"].value is True
    alerts = read_alerts(engine)
    days = alerts["report_date"].astype(str).str[:10]
    assert list(zip(days, alerts["kind"], strict=True)) == [
        (day, "drift"),
        (day, "estimated_performance"),
    ]
    alerts.index = alerts["kind"]
    est = alerts.loc["estimated_performance"]
    details = est["details"]
    auc = details["estimated_auc"]
    assert auc == pytest.approx(meta["estimated_auc"].value, abs=0.005)  # shown rounded
    # The small model's hold-out has 800 rows: a day of 600 has no band (fewer than 2 chunks
    # of its size); a band in the body: the two tests below.
    assert details["auc_band"] is None and "auc_band_lower" not in meta
    assert details["min_auc"] == 0.99 and details["n_predictions"] == BATCH_SIZE
    assert auc < 0.99
    assert (est["severity"], est["webhook_status"]) == ("ALERT", "pending")
    assert pd.isna(est["drift_percentage"]) and alerts.loc["drift", "details"] is None

    requests, cursor = _tick(instance, None)  # in the order the two steps wrote them
    by_kind = {r.tags["credit_drift/alert_kind"]: r for r in requests}
    assert len(requests) == 2 and set(by_kind) == {"drift", "estimated_performance"}
    assert by_kind["drift"].run_key == f"drift-alert-{day}"
    assert by_kind["estimated_performance"].run_key == f"estimated_performance-alert-{day}"
    config = _config(by_kind["estimated_performance"])
    assert (config["kind"], config["status"], config["drift_percentage"]) == (
        "estimated_performance",
        "ALERT",
        None,
    )
    assert config["message"] == (
        f"ESTIMATED PERFORMANCE ALERT window={day} estimated_auc={auc:.3f} min_auc=0.99 "
        "auc_band=n/a"
    )
    assert webhook.answers == [200, 200]
    bodies = {b["credit_drift"]["kind"]: b for b in webhook.bodies}
    assert set(bodies) == {"drift", "estimated_performance"}
    body = bodies["estimated_performance"]
    assert body["credit_drift"]["alert_id"] == est["id"]
    assert body["credit_drift"]["report_date"] == day
    assert body["credit_drift"]["status"] == "ALERT"
    assert body["credit_drift"]["estimated_auc"] == pytest.approx(auc)
    assert body["credit_drift"]["auc_band"] is None
    assert body["credit_drift"]["min_auc"] == 0.99
    assert body["credit_drift"]["n_predictions"] == BATCH_SIZE
    assert (
        f"in the window {day} (UTC) the estimated AUC is {auc:.3f}, below the bound 0.99"
        in (body["text"])
    )
    assert "AUC band: none (the day is too large for the hold-out's chunks)" in body["text"]
    assert "drifted" not in body["text"]
    link = f"{DAGSTER_URL}/assets/estimated_performance?view=partitions&partition={day}"
    assert body["credit_drift"]["link"] == link
    assert body["blocks"][-1]["elements"][0]["text"] == link
    drift_body = bodies["drift"]
    assert (
        f"{alerts.loc['drift', 'drift_percentage']:.1f}% of the model's features drifted"
        in (drift_body["text"])
    )
    assert drift_body["credit_drift"]["link"] == link.replace(
        "estimated_performance", "drift_report"
    )
    assert read_alerts(engine)["webhook_status"].tolist() == ["sent", "sent"]

    # Re-materialized: no second row, no post, no new run request.
    again = _materialize_with_estimate(instance, day)
    assert again["status"].value == "ALERT" and again["alert_raised"].value is False
    assert len(read_alerts(engine)) == 2
    skip, _ = _tick(instance, cursor)
    assert isinstance(skip, dg.SkipReason)
    assert len(webhook.bodies) == 2

    # `credit-drift materialize`'s in-process tick: one alert run per kind, then none.
    assert sorted(orchestration.run_alert_sensor(instance)) == [
        day,
        f"{day} (estimated performance)",
    ]
    assert orchestration.run_alert_sensor(instance) == []
    runs = instance.get_run_records(
        filters=dg.RunsFilter(tags={"dagster/run_key": f"estimated_performance-alert-{day}"})
    )
    assert len(runs) == 1 and runs[0].dagster_run.is_success

    # `credit-drift status` says what each alert is about.
    lines = [alert_line(a) for a in read_alerts(engine).itertuples()]
    assert lines[0].startswith(f"{day} ALERT: ") and "% drifted (webhook: sent)" in lines[0]
    assert lines[1] == (
        f"{day} ALERT estimated performance: AUC {auc:.3f} (bound 0.99) (webhook: sent)"
    )


def _estimate(model_dir, tmp_path, **settings):
    """The estimate of a day of 300 hold-out applications (a realistic AUC, about 0.7)."""
    from credit_drift.pipeline.config import PipelineConfig
    from credit_drift.pipeline.estimated import cbpe_reference, estimate_logged

    _, _, artifacts = model_dir
    config = PipelineConfig.from_settings(Settings.from_env({}, cwd=tmp_path), **settings)
    p = artifacts.holdout.probability[:300]
    logged = pd.DataFrame(
        {
            "probability": p,
            "decision": np.where(p >= artifacts.threshold, "REFUSED", "APPROVED"),
            "threshold": artifacts.threshold,
            "model_version": artifacts.version,
        }
    )
    reference = cbpe_reference(artifacts)
    return estimate_logged(artifacts, reference, logged, _day(3), config, plot=False), config


def test_concurrent_estimates_of_a_day_raise_one_alert_and_a_zero_bound_none(
    env, model_dir, tmp_path
):
    """Four materializations of one ALERT day at once write one row between them; the bound at
    0 (off) raises no alert whatever the estimate."""
    from credit_drift.pipeline import estimated as estimated_step

    engine = make_engine(env)
    off, off_config = _estimate(model_dir, tmp_path, min_estimated_auc=0.0)
    assert off.status in ("OK", "WARNING") and not estimated_step.raise_alert(
        engine, off, off_config
    )
    out, config = _estimate(model_dir, tmp_path, min_estimated_auc=0.99)
    assert out.status == "ALERT"
    results: list[bool] = []
    barrier = threading.Barrier(4)

    def worker():
        barrier.wait()
        results.append(estimated_step.raise_alert(engine, out, config))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(results) == [False, False, False, True]
    alerts = read_alerts(engine)
    assert alerts["kind"].tolist() == ["estimated_performance"]
    assert alerts["webhook_status"].tolist() == ["disabled"]  # no webhook configured
    stored = alerts["details"].iloc[0]
    assert stored["estimated_auc"] == pytest.approx(out.estimate.auc)
    assert stored["auc_band"] == pytest.approx([out.bands["auc"].lower, out.bands["auc"].upper])
    assert (stored["min_auc"], stored["n_predictions"]) == (0.99, 300)
    body = delivery.slack_body(StoredAlert(**{**vars(_stored()), "details": stored}))
    lower, upper = stored["auc_band"]
    assert f"AUC band: {lower:.3f} to {upper:.3f} for a day of 300 applications" in body["text"]


def test_concurrent_deliverers_post_each_alert_of_each_kind_once(env, webhook):
    """Two deliverers in separate processes, a drift and an estimated alert on one day and an
    estimated alert on the next: each (day, kind) is posted exactly once."""
    engine = make_engine(env)
    first, second = dt.date(2026, 11, 1), dt.date(2026, 11, 2)
    details = {
        "estimated_auc": 0.55,
        "min_auc": 0.6,
        "auc_band": [0.66, 0.78],
        "n_predictions": 900,
    }
    record_alert(engine, AlertIntent(first, "ALERT", 40.0, ["a"], deliver=True))
    for day in (first, second):
        record_alert(
            engine,
            AlertIntent(
                day, "ALERT", None, (), deliver=True, kind="estimated_performance", details=details
            ),
        )
    webhook.delay = 0.3
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    start_at = time.time() + 2.0
    procs = [
        ctx.Process(target=_deliver_in_a_process, args=(env, webhook.url, start_at, out))
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert sum(len(r) for r in results) == 3
    posted = sorted(
        (b["credit_drift"]["report_date"], b["credit_drift"]["kind"]) for b in webhook.bodies
    )
    assert posted == [
        ("2026-11-01", "drift"),
        ("2026-11-01", "estimated_performance"),
        ("2026-11-02", "estimated_performance"),
    ]
    assert read_alerts(engine)["webhook_status"].tolist() == ["sent"] * 3


def _stored(**details) -> StoredAlert:
    return StoredAlert(
        id=7,
        report_date=dt.date(2026, 11, 4),
        severity="WARNING",
        drift_percentage=None,
        top_features=(),
        webhook_status="pending",
        webhook_attempts=0,
        kind="estimated_performance",
        details=details,
    )


def test_the_estimated_body_names_the_metrics_outside_their_band_and_a_missing_band():
    """CREDIT_DRIFT_ALERT_SEVERITY=WARNING: an estimate inside its bound but outside its band
    alerts as WARNING, and the body says which metrics left the band; a day too large for a
    band says so."""
    warning = delivery.slack_body(
        _stored(
            estimated_auc=0.71,
            min_auc=0.6,
            auc_band=[0.72, 0.8],
            n_predictions=1500,
            outside_band=["auc", "default_rate"],
        )
    )
    assert (
        "in the window 2026-11-04 (UTC) estimated auc, default_rate outside the reference "
        in (warning["text"])
    )
    assert "AUC band: 0.720 to 0.800 for a day of 1,500 applications" in warning["text"]
    assert "link" not in warning["credit_drift"] and len(warning["blocks"]) == 1
    no_band = delivery.slack_body(
        _stored(estimated_auc=0.5, min_auc=0.6, auc_band=None, n_predictions=90000)
    )
    assert "the estimated AUC is 0.500, below the bound 0.6" in no_band["text"]
    assert "AUC band: none (the day is too large for the hold-out's chunks)" in no_band["text"]
