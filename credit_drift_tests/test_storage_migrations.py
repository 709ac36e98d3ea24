"""Migrations: the same schema on SQLite and PostgreSQL, idempotent, equal to the metadata."""

import os
import threading

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from credit_drift.storage import db
from credit_drift.storage.partitions import is_partition_name
from credit_drift.storage.schema import include_object, metadata

TABLES = {
    "feature_schemas",
    "predictions",
    "api_logs",
    "reference_profiles",
    "training_reference",
    "reference_samples",
    "drift_reports",
    "feature_drift_results",
    "drift_alerts",
    "idempotency_keys",
    "outcomes",
}
# PostgreSQL only (0005): the request ids of the day-partitioned prediction log.
POSTGRES_TABLES = {"prediction_request_ids"}


def _tables(names, dialect: str) -> set[str]:
    """The tables of a migrated database, without the day partitions; checks the extras."""
    names = {n for n in names if not is_partition_name(n)}
    expected = TABLES | (POSTGRES_TABLES if dialect == "postgresql" else set())
    assert names - {"alembic_version", "predictions_json"} == expected
    return names


@pytest.fixture(autouse=True)
def _dispose_engines():
    yield
    db.dispose_engines()


def _diffs(url: str) -> list:
    with db.make_engine(url).connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"include_object": include_object(conn.dialect.name)}
        )
        return compare_metadata(context, metadata)


def test_upgrade_twice_creates_tables_and_view(db_url):
    assert db.current_revision(db_url) is None
    assert db.upgrade(db_url) == db.head_revision()
    assert db.upgrade(db_url) == db.head_revision()  # second run: no error, no change
    assert db.current_revision(db_url) == db.head_revision()
    inspector = sa.inspect(db.make_engine(db_url))
    tables = _tables(inspector.get_table_names(), inspector.dialect.name)
    assert "alembic_version" in tables
    assert inspector.get_view_names() == ["predictions_json"]
    assert "ix_predictions_created_at" in {i["name"] for i in inspector.get_indexes("predictions")}


def _describe(url: str) -> dict:
    """Dialect-neutral description of the migrated schema (types aside)."""
    inspector = sa.inspect(db.make_engine(url))
    out = {}
    for table in sorted(TABLES):
        out[table] = {
            "columns": [(c["name"], c["nullable"]) for c in inspector.get_columns(table)],
            "pk": inspector.get_pk_constraint(table)["constrained_columns"],
            "unique": sorted(
                (u["name"], tuple(u["column_names"]))
                for u in inspector.get_unique_constraints(table)
            ),
            "fk": sorted(
                (f["name"], tuple(f["constrained_columns"]), f["referred_table"])
                for f in inspector.get_foreign_keys(table)
            ),
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in inspector.get_indexes(table)
                if "duplicates_constraint" not in i
            ),
        }
    return out


@pytest.mark.postgres
def test_sqlite_and_postgres_get_the_same_schema(sqlite_url, postgres_url):
    db.upgrade(sqlite_url)
    db.upgrade(postgres_url)
    on_sqlite, on_postgres = _describe(sqlite_url), _describe(postgres_url)
    # The differences the day partitions of 0005 make, and only these: a partitioned table's
    # primary key holds the partition key, and request ids are unique by their own table.
    assert on_postgres["predictions"]["pk"] == on_postgres["api_logs"]["pk"] == ["id", "created_at"]
    assert on_postgres["predictions"]["unique"] == []
    assert on_sqlite["predictions"]["unique"] == [("uq_predictions_request_id", ("request_id",))]
    for table in ("predictions", "api_logs"):
        on_postgres[table]["pk"] = ["id"]
    on_postgres["predictions"]["unique"] = on_sqlite["predictions"]["unique"]
    assert on_sqlite == on_postgres
    assert on_sqlite["drift_alerts"]["unique"] == [
        ("uq_drift_alerts_report_date_kind", ("report_date", "kind"))
    ]


def test_migrated_database_matches_metadata(db_url):
    db.upgrade(db_url)
    assert _diffs(db_url) == []
    # The comparison is not blind: a missing index is reported.
    with db.make_engine(db_url).begin() as conn:
        conn.execute(sa.text("DROP INDEX ix_predictions_created_at"))
    diffs = _diffs(db_url)
    assert [d[0] for d in diffs] == ["add_index"]
    assert diffs[0][1].name == "ix_predictions_created_at"


@pytest.mark.postgres
def test_postgres_objects_live_in_the_urls_schema(postgres_url):
    db.upgrade(postgres_url)
    with db.make_engine(postgres_url).connect() as conn:
        schema = conn.execute(sa.text("SELECT current_schema()")).scalar_one()
        assert schema.startswith("t_")
        found = conn.execute(
            sa.text("SELECT table_name FROM information_schema.tables WHERE table_schema = :s"),
            {"s": schema},
        ).scalars()
        assert _tables(found, "postgresql") >= {"alembic_version", "predictions_json"}
        in_public = conn.execute(
            sa.text(
                "SELECT count(*) FROM information_schema.tables "
                "WHERE table_schema = 'public' AND table_name = 'predictions_json'"
            )
        ).scalar_one()
        assert in_public == 0


def test_migrations_do_not_depend_on_the_working_directory(sqlite_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    script_location = db.alembic_config().get_main_option("script_location")
    assert os.path.isabs(script_location)
    db.upgrade(sqlite_url)
    assert db.current_revision(sqlite_url) == db.head_revision()


def test_sqlite_engine_settings(tmp_path):
    url = f"sqlite:///{tmp_path / 'nested' / 'dir' / 'state.db'}"
    engine = db.make_engine(url)
    assert db.make_engine(url) is engine  # cached per URL
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == (
            db.ENGINE_OPTIONS.sqlite_busy_timeout_ms
        )
    assert (tmp_path / "nested" / "dir" / "state.db").exists()


def test_sqlite_transactions_roll_back(sqlite_url):
    # pysqlite alone would not BEGIN before DDL / SELECT; make_engine's BEGIN makes it atomic.
    db.upgrade(sqlite_url)
    engine = db.make_engine(sqlite_url)
    with pytest.raises(RuntimeError), engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO feature_schemas (version, feature_names, spec, created_at) "
            "VALUES ('v', '[]', '{}', '2026-11-01 00:00:00.000000')"
        )
        raise RuntimeError("abort")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM feature_schemas").scalar() == 0


def test_unsupported_urls_are_refused():
    with pytest.raises(ValueError, match="psycopg2"):
        db.make_engine("postgresql+psycopg://u@localhost/db")
    with pytest.raises(ValueError, match="unsupported database backend"):
        db.make_engine("mysql+pymysql://u@localhost/db")


def test_concurrent_upgrades_of_an_empty_database(db_url):
    # The API and a Dagster run may both start on a fresh database: one migrates, the others
    # wait for its lock and then find the database at head.
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def worker():
        try:
            barrier.wait()
            db.upgrade(db_url)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert db.current_revision(db_url) == db.head_revision()
    assert _diffs(db_url) == []


def _migrate_to(url: str, revision: str, *, down: bool = False) -> None:
    engine = db.make_engine(url)
    with engine.connect().execution_options(sqlite_begin="IMMEDIATE") as conn, conn.begin():
        cfg = db.alembic_config()
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)


def test_0004_keeps_logged_predictions_and_adds_outcomes(db_url):
    _migrate_to(db_url, "0003")
    engine = db.make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO feature_schemas (version, feature_names, spec, created_at) "
                "VALUES ('v1', '[\"a\"]', '{}', '2026-11-01 00:00:00')"
            )
        )
        features = "'{1.5}'" if conn.dialect.name == "postgresql" else "'[1.5]'"
        conn.execute(
            sa.text(
                "INSERT INTO predictions (created_at, request_id, feature_schema_version, "
                "features, probability, decision, threshold, model_version, source) VALUES "
                f"('2026-11-01 10:00:00', 'old-1', 'v1', {features}, 0.3, 'APPROVED', 0.5, "
                "'m', 'api')"
            )
        )
    _migrate_to(db_url, "0004")
    assert db.current_revision(db_url) == "0004"
    with engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT request_id, probability, application_id FROM predictions")
        ).one()
        assert tuple(row) == ("old-1", 0.3, None)
        # The JSON view still reads the table.
        assert conn.execute(sa.text("SELECT count(*) FROM predictions_json")).scalar_one() == 1
    inspector = sa.inspect(engine)
    assert "ix_predictions_application_id" in {
        i["name"] for i in inspector.get_indexes("predictions")
    }
    indexes = {i["name"]: i for i in inspector.get_indexes("outcomes")}
    assert indexes["uq_outcomes_current"]["unique"]
    _migrate_to(db_url, "head")  # the metadata is the latest revision's
    assert _diffs(db_url) == []

    # And back: 0003's schema, the prediction still there.
    _migrate_to(db_url, "0003", down=True)
    inspector = sa.inspect(db.make_engine(db_url))
    assert "outcomes" not in inspector.get_table_names()
    assert "application_id" not in {c["name"] for c in inspector.get_columns("predictions")}
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT request_id FROM predictions")).scalar_one() == "old-1"


def _alert_rows(conn) -> list[dict]:
    return [
        dict(r._mapping) for r in conn.execute(sa.text("SELECT * FROM drift_alerts ORDER BY id"))
    ]


def _alert_uniques(url: str) -> list:
    inspector = sa.inspect(db.make_engine(url))
    return sorted(
        (u["name"], tuple(u["column_names"]))
        for u in inspector.get_unique_constraints("drift_alerts")
    )


def test_0006_keeps_every_alert_as_a_drift_alert_and_makes_one_per_day_and_kind(db_url):
    _migrate_to(db_url, "0005")
    engine = db.make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO drift_alerts (report_date, severity, status, drift_percentage, "
                "top_features, created_at, webhook_status, webhook_attempts, webhook_error, "
                "lease_owner, lease_expires_at, delivered_at) VALUES "
                "('2026-11-02', 'ALERT', 'open', 57.5, '[\"AMT_CREDIT\", \"DAYS_BIRTH\"]', "
                "'2026-11-03 06:00:00', 'sent', 2, NULL, NULL, NULL, '2026-11-03 06:00:30'), "
                "('2026-11-04', 'WARNING', 'open', 12.5, '[\"EXT_SOURCE_1\"]', "
                "'2026-11-05 06:00:00', 'failed', 3, 'HTTP 500: down', 'host:1:ab', "
                "'2026-11-05 06:01:00', NULL)"
            )
        )
        before = _alert_rows(conn)
    assert len(before) == 2

    _migrate_to(db_url, "0006")
    assert db.current_revision(db_url) == "0006"
    with engine.connect() as conn:
        after = _alert_rows(conn)
    assert [{k: v for k, v in r.items() if k not in ("kind", "details")} for r in after] == before
    assert [(r["kind"], r["details"]) for r in after] == [("drift", None), ("drift", None)]
    assert _alert_uniques(db_url) == [("uq_drift_alerts_report_date_kind", ("report_date", "kind"))]
    assert _diffs(db_url) == []

    # One alert per day AND kind: a second drift alert of a day is refused, another kind is not.
    insert = (
        "INSERT INTO drift_alerts (report_date, kind, severity, status, created_at, "
        "webhook_attempts) VALUES ('2026-11-02', :kind, 'ALERT', 'open', '2026-11-03 07:00:00', 0)"
    )
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.text(insert), {"kind": "drift"})
    with engine.begin() as conn:
        conn.execute(sa.text(insert), {"kind": "estimated_performance"})
    # No default: a writer that names no kind is refused.
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO drift_alerts (report_date, severity, status, created_at, "
                "webhook_attempts) VALUES ('2026-11-09', 'ALERT', 'open', '2026-11-10 07:00:00', 0)"
            )
        )

    # Downgrade: refused while a non-drift alert exists (0005 would read it as drift), and the
    # database is left at 0006, untouched.
    with pytest.raises(RuntimeError, match=r"1 estimated_performance \(first on 2026-11-02\)"):
        _migrate_to(db_url, "0005", down=True)
    assert db.current_revision(db_url) == "0006"
    with engine.begin() as conn:
        assert len(_alert_rows(conn)) == 3
        conn.execute(sa.text("DELETE FROM drift_alerts WHERE kind <> 'drift'"))
    _migrate_to(db_url, "0005", down=True)
    assert db.current_revision(db_url) == "0005"
    with engine.connect() as conn:
        assert _alert_rows(conn) == before
    assert _alert_uniques(db_url) == [("uq_drift_alerts_report_date", ("report_date",))]
