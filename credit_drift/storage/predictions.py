"""The prediction log: writing predictions (one by one or in bulk) and reading a time window back.

Each prediction stores its feature vector packed in the order of a registered `FeatureSchema`
(see `storage.schema.PackedVector`) plus the raw strings of its categorical features.

Reading a window (`read_window`) is the pipeline's hot path. On PostgreSQL the vectors come back
through `COPY (SELECT features ...) TO STDOUT (FORMAT binary)`: every `float8[]` of one schema
version has the same byte size (NaN is a value, never a NULL element), so the whole window is
parsed by one `np.frombuffer` with a structured dtype. On SQLite the JSON arrays are joined and
parsed by one orjson call. Metadata columns come from a second query in the same snapshot.

Rows logged under another feature-schema version than the one asked for are aligned **by
feature name** using that version's stored feature list: a feature of the requested schema that
the stored version lacks (or has with another kind) is NaN / None for those rows and is listed in
`PredictionWindow.missing_features`; stored features the requested schema lacks are dropped and
listed in `extra_features`. Nothing is silently shifted by position.
"""

import datetime as dt
import io
import struct
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from credit_drift.errors import CreditDriftError
from credit_drift.features import FeatureSchema
from credit_drift.storage.schema import (
    PREDICTION_SOURCES,
    SQLITE_DATETIME_FORMAT,
    feature_schemas,
    json_dumps,
    predictions,
    vector_to_json,
)
from credit_drift.storage.windows import validate_window

# Rows per COPY / executemany batch of `bulk_insert_predictions`: bounds memory (about 5 KB a
# row at 419 features), not transactions (a bulk insert is one transaction whatever its size).
DEFAULT_CHUNK_ROWS = 5_000
# Rows of JSON vectors parsed per orjson call when reading a window from SQLite.
_JSON_PARSE_ROWS = 2_000
# Bytes handed to psycopg2 per read while streaming a COPY.
_COPY_READ_SIZE = 1 << 20

META_COLUMNS: tuple[str, ...] = (
    "id",
    "created_at",
    "request_id",
    "probability",
    "decision",
    "threshold",
    "model_version",
    "inference_time_ms",
    "source",
    "feature_schema_version",
)
_META_DTYPES = {
    "id": "int64",
    "created_at": "datetime64[us, UTC]",
    "request_id": object,
    "probability": "float64",
    "decision": object,
    "threshold": "float64",
    "model_version": object,
    "inference_time_ms": "float64",
    "source": object,
    "feature_schema_version": object,
}


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


@dataclass(frozen=True, eq=False)
class PredictionWindow:
    """The predictions of [start, end), ordered by id (= logging order).

    features: `schema.to_frame` output: one column per schema feature in schema order, numeric
        float64 (NaN when missing), categorical as raw strings (None when missing, unseen
        categories kept).
    meta: one row per prediction, same order, columns `META_COLUMNS`
        (created_at is datetime64[us, UTC]).
    schema_versions: the feature-schema versions the window's rows were logged under.
    missing_features / extra_features: see the module docstring (empty when every row was
        logged under the requested schema).
    """

    features: pd.DataFrame
    meta: pd.DataFrame
    schema_versions: tuple[str, ...] = ()
    missing_features: tuple[str, ...] = ()
    extra_features: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.meta)


# -- feature schemas ----------------------------------------------------------------------
def _insert(conn: Connection, table: sa.Table):
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def _register(conn: Connection, schema: FeatureSchema) -> str:
    if len(schema) == 0:
        raise ValueError("a feature schema with no features cannot be stored")
    version = schema.version
    # Every API request logs under a schema that is almost always stored already: a tiny
    # lookup is cheaper than sending the whole spec (about 20 KB at 419 features) each time.
    exists = conn.execute(
        sa.select(sa.literal(1)).where(feature_schemas.c.version == version)
    ).first()
    if exists is not None:
        return version
    stmt = _insert(conn, feature_schemas).values(
        version=version,
        feature_names=schema.names,
        spec=orjson.loads(schema.to_json()),
        created_at=dt.datetime.now(dt.UTC),
    )
    # A concurrent writer may register it between the lookup and here: not an error.
    conn.execute(stmt.on_conflict_do_nothing(index_elements=["version"]))
    return version


def register_feature_schema(engine: Engine | Connection, schema: FeatureSchema) -> str:
    """Store `schema` under its version hash (no-op when already stored); returns the version."""
    if isinstance(engine, Connection):
        return _register(engine, schema)
    with engine.begin() as conn:
        return _register(conn, schema)


def load_feature_schema(engine: Engine | Connection, version: str) -> FeatureSchema:
    """The stored schema of `version`; LookupError naming it when unknown."""
    stmt = sa.select(feature_schemas.c.spec).where(feature_schemas.c.version == version)
    if isinstance(engine, Connection):
        spec = engine.execute(stmt).scalar_one_or_none()
    else:
        with engine.connect() as conn:
            spec = conn.execute(stmt).scalar_one_or_none()
    if spec is None:
        raise LookupError(f"feature schema version {version!r} is not stored")
    return FeatureSchema.from_dicts(spec["features"])


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


# -- single inserts -----------------------------------------------------------------------
def insert_predictions(engine: Engine, schema: FeatureSchema, rows: Sequence[PredictionRow]) -> int:
    """Log predictions in one transaction (all or nothing); returns the number of rows.

    Raises ValueError naming the row when a vector does not have one value per schema feature,
    and DuplicateRequestIdError when a request_id is already logged. Registers the schema.
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
            }
        )
    try:
        with engine.begin() as conn:
            _register(conn, schema)
            conn.execute(predictions.insert(), records)
    except sa.exc.IntegrityError as exc:
        _raise_if_duplicates(engine, [r["request_id"] for r in records], exc)
        raise
    return len(records)


def _raise_if_duplicates(engine: Engine, request_ids: Sequence[str], exc: Exception) -> None:
    found: list[str] = []
    with engine.connect() as conn:
        for start in range(0, len(request_ids), 1000):
            chunk = list(request_ids[start : start + 1000])
            found += (
                conn.execute(
                    sa.select(predictions.c.request_id).where(predictions.c.request_id.in_(chunk))
                )
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


def _utc_micros(created_at: Any, n: int) -> np.ndarray:
    """Microseconds since the Unix epoch (UTC). numpy datetime64 (and naive pandas datetimes)
    are UTC by convention; Python datetimes must be timezone-aware."""
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


@dataclass(frozen=True, eq=False)
class _BulkColumns:
    micros: np.ndarray
    matrix: np.ndarray
    categorical: Sequence[Mapping[str, str] | None] | None
    probability: np.ndarray
    decision: np.ndarray
    threshold: np.ndarray
    model_version: np.ndarray
    inference_time_ms: np.ndarray
    request_ids: Sequence[str]
    source: str


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
    source: str = "bulk",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> int:
    """Fast path for large backfills: one transaction, PostgreSQL binary COPY, SQLite
    executemany. Per-row arguments take an array of n values or one scalar for every row;
    `request_ids` default to fresh `<source>-<uuid4>` ids. Returns the number of rows."""
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
    )
    try:
        with engine.begin() as conn:
            _register(conn, schema)
            if conn.dialect.name == "postgresql":
                _copy_in_postgresql(conn, schema, cols, chunk_rows)
            else:
                _executemany_sqlite(conn, schema, cols, chunk_rows)
    except sa.exc.IntegrityError as exc:
        _raise_if_duplicates(engine, request_ids, exc)
        raise
    return n


# PostgreSQL binary COPY: https://www.postgresql.org/docs/15/sql-copy.html (Binary Format).
_PGCOPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_PGCOPY_HEADER = _PGCOPY_SIGNATURE + struct.pack(">ii", 0, 0)
_PGCOPY_TRAILER = struct.pack(">h", -1)
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01T00:00:00Z in Unix microseconds
_FLOAT8_OID = 701
_NULL_FIELD = struct.pack(">i", -1)
# Fixed-size fields first, variable-size ones after (COPY takes the columns in any order).
_COPY_COLUMNS = (
    "created_at, probability, threshold, features, request_id, feature_schema_version, "
    "categorical_values, decision, model_version, inference_time_ms, source"
)


def _array_header_dtype(p: int) -> list[tuple]:
    return [
        ("ndim", ">i4"),
        ("hasnull", ">i4"),
        ("elemtype", ">i4"),
        ("dim", ">i4"),
        ("lbound", ">i4"),
        ("el", [("len", ">i4"), ("v", ">f8")], (p,)),
    ]


def _text_field(value: str) -> bytes:
    data = value.encode()
    return struct.pack(">i", len(data)) + data


def _copy_chunks(cols: _BulkColumns, version: str, chunk_rows: int) -> Iterator[bytes]:
    n, p = cols.matrix.shape
    fixed_dtype = np.dtype(
        [
            ("nfields", ">i2"),
            ("ts_len", ">i4"),
            ("ts", ">i8"),
            ("prob_len", ">i4"),
            ("prob", ">f8"),
            ("thr_len", ">i4"),
            ("thr", ">f8"),
            ("vec_len", ">i4"),
            *_array_header_dtype(p),
        ]
    )
    width = fixed_dtype.itemsize
    tail_const = _text_field(version)
    source_field = _text_field(cols.source)
    text_cache: dict[str, bytes] = {}

    def cached(value: str) -> bytes:
        out = text_cache.get(value)
        if out is None:
            out = text_cache[value] = _text_field(str(value))
        return out

    yield _PGCOPY_HEADER
    for lo in range(0, n, chunk_rows):
        hi = min(lo + chunk_rows, n)
        rec = np.zeros(hi - lo, dtype=fixed_dtype)
        rec["nfields"] = 11
        rec["ts_len"], rec["prob_len"], rec["thr_len"] = 8, 8, 8
        rec["ts"] = cols.micros[lo:hi] - _PG_EPOCH_US
        rec["prob"] = cols.probability[lo:hi]
        rec["thr"] = cols.threshold[lo:hi]
        rec["vec_len"] = 20 + 12 * p
        rec["ndim"], rec["hasnull"], rec["elemtype"] = 1, 0, _FLOAT8_OID
        rec["dim"], rec["lbound"] = p, 1
        rec["el"]["len"] = 8
        rec["el"]["v"] = cols.matrix[lo:hi]
        fixed = rec.tobytes()
        parts: list[bytes] = []
        for k, i in enumerate(range(lo, hi)):
            parts.append(fixed[k * width : (k + 1) * width])
            parts.append(_text_field(cols.request_ids[i]))
            parts.append(tail_const)
            raw = None if cols.categorical is None else cols.categorical[i]
            if raw:
                data = b"\x01" + orjson.dumps(dict(raw))  # jsonb binary: version byte 1 + text
                parts.append(struct.pack(">i", len(data)) + data)
            else:
                parts.append(_NULL_FIELD)
            parts.append(cached(cols.decision[i]))
            parts.append(cached(cols.model_version[i]))
            itm = cols.inference_time_ms[i]
            parts.append(_NULL_FIELD if np.isnan(itm) else struct.pack(">id", 8, itm))
            parts.append(source_field)
        yield b"".join(parts)
    yield _PGCOPY_TRAILER


class _IterReader(io.RawIOBase):
    """A file-like view of an iterator of byte strings (what psycopg2's copy_expert reads)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = memoryview(b"")

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while not self._buf:
            try:
                self._buf = memoryview(next(self._chunks))
            except StopIteration:
                return b""
        if size is None or size < 0:
            size = len(self._buf)
        out, self._buf = self._buf[:size], self._buf[size:]
        return out.tobytes()


def _copy_in_postgresql(
    conn: Connection, schema: FeatureSchema, cols: _BulkColumns, chunk_rows: int
) -> None:
    reader = _IterReader(_copy_chunks(cols, schema.version, chunk_rows))
    cursor = conn.connection.cursor()
    try:
        cursor.copy_expert(
            f"COPY predictions ({_COPY_COLUMNS}) FROM STDIN (FORMAT binary)",
            reader,
            size=_COPY_READ_SIZE,
        )
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
        "inference_time_ms, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
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
                )
            )
        conn.exec_driver_sql(sql, params)


# -- reading windows ----------------------------------------------------------------------
def _window_clause(start: dt.datetime, end: dt.datetime):
    return sa.and_(predictions.c.created_at >= start, predictions.c.created_at < end)


def count_window(engine: Engine, start: dt.datetime, end: dt.datetime) -> int:
    """Number of predictions with start <= created_at < end."""
    start, end = validate_window(start, end)
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(predictions)
                .where(_window_clause(start, end))
            ).scalar_one()
        )


def _snapshot(engine: Engine) -> Connection:
    """A connection whose queries all see one snapshot of the log (rows keep arriving while a
    window is read; meta and vectors must describe the same rows)."""
    conn = engine.connect()
    if engine.dialect.name == "postgresql":
        conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    return conn


def _meta_frame(columns: Sequence[Sequence[Any]], postgres: bool) -> pd.DataFrame:
    """Build the meta frame column by column (no per-row datetime objects: created_at arrives
    as integer microseconds on PostgreSQL and as ISO text on SQLite)."""
    data = dict(zip(META_COLUMNS, columns, strict=True))
    if postgres:
        micros = np.asarray(data["created_at"], dtype=np.int64)
        created = pd.Series(pd.to_datetime(micros, unit="us", utc=True))
    else:
        created = pd.to_datetime(pd.Series(data["created_at"], dtype=object), format="ISO8601")
        created = created.dt.tz_localize("UTC")
    out: dict[str, pd.Series] = {}
    for name in META_COLUMNS:
        dtype = _META_DTYPES[name]
        if name == "created_at":
            out[name] = created.astype(dtype)
        elif dtype == "float64":
            # None (NULL latency) -> NaN
            out[name] = pd.Series(np.asarray(data[name], dtype=float), dtype=dtype)
        else:
            out[name] = pd.Series(data[name], dtype=dtype)
    return pd.DataFrame(out)


def read_window(
    engine: Engine, schema: FeatureSchema, start: dt.datetime, end: dt.datetime
) -> PredictionWindow:
    """The predictions with start <= created_at < end, features aligned to `schema`."""
    start, end = validate_window(start, end)
    postgres = engine.dialect.name == "postgresql"
    created = (
        sa.cast(sa.extract("epoch", predictions.c.created_at) * 1_000_000, sa.BigInteger)
        if postgres
        else sa.type_coerce(predictions.c.created_at, sa.Text())
    )
    meta_cols = [created if c == "created_at" else predictions.c[c] for c in META_COLUMNS]
    extra = [predictions.c.categorical_values]
    if not postgres:
        # The raw JSON text, parsed below by orjson in slices (no per-row processing).
        extra.append(sa.type_coerce(predictions.c.features, sa.Text()))
    with _snapshot(engine) as conn, conn.begin():
        rows = conn.execute(
            sa.select(*meta_cols, *extra)
            .where(_window_clause(start, end))
            .order_by(predictions.c.id)
        ).all()
        columns = list(zip(*rows, strict=True)) if rows else [()] * (len(meta_cols) + len(extra))
        n_meta = len(META_COLUMNS)
        meta = _meta_frame(columns[:n_meta], postgres)
        raw_cats = list(columns[n_meta])
        versions = meta["feature_schema_version"].to_numpy(dtype=object)
        unique_versions = sorted(set(versions.tolist()))
        stored = {
            v: schema if v == schema.version else load_feature_schema(conn, v)
            for v in unique_versions
        }
        blocks: dict[str, np.ndarray] = {}
        for v in unique_versions:
            mask = versions == v
            if postgres:
                only = None if len(unique_versions) == 1 else v
                blocks[v] = _read_vectors_postgresql(
                    conn, start, end, stored[v], only, int(mask.sum())
                )
            else:
                texts = [t for t, m in zip(columns[n_meta + 1], mask, strict=True) if m]
                blocks[v] = _parse_json_vectors(
                    texts, stored[v], meta["request_id"].to_numpy()[mask]
                )
    matrix, missing, extra_names = _align(schema, stored, blocks, versions)
    raw = raw_cats if schema.categorical_names else None
    return PredictionWindow(
        features=schema.to_frame(matrix, raw),
        meta=meta,
        schema_versions=tuple(unique_versions),
        missing_features=tuple(missing),
        extra_features=tuple(extra_names),
    )


def _align(
    schema: FeatureSchema,
    stored: Mapping[str, FeatureSchema],
    blocks: Mapping[str, np.ndarray],
    versions: np.ndarray,
) -> tuple[np.ndarray, list[str], list[str]]:
    if list(blocks) == [schema.version]:
        return blocks[schema.version], [], []
    matrix = np.full((len(versions), len(schema)), np.nan)
    missing: set[str] = set()
    extra: set[str] = set()
    for v, block in blocks.items():
        mask = versions == v
        if v == schema.version:
            matrix[mask] = block
            continue
        src = stored[v]
        positions = {name: k for k, name in enumerate(src.names)}
        extra.update(set(src.names) - set(schema.names))
        dst_cols, src_cols = [], []
        for j, spec in enumerate(schema.features):
            k = positions.get(spec.name)
            if k is None or src.features[k].kind != spec.kind:
                missing.add(spec.name)
            elif spec.kind == "numeric":
                dst_cols.append(j)
                src_cols.append(k)
            # Categorical codes index the stored version's category list; the window frame
            # takes categorical values from the raw strings instead, so the code is not copied.
        rows = np.flatnonzero(mask)
        matrix[np.ix_(rows, dst_cols)] = block[:, src_cols]
    order = {name: j for j, name in enumerate(schema.names)}
    return matrix, sorted(missing, key=order.__getitem__), sorted(extra)


def _parse_json_vectors(
    texts: Sequence[str], schema: FeatureSchema, request_ids: np.ndarray
) -> np.ndarray:
    p = len(schema)
    out = np.empty((len(texts), p))
    # Parse in slices: one orjson call per slice, but never one giant list of Python floats
    # (which more than doubles the time at 100,000 x 419).
    for lo in range(0, len(texts), _JSON_PARSE_ROWS):
        part = texts[lo : lo + _JSON_PARSE_ROWS]
        try:
            block = np.array(orjson.loads("[" + ",".join(part) + "]"), dtype=np.float64)
        except ValueError:
            block = None
        if block is None or block.shape != (len(part), p):
            for text, rid in zip(part, request_ids[lo : lo + len(part)], strict=True):
                length = len(orjson.loads(text))
                if length != p:
                    raise ValueError(
                        f"prediction {rid!r}: stored vector has {length} values, its feature "
                        f"schema {schema.version} has {p}"
                    ) from None
            raise ValueError(f"stored feature vectors of schema {schema.version} are malformed")
        out[lo : lo + len(part)] = block
    return out


def _read_vectors_postgresql(
    conn: Connection,
    start: dt.datetime,
    end: dt.datetime,
    schema: FeatureSchema,
    version: str | None,
    n_rows: int,
) -> np.ndarray:
    p = len(schema)
    where = "created_at >= %s AND created_at < %s"
    params: tuple[Any, ...] = (start, end)
    if version is not None:
        where += " AND feature_schema_version = %s"
        params += (version,)
    cursor = conn.connection.cursor()
    try:
        # COPY takes no bind parameters: let psycopg2 render them as literals.
        select = cursor.mogrify(
            f"SELECT features FROM predictions WHERE {where} ORDER BY id", params
        ).decode()
        buffer = io.BytesIO()
        cursor.copy_expert(f"COPY ({select}) TO STDOUT (FORMAT binary)", buffer)
    finally:
        cursor.close()
    matrix = _parse_copy_float8_arrays(buffer.getbuffer(), p, n_rows)
    if matrix is not None:
        return matrix
    # Not every row has the fixed layout (a NULL element or a wrong length written by hand):
    # the slow, per-row path, which names the offending prediction.
    stmt = sa.select(predictions.c.request_id, predictions.c.features).where(
        _window_clause(start, end)
    )
    if version is not None:
        stmt = stmt.where(predictions.c.feature_schema_version == version)
    out = np.empty((n_rows, p))
    for i, (rid, vector) in enumerate(conn.execute(stmt.order_by(predictions.c.id))):
        if vector.shape != (p,):
            raise ValueError(
                f"prediction {rid!r}: stored vector has {vector.size} values, its feature schema "
                f"{schema.version} has {p}"
            )
        out[i] = vector
    return out


def _parse_copy_float8_arrays(buf: memoryview, p: int, n_rows: int) -> np.ndarray | None:
    """Parse a binary COPY of one float8[] column whose rows all hold p non-NULL elements.
    Returns None when the data does not have that fixed layout."""
    if bytes(buf[:11]) != _PGCOPY_SIGNATURE:
        raise ValueError("COPY output does not start with the PGCOPY signature")
    (ext_len,) = struct.unpack(">i", buf[15:19])
    offset = 19 + ext_len
    row_dtype = np.dtype([("nfields", ">i2"), ("len", ">i4"), *_array_header_dtype(p)])
    if len(buf) - offset - 2 != n_rows * row_dtype.itemsize:
        return None
    if bytes(buf[len(buf) - 2 :]) != _PGCOPY_TRAILER:
        return None
    rec = np.frombuffer(buf, dtype=row_dtype, count=n_rows, offset=offset)
    layout_ok = (
        (rec["nfields"] == 1).all()
        and (rec["len"] == 20 + 12 * p).all()
        and (rec["ndim"] == 1).all()
        and (rec["hasnull"] == 0).all()
        and (rec["elemtype"] == _FLOAT8_OID).all()
        and (rec["dim"] == p).all()
        and (rec["el"]["len"] == 8).all()
    )
    if not layout_ok:
        return None
    return rec["el"]["v"].astype(np.float64)
