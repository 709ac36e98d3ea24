"""Reading the prediction log back: the predictions of a time interval, `[start, end)`.

`read_predictions` is the pipeline's hot path. On PostgreSQL the vectors come back
through `COPY (SELECT features ...) TO STDOUT (FORMAT binary)`: every `float8[]` of one schema
version has the same byte size (NaN is a value, never a NULL element), so the whole interval is
parsed by one `np.frombuffer` with a structured dtype. On SQLite the JSON arrays are joined and
parsed by one orjson call. Metadata columns come from a second query in the same snapshot.

Rows logged under another feature-schema version than the one asked for are aligned **by
feature name** using that version's stored feature list: a feature of the requested schema that
the stored version lacks (or has with another kind) is NaN / None for those rows and is listed in
`LoggedPredictions.missing_features`; stored features the requested schema lacks are dropped and
listed in `extra_features`. Nothing is silently shifted by position.
"""

import datetime as dt
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from credit_drift.features import FeatureSchema
from credit_drift.storage.predictions.feature_schemas import load_feature_schema
from credit_drift.storage.predictions.pgcopy import _parse_copy_float8_arrays
from credit_drift.storage.schema import predictions
from credit_drift.storage.sql import bulk_timestamp, timestamp_series
from credit_drift.storage.windows import validate_window

# Rows of JSON vectors parsed per orjson call when reading from SQLite.
_JSON_PARSE_ROWS = 2_000

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


@dataclass(frozen=True, eq=False)
class LoggedPredictions:
    """The predictions of [start, end), ordered by id (= logging order).

    features: `schema.to_frame` output: one column per schema feature in schema order, numeric
        float64 (NaN when missing), categorical as raw strings (None when missing, unseen
        categories kept).
    meta: one row per prediction, same order, columns `META_COLUMNS`
        (created_at is datetime64[us, UTC]).
    schema_versions: the feature-schema versions these rows were logged under.
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


def _window_clause(start: dt.datetime, end: dt.datetime):
    return sa.and_(predictions.c.created_at >= start, predictions.c.created_at < end)


def count_predictions(engine: Engine, start: dt.datetime, end: dt.datetime) -> int:
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


def read_decisions(engine: Engine, start: dt.datetime, end: dt.datetime) -> pd.DataFrame:
    """probability, decision and threshold of the predictions with start <= created_at < end,
    in logging order: what a stability report needs, without the feature vectors."""
    start, end = validate_window(start, end)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(predictions.c.probability, predictions.c.decision, predictions.c.threshold)
            .where(_window_clause(start, end))
            .order_by(predictions.c.id)
        ).all()
    frame = pd.DataFrame.from_records(rows, columns=["probability", "decision", "threshold"])
    return frame.astype({"probability": "float64", "decision": object, "threshold": "float64"})


def _snapshot(engine: Engine) -> Connection:
    """A connection whose queries all see one snapshot of the log (rows keep arriving while a
    interval is read; meta and vectors must describe the same rows)."""
    conn = engine.connect()
    if engine.dialect.name == "postgresql":
        conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    return conn


def _meta_frame(columns: Sequence[Sequence[Any]], postgres: bool) -> pd.DataFrame:
    """Build the meta frame column by column (no per-row datetime objects: created_at arrives
    as integer microseconds on PostgreSQL and as ISO text on SQLite)."""
    data = dict(zip(META_COLUMNS, columns, strict=True))
    created = timestamp_series(data["created_at"], postgres)
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


def read_predictions(
    engine: Engine, schema: FeatureSchema, start: dt.datetime, end: dt.datetime
) -> LoggedPredictions:
    """The predictions with start <= created_at < end, features aligned to `schema`."""
    start, end = validate_window(start, end)
    postgres = engine.dialect.name == "postgresql"
    created = bulk_timestamp(predictions.c.created_at, postgres)
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
    return LoggedPredictions(
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
            # Categorical codes index the stored version's category list; the features frame
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
