"""Day partitions of the prediction log on PostgreSQL (`predictions` and `api_logs`).

Migration 0005 makes both tables `PARTITION BY RANGE (created_at)`, one partition per UTC day
named `<table>_pYYYYMMDD` (`[day 00:00 UTC, next day 00:00 UTC)`), plus `<table>_default`, which
takes the rows of any day that has no partition yet, so an insert never fails for want of one.
`ensure_partitions` creates the partitions of the coming days (the API calls it at start-up,
every pipeline run and `credit-drift db partitions --ahead N` too) and of every day that has
rows in the default partition: those rows are moved into the new partition (PostgreSQL refuses
to create a partition whose range has rows in the default one), ids and all.

SQLite has no partitions: every function here is a no-op there.
"""

import datetime as dt
import re
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

PARTITIONED_TABLES: tuple[str, ...] = ("predictions", "api_logs")
#: Days ahead of today that `ensure_partitions` creates by default.
DEFAULT_AHEAD_DAYS = 7
#: Most days ahead one call creates (a typo such as --ahead 7000 would lock for long).
MAX_AHEAD_DAYS = 366
#: How long partition DDL waits for the table lock held by a running write or read, in ms:
#: past it the call fails (retried by the next start-up or run) instead of queueing writers.
LOCK_TIMEOUT_MS = 5_000
# Serializes concurrent `ensure_partitions` / `prune` calls (the API and a run starting at once).
_ADVISORY_LOCK_KEY = 0x70617274  # "part"

_NAME = re.compile(r"^(?P<table>predictions|api_logs)_(?:p(?P<day>\d{8})|default)$")


def partition_name(table: str, day: dt.date) -> str:
    return f"{table}_p{day:%Y%m%d}"


def default_partition_name(table: str) -> str:
    return f"{table}_default"


def is_partition_name(name: str) -> bool:
    """Whether `name` is a day (or the default) partition of a partitioned table."""
    return _NAME.match(name) is not None


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=1)


def _literal(moment: dt.datetime) -> str:
    # Partition bounds are DDL: no bind parameters. Built from a date, never from user text.
    return f"'{moment:%Y-%m-%d %H:%M:%S}+00'"


def _check_table(table: str) -> None:
    if table not in PARTITIONED_TABLES:
        raise ValueError(f"{table!r} is not a partitioned table; one of {PARTITIONED_TABLES}")


def is_partitioned(conn: Connection, table: str) -> bool:
    """Whether `table` (in the connection's schema) is a partitioned table."""
    if conn.dialect.name != "postgresql":
        return False
    kind = conn.execute(
        sa.text("SELECT relkind FROM pg_class WHERE oid = to_regclass(:t)"), {"t": table}
    ).scalar_one_or_none()
    return kind == "p"


def day_partitions(conn: Connection, table: str) -> dict[dt.date, str]:
    """The day partitions of `table` by day (the default partition is not one of them)."""
    _check_table(table)
    names = conn.execute(
        sa.text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(:t)"
        ),
        {"t": table},
    ).scalars()
    out = {}
    for name in names:
        match = _NAME.match(name)
        if match and match["table"] == table and match["day"]:
            out[dt.datetime.strptime(match["day"], "%Y%m%d").date()] = name
    return out


def default_days(conn: Connection, table: str) -> dict[dt.date, int]:
    """Rows of `table`'s default partition per UTC day."""
    _check_table(table)
    rows = conn.execute(
        sa.text(
            f"SELECT (created_at AT TIME ZONE 'UTC')::date AS day, count(*) "
            f"FROM {default_partition_name(table)} GROUP BY 1 ORDER BY 1"
        )
    ).all()
    return {day: int(n) for day, n in rows}


def create_day_partition(conn: Connection, table: str, day: dt.date) -> int:
    """Create `table`'s partition of `day` (in the caller's transaction); returns how many rows
    it took over from the default partition."""
    _check_table(table)
    name = partition_name(table, day)
    lo, hi = (_literal(m) for m in day_bounds(day))
    default = default_partition_name(table)
    in_range = f"created_at >= {lo} AND created_at < {hi}"
    waiting = conn.execute(sa.text(f"SELECT count(*) FROM {default} WHERE {in_range}")).scalar()
    if not waiting:
        conn.exec_driver_sql(
            f"CREATE TABLE {name} PARTITION OF {table} FOR VALUES FROM ({lo}) TO ({hi})"
        )
        return 0
    # Move the day's rows out of the default partition into a table of the parent's shape,
    # then attach it. Neither statement goes through the parent, so no trigger fires: the
    # rows keep their ids and their request ids stay claimed as they are.
    conn.exec_driver_sql(
        f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
    )
    moved = conn.exec_driver_sql(
        f"WITH moved AS (DELETE FROM {default} WHERE {in_range} RETURNING *) "
        f"INSERT INTO {name} SELECT * FROM moved"
    ).rowcount
    # The CHECK spares ATTACH its scan of the new partition; dropped right after.
    conn.exec_driver_sql(f"ALTER TABLE {name} ADD CONSTRAINT {name}_range CHECK ({in_range})")
    conn.exec_driver_sql(
        f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM ({lo}) TO ({hi})"
    )
    conn.exec_driver_sql(f"ALTER TABLE {name} DROP CONSTRAINT {name}_range")
    return int(moved)


def lock_partitions(conn: Connection) -> None:
    """Serialize partition DDL (in the caller's transaction) and bound its lock waits."""
    conn.exec_driver_sql(f"SET LOCAL lock_timeout = {LOCK_TIMEOUT_MS}")
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_LOCK_KEY})


@dataclass(frozen=True)
class CreatedPartition:
    table: str
    day: dt.date
    rows_moved: int  # rows taken over from the default partition


def ensure_partitions(
    engine: Engine,
    *,
    ahead: int = DEFAULT_AHEAD_DAYS,
    today: dt.date | None = None,
) -> list[CreatedPartition]:
    """Create the missing day partitions of yesterday, today and the `ahead` next days (UTC),
    and of every day that has rows in a default partition (moved in), in one transaction.
    A no-op on SQLite and on a database not partitioned (yet). Returns what it created."""
    if isinstance(ahead, bool) or not isinstance(ahead, int) or not 0 <= ahead <= MAX_AHEAD_DAYS:
        raise ValueError(
            f"ahead must be a whole number of days in [0, {MAX_AHEAD_DAYS}]: {ahead!r}"
        )
    if engine.dialect.name != "postgresql":
        return []
    today = today or dt.datetime.now(dt.UTC).date()
    wanted = [today + dt.timedelta(days=k) for k in range(-1, ahead + 1)]
    created: list[CreatedPartition] = []
    with engine.begin() as conn:
        lock_partitions(conn)
        for table in PARTITIONED_TABLES:
            if not is_partitioned(conn, table):
                continue
            existing = day_partitions(conn, table)
            waiting = default_days(conn, table)
            for day in sorted(set(wanted) | set(waiting)):
                if day not in existing:
                    created.append(
                        CreatedPartition(table, day, create_day_partition(conn, table, day))
                    )
    return created
