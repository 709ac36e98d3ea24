"""Reference profiles, feature results, drift reports, alerts and the API log, on both databases."""

import datetime as dt
import threading

import numpy as np
import pandas as pd
import pytest

from credit_drift.features import FeatureSchema, FeatureSpec
from credit_drift.storage import db
from credit_drift.storage.api_logs import ApiLogRow, insert_api_log, insert_api_logs, read_api_logs
from credit_drift.storage.reports import (
    DriftReportRow,
    FeatureDriftRow,
    ReferenceFeatureRecord,
    activate_reference,
    insert_alert,
    load_reference,
    read_alerts,
    read_drift_report,
    read_drift_reports,
    read_feature_drift,
    replace_feature_drift,
    save_reference,
    update_alert_webhook,
    upsert_drift_report,
)
from credit_drift.storage.windows import window_bounds_for_day

SCHEMA = FeatureSchema(
    (FeatureSpec("a"), FeatureSpec("b"), FeatureSpec("c", "categorical", ("x", "y")))
)
DAY = dt.date(2026, 11, 2)


@pytest.fixture(autouse=True)
def _dispose_engines():
    yield
    db.dispose_engines()


@pytest.fixture
def engine(db_url):
    db.upgrade(db_url)
    return db.make_engine(db_url)


def _records(tag: bytes = b""):
    return [
        ReferenceFeatureRecord(
            feature=spec.name,
            position=j,
            kind=spec.kind,
            n_rows=1000,
            nan_count=j,
            importance=[0.5, 0.3, None][j],
            summary=bytes([j, 0, 255]) + tag,
        )
        for j, spec in enumerate(SCHEMA.features)
    ]


def _save(engine, version, tag=b"", activate=True):
    save_reference(
        engine,
        schema=SCHEMA,
        profile_version=version,
        model_version="model-1",
        n_rows=1000,
        features=_records(tag),
        samples={"joint_sample": b"\x00\x01" + tag, "scores": b"s"},
        activate=activate,
    )


# -- reference profile --------------------------------------------------------------------
def test_reference_profile_round_trip_and_activation(engine):
    assert load_reference(engine) is None
    _save(engine, "p1", b"one")
    ref = load_reference(engine)
    assert ref.profile_version == "p1" and ref.is_active
    assert ref.feature_schema_version == SCHEMA.version and ref.n_rows == 1000
    assert ref.features == tuple(_records(b"one"))
    assert dict(ref.samples) == {"joint_sample": b"\x00\x01one", "scores": b"s"}
    assert ref.created_at.tzinfo is not None

    _save(engine, "p2", b"two")
    assert load_reference(engine).profile_version == "p2"
    assert not load_reference(engine, "p1").is_active
    activate_reference(engine, "p1")
    assert load_reference(engine).profile_version == "p1"
    _save(engine, "p3", activate=False)
    assert load_reference(engine).profile_version == "p1"
    # Saving a stored version again replaces it (no duplicate feature rows).
    _save(engine, "p1", b"new")
    assert load_reference(engine, "p1").features == tuple(_records(b"new"))
    with pytest.raises(LookupError, match="'nope'"):
        load_reference(engine, "nope")
    with pytest.raises(LookupError, match="'nope'"):
        activate_reference(engine, "nope")


def test_reference_profile_must_cover_the_schema(engine):
    records = _records()
    with pytest.raises(ValueError, match=r"lacks 1 schema features: \['c'\]"):
        save_reference(
            engine,
            schema=SCHEMA,
            profile_version="p",
            model_version=None,
            n_rows=1,
            features=records[:2],
        )
    shifted = [records[1], records[0], records[2]]
    shifted = [
        ReferenceFeatureRecord(**{**r.__dict__, "position": i}) for i, r in enumerate(shifted)
    ]
    with pytest.raises(ValueError, match="'b' has position 0"):
        save_reference(
            engine,
            schema=SCHEMA,
            profile_version="p",
            model_version=None,
            n_rows=1,
            features=shifted,
        )
    assert load_reference(engine) is None


# -- per-feature results ------------------------------------------------------------------
def test_replace_feature_drift_replaces_the_window(engine):
    first = pd.DataFrame(
        {
            "feature": ["a", "b", "c"],
            "kind": ["numeric", "numeric", "categorical"],
            "test": ["ks", "ks", "chi2"],
            "statistic": [0.3, np.float64(0.01), 12.0],
            "p_value": [1e-9, 0.8, np.nan],
            "p_adjusted": [3e-9, 0.8, None],
            "drifted": np.array([True, False, True]),
            "unseen_categories": [None, None, ["zz"]],
            "n_current": np.array([500, 500, 500]),
            "explanation": ["not stored"] * 3,
        }
    )
    assert replace_feature_drift(engine, DAY, first) == 3
    other_day = DAY + dt.timedelta(days=1)
    replace_feature_drift(engine, other_day, [FeatureDriftRow("a", "numeric", "ks", False, 0.1)])
    stored = read_feature_drift(engine, DAY)
    assert stored["feature"].tolist() == ["a", "b", "c"]
    assert stored["drifted"].tolist() == [True, False, True]
    assert np.isnan(stored["p_value"].iloc[2]) and np.isnan(stored["p_adjusted"].iloc[2])
    assert stored["unseen_categories"].tolist() == [None, None, ["zz"]]
    assert stored["p_value"].iloc[0] == 1e-9

    replace_feature_drift(engine, DAY, [FeatureDriftRow("b", "numeric", "ks", True, 0.5, 1e-4)])
    assert read_feature_drift(engine, DAY)["feature"].tolist() == ["b"]
    assert read_feature_drift(engine, other_day)["feature"].tolist() == ["a"]  # untouched
    with pytest.raises(ValueError, match="'a' appears twice"):
        replace_feature_drift(engine, DAY, [FeatureDriftRow("a", "numeric", "ks", True)] * 2)
    with pytest.raises(ValueError, match=r"lacks required columns \['drifted'\]"):
        replace_feature_drift(engine, DAY, first.drop(columns="drifted"))
    assert read_feature_drift(engine, DAY)["feature"].tolist() == ["b"]


# -- drift reports ------------------------------------------------------------------------
def _report(day=DAY, **kw):
    start, end = window_bounds_for_day(day)
    values = dict(
        report_date=day,
        window_start=start,
        window_end=end,
        n_predictions=1200,
        n_features_analyzed=3,
        n_features_drifted=1,
        drift_percentage=100 / 3,
        weighted_drift_percentage=50.0,
        status="WARNING",
        policy="default",
        multivariate_score=0.61,
        model_version="model-1",
        profile_version="p1",
        details={"top": ["a"], "ratio": np.float64(0.5), "missing": float("nan")},
    )
    values.update(kw)
    return DriftReportRow(**values)


def test_upsert_drift_report_keeps_one_row_per_window(engine):
    upsert_drift_report(engine, _report())
    first = read_drift_reports(engine)
    upsert_drift_report(
        engine, _report(n_features_drifted=2, drift_percentage=200 / 3, status="ALERT")
    )
    reports = read_drift_reports(engine)
    assert len(reports) == 1
    row = reports.iloc[0]
    assert row["status"] == "ALERT" and row["n_features_drifted"] == 2
    assert row["drift_percentage"] == pytest.approx(200 / 3)
    assert row["created_at"] == first["created_at"].iloc[0]
    assert row["updated_at"] >= first["updated_at"].iloc[0]
    assert row["details"] == {"top": ["a"], "ratio": 0.5, "missing": None}
    stored = read_drift_report(engine, DAY)
    assert stored == _report(
        n_features_drifted=2,
        drift_percentage=200 / 3,
        status="ALERT",
        details={"top": ["a"], "ratio": 0.5, "missing": None},
    )
    assert read_drift_report(engine, DAY + dt.timedelta(days=1)) is None


def test_no_data_report_stores_null_not_zero(engine):
    empty = _report(
        DAY + dt.timedelta(days=1),
        n_predictions=0,
        n_features_analyzed=0,
        n_features_drifted=0,
        drift_percentage=None,
        weighted_drift_percentage=None,
        multivariate_score=None,
        status="NO_DATA",
        details=None,
    )
    upsert_drift_report(engine, _report())
    upsert_drift_report(engine, empty)
    reports = read_drift_reports(engine)
    assert reports["status"].tolist() == ["WARNING", "NO_DATA"]
    assert np.isnan(reports["drift_percentage"].iloc[1])
    assert read_drift_report(engine, empty.report_date).drift_percentage is None
    assert len(read_drift_reports(engine, first_date=empty.report_date)) == 1
    with pytest.raises(ValueError, match="NO_DATA report has no drift_percentage"):
        _report(status="NO_DATA", drift_percentage=0.0)
    with pytest.raises(ValueError, match="WARNING report needs a drift_percentage"):
        _report(drift_percentage=None)
    with pytest.raises(ValueError, match="status 'BAD'"):
        _report(status="BAD")


# -- alerts -------------------------------------------------------------------------------
def test_a_window_alerts_once(engine):
    kw = dict(severity="ALERT", drift_percentage=45.0, top_features=["a", "b"])
    assert insert_alert(engine, report_date=DAY, **kw) is True
    assert insert_alert(engine, report_date=DAY, **kw) is False
    assert insert_alert(engine, report_date=DAY + dt.timedelta(days=1), **kw) is True
    update_alert_webhook(engine, DAY, webhook_status="failed", attempts=3, error="HTTP 500")
    alerts = read_alerts(engine)
    assert alerts["report_date"].tolist() == [DAY, DAY + dt.timedelta(days=1)]
    first = alerts.iloc[0]
    assert (first["webhook_status"], first["webhook_attempts"], first["webhook_error"]) == (
        "failed",
        3,
        "HTTP 500",
    )
    assert first["top_features"] == ["a", "b"] and first["status"] == "open"
    with pytest.raises(LookupError):
        update_alert_webhook(engine, DAY - dt.timedelta(days=9), webhook_status="sent", attempts=1)


def test_concurrent_alerts_for_one_window_insert_one_row(engine):
    results: list[bool] = []
    barrier = threading.Barrier(4)

    def worker():
        barrier.wait()
        results.append(
            insert_alert(
                engine, report_date=DAY, severity="ALERT", drift_percentage=40.0, top_features=None
            )
        )

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, False, False, True]
    assert len(read_alerts(engine)) == 1


# -- API log ------------------------------------------------------------------------------
def test_api_log_round_trip(engine):
    start, end = window_bounds_for_day(DAY)
    insert_api_log(
        engine,
        created_at=start,
        request_id="r1",
        method="POST",
        endpoint="/predict",
        status_code=200,
        latency_ms=4.2,
        n_items=1,
        client="10.0.0.1",
    )
    insert_api_logs(
        engine,
        [
            ApiLogRow(
                start + dt.timedelta(hours=1),
                "r2",
                "POST",
                "/predict",
                422,
                0.8,
                error="missing feature 'a'",
            ),
            ApiLogRow(end, None, "GET", "/health", 200, 0.1),  # next window
        ],
    )
    logs = read_api_logs(engine, start, end)
    assert logs["request_id"].tolist() == ["r1", "r2"]
    assert logs["status_code"].tolist() == [200, 422]
    assert logs["error"].isna().tolist() == [True, False]
    assert logs["error"].iloc[1] == "missing feature 'a'"
    assert logs["client"].iloc[0] == "10.0.0.1" and pd.isna(logs["client"].iloc[1])
    assert logs["created_at"].iloc[0] == pd.Timestamp(start)
    assert len(read_api_logs(engine, end, end + dt.timedelta(days=1))) == 1


def test_stats_reference_profile_survives_storage(engine):
    """Contract with the stats layer: to_records -> save -> load -> from_records is lossless."""
    reference = pytest.importorskip("credit_drift.stats.reference")
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "a": rng.standard_normal(400),
            "b": np.where(rng.random(400) < 0.2, np.nan, rng.integers(0, 5, 400)),
            "c": rng.choice(["x", "y", "unseen"], 400),
        }
    )
    profile = reference.fit_reference(
        frame, SCHEMA, {"a": 0.7, "b": 0.3}, sample_rows=50, scores=rng.random(400)
    )
    header, rows, blobs = profile.to_records()
    save_reference(
        engine,
        schema=SCHEMA,
        profile_version=header["profile_version"],
        model_version="model-1",
        n_rows=header["n_rows"],
        features=rows,
        samples=blobs,
    )
    stored = load_reference(engine)
    assert stored.header()["feature_schema_version"] == header["feature_schema_version"]
    restored = reference.ReferenceProfile.from_records(
        stored.header(), stored.feature_rows(), stored.samples
    )
    assert restored.equals(profile)
