"""The pipeline under faults, with real processes, on SQLite and PostgreSQL: two materializations
of one day at once both succeed with one consistent result; a run SIGKILLed right after writing
an ALERT report still gets its alert delivered, once."""

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from credit_drift.storage.alert_outbox import read_alerts
from credit_drift.storage.db import make_engine
from credit_drift.storage.drift_results import read_drift_reports
from credit_drift_tests.conftest import replay_batches
from credit_drift_tests.test_alerts import Webhook

pytestmark = pytest.mark.slow

DAY = "2026-11-02"
DAILY = "production_window,feature_drift,drift_report"


@pytest.fixture
def state(db_url, model_dir, tmp_path, monkeypatch):
    """An ALERT day (sudden drift on 2026-11-02) logged in `db_url`, the reference profile
    materialized, and the environment a `dagster` subprocess needs."""
    root, paths, artifacts = model_dir
    env = {
        **os.environ,
        "CREDIT_DRIFT_HOME": str(tmp_path / "state"),
        "DATABASE_URL": db_url,
        "CREDIT_DRIFT_ARTIFACTS_DIR": str(root / "artifacts"),
        "CREDIT_DRIFT_TRAINING_DATA": str(paths.train),
    }
    for key in ("CREDIT_DRIFT_HOME", "DATABASE_URL", "CREDIT_DRIFT_ARTIFACTS_DIR"):
        monkeypatch.setenv(key, env[key])
    monkeypatch.setenv("CREDIT_DRIFT_TRAINING_DATA", env["CREDIT_DRIFT_TRAINING_DATA"])
    replay_batches(
        db_url, model_dir, [{"kind": "clean"}, {"kind": "sudden", "intensity": 0.7}], batch_size=500
    )
    done = _dagster(env, tmp_path / "home0", "--select", "reference_profile").wait(timeout=600)
    assert done == 0
    return env, make_engine(db_url), tmp_path


def _dagster(env: dict, home: Path, *args: str, webhook: str | None = None) -> subprocess.Popen:
    home.mkdir(parents=True, exist_ok=True)
    run_env = {**env, "DAGSTER_HOME": str(home)}
    if webhook:
        run_env["CREDIT_DRIFT_ALERT_WEBHOOK_URL"] = webhook
    return subprocess.Popen(
        [str(Path(sys.executable).with_name("dagster")), "asset", "materialize"]
        + ["-m", "credit_drift.definitions", *args],
        env=run_env,
        cwd=home,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _results_of(engine, day: str) -> tuple[int, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "select count(*), count(distinct feature) from feature_drift_results "
                "where report_date = :d"
            ),
            {"d": dt.date.fromisoformat(day)},
        ).one()
    return int(rows[0]), int(rows[1])


def test_two_materializations_of_one_day_at_once_both_succeed(state):
    env, engine, tmp_path = state
    runs = [
        _dagster(env, tmp_path / f"home{i}", "--select", DAILY, "--partition", DAY) for i in (1, 2)
    ]
    errors = [run.communicate(timeout=900)[1] for run in runs]
    for run, err in zip(runs, errors, strict=True):
        assert run.returncode == 0, err[-3000:]
    assert _results_of(engine, DAY) == (419, 419)  # one whole result, no mix, no duplicate
    reports = read_drift_reports(engine)
    assert reports["report_date"].astype(str).str[:10].tolist() == [DAY]
    assert reports["status"].tolist() == ["ALERT"]
    assert len(read_alerts(engine)) == 1


def test_a_run_killed_right_after_its_alert_report_still_alerts_once(state, monkeypatch):
    """SIGKILL the run as soon as the ALERT report is in the database (before Dagster records
    the materialization): the alert was written in the same transaction, and the next sensor
    tick delivers it to the webhook, once."""
    from credit_drift import orchestration

    env, engine, tmp_path = state
    hook = Webhook()
    try:
        home = tmp_path / "killed"
        run = _dagster(env, home, "--select", DAILY, "--partition", DAY, webhook=hook.url)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and run.poll() is None:
            if not read_drift_reports(engine).empty:
                os.killpg(run.pid, signal.SIGKILL)
                break
            time.sleep(0.05)
        run.wait(timeout=60)
        assert run.returncode == -signal.SIGKILL, "the run ended before it could be killed"
        with dg.DagsterInstance.from_config(str(home)) as instance:
            recorded = instance.fetch_materializations(dg.AssetKey("drift_report"), limit=5)
            assert not recorded.records  # Dagster never heard of this report
        assert read_drift_reports(engine)["status"].tolist() == ["ALERT"]
        alerts = read_alerts(engine)
        assert alerts["webhook_status"].tolist() == ["pending"]
        assert hook.bodies == []

        monkeypatch.setenv("CREDIT_DRIFT_ALERT_WEBHOOK_URL", hook.url)
        with dg.DagsterInstance.from_config(str(home)) as instance:
            assert orchestration.run_alert_sensor(instance) == [DAY]
            assert orchestration.run_alert_sensor(instance) == []
        assert [b["credit_drift"]["report_date"] for b in hook.bodies] == [DAY]
        assert read_alerts(engine)["webhook_status"].tolist() == ["sent"]
    finally:
        hook.close()
