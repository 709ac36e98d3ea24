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
