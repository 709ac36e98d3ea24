"""The day-partitioned prediction log (migration 0005) and its retention (`db prune`), on both
databases: rows survive the migration and its downgrade bit for bit, a day without a partition
still takes rows, request ids stay unique across days, prune keeps the unreported days."""

import datetime as dt

import numpy as np
import pytest
import sqlalchemy as sa
from alembic import command

from credit_drift.cli import main
from credit_drift.storage import db
from credit_drift.storage.api_logs import ApiLogRow, insert_api_logs
from credit_drift.storage.partitions import ensure_partitions, partition_name
from credit_drift.storage.predictions import (
    DuplicateRequestIdError,
    PredictionRow,
    bulk_insert_predictions,
    insert_predictions,
    read_predictions,
)
from credit_drift.storage.retention import prune
from credit_drift.storage.schema import drift_reports, predictions
from credit_drift_tests.test_storage_predictions import SCHEMA, TRICKY

DAYS = [dt.date(2026, 11, 1), dt.date(2026, 11, 2), dt.date(2026, 11, 3)]
TODAY = dt.date(2026, 11, 20)


def _at(day: dt.date, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=dt.UTC)


def _migrate_to(url: str, revision: str, *, down: bool = False) -> None:
    engine = db.make_engine(url)
    with engine.connect().execution_options(sqlite_begin="IMMEDIATE") as conn, conn.begin():
        cfg = db.alembic_config()
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)


def _bulk(engine, day: dt.date, n: int, prefix: str, *, seed: int = 0, hour: int = 1) -> None:
    rng = np.random.default_rng(seed)
    matrix = rng.normal(size=(n, len(SCHEMA)))
    matrix[0, : len(TRICKY[: len(SCHEMA)])] = TRICKY[: len(SCHEMA)]
    matrix[n - 1, 1] = np.nan
    bulk_insert_predictions(
        engine,
        SCHEMA,
        created_at=[_at(day, hour, i % 60) for i in range(n)],
        matrix=matrix,
        categorical=[{"CODE_GENDER": "X"} if i == 0 else None for i in range(n)],
        probability=rng.uniform(size=n),
        decision="APPROVED",
        threshold=0.42,
        model_version="m1",
        inference_time_ms=np.where(np.arange(n) % 2 == 0, np.nan, 1.25),
        request_ids=[f"{prefix}-{i}" for i in range(n)],
        application_ids=[str(1000 + i) if i % 3 else None for i in range(n)],
        source="api",
    )


def _row(request_id: str, at: dt.datetime) -> PredictionRow:
    return PredictionRow(
        created_at=at,
        request_id=request_id,
        features=np.zeros(len(SCHEMA)),
        categorical=None,
        probability=0.5,
        decision="APPROVED",
        threshold=0.42,
        model_version="m1",
        inference_time_ms=None,
    )


def _snapshot(engine) -> tuple[list[tuple], list[bytes], list[tuple], list]:
    """Every column of every row of both tables, the stored vectors as raw float64 bytes, and
    what `read_predictions` returns for each day."""
    with engine.connect() as conn:
        preds = conn.execute(
            sa.text(
                "SELECT id, created_at, request_id, feature_schema_version, categorical_values, "
                "probability, decision, threshold, model_version, inference_time_ms, source, "
                "application_id FROM predictions ORDER BY id"
            )
        ).all()
        vectors = conn.execute(sa.select(predictions.c.features).order_by(predictions.c.id))
        vectors = [v.tobytes() for v in vectors.scalars()]
        logs = conn.execute(sa.text("SELECT * FROM api_logs ORDER BY id")).all()
    frames = []
    for d in DAYS:
        logged = read_predictions(engine, SCHEMA, _at(d), _at(d + dt.timedelta(days=1)))
        frames.append(_Frames(logged.features, logged.meta))
    return [tuple(r) for r in preds], vectors, [tuple(r) for r in logs], frames


class _Frames:
    """Two data frames compared with DataFrame.equals (NaN equal to NaN, dtypes included)."""

    def __init__(self, features, meta):
        self.features, self.meta = features, meta

    def __eq__(self, other) -> bool:
        return self.features.equals(other.features) and self.meta.equals(other.meta)


def _where_rows_live(engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT tableoid::regclass::text, count(*) FROM predictions GROUP BY 1")
        ).all()
    return {name.split(".")[-1]: n for name, n in rows}


def _api_logs(engine, day: dt.date, n: int) -> None:
    insert_api_logs(
        engine,
        [
            ApiLogRow(_at(day, 2, i), f"log-{day}-{i}", "POST", "/predict", 200, 1.5 + i, None, 1)
            for i in range(n)
        ],
    )


def _next_id(engine, request_id: str, at: dt.datetime) -> int:
    insert_predictions(engine, SCHEMA, [_row(request_id, at)])
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT id FROM predictions WHERE request_id = :r"), {"r": request_id}
        ).scalar_one()


def test_0005_keeps_every_row_and_its_downgrade_too(db_url):
    _migrate_to(db_url, "0004")
    engine = db.make_engine(db_url)
    for k, day in enumerate(DAYS):
        _bulk(engine, day, 40, f"d{k}", seed=k)
        _api_logs(engine, day, 3)
    before = _snapshot(engine)
    assert len(before[0]) == 120 and len(before[2]) == 9

    _migrate_to(db_url, "0005")
    assert _snapshot(engine) == before
    postgres = engine.dialect.name == "postgresql"
    if postgres:
        # Every old row sits in the partition of its day, none in the default partition.
        assert _where_rows_live(engine) == {partition_name("predictions", d): 40 for d in DAYS}
        with engine.connect() as conn:
            claimed = conn.execute(sa.text("SELECT count(*) FROM prediction_request_ids")).scalar()
            assert claimed == 120
    # The id sequence continues past the old rows.
    assert _next_id(engine, "after-0005", _at(DAYS[0], 5)) > max(r[0] for r in before[0])
    with pytest.raises(DuplicateRequestIdError, match="d2-0"):
        insert_predictions(engine, SCHEMA, [_row("d2-0", _at(DAYS[0], 6))])
    after = _snapshot(engine)

    _migrate_to(db_url, "0004", down=True)
    assert _snapshot(engine) == after
    inspector = sa.inspect(engine)
    assert [u["column_names"] for u in inspector.get_unique_constraints("predictions")] == [
        ["request_id"]
    ]
    assert inspector.get_pk_constraint("predictions")["constrained_columns"] == ["id"]
    assert "prediction_request_ids" not in inspector.get_table_names()
    if postgres:
        with engine.connect() as conn:
            kind = conn.execute(
                sa.text("SELECT relkind FROM pg_class WHERE oid = to_regclass('predictions')")
            ).scalar()
            assert kind == "r"
    assert _next_id(engine, "after-downgrade", _at(DAYS[1], 5)) > max(r[0] for r in after[0])
    _migrate_to(db_url, "head")
    assert db.current_revision(db_url) == db.head_revision()


def test_a_day_without_partition_lands_in_default_and_moves_into_its_partition(db_url):
    db.upgrade(db_url)
    engine = db.make_engine(db_url)
    far = dt.date(2031, 1, 15)  # no partition for it
    insert_predictions(engine, SCHEMA, [_row("far-1", _at(far, 3)), _row("far-2", _at(far, 4))])
    _api_logs(engine, far, 2)
    before = read_predictions(engine, SCHEMA, _at(far), _at(far + dt.timedelta(days=1)))
    created = ensure_partitions(engine, ahead=2, today=far - dt.timedelta(days=10))
    after = read_predictions(engine, SCHEMA, _at(far), _at(far + dt.timedelta(days=1)))
    assert after.meta.equals(before.meta) and after.features.equals(before.features)
    if engine.dialect.name != "postgresql":
        assert created == []
        return
    moved = {(c.table, c.day): c.rows_moved for c in created}
    assert moved[("predictions", far)] == 2 and moved[("api_logs", far)] == 2
    # the window: yesterday .. today + 2 of the given date, plus the day that waited
    assert {d for t, d in moved if t == "predictions"} == {
        far - dt.timedelta(days=k) for k in (11, 10, 9, 8)
    } | {far}
    assert _where_rows_live(engine) == {partition_name("predictions", far): 2}
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM api_logs_default")).scalar() == 0
        assert conn.execute(sa.text("SELECT count(*) FROM api_logs")).scalar() == 2
    # Nothing left to do the second time; the moved rows' request ids are still claimed.
    assert ensure_partitions(engine, ahead=2, today=far - dt.timedelta(days=10)) == []
    with pytest.raises(DuplicateRequestIdError, match="far-1"):
        insert_predictions(engine, SCHEMA, [_row("far-1", _at(far, 9))])
    with pytest.raises(ValueError, match="ahead"):
        ensure_partitions(engine, ahead=-1)


def test_request_ids_are_unique_across_days_on_every_write_path(db_url):
    db.upgrade(db_url)
    engine = db.make_engine(db_url)
    ensure_partitions(engine, today=DAYS[0])
    insert_predictions(engine, SCHEMA, [_row("r-1", _at(DAYS[0], 1))])
    _bulk(engine, DAYS[1], 5, "bulk")
    # Another day (another partition), and a day in the default partition, by each path.
    for day in (DAYS[2], dt.date(2031, 1, 1)):
        with pytest.raises(DuplicateRequestIdError, match="r-1"):
            insert_predictions(engine, SCHEMA, [_row("new", _at(day)), _row("r-1", _at(day))])
        with pytest.raises(DuplicateRequestIdError, match="bulk-3"):
            bulk_insert_predictions(
                engine,
                SCHEMA,
                created_at=[_at(day), _at(day)],
                matrix=np.zeros((2, len(SCHEMA))),
                probability=0.5,
                decision="APPROVED",
                threshold=0.5,
                model_version="m1",
                request_ids=["new", "bulk-3"],
            )
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM predictions")).scalar() == 6
        if engine.dialect.name == "postgresql":
            ids = conn.execute(sa.text("SELECT count(*) FROM prediction_request_ids")).scalar()
            assert ids == 6  # the failed statements claimed nothing


def _report(engine, day: dt.date) -> None:
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        conn.execute(
            drift_reports.insert().values(
                report_date=day,
                window_start=_at(day),
                window_end=_at(day + dt.timedelta(days=1)),
                n_predictions=1,
                n_features_analyzed=1,
                n_features_drifted=0,
                drift_percentage=0.0,
                status="OK",
                policy="p",
                created_at=now,
                updated_at=now,
            )
        )


def _counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        out = {
            t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar()
            for t in ("predictions", "api_logs")
        }
        if engine.dialect.name == "postgresql":
            out["ids"] = conn.execute(
                sa.text("SELECT count(*) FROM prediction_request_ids")
            ).scalar()
    return out


def test_prune_drops_reported_old_days_keeps_the_others(db_url):
    db.upgrade(db_url)
    engine = db.make_engine(db_url)
    postgres = engine.dialect.name == "postgresql"
    recent = TODAY - dt.timedelta(days=2)
    for k, day in enumerate([*DAYS, recent]):
        _bulk(engine, day, 4, f"d{k}", seed=k)
        _api_logs(engine, day, 2)
    ensure_partitions(engine, today=DAYS[1])  # Nov 1 .. Nov 9, and `recent` (moved in)
    _report(engine, DAYS[0])
    _report(engine, DAYS[2])
    unreported = read_predictions(engine, SCHEMA, _at(DAYS[1]), _at(DAYS[2]))

    # --dry-run: says the same, changes nothing.
    dry = prune(engine, older_than_days=10, dry_run=True, today=TODAY)
    assert _counts(engine) == {"predictions": 16, "api_logs": 8} | ({"ids": 16} if postgres else {})
    result = prune(engine, older_than_days=10, today=TODAY)
    assert (dry.dropped, dry.kept_unreported) == (result.dropped, result.kept_unreported)
    assert result.keep_from == dt.date(2026, 11, 10)
    dropped = {(d.table, d.day): d.rows for d in result.dropped if d.rows}
    assert dropped == {
        ("predictions", DAYS[0]): 4,
        ("predictions", DAYS[2]): 4,
        **{("api_logs", d): 2 for d in DAYS},
    }
    # PostgreSQL: the empty partitions of old days go too (nothing to lose, no report needed).
    empty = {(d.table, d.day) for d in result.dropped if not d.rows}
    no_rows = [DAYS[2] + dt.timedelta(days=k) for k in range(1, 7)]  # Nov 4 .. Nov 9
    assert empty == (
        {(t, d) for t in ("predictions", "api_logs") for d in no_rows} if postgres else set()
    )
    assert [(d.table, d.day, d.rows) for d in result.kept_unreported] == [
        ("predictions", DAYS[1], 4)
    ]
    if postgres:
        assert {d.how for d in result.dropped} == {"partition"}
    assert _counts(engine) == {"predictions": 8, "api_logs": 2} | ({"ids": 8} if postgres else {})
    kept = read_predictions(engine, SCHEMA, _at(DAYS[1]), _at(DAYS[2]))
    assert kept.features.equals(unreported.features) and kept.meta.equals(unreported.meta)
    # A pruned day's request id is free again; a kept one is not.
    insert_predictions(engine, SCHEMA, [_row("d0-1", _at(recent, 9))])
    with pytest.raises(DuplicateRequestIdError):
        insert_predictions(engine, SCHEMA, [_row("d1-1", _at(recent, 9))])

    # --force: the unreported day goes too; recent days never.
    forced = prune(engine, older_than_days=10, force=True, today=TODAY)
    assert [(d.table, d.day, d.rows) for d in forced.dropped] == [("predictions", DAYS[1], 4)]
    assert forced.kept_unreported == []
    assert _counts(engine) == {"predictions": 5, "api_logs": 2} | ({"ids": 5} if postgres else {})
    if postgres:
        with engine.connect() as conn:
            left = conn.execute(
                sa.text("SELECT count(*) FROM pg_class WHERE relname = :n"),
                {"n": partition_name("predictions", DAYS[1])},
            ).scalar()
            assert left == 0


def test_prune_deletes_reported_rows_waiting_in_the_default_partition(db_url):
    db.upgrade(db_url)
    engine = db.make_engine(db_url)
    _bulk(engine, DAYS[0], 3, "old")  # no partition for it: the default one on PostgreSQL
    _report(engine, DAYS[0])
    result = prune(engine, older_than_days=1, today=TODAY)
    assert [(d.table, d.day, d.rows, d.how) for d in result.dropped] == [
        ("predictions", DAYS[0], 3, "rows")
    ]
    assert _counts(engine)["predictions"] == 0
    if engine.dialect.name == "postgresql":
        assert _counts(engine)["ids"] == 0
    with pytest.raises(ValueError, match="at least 1 day"):
        prune(engine, older_than_days=0)


def test_db_prune_and_partitions_commands(db_url, capsys):
    db.upgrade(db_url)
    engine = db.make_engine(db_url)
    old = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=40)
    _bulk(engine, old, 2, "cli")
    assert main(["db", "partitions", "--ahead", "3", "--database-url", db_url]) == 0
    out = capsys.readouterr().out
    if engine.dialect.name == "postgresql":
        assert f"created predictions partition of {old} (2 row(s) moved in" in out
    else:
        assert "SQLite" in out
    assert main(["db", "prune", "--older-than", "30", "--dry-run", "--database-url", db_url]) == 0
    out = capsys.readouterr().out
    assert f"kept predictions {old}: 2 row(s), no drift report" in out
    assert "would drop nothing from before" in out
    assert main(["db", "prune", "--older-than", "30", "--force", "--database-url", db_url]) == 0
    out = capsys.readouterr().out
    assert f"dropped predictions {old}: 2 row(s)" in out
    assert "dropped 2 predictions row(s) from before" in out
    assert main(["db", "prune", "--older-than", "0", "--database-url", db_url]) == 2
    assert "--older-than: older-than must be at least 1 day" in capsys.readouterr().err
