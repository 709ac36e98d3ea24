"""The dashboard's read-only queries, on SQLite and PostgreSQL, against a seeded state whose
numbers are known (credit_drift_tests/dashboard_seed.py)."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from credit_drift.stats.reference import (
    CategoricalReference,
    NumericReference,
    feature_reference_from_record,
    training_scores_from_blob,
)
from credit_drift.storage import dashboard_queries as q
from credit_drift.storage import db
from credit_drift_tests import dashboard_seed as seed


@pytest.fixture
def seeded(db_url):
    return seed.seed(db_url)


@pytest.fixture
def engine(seeded):
    return db.make_engine(seeded.url)


def test_an_unmigrated_database_has_no_dashboard_tables(db_url):
    engine = db.make_engine(db_url)
    assert not q.has_dashboard_tables(engine)
    db.upgrade(db_url)
    assert q.has_dashboard_tables(engine)
    extent = q.data_extent(engine)
    assert extent.empty and extent.day_range() is None
    # Every query answers an empty frame with its documented columns.
    assert list(q.drift_timeline(engine).columns) == list(q.TIMELINE_COLUMNS)
    assert list(q.alerts(engine).columns) == list(q.ALERT_COLUMNS)
    assert list(q.day_features(engine, seed.DAYS[0]).columns) == list(q.DAY_FEATURE_COLUMNS)
    assert list(q.decisions_by_day(engine).columns) == list(q.DECISION_COLUMNS)
    assert list(q.api_traffic_by_day(engine).columns) == list(q.TRAFFIC_COLUMNS)
    assert list(q.score_histogram(engine).columns) == list(q.SCORE_HISTOGRAM_COLUMNS)
    assert q.reference_feature(engine, "AMT_CREDIT") is None
    assert q.reference_blob(engine, "training_scores") is None
    assert q.feature_values(engine, seed.DAYS[0], "AMT_CREDIT").empty


def test_extent_and_timeline(engine, seeded):
    extent = q.data_extent(engine)
    assert extent.n_reports == 3
    assert extent.n_predictions == len(seeded.predictions)
    assert extent.n_api_requests == len(seeded.api_logs)
    assert extent.day_range() == (seed.DAYS[0], seed.DAYS[-1])

    timeline = q.drift_timeline(engine)
    assert list(timeline.columns) == list(q.TIMELINE_COLUMNS)
    assert list(timeline["report_date"]) == seed.DAYS
    assert list(timeline["status"]) == seed.STATUSES
    assert list(timeline["drift_percentage"]) == seed.DRIFT_PCT
    assert list(timeline["alerted"]) == [False, False, True]
    assert list(timeline["n_features_drifted"]) == [len(seed.DRIFTED[d]) for d in seed.DAYS]
    # Inclusive day bounds.
    assert list(q.drift_timeline(engine, seed.DAYS[1], seed.DAYS[1])["report_date"]) == [
        seed.DAYS[1]
    ]
    assert q.drift_timeline(engine, dt.date(2027, 1, 1)).empty

    found = q.alerts(engine)
    assert list(found["report_date"]) == [seed.ALERT_DAY]
    assert list(found["top_features"].iloc[0]) == ["EXT_SOURCE_1", "AMT_CREDIT", "DAYS_BIRTH"]
    assert q.alerts(engine, last=seed.DAYS[1]).empty


def test_an_estimated_alert_is_listed_but_is_not_the_days_drift_alert(engine):
    """The timeline's `alerted` means the drift alert (joined on the day AND kind='drift');
    `alerts` lists every kind, by day then kind."""
    from credit_drift.storage.alert_outbox import AlertIntent, record_alert

    details = {"estimated_auc": 0.55, "min_auc": 0.6, "auc_band": [0.66, 0.78]}
    for day in (seed.DAYS[0], seed.ALERT_DAY):
        assert record_alert(
            engine,
            AlertIntent(
                day, "ALERT", None, (), deliver=False, kind="estimated_performance", details=details
            ),
        )
    timeline = q.drift_timeline(engine)
    assert list(timeline["report_date"]) == seed.DAYS  # one row per day, never two
    assert list(timeline["alerted"]) == [False, False, True]
    found = q.alerts(engine)
    assert list(found.columns) == list(q.ALERT_COLUMNS)
    assert list(zip(found["report_date"], found["kind"], strict=True)) == [
        (seed.DAYS[0], "estimated_performance"),
        (seed.ALERT_DAY, "drift"),
        (seed.ALERT_DAY, "estimated_performance"),
    ]
    assert found["details"].iloc[0] == details and found["details"].iloc[1] is None
    assert np.isnan(found["drift_percentage"].iloc[0])


def test_day_features_rank_drifted_first_then_by_importance(engine):
    frame = q.day_features(engine, seed.ALERT_DAY)
    assert list(frame.columns) == list(q.DAY_FEATURE_COLUMNS)
    # AMT_CREDIT (30), DAYS_BIRTH (10), OCCUPATION_TYPE (5) drifted; EXT_SOURCE_1 (50) did not.
    assert list(frame["feature"]) == ["AMT_CREDIT", "DAYS_BIRTH", "OCCUPATION_TYPE", "EXT_SOURCE_1"]
    assert list(frame["rank"]) == [1, 2, 3, 4]
    assert list(frame["drifted"]) == [True, True, True, False]
    occupation = frame.set_index("feature").loc["OCCUPATION_TYPE"]
    assert list(occupation["unseen_categories"]) == ["Astronaut"]
    assert occupation["unseen_share"] == pytest.approx(1 / 3)
    ext = frame.set_index("feature").loc["EXT_SOURCE_1"]
    assert (ext["ref_nan_share"], ext["cur_nan_share"]) == (0.2, 0.14)


def test_reference_feature_decodes_to_the_stats_summary(engine):
    stored = q.reference_feature(engine, "AMT_CREDIT")
    assert stored.kind == "numeric" and stored.importance == 30.0
    ref = feature_reference_from_record(
        stored.feature, stored.kind, stored.summary, stored.nan_count
    )
    assert isinstance(ref, NumericReference)
    assert ref.n == 500 and np.all(np.diff(ref.values) > 0)

    ext = q.reference_feature(engine, "EXT_SOURCE_1")
    assert (
        ext.nan_count
        == feature_reference_from_record(
            ext.feature, ext.kind, ext.summary, ext.nan_count
        ).nan_count
    )
    assert ext.nan_count > 0
    cat = q.reference_feature(engine, "OCCUPATION_TYPE")
    decoded = feature_reference_from_record(cat.feature, cat.kind, cat.summary, cat.nan_count)
    assert isinstance(decoded, CategoricalReference)
    assert decoded.categories == ("Laborers", "Managers") and decoded.n == 500
    assert q.reference_feature(engine, "NOT_A_FEATURE") is None

    scores = training_scores_from_blob(q.reference_blob(engine, "training_scores"))
    assert scores.n == 500 and scores.values[0] >= 0 and scores.values[-1] <= 1


def test_feature_values_are_the_logged_values(engine, seeded):
    expected = seeded.predictions[seeded.predictions["day"] == seed.ALERT_DAY]
    got = q.feature_values(engine, seed.ALERT_DAY, "AMT_CREDIT")
    assert sorted(got) == sorted(expected["AMT_CREDIT"])  # bit for bit
    ext = q.feature_values(engine, seed.ALERT_DAY, "EXT_SOURCE_1")
    assert ext.isna().sum() == expected["EXT_SOURCE_1"].isna().sum() > 0
    assert sorted(ext.dropna()) == sorted(expected["EXT_SOURCE_1"].dropna())
    occupation = q.feature_values(engine, seed.ALERT_DAY, "OCCUPATION_TYPE")
    # Raw strings, the unseen category included.
    assert (
        occupation.value_counts().to_dict() == expected["OCCUPATION_TYPE"].value_counts().to_dict()
    )
    assert q.feature_values(engine, dt.date(2026, 12, 1), "AMT_CREDIT").empty


def test_decisions_by_day_match_the_rows(engine, seeded):
    frame = q.decisions_by_day(engine)
    assert list(frame.columns) == list(q.DECISION_COLUMNS)
    assert list(frame["day"]) == seed.DAYS
    for row in frame.itertuples():
        rows = seeded.predictions[seeded.predictions["day"] == row.day]
        assert row.n_predictions == len(rows)
        assert row.n_refused == (rows["decision"] == "REFUSED").sum()
        assert row.n_approved + row.n_refused == row.n_predictions
        assert row.approval_rate == pytest.approx((rows["decision"] == "APPROVED").mean())
        assert row.mean_probability == pytest.approx(rows["probability"].mean())
        for p in q.PERCENTILES:
            want = np.percentile(rows["inference_time_ms"], p)
            assert getattr(row, f"inference_p{p}_ms") == pytest.approx(want, rel=1e-12)
    only_middle = q.decisions_by_day(engine, seed.DAYS[1], seed.DAYS[1])
    assert list(only_middle["day"]) == [seed.DAYS[1]]


def test_api_traffic_by_day_match_the_rows(engine, seeded):
    frame = q.api_traffic_by_day(engine)
    assert list(frame.columns) == list(q.TRAFFIC_COLUMNS)
    assert list(frame["day"]) == seed.DAYS
    for row in frame.itertuples():
        rows = seeded.api_logs[seeded.api_logs["day"] == row.day]
        assert row.requests == len(rows)
        assert (
            row.client_errors == ((rows["status_code"] >= 400) & (rows["status_code"] < 500)).sum()
        )
        assert row.server_errors == (rows["status_code"] >= 500).sum() > 0
        assert row.error_rate == pytest.approx(row.server_errors / row.requests)
        for p in q.PERCENTILES:
            want = np.percentile(rows["latency_ms"], p)
            assert getattr(row, f"latency_p{p}_ms") == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("n_bins", [1, 10, 20])
def test_score_histogram_counts_every_prediction_once(engine, seeded, n_bins):
    frame = q.score_histogram(engine, n_bins=n_bins)
    assert list(frame.columns) == list(q.SCORE_HISTOGRAM_COLUMNS)
    for day, rows in seeded.predictions.groupby("day"):
        got = frame[frame["day"] == day].set_index("bin")["count"]
        counts, _ = np.histogram(rows["probability"], bins=n_bins, range=(0.0, 1.0))
        want = pd.Series(counts).loc[lambda s: s > 0]
        assert got.to_dict() == want.to_dict()
        assert frame.loc[frame["day"] == day, "share"].sum() == pytest.approx(1.0)
    # probability 1.0 falls in the last bin, closed on the right like numpy's.
    assert frame["bin"].max() == n_bins - 1
    with pytest.raises(ValueError, match="n_bins"):
        q.score_histogram(engine, n_bins=0)


def test_queries_never_write(engine, db_url):
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement.strip().split()[0].upper())

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        q.data_extent(engine)
        q.drift_timeline(engine)
        q.alerts(engine)
        q.day_features(engine, seed.ALERT_DAY)
        q.reference_feature(engine, "AMT_CREDIT")
        q.reference_blob(engine, "training_scores")
        q.feature_values(engine, seed.ALERT_DAY, "AMT_CREDIT")
        q.feature_values(engine, seed.ALERT_DAY, "OCCUPATION_TYPE")
        q.decisions_by_day(engine)
        q.api_traffic_by_day(engine)
        q.score_histogram(engine)
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    assert statements and set(statements) <= {"BEGIN", "SELECT", "WITH", "PRAGMA"}, set(statements)
