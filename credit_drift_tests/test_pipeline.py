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


def test_a_restored_profile_is_reused_while_it_is_the_active_one(setup, model_dir):
    # Restored once per process: a second load is the same object while the stored profile is
    # unchanged, gives the very statistics a fresh load gives, and a newly stored profile (or
    # the same one stored again) is read from the database.
    from credit_drift.pipeline import reference as step
    from credit_drift.stats.reference import fit_reference
    from credit_drift.storage.reference_profiles import (
        ReferenceFeatureRecord,
        activate_reference,
        save_reference,
    )

    engine, artifacts, config = setup
    build_reference_profile(engine, config)
    first = load_reference_profile(engine)
    assert load_reference_profile(engine) is first
    fresh = load_reference_profile(engine, cached=False)
    assert fresh is not first and fresh.profile.equals(first.profile)
    assert (fresh.profile_version, fresh.model_version) == (
        first.profile_version,
        first.model_version,
    )

    day = DayWindow.of("2026-11-02")
    window = read_production_window(engine, artifacts.schema, day)
    cached_drift = compute_feature_drift(engine, first, window, config.policy).results
    fresh_drift = compute_feature_drift(engine, fresh, window, config.policy).results
    pd.testing.assert_frame_equal(cached_drift, fresh_drift, check_exact=True)
    for column in ("statistic", "p_value"):
        assert cached_drift[column].to_numpy().tobytes() == fresh_drift[column].to_numpy().tobytes()

    # The same profile stored again (re-materialized): a new entry, the same content.
    build_reference_profile(engine, config)
    again = load_reference_profile(engine)
    assert again is not first and again.profile.equals(first.profile)
    assert load_reference_profile(engine) is again

    # Another profile made active: never the cached one.
    _, paths, _ = model_dir
    from credit_drift.data.loader import load_training_data

    data = load_training_data(paths.train, "TARGET", "SK_ID_CURR")
    other = fit_reference(data.X.iloc[:1500], artifacts.schema, artifacts.importance)
    _, rows, blobs = other.to_records()
    save_reference(
        engine,
        schema=artifacts.schema,
        profile_version=other.profile_version,
        model_version=artifacts.version,
        n_rows=other.n_rows,
        features=[ReferenceFeatureRecord(**row) for row in rows],
        samples=blobs,
    )
    switched = load_reference_profile(engine)
    assert switched.profile_version == other.profile_version != first.profile_version
    assert switched.profile.equals(other)
    # Back to the first one: what is stored for it has not changed, so the kept one serves.
    activate_reference(engine, first.profile_version)
    assert load_reference_profile(engine) is again
    assert len(step._cache) <= step.CACHED_PROFILES
    step.clear_reference_cache()
    assert load_reference_profile(engine) is not again
