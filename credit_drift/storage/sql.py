"""Small helpers every storage module shares: dialect-aware INSERT (for ON CONFLICT), the
current UTC time, database-ready scalars, write transactions that serialize writers, and
timestamp columns read in bulk without a Python datetime per row."""

import datetime as dt
import hashlib
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine


def insert_for(conn: Connection, table: sa.Table):
    """`INSERT` with `on_conflict_do_*` for the connection's dialect (PostgreSQL or SQLite)."""
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def plain(value: Any) -> Any:
    """numpy scalars -> Python; NaN, pd.NA, NaT -> None (a missing statistic is NULL, on both
    dialects)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


@contextmanager
def write_transaction(engine: Engine, lock: str | None = None) -> Iterator[Connection]:
    """A transaction that holds the write lock from its first statement: SQLite `BEGIN
    IMMEDIATE` (one writer at a time), and on PostgreSQL, when `lock` names something (e.g. one
    day's results), a transaction-scoped advisory lock on it. Two writers of the same thing then
    run one after the other instead of both deleting, both inserting and one failing on a
    unique constraint."""
    with engine.connect().execution_options(sqlite_begin="IMMEDIATE") as conn, conn.begin():
        if lock is not None and conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(lock)})
        yield conn


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for a name."""
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def bulk_timestamp(column: sa.ColumnElement, postgres: bool) -> sa.ColumnElement:
    """A UTCDateTime column as what `timestamp_series` parses fast: integer microseconds since
    the epoch on PostgreSQL, the stored naive-UTC text on SQLite (NULL stays NULL)."""
    if postgres:
        return sa.cast(sa.extract("epoch", column) * 1_000_000, sa.BigInteger)
    return sa.type_coerce(column, sa.Text())


def timestamp_series(values: Sequence[Any], postgres: bool) -> pd.Series:
    """The values of a `bulk_timestamp` column as datetime64[us, UTC] (None -> NaT)."""
    if postgres:
        micros = pd.Series(values, dtype="Int64")
        return pd.Series(pd.to_datetime(micros, unit="us", utc=True)).astype("datetime64[us, UTC]")
    stamps = pd.to_datetime(pd.Series(values, dtype=object), format="ISO8601")
    return stamps.dt.tz_localize("UTC").astype("datetime64[us, UTC]")
