"""Writing wide feature vectors in bulk: lz4-compressed on PostgreSQL (set once per connection,
or per write on an engine made elsewhere), read back bit for bit;
`before_commit` raising writes nothing (both databases)."""

import numpy as np
import pytest
import sqlalchemy as sa

from credit_drift.features import FeatureSchema, FeatureSpec
from credit_drift.storage import db
from credit_drift.storage.db import LZ4_SESSION_KEY
from credit_drift.storage.predictions import bulk_insert_predictions, read_predictions
from credit_drift_tests.test_storage_predictions import (  # noqa: F401 - fixture
    END,
    START,
    engine,
)

# As wide as the project's model: a vector (3.4 KB) above PostgreSQL's TOAST threshold.
WIDE = FeatureSchema(tuple(FeatureSpec(f"F{j:03d}") for j in range(419)))


def _write(target, matrix: np.ndarray, **kw) -> int:
    n = matrix.shape[0]
    stamps = np.array(
        [np.datetime64("2026-11-02T03:00:00") + np.timedelta64(i, "s") for i in range(n)]
    )
    return bulk_insert_predictions(
        target,
        WIDE,
        created_at=stamps,
        matrix=matrix,
        probability=np.linspace(0.1, 0.9, n),
        decision="APPROVED",
        threshold=0.5,
        model_version="m",
        **kw,
    )


def _wide_matrix(n: int) -> np.ndarray:
    # Like the applications' features: many missing, many small integers (flags, counts), so
    # the vectors compress (random doubles would be stored uncompressed).
    rng = np.random.default_rng(3)
    matrix = rng.integers(0, 4, size=(n, len(WIDE))).astype(np.float64)
    matrix[rng.random(matrix.shape) < 0.4] = np.nan
    matrix[0, :7] = [np.nan, -0.0, 5e-324, 1.7976931348623157e308, 0.1 + 0.2, np.pi, -1e15]
    return matrix


def test_wide_vectors_are_lz4_compressed_on_postgresql_and_read_back_exactly(
    engine,  # noqa: F811
):
    matrix = _wide_matrix(5)
    assert _write(engine, matrix) == 5
    window = read_predictions(engine, WIDE, START, END)
    got = window.features[WIDE.names].to_numpy()
    assert np.array_equal(got.view(np.uint64), matrix.view(np.uint64))
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            methods = conn.execute(
                sa.text("SELECT DISTINCT pg_column_compression(features) FROM predictions")
            ).scalars()
            assert set(methods) == {"lz4"}


@pytest.mark.postgres
def test_lz4_is_set_once_per_connection_and_per_write_on_engines_made_elsewhere(postgres_url):
    """`make_engine`'s connections compress with lz4 for their whole session (no statement per
    write); an engine made another way gets it for each write transaction instead (TOAST
    compression is PostgreSQL's)."""
    db.upgrade(postgres_url)
    ours = db.make_engine(postgres_url)
    with ours.connect() as conn:
        assert conn.connection.info.get(LZ4_SESSION_KEY) is True
        assert conn.execute(sa.text("SHOW default_toast_compression")).scalar() == "lz4"
    other = sa.create_engine(ours.url)
    try:
        with other.connect() as conn:
            assert not conn.connection.info.get(LZ4_SESSION_KEY)
            assert conn.execute(sa.text("SHOW default_toast_compression")).scalar() == "pglz"
        assert _write(other, _wide_matrix(4)) == 4
        assert _write(ours, _wide_matrix(4)) == 4
    finally:
        other.dispose()
    with ours.connect() as conn:
        methods = conn.execute(
            sa.text("SELECT DISTINCT pg_column_compression(features) FROM predictions")
        ).scalars()
        assert set(methods) == {"lz4"}


def test_a_failing_before_commit_writes_nothing(engine):  # noqa: F811
    def refuse() -> None:
        raise TimeoutError("the caller stopped waiting")

    with pytest.raises(TimeoutError):
        _write(engine, _wide_matrix(3), before_commit=refuse)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM predictions")).scalar_one() == 0
    assert _write(engine, _wide_matrix(3), before_commit=lambda: None) == 3


def test_python_datetimes_convert_exactly_as_pandas_does():
    """An API group's time stamps (aware Python datetimes) skip pandas; same microseconds, any
    zone, and naive ones are still refused."""
    import datetime as dt

    import pandas as pd

    from credit_drift.storage.predictions.write import _utc_micros

    rng = np.random.default_rng(11)
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    stamps = []
    for _ in range(640):
        offset = dt.timedelta(
            seconds=int(rng.integers(-2_000_000_000, 4_000_000_000)),
            microseconds=int(rng.integers(0, 1_000_000)),
        )
        zone = dt.timezone(dt.timedelta(minutes=int(rng.integers(-900, 900))))
        stamps.append((epoch + offset).astimezone(zone))
    for lo in range(0, len(stamps), 32):
        chunk = stamps[lo : lo + 32]
        expected = pd.DatetimeIndex([s.astimezone(dt.UTC) for s in chunk]).as_unit("us").asi8
        assert np.array_equal(_utc_micros(chunk, len(chunk)), expected)
    with pytest.raises(ValueError, match="naive"):
        _utc_micros([stamps[0], dt.datetime(2026, 1, 1)], 2)
    with pytest.raises(ValueError, match="2 values for 3 rows"):
        _utc_micros(stamps[:2], 3)


@pytest.mark.postgres
def test_a_pooled_connection_skips_the_schema_lookup_until_the_row_is_gone(postgres_url):
    """After a committed write, a pooled connection no longer looks its feature schema up (a
    round trip per API group commit); if the row disappears under it (tables emptied or
    recreated), the foreign key refuses the write and it is stored again, once."""
    from credit_drift.storage.predictions.write import _REGISTERED_SCHEMAS

    db.upgrade(postgres_url)
    pooled = db.make_engine(postgres_url)
    assert _write(pooled, _wide_matrix(2)) == 2
    with pooled.connect() as conn:
        assert WIDE.version in conn.connection.info[_REGISTERED_SCHEMAS]
    statements: list[str] = []

    def seen(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    sa.event.listen(pooled, "before_cursor_execute", seen)
    try:
        assert _write(pooled, _wide_matrix(3)) == 3
        assert not [s for s in statements if "feature_schemas" in s]
        with pooled.begin() as conn:
            for table in ("predictions", "prediction_request_ids", "feature_schemas"):
                conn.execute(sa.text(f"DELETE FROM {table}"))
        statements.clear()
        assert _write(pooled, _wide_matrix(4)) == 4
        assert [s for s in statements if "feature_schemas" in s]  # looked up and stored again
    finally:
        sa.event.remove(pooled, "before_cursor_execute", seen)
    with pooled.connect() as conn:
        stored = conn.execute(sa.text("SELECT version FROM feature_schemas")).scalars().all()
        assert stored == [WIDE.version]
        assert conn.execute(sa.text("SELECT count(*) FROM predictions")).scalar_one() == 4
