"""The day-partitioned prediction log on PostgreSQL (migration 0005): index sizes (BRIN against a
btree on created_at; the request-id table against the old UNIQUE index), the cost of the
request-id trigger on writes, and the migration's time.

    .venv/bin/python benchmarks/bench_partitions.py --rows 100000 --days 10 --features 40

Everything happens in dedicated schemas `bench_<random>` (search_path), dropped at the end.
For each of revision 0004 (plain table, UNIQUE request_id) and 0005 (partitioned, trigger):
`--rows` rows spread evenly over `--days` days, written by `bulk_insert_predictions` (binary
COPY) first as one call, then (in a second schema) as calls of `--small` rows (the group
commit's shape), timed. Then the 0004 schema is migrated to 0005 (timed) and the sizes are read
from `pg_relation_size` (summed over the partitions).
"""

import argparse
import datetime as dt
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from alembic import command

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from credit_drift.features import FeatureSchema, FeatureSpec  # noqa: E402
from credit_drift.storage import db  # noqa: E402
from credit_drift.storage.partitions import ensure_partitions  # noqa: E402
from credit_drift.storage.predictions import bulk_insert_predictions  # noqa: E402

BASE = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
START = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def migrate(url: str, revision: str) -> None:
    engine = db.make_engine(url)
    with engine.connect() as conn, conn.begin():
        cfg = db.alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def write(url: str, schema: FeatureSchema, rows: int, days: int, call_rows: int) -> float:
    engine = db.make_engine(url)
    rng = np.random.default_rng(0)
    step = dt.timedelta(days=days) / rows
    t0 = time.perf_counter()
    for lo in range(0, rows, call_rows):
        n = min(call_rows, rows - lo)
        bulk_insert_predictions(
            engine,
            schema,
            created_at=[START + (lo + i) * step for i in range(n)],
            matrix=rng.normal(size=(n, len(schema))),
            probability=rng.uniform(size=n),
            decision="APPROVED",
            threshold=0.5,
            model_version="m",
            request_ids=[f"r-{lo + i}" for i in range(n)],
            source="api",
        )
    return time.perf_counter() - t0


def size(conn, relation: str) -> int:
    """Bytes of a relation (heap and TOAST for a table), or of all the leaves of a partitioned
    table or index."""
    return int(
        conn.execute(
            sa.text(
                "SELECT CASE WHEN c.relkind IN ('p', 'I') THEN (SELECT sum(pg_table_size(relid)) "
                "FROM pg_partition_tree(c.oid) WHERE isleaf) ELSE pg_table_size(c.oid) END "
                "FROM pg_class c WHERE c.oid = to_regclass(:r)"
            ),
            {"r": relation},
        ).scalar()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--features", type=int, default=40)
    parser.add_argument("--small", type=int, default=10, help="rows per call, small writes")
    parser.add_argument("--small-rows", type=int, default=5_000, help="rows written in small calls")
    args = parser.parse_args()
    schema = FeatureSchema(tuple(FeatureSpec(f"f{i}") for i in range(args.features)))
    admin = sa.create_engine(BASE)
    schemas = []

    def fresh() -> str:
        name = f"bench_{uuid.uuid4().hex[:10]}"
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
        schemas.append(name)
        return f"{BASE}?options=-csearch_path%3D{name}"

    out = {}
    try:
        for revision in ("0004", "0005"):
            url = fresh()
            migrate(url, revision)
            if revision == "0005":
                engine = db.make_engine(url)
                ensure_partitions(engine, ahead=args.days, today=START.date())
            out[f"bulk {revision}"] = write(url, schema, args.rows, args.days, args.rows)
            small = fresh()
            migrate(small, revision)
            out[f"small {revision}"] = write(small, schema, args.small_rows, 1, args.small)
            if revision == "0004":
                plain = url
            else:
                partitioned = url
        with db.make_engine(plain).connect() as conn:
            out["0004 btree ix_predictions_created_at"] = size(conn, "ix_predictions_created_at")
            out["0004 unique request_id index"] = size(conn, "uq_predictions_request_id")
            out["0004 table"] = size(conn, "predictions")
        t0 = time.perf_counter()
        migrate(plain, "0005")
        out["migrate 0004 -> 0005"] = time.perf_counter() - t0
        engine = db.make_engine(partitioned)
        with engine.begin() as conn:
            out["0005 brin ix_predictions_created_at"] = size(conn, "ix_predictions_created_at")
            out["0005 prediction_request_ids table"] = size(conn, "prediction_request_ids")
            out["0005 pk_prediction_request_ids"] = size(conn, "pk_prediction_request_ids")
            out["0005 pk_predictions (id, created_at)"] = size(conn, "pk_predictions")
            out["0005 table (partitions)"] = size(conn, "predictions")
            conn.exec_driver_sql("CREATE INDEX bench_btree ON predictions (created_at)")
            out["0005 btree on created_at, for comparison"] = size(conn, "bench_btree")
            # What a sub-day window costs with each index (the planner's choice, executed).
            for name in ("btree", "brin"):
                if name == "brin":
                    conn.exec_driver_sql("DROP INDEX bench_btree")
                conn.exec_driver_sql("ANALYZE predictions")
                plan = conn.exec_driver_sql(
                    "EXPLAIN (ANALYZE, FORMAT JSON) SELECT count(*) FROM predictions WHERE "
                    "created_at >= '2026-11-03 06:00+00' AND created_at < '2026-11-03 07:00+00'"
                ).scalar()
                out[f"one-hour window, {name}: ms"] = plan[0]["Execution Time"]
    finally:
        db.dispose_engines()
        with admin.begin() as conn:
            for name in schemas:
                conn.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    print(f"rows {args.rows}, days {args.days}, features {args.features}; load {load}")
    for key, value in out.items():
        shown = f"{value / 1024:,.0f} KiB" if isinstance(value, int) else f"{value:.3f}"
        print(f"| {key} | {shown} |")


if __name__ == "__main__":
    main()
