"""Partition the prediction log by day on PostgreSQL: `predictions` and `api_logs`.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

PostgreSQL: each table becomes `PARTITION BY RANGE (created_at)` with one partition per UTC day
(`<table>_pYYYYMMDD`) and a DEFAULT partition (`<table>_default`) for days that have none yet.
The existing table is renamed, a partitioned table of the same columns (LIKE: types, defaults,
NOT NULL, CHECKs, comments) takes its name, the partitions of every day that has rows and of
yesterday .. today + 7 are created, every row is copied (ids included; the id sequence is
handed over, so it continues past max(id)), the counts are compared, and the old table is
dropped. Afterwards `storage.partitions.ensure_partitions` keeps creating the coming days.

A primary key or unique constraint on a partitioned table must contain the partition key, so:
- the primary key becomes (id, created_at); ids stay unique because only the sequence makes
  them;
- `request_id`'s global uniqueness moves to `prediction_request_ids(request_id PK, created_at)`,
  filled by a statement-level AFTER INSERT trigger on `predictions` from its transition table:
  it runs inside the inserting statement (INSERT or COPY), so a duplicate request id fails that
  statement and rolls its transaction back exactly as the old UNIQUE constraint did;
- `created_at` is indexed by BRIN (a day partition is scanned whole by a day's window anyway;
  BRIN serves sub-day ranges with 48 KiB per partition, a btree takes about 25 bytes a row).

The copy rewrites the tables in the migration's transaction (locked meanwhile): plan it like
any table rewrite. SQLite: nothing changes (no partitioning; `predictions.request_id` keeps its
UNIQUE constraint). Downgrade converts back to plain tables, rows and ids kept.

Written by hand; nothing is imported from the live schema (see 0001).
"""

import datetime as dt
from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The partitioned tables, and the indexes each one has besides its primary key.
TABLES = ("predictions", "api_logs")
PLAIN_INDEXES = {
    "predictions": ("ix_predictions_created_at", "ix_predictions_application_id"),
    "api_logs": ("ix_api_logs_created_at",),
}
# Days around the migration's date that get a partition even without rows.
DAYS_BEHIND, DAYS_AHEAD = 1, 7

CLAIM_FUNCTION = """
CREATE FUNCTION predictions_claim_request_ids() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO prediction_request_ids (request_id, created_at)
    SELECT request_id, created_at FROM claimed_rows;
    RETURN NULL;
END
$$
"""
CLAIM_TRIGGER = """
CREATE TRIGGER predictions_claim_request_ids AFTER INSERT ON predictions
REFERENCING NEW TABLE AS claimed_rows FOR EACH STATEMENT
EXECUTE FUNCTION predictions_claim_request_ids()
"""

# 0001's view, unchanged (it depends on the table, so it is dropped and made again).
PREDICTIONS_JSON_POSTGRESQL = """
CREATE VIEW predictions_json AS
SELECT p.id, p.created_at, p.request_id, p.model_version, p.probability, p.decision,
       COALESCE(f.features, '{}'::jsonb) || COALESCE(p.categorical_values, '{}'::jsonb)
           AS features
FROM predictions AS p
JOIN feature_schemas AS s ON s.version = p.feature_schema_version
CROSS JOIN LATERAL (
    SELECT jsonb_object_agg(
               u.name,
               CASE WHEN u.value = 'NaN'::float8 OR u.value IS NULL THEN 'null'::jsonb
                    ELSE to_jsonb(u.value) END
           ) AS features
    FROM unnest(ARRAY(SELECT jsonb_array_elements_text(s.feature_names)), p.features)
         AS u(name, value)
    WHERE u.name IS NOT NULL
) AS f
"""

FOREIGN_KEY = (
    "ALTER TABLE predictions ADD CONSTRAINT "
    "fk_predictions_feature_schema_version_feature_schemas "
    "FOREIGN KEY (feature_schema_version) REFERENCES feature_schemas (version)"
)


def _scalar(sql: str):
    return op.get_bind().exec_driver_sql(sql).scalar()


def _sequence(table: str) -> str:
    seq = _scalar(f"SELECT pg_get_serial_sequence('{table}', 'id')")
    if seq is None:
        raise RuntimeError(f"{table}.id has no sequence of its own: cannot partition {table}")
    return seq


def _bound(day: dt.date) -> str:
    return f"'{day:%Y-%m-%d} 00:00:00+00'"


def _copy_rows(source: str, target: str) -> None:
    """INSERT every row of `source` into `target` (same columns, same order) and check the
    count: a migration that loses a row must fail, not commit."""
    expected = _scalar(f"SELECT count(*) FROM {source}")
    copied = op.get_bind().exec_driver_sql(f"INSERT INTO {target} SELECT * FROM {source}").rowcount
    if copied != expected:
        raise RuntimeError(f"copied {copied} rows of {source} into {target}, expected {expected}")


def _partition(table: str, today: dt.date) -> None:
    old = f"{table}_0004"
    seq = _sequence(table)
    op.execute(f"ALTER TABLE {table} RENAME TO {old}")
    # Free the names of the index-backed objects (schema-wide) for the new table.
    op.execute(f"ALTER TABLE {old} DROP CONSTRAINT pk_{table}")
    if table == "predictions":
        op.execute(f"ALTER TABLE {old} DROP CONSTRAINT uq_predictions_request_id")
    for index in PLAIN_INDEXES[table]:
        op.execute(f"DROP INDEX {index}")
    op.execute(
        f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
        "INCLUDING COMMENTS INCLUDING STORAGE) PARTITION BY RANGE (created_at)"
    )
    days = set(
        op.get_bind()
        .exec_driver_sql(f"SELECT DISTINCT (created_at AT TIME ZONE 'UTC')::date FROM {old}")
        .scalars()
    )
    days |= {today + dt.timedelta(days=k) for k in range(-DAYS_BEHIND, DAYS_AHEAD + 1)}
    for day in sorted(days):
        op.execute(
            f"CREATE TABLE {table}_p{day:%Y%m%d} PARTITION OF {table} "
            f"FOR VALUES FROM ({_bound(day)}) TO ({_bound(day + dt.timedelta(days=1))})"
        )
    op.execute(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT")
    _copy_rows(old, table)
    if table == "predictions":
        op.execute(
            "CREATE TABLE prediction_request_ids ("
            "request_id VARCHAR(128) NOT NULL, created_at TIMESTAMP WITH TIME ZONE NOT NULL, "
            "CONSTRAINT pk_prediction_request_ids PRIMARY KEY (request_id))"
        )
        op.execute(
            f"INSERT INTO prediction_request_ids (request_id, created_at) "
            f"SELECT request_id, created_at FROM {old}"
        )
    # The id sequence goes with the new table (dropping the old one would drop it otherwise).
    op.execute(f"ALTER SEQUENCE {seq} OWNED BY {table}.id")
    op.execute(f"DROP TABLE {old}")
    # Indexes after the load (built once per partition, not row by row).
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT pk_{table} PRIMARY KEY (id, created_at)")
    op.execute(f"CREATE INDEX ix_{table}_created_at ON {table} USING brin (created_at)")
    if table == "predictions":
        op.execute("CREATE INDEX ix_predictions_application_id ON predictions (application_id)")
        op.execute(FOREIGN_KEY)
        op.execute(CLAIM_FUNCTION)
        op.execute(CLAIM_TRIGGER)


def _unpartition(table: str) -> None:
    old = f"{table}_0005"
    seq = _sequence(table)
    op.execute(f"ALTER TABLE {table} RENAME TO {old}")
    op.execute(f"ALTER TABLE {old} DROP CONSTRAINT pk_{table}")
    for index in PLAIN_INDEXES[table]:
        op.execute(f"DROP INDEX {index}")
    if table == "predictions":
        op.execute(f"DROP TRIGGER predictions_claim_request_ids ON {old}")
    op.execute(
        f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
        "INCLUDING COMMENTS INCLUDING STORAGE)"
    )
    _copy_rows(old, table)
    op.execute(f"ALTER SEQUENCE {seq} OWNED BY {table}.id")
    op.execute(f"DROP TABLE {old}")  # and its partitions
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT pk_{table} PRIMARY KEY (id)")
    op.execute(f"CREATE INDEX ix_{table}_created_at ON {table} (created_at)")
    if table == "predictions":
        op.execute(
            "ALTER TABLE predictions ADD CONSTRAINT uq_predictions_request_id UNIQUE (request_id)"
        )
        op.execute("CREATE INDEX ix_predictions_application_id ON predictions (application_id)")
        op.execute(FOREIGN_KEY)
        op.execute("DROP TABLE prediction_request_ids")
        op.execute("DROP FUNCTION predictions_claim_request_ids()")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite: no partitioning, nothing to change
    today = dt.datetime.now(dt.UTC).date()
    op.execute("DROP VIEW predictions_json")
    for table in TABLES:
        _partition(table, today)
    op.execute(PREDICTIONS_JSON_POSTGRESQL)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP VIEW predictions_json")
    for table in TABLES:
        _unpartition(table)
    op.execute(PREDICTIONS_JSON_POSTGRESQL)
