"""The prediction log on both databases: exact round trips, windows, validation, JSON view."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from credit_drift.features import FeatureSchema, FeatureSpec
from credit_drift.storage import db
from credit_drift.storage.predictions import (
    META_COLUMNS,
    DuplicateRequestIdError,
    PredictionRow,
    bulk_insert_predictions,
    count_predictions,
    insert_predictions,
    read_predictions,
    register_feature_schema,
)
from credit_drift.storage.predictions import read as predictions_read
from credit_drift.storage.windows import validate_window, window_bounds_for_day

DAY = dt.date(2026, 11, 2)
START, END = window_bounds_for_day(DAY)

SCHEMA = FeatureSchema(
    (
        FeatureSpec("AMT_CREDIT"),
        FeatureSpec("EXT_SOURCE_1"),
        FeatureSpec("CODE_GENDER", "categorical", ("F", "M")),
        FeatureSpec("DAYS_BIRTH"),
        FeatureSpec("NAME_CONTRACT_TYPE", "categorical", ("Cash loans", "Revolving loans")),
        FeatureSpec("OWN_CAR_AGE"),
    )
)
# Values chosen to catch any lossy path: NaN, -0.0, subnormals, extremes, long mantissas.
TRICKY = [
    np.nan,
    -0.0,
    5e-324,
    1e-310,
    1.7976931348623157e308,
    -2.2250738585072014e-308,
    0.1 + 0.2,
    np.pi,
    -1e15 - 0.5,
    123456789.123456789,
]


@pytest.fixture(autouse=True)
def _dispose_engines():
    yield
    db.dispose_engines()


@pytest.fixture
def engine(db_url):
    db.upgrade(db_url)
    return db.make_engine(db_url)


def _row(i, features, categorical=None, at=None, **kw):
    return PredictionRow(
        created_at=at or START + dt.timedelta(minutes=i),
        request_id=f"req-{i}",
        features=np.asarray(features, dtype=float),
        categorical=categorical,
        probability=kw.get("probability", 0.25 + i / 1000),
        decision=kw.get("decision", "APPROVED"),
        threshold=0.42,
        model_version="model-1",
        inference_time_ms=kw.get("inference_time_ms", 1.5),
        source=kw.get("source", "api"),
    )


def _assert_bit_identical(actual: np.ndarray, expected: np.ndarray) -> None:
    actual, expected = np.asarray(actual, float), np.asarray(expected, float)
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    ok = ~np.isnan(expected)
    np.testing.assert_array_equal(actual[ok].view(np.uint64), expected[ok].view(np.uint64))


def _tricky_rows():
    raw_rows = [
        {
            "AMT_CREDIT": TRICKY[i],
            "EXT_SOURCE_1": TRICKY[-1 - i],
            "CODE_GENDER": g,
            "DAYS_BIRTH": -10_000 - i,
            "NAME_CONTRACT_TYPE": c,
            "OWN_CAR_AGE": TRICKY[(3 * i) % 10],
        }
        for i, (g, c) in enumerate(
            [
                ("F", "Cash loans"),
                ("M", None),
                ("XNA", "Revolving loans"),
                (None, "Brand new"),
                ("F", "Cash loans"),
                ("M", "Revolving loans"),
                ("F", None),
                ("M", "Cash loans"),
                ("F", "Cash loans"),
                ("M", "Cash loans"),
            ]
        )
    ]
    matrix, raw = SCHEMA.pack(raw_rows)
    return raw_rows, matrix, raw


def test_insert_and_read_round_trip_exactly(engine):
    raw_rows, matrix, raw = _tricky_rows()
    rows = [_row(i, matrix[i], raw[i]) for i in range(len(raw_rows))]
    assert insert_predictions(engine, SCHEMA, rows) == len(rows)

    window = read_predictions(engine, SCHEMA, START, END)
    assert list(window.features.columns) == SCHEMA.names
    assert list(window.meta.columns) == list(META_COLUMNS)
    numeric = SCHEMA.numeric_names
    _assert_bit_identical(window.features[numeric].to_numpy(), pd.DataFrame(raw_rows)[numeric])
    # Raw categorical strings survive, the unseen ones ("XNA", "Brand new") included.
    assert window.features["CODE_GENDER"].tolist() == [r["CODE_GENDER"] for r in raw_rows]
    assert window.features["NAME_CONTRACT_TYPE"].tolist() == [
        r["NAME_CONTRACT_TYPE"] for r in raw_rows
    ]
    meta = window.meta
    assert meta["request_id"].tolist() == [r.request_id for r in rows]
    assert meta["created_at"].tolist() == [pd.Timestamp(r.created_at) for r in rows]
    assert str(meta["created_at"].dtype) == "datetime64[us, UTC]"
    _assert_bit_identical(meta["probability"].to_numpy(), [r.probability for r in rows])
    assert (meta["threshold"] == 0.42).all() and (meta["source"] == "api").all()
    assert meta["feature_schema_version"].unique().tolist() == [SCHEMA.version]
    assert window.schema_versions == (SCHEMA.version,)
    assert window.missing_features == () and window.extra_features == ()


def test_bulk_insert_matches_single_inserts(engine):
    raw_rows, matrix, raw = _tricky_rows()
    n = len(raw_rows)
    stamps = np.array(
        [np.datetime64("2026-11-02T03:00:00.123456") + np.timedelta64(i, "s") for i in range(n)]
    )
    written = bulk_insert_predictions(
        engine,
        SCHEMA,
        created_at=stamps,
        matrix=matrix,
        categorical=raw,
        probability=np.linspace(0.1, 0.9, n),
        decision=np.where(np.arange(n) % 2 == 0, "APPROVED", "REFUSED"),
        threshold=0.42,
        model_version="model-1",
        inference_time_ms=[np.nan] + [2.5] * (n - 1),
        chunk_rows=3,  # several chunks, one transaction
    )
    assert written == n
    window = read_predictions(engine, SCHEMA, START, END)
    _assert_bit_identical(
        window.features[SCHEMA.numeric_names].to_numpy(),
        pd.DataFrame(raw_rows)[SCHEMA.numeric_names],
    )
    assert window.features["CODE_GENDER"].tolist() == [r["CODE_GENDER"] for r in raw_rows]
    meta = window.meta
    expected_times = pd.DatetimeIndex(stamps).tz_localize("UTC")
    assert (pd.DatetimeIndex(meta["created_at"]) == expected_times).all()
    assert meta["decision"].tolist()[:2] == ["APPROVED", "REFUSED"]
    assert np.isnan(meta["inference_time_ms"].iloc[0]) and meta["inference_time_ms"].iloc[1] == 2.5
    assert (meta["source"] == "bulk").all()
    assert meta["request_id"].is_unique and meta["request_id"].str.startswith("bulk-").all()


def test_window_is_half_open(engine):
    matrix = np.arange(4 * len(SCHEMA), dtype=float).reshape(4, -1)
    at = [START - dt.timedelta(microseconds=1), START, END - dt.timedelta(microseconds=1), END]
    insert_predictions(engine, SCHEMA, [_row(i, matrix[i], at=at[i]) for i in range(4)])
    window = read_predictions(engine, SCHEMA, START, END)
    assert window.meta["request_id"].tolist() == ["req-1", "req-2"]
    assert count_predictions(engine, START, END) == 2
    # A time zone other than UTC means the same instants.
    paris = dt.timezone(dt.timedelta(hours=1))
    assert count_predictions(engine, START.astimezone(paris), END.astimezone(paris)) == 2


def test_wrong_length_vector_raises_and_writes_nothing(engine):
    good = _row(0, np.zeros(len(SCHEMA)))
    bad = _row(1, np.zeros(len(SCHEMA) - 1))
    with pytest.raises(ValueError, match=r"req-1.*shape \(5,\).*6 features"):
        insert_predictions(engine, SCHEMA, [good, bad])
    with pytest.raises(ValueError, match="matrix has shape"):
        bulk_insert_predictions(
            engine,
            SCHEMA,
            created_at=np.array(["2026-11-02T01:00"], dtype="datetime64[us]"),
            matrix=np.zeros((1, 3)),
            probability=0.5,
            decision="APPROVED",
            threshold=0.5,
            model_version="m",
        )
    assert count_predictions(engine, START, END) == 0


def test_duplicate_request_id_rolls_back_the_whole_batch(engine):
    insert_predictions(engine, SCHEMA, [_row(0, np.zeros(len(SCHEMA)))])
    batch = [_row(5, np.ones(len(SCHEMA))), _row(0, np.ones(len(SCHEMA)))]
    with pytest.raises(DuplicateRequestIdError, match="req-0"):
        insert_predictions(engine, SCHEMA, batch)
    assert read_predictions(engine, SCHEMA, START, END).meta["request_id"].tolist() == ["req-0"]


def test_invalid_values_are_refused(engine):
    p = len(SCHEMA)
    with pytest.raises(ValueError, match="'AMT_CREDIT' is inf"):
        insert_predictions(engine, SCHEMA, [_row(0, [np.inf] + [0.0] * (p - 1))])
    with pytest.raises(ValueError, match="non-categorical features \\['AMT_CREDIT'\\]"):
        insert_predictions(engine, SCHEMA, [_row(0, np.zeros(p), {"AMT_CREDIT": "x"})])
    with pytest.raises(ValueError, match="source 'web'"):
        insert_predictions(engine, SCHEMA, [_row(0, np.zeros(p), source="web")])
    with pytest.raises(ValueError, match="timezone-aware"):
        insert_predictions(engine, SCHEMA, [_row(0, np.zeros(p), at=dt.datetime(2026, 11, 2))])
    with pytest.raises(ValueError, match="probability is nan"):
        insert_predictions(engine, SCHEMA, [_row(0, np.zeros(p), probability=float("nan"))])
    with pytest.raises(ValueError, match="naive"):
        read_predictions(engine, SCHEMA, dt.datetime(2026, 11, 2), END)
    assert count_predictions(engine, START, END) == 0


def test_empty_window_returns_empty_frames_with_schema_columns(engine):
    window = read_predictions(engine, SCHEMA, START, END)
    assert len(window) == 0
    assert list(window.features.columns) == SCHEMA.names
    assert list(window.meta.columns) == list(META_COLUMNS)
    assert window.features["AMT_CREDIT"].dtype == np.float64
    assert str(window.meta["created_at"].dtype) == "datetime64[us, UTC]"
    assert window.schema_versions == ()


def test_json_view_rebuilds_the_feature_object(engine):
    _, matrix, raw = _tricky_rows()
    insert_predictions(engine, SCHEMA, [_row(i, matrix[i], raw[i]) for i in range(3)])
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT request_id, features FROM predictions_json ORDER BY id")
        ).all()
    objects = {rid: (f if isinstance(f, dict) else __import__("json").loads(f)) for rid, f in rows}
    assert set(objects) == {"req-0", "req-1", "req-2"}
    first = objects["req-0"]
    assert set(first) == set(SCHEMA.names)
    assert first["AMT_CREDIT"] is None  # NaN -> null
    assert first["EXT_SOURCE_1"] == pytest.approx(TRICKY[-1])
    assert first["CODE_GENDER"] == "F"
    assert objects["req-1"]["NAME_CONTRACT_TYPE"] is None  # missing category -> null
    assert objects["req-2"]["CODE_GENDER"] == "XNA"  # unseen category, raw string


def test_rows_of_another_schema_version_are_aligned_by_name(engine):
    old = FeatureSchema(
        (
            FeatureSpec("DAYS_BIRTH"),
            FeatureSpec("AMT_CREDIT"),
            FeatureSpec("LEGACY_SCORE"),
            FeatureSpec("CODE_GENDER", "categorical", ("M", "F")),
            FeatureSpec("OWN_CAR_AGE", "categorical", ("0", "1")),
        )
    )
    insert_predictions(
        engine,
        old,
        [_row(0, [-9000.0, 1000.0, 0.7, 1.0, 0.0], {"CODE_GENDER": "F", "OWN_CAR_AGE": "0"})],
    )
    new_vec, new_raw = SCHEMA.pack(
        [
            {
                "AMT_CREDIT": 2.5,
                "EXT_SOURCE_1": 0.3,
                "CODE_GENDER": "M",
                "DAYS_BIRTH": -12000,
                "OWN_CAR_AGE": 4,
            }
        ]
    )
    insert_predictions(engine, SCHEMA, [_row(1, new_vec[0], new_raw[0])])

    window = read_predictions(engine, SCHEMA, START, END)
    f = window.features
    assert window.schema_versions == tuple(sorted([old.version, SCHEMA.version]))
    assert f["AMT_CREDIT"].tolist() == [1000.0, 2.5]
    assert f["DAYS_BIRTH"].tolist() == [-9000.0, -12000.0]
    assert np.isnan(f["EXT_SOURCE_1"].iloc[0]) and f["EXT_SOURCE_1"].iloc[1] == 0.3
    assert f["CODE_GENDER"].tolist() == ["F", "M"]
    # OWN_CAR_AGE was categorical in the old schema: not mixed in as a number.
    assert np.isnan(f["OWN_CAR_AGE"].iloc[0]) and f["OWN_CAR_AGE"].iloc[1] == 4.0
    assert window.missing_features == ("EXT_SOURCE_1", "NAME_CONTRACT_TYPE", "OWN_CAR_AGE")
    assert window.extra_features == ("LEGACY_SCORE",)


def test_wide_schema_bulk_round_trip(engine, monkeypatch):
    """419 features, a few hundred rows: the production shape (binary COPY path on PostgreSQL)."""
    parsed = []
    real_parse = predictions_read._parse_copy_float8_arrays

    def spy(*args):
        out = real_parse(*args)
        parsed.append(out is not None)
        return out

    monkeypatch.setattr(predictions_read, "_parse_copy_float8_arrays", spy)
    rng = np.random.default_rng(7)
    schema = FeatureSchema.numeric([f"f{i:03d}" for i in range(419)])
    n = 300
    matrix = rng.standard_normal((n, 419)) * rng.choice([1e-5, 1.0, 1e6], size=(n, 419))
    matrix[rng.random((n, 419)) < 0.1] = np.nan
    stamps = np.datetime64("2026-11-02T00:00") + rng.integers(0, 86_400_000_000, n).astype(
        "timedelta64[us]"
    )
    bulk_insert_predictions(
        engine,
        schema,
        created_at=stamps,
        matrix=matrix,
        probability=rng.random(n),
        decision="APPROVED",
        threshold=0.5,
        model_version="m",
        chunk_rows=128,
    )
    window = read_predictions(engine, schema, START, END)
    # Rows come back in logging order (id), not in created_at order.
    assert (pd.DatetimeIndex(window.meta["created_at"]).tz_localize(None) == stamps).all()
    _assert_bit_identical(window.features.to_numpy(), matrix)
    assert count_predictions(engine, START, END) == n
    # On PostgreSQL the fixed-size binary parser did the work (no per-row fallback).
    assert parsed == ([True] if engine.dialect.name == "postgresql" else [])


def test_register_feature_schema_is_idempotent(engine):
    assert register_feature_schema(engine, SCHEMA) == SCHEMA.version
    assert register_feature_schema(engine, SCHEMA) == SCHEMA.version
    with engine.connect() as conn:
        names = conn.execute(sa.text("SELECT feature_names FROM feature_schemas")).scalars().all()
    assert len(names) == 1
    stored = names[0] if isinstance(names[0], list) else __import__("json").loads(names[0])
    assert stored == SCHEMA.names


@pytest.mark.postgres
def test_postgres_rows_with_null_elements_take_the_slow_path(postgres_url):
    db.upgrade(postgres_url)
    engine = db.make_engine(postgres_url)
    insert_predictions(engine, SCHEMA, [_row(0, np.arange(6.0))])
    with engine.begin() as conn:
        # Written by hand, bypassing the API: a NULL element breaks the fixed row size.
        conn.execute(sa.text("UPDATE predictions SET features[2] = NULL"))
    window = read_predictions(engine, SCHEMA, START, END)
    np.testing.assert_array_equal(
        window.features[SCHEMA.numeric_names].to_numpy()[0], [0.0, np.nan, 3.0, 5.0]
    )
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE predictions SET features = features[1:4]"))
    with pytest.raises(ValueError, match="req-0.*4 values"):
        read_predictions(engine, SCHEMA, START, END)


def test_window_helpers():
    start, end = window_bounds_for_day("2026-11-02")
    assert (start, end) == (START, END)
    assert start.tzinfo is dt.UTC and end - start == dt.timedelta(days=1)
    with pytest.raises(ValueError, match="inverted"):
        validate_window(END, START)
    with pytest.raises(TypeError):
        window_bounds_for_day(START)
