"""The pipeline's work functions without Dagster, on SQLite and PostgreSQL: each step takes the
previous step's value and returns its own; the report and its alert land together; an empty day
is NO_DATA, never a fake 0."""

import datetime as dt

import pandas as pd
import pytest

from credit_drift.pipeline.config import PipelineConfig
from credit_drift.pipeline.evidently import build_evidently
from credit_drift.pipeline.feature_drift import compute_feature_drift
from credit_drift.pipeline.operations import compute_operational_metrics
from credit_drift.pipeline.reference import (
    ReferenceBuildError,
    build_reference_profile,
    load_reference_profile,
)
from credit_drift.pipeline.report import write_drift_report
from credit_drift.pipeline.window import read_production_window
from credit_drift.settings import Settings
from credit_drift.storage.alert_outbox import read_alerts
from credit_drift.storage.db import make_engine
from credit_drift.storage.drift_results import read_drift_report, read_feature_drift
from credit_drift.storage.windows import DayWindow
from credit_drift_tests.conftest import replay_batches


@pytest.fixture
def setup(db_url, model_dir, tmp_path):
    root, paths, artifacts = model_dir
    replay_batches(
        db_url, model_dir, [{"kind": "clean"}, {"kind": "sudden", "intensity": 0.7}], batch_size=500
    )
    config = PipelineConfig.from_settings(
        Settings.from_env(
            {"CREDIT_DRIFT_HOME": str(tmp_path / "state")},
            artifacts_dir=root / "artifacts",
            training_data=paths.train,
        ),
        evidently_max_columns=6,
    )
    return make_engine(db_url), artifacts, config


def test_a_day_step_by_step(setup):
    engine, artifacts, config = setup
    with pytest.raises(ReferenceBuildError, match="materialize the reference_profile asset"):
        load_reference_profile(engine)
    info = build_reference_profile(engine, config)
    reference = load_reference_profile(engine)
    assert reference.profile_version == info.profile_version
    assert reference.model_version == artifacts.version

    statuses = {}
    for key in ("2026-11-01", "2026-11-02", "2026-11-05"):
        day = DayWindow.of(key)
        window = read_production_window(engine, artifacts.schema, day)
        assert window.day == day and window.n_rows == (0 if key == "2026-11-05" else 500)
        drift = compute_feature_drift(engine, reference, window, config.policy)
        assert drift.day == day and len(drift.results) == len(artifacts.schema)
        stored = read_feature_drift(engine, day.date)
        pd.testing.assert_series_equal(
            stored["drifted"],
            drift.results.sort_values("feature")["drifted"].reset_index(drop=True),
        )
        report = write_drift_report(engine, reference, window, drift, config)
        statuses[key] = report.status
        row = read_drift_report(engine, day.date)
        assert (row.status, row.window_start, row.window_end) == (report.status, day.start, day.end)
        assert row.profile_version == reference.profile_version
        assert set(report.figures) >= {"ks_top_features", "drift_timeline"}
        assert all(p.exists() for p in report.figures.values())
        evidently = build_evidently(reference, window, drift, config)
        ops = compute_operational_metrics(reference, window, config)
        if window.n_rows:
            assert evidently.path.exists() and evidently.n_columns <= 6
            assert ops.numbers["refusal_rate"] == pytest.approx(
                (window.meta["decision"] == "REFUSED").mean()
            )
        else:
            assert evidently is None and ops.numbers == {}
            assert drift.drift_percentage is None and row.drift_percentage is None

    assert statuses == {"2026-11-01": "OK", "2026-11-02": "ALERT", "2026-11-05": "NO_DATA"}
    alerts = read_alerts(engine)
    assert alerts["report_date"].tolist() == [dt.date(2026, 11, 2)]  # written with the report
    assert alerts["webhook_status"].tolist() == ["disabled"]  # no webhook configured
