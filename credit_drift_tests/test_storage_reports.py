"""Reference profiles, feature results, drift reports, the alert outbox and the API log, on both
databases."""

import datetime as dt
import threading

import numpy as np
import pandas as pd
import pytest

from credit_drift.features import FeatureSchema, FeatureSpec
from credit_drift.storage import db
from credit_drift.storage.alert_outbox import (
    AlertIntent,
    alerts_after,
    claim_deliverable,
    finish_delivery,
    read_alerts,
    record_alert,
    update_alert_webhook,
)
from credit_drift.storage.api_logs import ApiLogRow, insert_api_log, insert_api_logs, read_api_logs
from credit_drift.storage.drift_results import (
    DriftReportRow,
    read_drift_report,
    read_drift_reports,
    read_feature_drift,
    replace_feature_drift,
    upsert_drift_report,
)
from credit_drift.storage.reference_profiles import (
    ReferenceFeatureRecord,
    activate_reference,
    load_reference,
    save_reference,
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
def _rows(*rows) -> pd.DataFrame:
    """(feature, drifted, statistic, p_value) tuples as a results frame."""
    return pd.DataFrame(
        [
            {
                "feature": f,
                "kind": "numeric",
                "test": "ks",
                "drifted": d,
                "statistic": s,
                "p_value": p,
            }
            for f, d, s, p in rows
        ]
    )


def test_the_table_has_the_declared_result_columns(engine):
    import sqlalchemy as sa

    from credit_drift.stats.results import FEATURE_RESULT_NAMES

    columns = [c["name"] for c in sa.inspect(engine).get_columns("feature_drift_results")]
    assert columns == ["id", "report_date", *FEATURE_RESULT_NAMES]
    assert list(read_feature_drift(engine, DAY).columns) == list(FEATURE_RESULT_NAMES)


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
    replace_feature_drift(engine, other_day, _rows(("a", False, 0.1, None)))
    stored = read_feature_drift(engine, DAY)
    assert stored["feature"].tolist() == ["a", "b", "c"]
    assert stored["drifted"].tolist() == [True, False, True]
    assert np.isnan(stored["p_value"].iloc[2]) and np.isnan(stored["p_adjusted"].iloc[2])
    assert stored["unseen_categories"].tolist() == [None, None, ["zz"]]
    assert stored["p_value"].iloc[0] == 1e-9

    replace_feature_drift(engine, DAY, _rows(("b", True, 0.5, 1e-4)))
    assert read_feature_drift(engine, DAY)["feature"].tolist() == ["b"]
    assert read_feature_drift(engine, other_day)["feature"].tolist() == ["a"]  # untouched
    with pytest.raises(ValueError, match="'a' appears twice"):
        replace_feature_drift(engine, DAY, _rows(("a", True, None, None), ("a", True, None, None)))
    with pytest.raises(ValueError, match=r"lacks required columns \['drifted'\]"):
        replace_feature_drift(engine, DAY, first.drop(columns="drifted"))
    assert read_feature_drift(engine, DAY)["feature"].tolist() == ["b"]


def test_concurrent_replacements_of_one_day_both_succeed(engine):
    """Two runs materializing the same day at once: one waits for the other (the day's lock),
    neither fails on the unique constraint, and the day holds one whole result."""
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def worker(k: int):
        rows = _rows(*[(f"f{j}", bool(k % 2), float(k), 0.5) for j in range(200)])
        barrier.wait()
        try:
            replace_feature_drift(engine, DAY, rows)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    stored = read_feature_drift(engine, DAY)
    assert len(stored) == 200
    assert stored["statistic"].nunique() == 1  # one writer's whole result, not a mix


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


# -- alert outbox -------------------------------------------------------------------------
def _intent(day=DAY, deliver=True) -> AlertIntent:
    return AlertIntent(day, "ALERT", 45.0, ["a", "b"], deliver=deliver)


def test_a_window_alerts_once(engine):
    assert record_alert(engine, _intent()) is True
    assert record_alert(engine, _intent()) is False
    assert record_alert(engine, _intent(DAY + dt.timedelta(days=1), deliver=False)) is True
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
    assert alerts.iloc[1]["webhook_status"] == "disabled"  # no webhook: recorded, not sent
    with pytest.raises(LookupError):
        update_alert_webhook(engine, DAY - dt.timedelta(days=9), webhook_status="sent", attempts=1)


def test_concurrent_alerts_for_one_window_insert_one_row(engine):
    results: list[bool] = []
    barrier = threading.Barrier(4)

    def worker():
        barrier.wait()
        results.append(record_alert(engine, _intent()))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, False, False, True]
    assert len(read_alerts(engine)) == 1


def test_the_report_and_its_alert_are_written_together(engine, monkeypatch):
    assert upsert_drift_report(engine, _report(status="ALERT"), alert=_intent()) is True
    # Re-materializing the day replaces the report and raises no second alert.
    assert upsert_drift_report(engine, _report(status="ALERT"), alert=_intent()) is False
    assert len(read_alerts(engine)) == 1 and len(read_drift_reports(engine)) == 1
    # A report whose alert cannot be written is not written either (one transaction).
    from credit_drift.storage import drift_results

    def failing_insert(conn, intent, *, created_at):
        raise RuntimeError("the alert insert failed")

    monkeypatch.setattr(drift_results, "insert_alert", failing_insert)
    day2 = DAY + dt.timedelta(days=1)
    with pytest.raises(RuntimeError, match="alert insert failed"):
        upsert_drift_report(engine, _report(day2, status="ALERT"), alert=_intent(day2))
    assert read_drift_report(engine, day2) is None


def test_a_lease_gives_each_alert_to_one_deliverer(engine):
    record_alert(engine, _intent())
    record_alert(engine, _intent(DAY + dt.timedelta(days=1)))
    record_alert(engine, _intent(DAY + dt.timedelta(days=2), deliver=False))
    lease = dt.timedelta(seconds=60)
    now = dt.datetime(2026, 11, 10, tzinfo=dt.UTC)
    first = claim_deliverable(engine, "a", lease=lease, max_attempts=9, limit=1, now=now)
    assert [x.report_date for x in first] == [DAY]  # oldest first, at most `limit`
    second = claim_deliverable(engine, "b", lease=lease, max_attempts=9, limit=5, now=now)
    assert [x.report_date for x in second] == [DAY + dt.timedelta(days=1)]  # not a's, not disabled
    assert claim_deliverable(engine, "c", lease=lease, max_attempts=9, limit=5, now=now) == []
    # b's outcome is recorded only under b's lease.
    assert not finish_delivery(engine, second[0].id, "a", delivered=True, attempts=1, error=None)
    assert finish_delivery(engine, second[0].id, "b", delivered=False, attempts=3, error="HTTP 500")
    # a dies without recording: once its lease expires, c takes the alert over.
    later = now + lease + dt.timedelta(seconds=1)
    taken = claim_deliverable(engine, "c", lease=lease, max_attempts=9, limit=5, now=later)
    assert [x.report_date for x in taken] == [DAY, DAY + dt.timedelta(days=1)]
    assert taken[1].webhook_attempts == 3  # the failed one, with its attempts counted
    assert not finish_delivery(engine, taken[0].id, "a", delivered=True, attempts=1, error=None)
    assert finish_delivery(engine, taken[0].id, "c", delivered=True, attempts=1, error=None)
    sent = read_alerts(engine).set_index("report_date").loc[DAY]
    assert sent["webhook_status"] == "sent" and pd.notna(sent["delivered_at"])
    assert pd.isna(sent["lease_owner"]) and pd.isna(sent["lease_expires_at"])
    # An alert whose attempts are spent is not claimed again.
    assert claim_deliverable(engine, "d", lease=lease, max_attempts=3, limit=5, now=later) == []
    assert [a.report_date for a in alerts_after(engine, 0, 10)] == [
        DAY,
        DAY + dt.timedelta(days=1),
        DAY + dt.timedelta(days=2),
    ]
    assert [a.report_date for a in alerts_after(engine, taken[0].id, 1)] == [
        DAY + dt.timedelta(days=1)
    ]


def _estimated_intent(day=DAY) -> AlertIntent:
    return AlertIntent(
        day,
        "ALERT",
        None,
        (),
        deliver=True,
        kind="estimated_performance",
        details={"estimated_auc": 0.55, "min_auc": 0.6, "auc_band": [0.68, 0.8]},
    )


def test_a_day_alerts_once_per_kind(engine):
    assert record_alert(engine, _intent()) is True
    assert record_alert(engine, _estimated_intent()) is True  # same day, another kind
    assert record_alert(engine, _estimated_intent()) is False
    assert record_alert(engine, _intent()) is False
    alerts = read_alerts(engine)
    assert list(zip(alerts["report_date"], alerts["kind"], strict=True)) == [
        (DAY, "drift"),
        (DAY, "estimated_performance"),
    ]
    drift, estimated = alerts.iloc[0], alerts.iloc[1]
    assert drift["details"] is None and drift["drift_percentage"] == 45.0
    assert estimated["details"] == {"estimated_auc": 0.55, "min_auc": 0.6, "auc_band": [0.68, 0.8]}
    assert pd.isna(estimated["drift_percentage"]) and list(estimated["top_features"]) == []
    # The delivery state is set per kind.
    update_alert_webhook(
        engine, DAY, webhook_status="failed", attempts=2, kind="estimated_performance"
    )
    alerts = read_alerts(engine).set_index("kind")
    assert alerts.loc["estimated_performance", "webhook_status"] == "failed"
    assert alerts.loc["drift", "webhook_status"] == "pending"
    with pytest.raises(LookupError, match="no estimated_performance alert"):
        update_alert_webhook(
            engine,
            DAY + dt.timedelta(days=1),
            webhook_status="sent",
            attempts=1,
            kind="estimated_performance",
        )
    stored = {a.kind: a for a in alerts_after(engine, 0, 10)}
    assert stored["estimated_performance"].details["auc_band"] == [0.68, 0.8]
    assert stored["drift"].top_features == ("a", "b")


def test_an_unknown_alert_kind_is_refused():
    with pytest.raises(ValueError, match="unknown alert kind 'realized'.*drift"):
        AlertIntent(DAY, "ALERT", None, (), deliver=False, kind="realized")


def test_concurrent_alerts_of_one_day_and_kind_insert_one_row_per_kind(engine):
    results: list[tuple[str, bool]] = []
    barrier = threading.Barrier(6)

    def worker(intent):
        barrier.wait()
        results.append((intent.kind, record_alert(engine, intent)))

    intents = [_intent(), _estimated_intent()] * 3
    threads = [threading.Thread(target=worker, args=(i,)) for i in intents]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(results) == [
        ("drift", False),
        ("drift", False),
        ("drift", True),
        ("estimated_performance", False),
        ("estimated_performance", False),
        ("estimated_performance", True),
    ]
    assert sorted(read_alerts(engine)["kind"]) == ["drift", "estimated_performance"]


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


def test_api_logs_store_every_value_as_given(engine):
    """The batch write (a binary COPY on PostgreSQL) keeps text with COPY's own delimiters and
    escapes, non-ASCII, time stamps in other zones, fractions of a millisecond and the int
    range's ends exactly, and refuses what the columns refuse, the whole batch."""
    start, _ = window_bounds_for_day(DAY)
    paris = dt.timezone(dt.timedelta(hours=1))
    rows = [
        ApiLogRow(
            (start + dt.timedelta(hours=2, microseconds=7)).astimezone(paris),
            "r\t1",
            "POST",
            "/predict\\x",
            503,
            0.123456789,
            error='a "quoted", tab\there\nnewline \\N back\\slash, é ✓',
            n_items=2**31 - 1,
            client="::1",
        ),
        ApiLogRow(
            start + dt.timedelta(hours=3), None, "GET", "/health", 200, 0.0, n_items=-(2**31)
        ),
    ]
    assert insert_api_logs(engine, rows) == 2
    logs = read_api_logs(engine, start, start + dt.timedelta(days=1))
    assert logs["created_at"].tolist() == [
        pd.Timestamp(start + dt.timedelta(hours=2, microseconds=7)),
        pd.Timestamp(start + dt.timedelta(hours=3)),
    ]
    assert logs["request_id"].iloc[0] == "r\t1" and pd.isna(logs["request_id"].iloc[1])
    assert logs["endpoint"].tolist() == ["/predict\\x", "/health"]
    assert logs["error"].iloc[0] == rows[0].error and pd.isna(logs["error"].iloc[1])
    assert logs["latency_ms"].tolist() == [0.123456789, 0.0]
    assert logs["n_items"].tolist() == [2**31 - 1, -(2**31)]
    assert logs["status_code"].tolist() == [503, 200]

    naive = ApiLogRow(dt.datetime(2026, 1, 1), "n", "GET", "/x", 200, 1.0)
    with pytest.raises(Exception, match="naive datetime"):
        insert_api_logs(engine, [rows[1], naive])
    if engine.dialect.name == "postgresql":  # SQLite does not enforce VARCHAR lengths
        too_long = ApiLogRow(start, "t", "GET" * 10, "/x", 200, 1.0)  # method: 16 characters
        with pytest.raises(Exception, match="too long"):
            insert_api_logs(engine, [rows[1], too_long])
    assert len(read_api_logs(engine, start, start + dt.timedelta(days=1))) == 2


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
