"""Retention of the prediction log: `credit-drift db prune --older-than DAYS`.

The days before `today - DAYS` (UTC) go: on PostgreSQL a day partition is dropped whole (no
row-by-row delete, no bloat, no vacuum), and the rows of those days that wait in a default
partition are deleted; on SQLite the rows are deleted. A day of `predictions` that has no
`drift_reports` row is kept (and said so) unless `force`: its drift was never reported, so its
rows are still the only input of that report. A day with no row at all has nothing to lose and
its empty partition is dropped anyway. `api_logs` (no report reads it) is pruned by age alone.

On PostgreSQL the request ids of the dropped predictions are removed from
`prediction_request_ids` in the same transaction, so that table shrinks with the log.
Outcomes are not touched: they refer to predictions by application id only. A pruned day's
realized performance cannot be computed again (its predictions are gone); the outcomes of its
applications then count as "matching no prediction" (`credit-drift outcomes unknown`).
"""

import datetime as dt
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from credit_drift.storage.partitions import (
    PARTITIONED_TABLES,
    day_bounds,
    day_partitions,
    default_days,
    default_partition_name,
    is_partitioned,
    lock_partitions,
)
from credit_drift.storage.schema import SQLITE_DATETIME_FORMAT, drift_reports


@dataclass(frozen=True)
class DayRows:
    table: str
    day: dt.date
    rows: int
    how: str  # "partition" (dropped whole), "rows" (deleted) or "" (kept)


@dataclass
class PruneResult:
    #: First day kept: every day before it was a candidate.
    keep_from: dt.date
    dry_run: bool
    dropped: list[DayRows] = field(default_factory=list)
    #: Days of predictions older than the cut, kept because no drift report covers them.
    kept_unreported: list[DayRows] = field(default_factory=list)


def _check_days(older_than_days: int) -> int:
    if isinstance(older_than_days, bool) or not isinstance(older_than_days, int):
        raise ValueError(f"older-than must be a whole number of days, not {older_than_days!r}")
    if older_than_days < 1:
        raise ValueError(
            f"older-than must be at least 1 day (got {older_than_days}): today's rows are "
            "still being written"
        )
    return older_than_days


def _row_days(conn: Connection, table: str, before: dt.datetime) -> dict[dt.date, int]:
    """Rows of `table` per UTC day, for the days before `before` (plain, unpartitioned)."""
    if conn.dialect.name == "postgresql":
        sql = (
            f"SELECT (created_at AT TIME ZONE 'UTC')::date, count(*) FROM {table} "
            "WHERE created_at < :before GROUP BY 1"
        )
        rows = conn.execute(sa.text(sql), {"before": before}).all()
        return {day: int(n) for day, n in rows}
    # SQLite stores naive UTC text ('YYYY-MM-DD HH:MM:SS.ffffff'): its first 10 characters.
    sql = (
        f"SELECT substr(created_at, 1, 10), count(*) FROM {table} "
        "WHERE created_at < :before GROUP BY 1"
    )
    bound = before.astimezone(dt.UTC).replace(tzinfo=None).strftime(SQLITE_DATETIME_FORMAT)
    rows = conn.execute(sa.text(sql), {"before": bound}).all()
    return {dt.date.fromisoformat(day): int(n) for day, n in rows}


def _delete_rows(conn: Connection, table: str, day: dt.date) -> None:
    lo, hi = day_bounds(day)
    if conn.dialect.name == "postgresql":
        params = {"lo": lo, "hi": hi}
        in_day = "created_at >= :lo AND created_at < :hi"
        if table == "predictions" and is_partitioned(conn, table):
            conn.execute(
                sa.text(
                    f"WITH gone AS (DELETE FROM {default_partition_name(table)} WHERE {in_day} "
                    "RETURNING request_id) DELETE FROM prediction_request_ids "
                    "WHERE request_id IN (SELECT request_id FROM gone)"
                ),
                params,
            )
        else:
            source = default_partition_name(table) if is_partitioned(conn, table) else table
            conn.execute(sa.text(f"DELETE FROM {source} WHERE {in_day}"), params)
        return
    lo_s, hi_s = (m.replace(tzinfo=None).strftime(SQLITE_DATETIME_FORMAT) for m in (lo, hi))
    conn.execute(
        sa.text(f"DELETE FROM {table} WHERE created_at >= :lo AND created_at < :hi"),
        {"lo": lo_s, "hi": hi_s},
    )


def _drop_partition(conn: Connection, table: str, name: str) -> None:
    if table == "predictions":
        conn.exec_driver_sql(
            "DELETE FROM prediction_request_ids "
            f"WHERE request_id IN (SELECT request_id FROM {name})"
        )
    conn.exec_driver_sql(f"DROP TABLE {name}")


def prune(
    engine: Engine,
    *,
    older_than_days: int,
    force: bool = False,
    dry_run: bool = False,
    today: dt.date | None = None,
) -> PruneResult:
    """Drop (PostgreSQL partitions) or delete (rows) the prediction log's days before
    `today - older_than_days`; see the module docstring. One transaction."""
    days = _check_days(older_than_days)
    today = today or dt.datetime.now(dt.UTC).date()
    keep_from = today - dt.timedelta(days=days)
    cut = day_bounds(keep_from)[0]
    result = PruneResult(keep_from=keep_from, dry_run=dry_run)
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        if postgres:
            lock_partitions(conn)
        reported = set(
            conn.execute(
                sa.select(drift_reports.c.report_date).where(
                    drift_reports.c.report_date < keep_from
                )
            ).scalars()
        )
        for table in PARTITIONED_TABLES:
            partitioned = postgres and is_partitioned(conn, table)
            # (day -> rows, how) of every candidate day: partitions first, then loose rows.
            candidates: list[tuple[dt.date, int, str, str | None]] = []
            if partitioned:
                for day, name in sorted(day_partitions(conn, table).items()):
                    if day < keep_from:
                        n = conn.exec_driver_sql(f"SELECT count(*) FROM {name}").scalar()
                        candidates.append((day, int(n), "partition", name))
                loose = {d: n for d, n in default_days(conn, table).items() if d < keep_from}
            else:
                loose = _row_days(conn, table, cut)
            candidates += [(day, n, "rows", None) for day, n in sorted(loose.items())]
            for day, n, how, name in candidates:
                guarded = table == "predictions" and n > 0 and day not in reported
                if guarded and not force:
                    result.kept_unreported.append(DayRows(table, day, n, ""))
                    continue
                result.dropped.append(DayRows(table, day, n, how))
                if dry_run:
                    continue
                if name is not None:
                    _drop_partition(conn, table, name)
                else:
                    _delete_rows(conn, table, day)
    return result
