"""Writing the prediction log: one transaction per call, validated first, one by one
(`insert_predictions`) or in bulk (`bulk_insert_predictions`: binary COPY on PostgreSQL,
executemany on SQLite).

Each prediction stores its feature vector packed in the order of a registered `FeatureSchema`
(see `storage.schema.PackedVector`) plus the raw strings of its categorical features.
"""

import datetime as dt
import numbers
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from credit_drift.errors import CreditDriftError
from credit_drift.features import FeatureSchema
from credit_drift.storage.db import LZ4_SESSION_KEY, lz4_setting
from credit_drift.storage.outcomes import check_application_id
from credit_drift.storage.predictions.feature_schemas import _register
from credit_drift.storage.predictions.pgcopy import (
    _COPY_COLUMNS,
    _BulkColumns,
    _copy_chunks,
    _IterReader,
)
from credit_drift.storage.schema import (
    PREDICTION_SOURCES,
    SQLITE_DATETIME_FORMAT,
    json_dumps,
    prediction_request_ids,
    predictions,
    vector_to_json,
)

# Rows per COPY / executemany batch of `bulk_insert_predictions`: bounds memory (about 5 KB a
# row at 419 features), not transactions (a bulk insert is one transaction whatever its size).
DEFAULT_CHUNK_ROWS = 5_000
# Bytes handed to psycopg2 per read while streaming a COPY.
_COPY_READ_SIZE = 1 << 20


class DuplicateRequestIdError(CreditDriftError, ValueError):
    """A prediction with this request_id is already logged (request ids are unique)."""


@dataclass(frozen=True, eq=False)
class PredictionRow:
    """One prediction to log. `features` is the packed vector (`FeatureSchema.pack`)."""

    created_at: dt.datetime
    request_id: str
    features: np.ndarray
    categorical: Mapping[str, str] | None
    probability: float
    decision: str
    threshold: float
    model_version: str
    inference_time_ms: float | None
    source: str = "api"
    application_id: str | int | None = None


# -- validation ---------------------------------------------------------------------------
def _check_finite_or_nan(matrix: np.ndarray, schema: FeatureSchema, first_row: int = 0) -> None:
    bad = np.isinf(matrix)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(
            f"row {first_row + int(i)}: feature {schema.names[j]!r} is {matrix[i, j]}; infinite "
            "values cannot be stored (SQLite JSON has no infinity): clip them or send NaN"
        )


def _check_categorical(raw: Mapping[str, Any] | None, cat_names: set[str], where: str) -> None:
    if raw is None:
        return
    unknown = sorted(set(raw) - cat_names)
    if unknown:
        raise ValueError(f"{where}: categorical values for non-categorical features {unknown}")
    wrong = sorted(k for k, v in raw.items() if not isinstance(v, str))
    if wrong:
        raise ValueError(f"{where}: categorical values must be strings, not for {wrong}")


def _check_source(source: str) -> None:
    if source not in PREDICTION_SOURCES:
        raise ValueError(f"source {source!r} is not one of {PREDICTION_SOURCES}")


def _aware_utc(value: dt.datetime, where: str) -> dt.datetime:
    if not isinstance(value, dt.datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{where}: created_at {value!r} must be a timezone-aware datetime")
    return value.astimezone(dt.UTC)


def _optional_float(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    # NaN latency means "not measured": NULL on both dialects (SQLite would turn NaN into NULL).
    return None if np.isnan(value) else value


def _finite(value: Any, name: str, where: str) -> float:
    out = float(value)
    if not np.isfinite(out):
        raise ValueError(f"{where}: {name} is {out}; it must be a finite number")
    return out


def _optional_application_id(value: str | int | None, where: str) -> str | None:
    """None, or a valid id; integers (an id column read as int64) become decimal text."""
    if value is None:
        return None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = str(int(value))
    return check_application_id(value, where)


def _application_ids(values: Sequence[str | int | None] | None, n: int) -> list[str | None]:
    if values is None:
        return [None] * n
    if len(values) != n:
        raise ValueError(f"application_ids has {len(values)} values for {n} rows")
    return [_optional_application_id(v, f"row {i}") for i, v in enumerate(values)]


# -- single inserts -----------------------------------------------------------------------
def insert_predictions(
    engine: Engine,
    schema: FeatureSchema,
    rows: Sequence[PredictionRow],
    *,
    same_transaction: Callable[[Connection], None] | None = None,
) -> int:
    """Log predictions in one transaction (all or nothing); returns the number of rows.

    Raises ValueError naming the row when a vector does not have one value per schema feature,
    and DuplicateRequestIdError when a request_id is already logged. Registers the schema.
    `same_transaction(conn)` runs first in the same transaction (e.g. the idempotency key of
    the request): if it raises, nothing is written.
    """
    if not rows:
        return 0
    p = len(schema)
    version = schema.version  # a content hash, recomputed on every access: hoist it
    cat_names = set(schema.categorical_names)
    records: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, row in enumerate(rows):
        where = f"prediction {i} (request_id {row.request_id!r})"
        if not row.request_id:
            raise ValueError(f"prediction {i}: empty request_id")
        if row.request_id in seen:
            raise DuplicateRequestIdError(f"{where}: request_id appears twice in this batch")
        seen.add(row.request_id)
        vector = np.asarray(row.features, dtype=np.float64)
        if vector.shape != (p,):
            raise ValueError(
                f"{where}: feature vector has shape {vector.shape}, but feature schema "
                f"{version} has {p} features"
            )
        _check_finite_or_nan(vector[None, :], schema, i)
        _check_categorical(row.categorical, cat_names, where)
        _check_source(row.source)
        records.append(
            {
                "created_at": _aware_utc(row.created_at, where),
                "request_id": row.request_id,
                "feature_schema_version": version,
                "features": vector,
                "categorical_values": dict(row.categorical) if row.categorical else None,
                "probability": _finite(row.probability, "probability", where),
                "decision": row.decision,
                "threshold": _finite(row.threshold, "threshold", where),
                "model_version": row.model_version,
                "inference_time_ms": _optional_float(row.inference_time_ms),
                "source": row.source,
                "application_id": _optional_application_id(row.application_id, where),
            }
        )
    try:
        with engine.begin() as conn:
            if same_transaction is not None:
                same_transaction(conn)
            _register(conn, schema)
            conn.execute(predictions.insert(), records)
    except sa.exc.IntegrityError as exc:
        _raise_if_duplicates(engine, [r["request_id"] for r in records], exc)
        raise
    return len(records)


def _raise_if_duplicates(engine: Engine, request_ids: Sequence[str], exc: Exception) -> None:
    found: list[str] = []
    # PostgreSQL: the day-partitioned log has no index on request_id; the ids are claimed in
    # prediction_request_ids (its primary key is what refused the insert).
    table = prediction_request_ids if engine.dialect.name == "postgresql" else predictions
    with engine.connect() as conn:
        for start in range(0, len(request_ids), 1000):
            chunk = list(request_ids[start : start + 1000])
            found += (
                conn.execute(sa.select(table.c.request_id).where(table.c.request_id.in_(chunk)))
                .scalars()
                .all()
            )
    if found:
        raise DuplicateRequestIdError(
            f"{len(found)} request_id(s) already logged, e.g. {sorted(found)[:5]}; nothing was "
            "written"
        ) from exc


# -- bulk inserts -------------------------------------------------------------------------
def _column(value: Any, n: int, name: str, dtype: Any) -> np.ndarray:
    arr = np.asarray(value, dtype=dtype)
    if arr.ndim == 0:
        return np.full(n, arr.item(), dtype=dtype)
    if arr.shape != (n,):
        raise ValueError(f"{name} has shape {arr.shape}, expected a scalar or ({n},)")
    return arr


# Up to this many Python datetimes (an API group commit's) are converted one by one: pandas'
# DatetimeIndex costs about half a millisecond whatever the length.
_PYTHON_STAMPS = 64
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)


def _python_micros(stamps: list) -> np.ndarray | None:
    """Microseconds since the epoch of aware Python datetimes (exact: timedelta arithmetic);
    None when any is something else (pandas then converts or names the problem)."""
    if not all(type(v) is dt.datetime and v.utcoffset() is not None for v in stamps):
        return None
    return np.array([(v - _EPOCH) // _MICROSECOND for v in stamps], dtype=np.int64)


def _utc_micros(created_at: Any, n: int) -> np.ndarray:
    """Microseconds since the Unix epoch (UTC). numpy datetime64 (and naive pandas datetimes)
    are UTC by convention; Python datetimes must be timezone-aware."""
    if isinstance(created_at, list) and 0 < len(created_at) <= _PYTHON_STAMPS:
        micros = _python_micros(created_at)
        if micros is not None:
            if len(micros) != n:
                raise ValueError(f"created_at has {len(micros)} values for {n} rows")
            return micros
    raw = np.asarray(created_at)
    if raw.ndim == 0:
        raise ValueError("created_at must be one timestamp per row, not a scalar")
    if raw.dtype == object and any(
        isinstance(v, dt.datetime) and v.tzinfo is None for v in raw.ravel()[:1000]
    ):
        raise ValueError("created_at holds naive datetimes: pass aware ones or datetime64 (UTC)")
    index = pd.DatetimeIndex(created_at)
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    if len(index) != n:
        raise ValueError(f"created_at has {len(index)} values for {n} rows")
    if index.hasnans:
        raise ValueError("created_at contains NaT")
    return index.floor("us").as_unit("us").asi8


def bulk_insert_predictions(
    engine: Engine,
    schema: FeatureSchema,
    *,
    created_at: Any,
    matrix: np.ndarray,
    categorical: Sequence[Mapping[str, str] | None] | None = None,
    probability: Any,
    decision: Any,
    threshold: Any,
    model_version: Any,
    inference_time_ms: Any = None,
    request_ids: Sequence[str] | None = None,
    application_ids: Sequence[str | int | None] | None = None,
    source: str = "bulk",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    same_transaction: Callable[[Connection], None] | None = None,
    before_commit: Callable[[], None] | None = None,
) -> int:
    """Fast path for large backfills: one transaction, PostgreSQL binary COPY, SQLite
    executemany. Per-row arguments take an array of n values or one scalar for every row;
    `request_ids` default to fresh `<source>-<uuid4>` ids; `application_ids` (None, or one id
    or None per row; integers are stored as decimal text) link the rows to outcomes. Returns
    the number of rows.
    `same_transaction(conn)` runs first in the same transaction, as in `insert_predictions`;
    `before_commit()` runs last, just before the commit: if it raises, nothing is written
    (the API checks there that its caller is still waiting). On PostgreSQL a pooled connection
    skips the feature schema's lookup once a write with it committed (`_REGISTERED_SCHEMAS`)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    p = len(schema)
    if matrix.ndim != 2 or matrix.shape[1] != p:
        raise ValueError(
            f"matrix has shape {matrix.shape}, but feature schema {schema.version} has {p} features"
        )
    n = matrix.shape[0]
    if n == 0:
        return 0
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be positive, got {chunk_rows}")
    _check_source(source)
    _check_finite_or_nan(matrix, schema)
    if categorical is not None:
        if len(categorical) != n:
            raise ValueError(f"categorical has {len(categorical)} entries for {n} rows")
        cat_names = set(schema.categorical_names)
        for i, raw in enumerate(categorical):
            _check_categorical(raw, cat_names, f"row {i}")
    if request_ids is None:
        request_ids = [f"{source}-{uuid.uuid4().hex}" for _ in range(n)]
    else:
        request_ids = [str(r) for r in request_ids]
        if len(request_ids) != n:
            raise ValueError(f"request_ids has {len(request_ids)} values for {n} rows")
        if len(set(request_ids)) != n:
            raise DuplicateRequestIdError("request_ids contains duplicates")
    probability = _column(probability, n, "probability", np.float64)
    threshold = _column(threshold, n, "threshold", np.float64)
    for name, arr in (("probability", probability), ("threshold", threshold)):
        if not np.isfinite(arr).all():
            raise ValueError(
                f"{name} must be finite; row {int(np.argmin(np.isfinite(arr)))} is not"
            )
    itm = np.full(n, np.nan) if inference_time_ms is None else inference_time_ms
    cols = _BulkColumns(
        micros=_utc_micros(created_at, n),
        matrix=matrix,
        categorical=categorical,
        probability=probability,
        decision=_column(decision, n, "decision", object),
        threshold=threshold,
        model_version=_column(model_version, n, "model_version", object),
        inference_time_ms=_column(itm, n, "inference_time_ms", np.float64),
        request_ids=request_ids,
        source=source,
        application_ids=_application_ids(application_ids, n),
    )
    for attempt in (1, 2):
        known: set[str] | None = None
        try:
            with engine.begin() as conn:
                if same_transaction is not None:
                    same_transaction(conn)
                if conn.dialect.name == "postgresql":
                    known = conn.connection.info.setdefault(_REGISTERED_SCHEMAS, set())
                    if schema.version not in known or attempt == 2:
                        _register(conn, schema)
                    _copy_in_postgresql(conn, schema, cols, chunk_rows)
                else:
                    _register(conn, schema)
                    _executemany_sqlite(conn, schema, cols, chunk_rows)
                if before_commit is not None:
                    before_commit()
        except sa.exc.IntegrityError as exc:
            if known is not None and _names_missing_schema(exc):
                # Its feature_schemas row is gone (the tables were recreated under this
                # pooled connection): look it up (and store it) again, once.
                known.discard(schema.version)
                if attempt == 1:
                    continue
            _raise_if_duplicates(engine, request_ids, exc)
            raise
        if known is not None:
            known.add(schema.version)  # committed: this connection skips the lookup now
        return n
    raise AssertionError("unreachable")  # pragma: no cover - the second attempt returns or raises


# On a pooled PostgreSQL connection's `info`: the feature schema versions known to be stored
# (a committed write used them). The API's group commits then skip the lookup (a round trip
# each); the predictions' foreign key still refuses a vector whose schema is not stored.
_REGISTERED_SCHEMAS = "credit_drift_registered_schemas"
_FOREIGN_KEY_VIOLATION = "23503"


def _names_missing_schema(exc: sa.exc.IntegrityError) -> bool:
    return getattr(exc.orig, "pgcode", None) == _FOREIGN_KEY_VIOLATION


# A feature vector (419 float8, 3.4 KB) is above PostgreSQL's TOAST threshold, so every row is
# compressed, and pglz (the server's default) is the largest cost of a bulk COPY; lz4 halves
# the write for a few percent more disk (benchmarks/README.md, "Load"). Engines made by
# `storage.db.make_engine` set it once per connection; on any other this sets it for the write's
# transaction only, where the server has lz4 (PostgreSQL 14+ built with it); each row keeps
# the method it was written with and reads back the same.
_LZ4_FOR_THIS_TRANSACTION = lz4_setting(local=True)


def _copy_in_postgresql(
    conn: Connection, schema: FeatureSchema, cols: _BulkColumns, chunk_rows: int
) -> None:
    import psycopg2

    reader = _IterReader(_copy_chunks(cols, schema.version, chunk_rows))
    cursor = conn.connection.cursor()
    statement = f"COPY predictions ({_COPY_COLUMNS}) FROM STDIN (FORMAT binary)"
    try:
        if not conn.connection.info.get(LZ4_SESSION_KEY):  # an engine not made by make_engine
            cursor.execute(_LZ4_FOR_THIS_TRANSACTION)
        cursor.copy_expert(statement, reader, size=_COPY_READ_SIZE)
    except psycopg2.IntegrityError as exc:
        # The raw cursor's error, as SQLAlchemy would have wrapped it: a request id already
        # claimed (prediction_request_ids) is told apart by the caller.
        raise sa.exc.IntegrityError(statement, None, exc) from exc
    finally:
        cursor.close()


def _executemany_sqlite(
    conn: Connection, schema: FeatureSchema, cols: _BulkColumns, chunk_rows: int
) -> None:
    n = cols.matrix.shape[0]
    version = schema.version
    stamps = pd.to_datetime(cols.micros, unit="us").strftime(SQLITE_DATETIME_FORMAT)
    sql = (
        "INSERT INTO predictions (created_at, request_id, feature_schema_version, features, "
        "categorical_values, probability, decision, threshold, model_version, "
        "inference_time_ms, source, application_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    for lo in range(0, n, chunk_rows):
        hi = min(lo + chunk_rows, n)
        params = []
        for i in range(lo, hi):
            raw = None if cols.categorical is None else cols.categorical[i]
            itm = float(cols.inference_time_ms[i])
            params.append(
                (
                    stamps[i],
                    cols.request_ids[i],
                    version,
                    vector_to_json(cols.matrix[i]),
                    json_dumps(dict(raw)) if raw else None,
                    float(cols.probability[i]),
                    str(cols.decision[i]),
                    float(cols.threshold[i]),
                    str(cols.model_version[i]),
                    None if np.isnan(itm) else itm,
                    cols.source,
                    cols.application_ids[i],
                )
            )
        conn.exec_driver_sql(sql, params)
