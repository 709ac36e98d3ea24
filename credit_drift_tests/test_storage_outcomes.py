"""Outcomes on both databases: idempotent writes, explicit updates with history, unknown ids
kept and reported, cohorts joined at a point in time, application ids on predictions."""

import datetime as dt
import threading

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from credit_drift.errors import CreditDriftError
from credit_drift.features import FeatureSchema, FeatureSpec
from credit_drift.storage import db
from credit_drift.storage.outcomes import (
    COHORT_COLUMNS,
    OutcomeRow,
    OutcomeValidationError,
    count_unknown_outcomes,
    latest_outcome_change,
    read_cohort,
    read_outcome_history,
    read_unknown_outcomes,
    record_outcomes,
)
from credit_drift.storage.predictions import (
    PredictionRow,
    bulk_insert_predictions,
    insert_predictions,
)
from credit_drift.storage.schema import outcomes
from credit_drift.storage.windows import DayWindow

DAY = dt.date(2026, 11, 2)
WINDOW = DayWindow(DAY)
SCHEMA = FeatureSchema((FeatureSpec("AMT_CREDIT"), FeatureSpec("EXT_SOURCE_1")))
OBSERVED = dt.datetime(2027, 2, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def engine(db_url):
    db.upgrade(db_url)
    return db.make_engine(db_url)


def _prediction(i: int, application_id: str | None, at: dt.datetime, probability: float):
    return PredictionRow(
        created_at=at,
        request_id=f"req-{i}",
        features=np.array([1000.0 + i, 0.5]),
        categorical=None,
        probability=probability,
        decision="REFUSED" if probability >= 0.4 else "APPROVED",
        threshold=0.4,
        model_version="model-1",
        inference_time_ms=1.0,
        application_id=application_id,
    )


def _log_day(engine) -> list[PredictionRow]:
    """Five predictions on DAY (one without an application id), one on the day before and one
    at the next midnight (both outside DAY's window)."""
    start = WINDOW.start
    rows = [
        _prediction(0, "A0", start - dt.timedelta(microseconds=1), 0.1),
        _prediction(1, "A1", start, 0.2),
        _prediction(2, "A2", start + dt.timedelta(hours=5), 0.7),
        _prediction(3, None, start + dt.timedelta(hours=9), 0.3),
        _prediction(4, "A4", start + dt.timedelta(hours=12), 0.5),
        _prediction(5, "A5", WINDOW.end - dt.timedelta(microseconds=1), 0.05),
        _prediction(6, "A6", WINDOW.end, 0.9),
    ]
    insert_predictions(engine, SCHEMA, rows)
    return rows


def _outcome(app_id: str, outcome: int, observed_at=OBSERVED, source="api") -> OutcomeRow:
    return OutcomeRow(app_id, outcome, observed_at, source)


def _count_rows(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(outcomes)).scalar_one()


def test_first_write_inserts_and_resend_changes_nothing(engine):
    _log_day(engine)
    batch = [_outcome("A1", 0), _outcome("A2", 1, source="file"), _outcome("A4", 1)]
    first = record_outcomes(engine, batch)
    assert first.to_dict() == {
        "inserted": 3,
        "unchanged": 0,
        "updated": 0,
        "unknown_ids": 0,
        "conflicts": [],
    }
    changed_at = latest_outcome_change(engine)
    assert changed_at is not None and changed_at.tzinfo is not None

    # The same batch again (a client's retry): nothing new, the change time does not move.
    again = record_outcomes(engine, batch)
    assert (again.inserted, again.unchanged, again.updated) == (0, 3, 0)
    assert _count_rows(engine) == 3
    assert latest_outcome_change(engine) == changed_at
    # The same instant in another time zone is the same observation.
    shifted = OBSERVED.astimezone(dt.timezone(dt.timedelta(hours=-5)))
    assert record_outcomes(engine, [_outcome("A1", 0, shifted)]).unchanged == 1
    # An id repeated inside one batch with the same values is one outcome.
    dup = record_outcomes(engine, [_outcome("A5", 0), _outcome("A5", 0)])
    assert (dup.inserted, dup.unchanged) == (1, 1)
    assert _count_rows(engine) == 4


def test_changed_outcome_is_an_update_with_history(engine):
    _log_day(engine)
    record_outcomes(engine, [_outcome("A2", 0), _outcome("A4", 0)])
    first_change = latest_outcome_change(engine)
    later = OBSERVED + dt.timedelta(days=30)
    summary = record_outcomes(
        engine, [_outcome("A2", 1, later), _outcome("A4", 0, later), _outcome("A1", 1)]
    )
    # A2's value changed, A4's observation time changed: both are updates; A1 is new.
    assert (summary.inserted, summary.updated, summary.unchanged) == (1, 2, 0)
    assert latest_outcome_change(engine) > first_change

    history = read_outcome_history(engine, "A2")
    assert history["outcome"].tolist() == [0, 1]
    assert history["observed_at"].tolist() == [pd.Timestamp(OBSERVED), pd.Timestamp(later)]
    assert history["superseded_at"].isna().tolist() == [False, True]
    # The old row was superseded when the new one arrived.
    assert history["superseded_at"].iloc[0] == history["received_at"].iloc[1]

    cohort = read_cohort(engine, DAY).set_index("request_id")
    assert cohort.loc["req-2", "outcome"] == 1.0
    assert cohort.loc["req-2", "observed_at"] == pd.Timestamp(later)


def test_update_false_reports_conflicts_and_writes_nothing_for_them(engine):
    _log_day(engine)
    record_outcomes(engine, [_outcome("A2", 0)])
    summary = record_outcomes(engine, [_outcome("A2", 1), _outcome("A4", 1)], update=False)
    assert summary.conflicts == ["A2"]
    assert (summary.inserted, summary.updated, summary.unchanged) == (1, 0, 0)
    assert read_outcome_history(engine, "A2")["outcome"].tolist() == [0]


def test_unknown_ids_are_kept_counted_and_reported(engine):
    _log_day(engine)
    summary = record_outcomes(
        engine, [_outcome("A1", 1), _outcome("ghost-1", 1), _outcome("ghost-2", 0)]
    )
    assert (summary.inserted, summary.unknown_ids) == (3, 2)
    assert _count_rows(engine) == 3
    assert count_unknown_outcomes(engine) == 2
    unknown = read_unknown_outcomes(engine)
    assert sorted(unknown["application_id"]) == ["ghost-1", "ghost-2"]
    assert set(unknown.columns) == {
        "application_id",
        "outcome",
        "observed_at",
        "received_at",
        "source",
    }
    assert len(read_unknown_outcomes(engine, limit=1)) == 1
    with pytest.raises(CreditDriftError, match="limit"):
        read_unknown_outcomes(engine, limit=0)

    # The prediction arrives later: the outcome was kept, so it now joins.
    late = _prediction(9, "ghost-1", WINDOW.start + dt.timedelta(hours=20), 0.6)
    insert_predictions(engine, SCHEMA, [late])
    assert count_unknown_outcomes(engine) == 1
    cohort = read_cohort(engine, DAY).set_index("request_id")
    assert cohort.loc["req-9", "outcome"] == 1.0


def test_read_cohort_day_bounds_partial_maturity_and_as_of(engine):
    rows = _log_day(engine)
    early = OBSERVED - dt.timedelta(days=60)
    record_outcomes(
        engine,
        [
            _outcome("A0", 1, early),  # the day before: not in the cohort
            _outcome("A1", 0, early),
            _outcome("A2", 1, OBSERVED),
            _outcome("A6", 1, early),  # next midnight: not in the cohort
        ],
    )
    cohort = read_cohort(engine, DAY)
    assert list(cohort.columns) == list(COHORT_COLUMNS)
    assert cohort["request_id"].tolist() == ["req-1", "req-2", "req-3", "req-4", "req-5"]
    assert cohort["application_id"].tolist() == ["A1", "A2", None, "A4", "A5"]
    assert cohort["created_at"].tolist() == [pd.Timestamp(r.created_at) for r in rows[1:6]]
    assert str(cohort["created_at"].dtype) == "datetime64[us, UTC]"
    assert str(cohort["observed_at"].dtype) == "datetime64[us, UTC]"
    assert cohort["probability"].tolist() == [0.2, 0.7, 0.3, 0.5, 0.05]
    assert cohort["decision"].tolist() == ["APPROVED", "REFUSED", "APPROVED", "REFUSED", "APPROVED"]
    # Partial maturity: two of five labeled, the rest NaN / NaT.
    np.testing.assert_array_equal(cohort["outcome"], [0.0, 1.0, np.nan, np.nan, np.nan])
    assert cohort["observed_at"].isna().tolist() == [False, False, True, True, True]

    # As of a moment before A2's outcome was observed, only A1 is labeled; as_of is inclusive.
    before = read_cohort(engine, DAY, as_of=OBSERVED - dt.timedelta(seconds=1))
    np.testing.assert_array_equal(before["outcome"], [0.0, np.nan, np.nan, np.nan, np.nan])
    at = read_cohort(engine, WINDOW.key, as_of=OBSERVED)
    np.testing.assert_array_equal(at["outcome"], [0.0, 1.0, np.nan, np.nan, np.nan])
    with pytest.raises(CreditDriftError, match="as_of"):
        read_cohort(engine, DAY, as_of=dt.datetime(2027, 1, 1))


def test_read_cohort_of_an_empty_day(engine):
    cohort = read_cohort(engine, DAY)
    assert cohort.empty and list(cohort.columns) == list(COHORT_COLUMNS)
    assert str(cohort["outcome"].dtype) == "float64"
    assert latest_outcome_change(engine) is None


def test_bulk_insert_stores_application_ids(engine):
    n = 4
    bulk_insert_predictions(
        engine,
        SCHEMA,
        created_at=pd.date_range(WINDOW.start, periods=n, freq="h"),
        matrix=np.ones((n, 2)),
        probability=[0.1, 0.2, 0.3, 0.4],
        decision="APPROVED",
        threshold=0.5,
        model_version="m",
        request_ids=[f"b-{i}" for i in range(n)],
        application_ids=["100001", None, np.int64(100003), 100004],
    )
    record_outcomes(engine, [_outcome("100003", 1)])
    cohort = read_cohort(engine, DAY)
    assert cohort["application_id"].tolist() == ["100001", None, "100003", "100004"]
    np.testing.assert_array_equal(cohort["outcome"], [np.nan, np.nan, 1.0, np.nan])
    with pytest.raises(OutcomeValidationError, match="row 1: application_id is empty"):
        bulk_insert_predictions(
            engine,
            SCHEMA,
            created_at=pd.date_range(WINDOW.start, periods=2, freq="h"),
            matrix=np.ones((2, 2)),
            probability=0.1,
            decision="APPROVED",
            threshold=0.5,
            model_version="m",
            application_ids=["x", ""],
        )


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (OutcomeRow("A1", 2, OBSERVED, "api"), r"outcome row 1 \(application_id 'A1'\): outcome"),
        (OutcomeRow("A1", 0.5, OBSERVED, "api"), "outcome must be 0 or 1, got 0.5"),
        (OutcomeRow("A1", True, OBSERVED, "api"), "outcome must be 0 or 1, got True"),
        (OutcomeRow("", 1, OBSERVED, "api"), "outcome row 1: application_id is empty"),
        (OutcomeRow("a\x00b", 1, OBSERVED, "api"), "NUL"),
        (OutcomeRow("x" * 129, 1, OBSERVED, "api"), "129 characters, at most 128"),
        (OutcomeRow(17, 1, OBSERVED, "api"), "application_id must be a string"),
        (OutcomeRow("A1", 1, dt.datetime(2027, 1, 1), "api"), "observed_at .* no time zone"),
        (OutcomeRow("A1", 1, "2027-01-01", "api"), "observed_at must be a datetime"),
        (OutcomeRow("A1", 1, OBSERVED, "email"), "source 'email'"),
        (OutcomeRow("A0", 1, OBSERVED, "api"), "another outcome or observed_at in row 0"),
    ],
)
def test_bad_rows_are_refused_naming_the_row_and_field(engine, row, message):
    with pytest.raises(OutcomeValidationError, match=message):
        record_outcomes(engine, [_outcome("A0", 0), row])
    assert _count_rows(engine) == 0  # all or nothing


def test_one_current_outcome_per_id_is_enforced_by_the_database(engine):
    record_outcomes(engine, [_outcome("A1", 0)])
    # A second current outcome of A1, and an outcome that is not 0/1: both refused.
    for app_id, value in (("A1", 1), ("B", 2)):
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(
                outcomes.insert().values(
                    application_id=app_id,
                    outcome=value,
                    observed_at=OBSERVED,
                    received_at=OBSERVED,
                    source="api",
                )
            )


def test_concurrent_writers_of_the_same_outcomes_write_them_once(engine):
    # Two clients (or a retry racing its original) send the same batch at once: the writers
    # take turns, so one inserts and the other finds everything unchanged; no constraint error.
    batch = [_outcome(f"C{i}", i % 2) for i in range(300)]
    barrier = threading.Barrier(4)
    results, errors = [], []

    def send():
        try:
            barrier.wait()
            results.append(record_outcomes(engine, batch))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(r.inserted for r in results) == [0, 0, 0, 300]
    assert sorted(r.unchanged for r in results) == [0, 300, 300, 300]
    assert _count_rows(engine) == 300
