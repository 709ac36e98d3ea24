"""The structured request log of the scoring API (`api_logs`): writing entries, reading a window."""

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, fields

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from credit_drift.storage.schema import api_logs
from credit_drift.storage.windows import validate_window

API_LOG_COLUMNS: tuple[str, ...] = (
    "id",
    "created_at",
    "request_id",
    "method",
    "endpoint",
    "status_code",
    "latency_ms",
    "error",
    "n_items",
    "client",
)


@dataclass(frozen=True)
class ApiLogRow:
    """One HTTP request as the API saw it. `created_at` must be timezone-aware."""

    created_at: dt.datetime
    request_id: str | None
    method: str
    endpoint: str
    status_code: int
    latency_ms: float
    error: str | None = None
    n_items: int = 0
    client: str | None = None


_FIELDS = tuple(f.name for f in fields(ApiLogRow))


def insert_api_logs(engine: Engine, rows: Sequence[ApiLogRow]) -> int:
    """Write several entries in one transaction (e.g. a background writer's batch)."""
    if not rows:
        return 0
    with engine.begin() as conn:
        # Shallow, field by field: `asdict` deep-copies every value.
        conn.execute(api_logs.insert(), [{f: getattr(r, f) for f in _FIELDS} for r in rows])
    return len(rows)


def insert_api_log(
    engine: Engine,
    *,
    created_at: dt.datetime,
    request_id: str | None,
    method: str,
    endpoint: str,
    status_code: int,
    latency_ms: float,
    error: str | None = None,
    n_items: int = 0,
    client: str | None = None,
) -> None:
    """Write one entry."""
    insert_api_logs(
        engine,
        [
            ApiLogRow(
                created_at=created_at,
                request_id=request_id,
                method=method,
                endpoint=endpoint,
                status_code=status_code,
                latency_ms=latency_ms,
                error=error,
                n_items=n_items,
                client=client,
            )
        ],
    )


def read_api_logs(engine: Engine, start: dt.datetime, end: dt.datetime) -> pd.DataFrame:
    """Entries with start <= created_at < end, in logging order (columns `API_LOG_COLUMNS`)."""
    start, end = validate_window(start, end)
    stmt = (
        sa.select(*[api_logs.c[c] for c in API_LOG_COLUMNS])
        .where(api_logs.c.created_at >= start, api_logs.c.created_at < end)
        .order_by(api_logs.c.id)
    )
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    frame = pd.DataFrame.from_records(rows, columns=list(API_LOG_COLUMNS))
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    return frame.astype(
        {"id": "int64", "status_code": "int64", "latency_ms": "float64", "n_items": "int64"}
    )
