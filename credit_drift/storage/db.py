"""Engines and migrations: one cached engine per database URL, Alembic run from code.

SQLite (the embedded default) gets a parent directory, WAL, a busy timeout, foreign keys and
real transactions (pysqlite's own transaction handling is replaced by an explicit BEGIN, as the
SQLAlchemy documentation recommends). PostgreSQL gets pre-ping and a short connect timeout so
that a database that is down fails fast instead of hanging an API request or a Dagster run.

`upgrade(url)` is safe to call at every start, from several processes at once: it returns after
one cheap query when the database is already at head, and otherwise migrates under a lock
(PostgreSQL advisory lock, SQLite `BEGIN IMMEDIATE`). Everything, the Alembic version table
included, is created in the connection's current schema (PostgreSQL `search_path`), never in a
hard-coded `public`.
"""

import functools
import threading
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine, make_url

from credit_drift.storage.schema import json_dumps, json_loads

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


@dataclass(frozen=True)
class EngineOptions:
    """Connection settings applied by `make_engine` (documented defaults)."""

    # How long a SQLite writer waits for another process's write lock before failing.
    sqlite_busy_timeout_ms: int = 30_000
    # Seconds before a PostgreSQL connection attempt gives up (fail fast when the DB is down).
    postgres_connect_timeout_s: int = 3
    # Key of the PostgreSQL advisory lock that serializes concurrent `upgrade` calls.
    migration_lock_key: int = 0x63726564  # "cred"


ENGINE_OPTIONS = EngineOptions()

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def make_engine(url: str) -> Engine:
    """The engine for `url`, created once per process (engines own connection pools)."""
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _create_engine(url)
            _engines[url] = engine
        return engine


def dispose_engines() -> None:
    """Close every cached engine's pool (tests; process shutdown)."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def _create_engine(url: str) -> Engine:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    common = dict(json_serializer=json_dumps, json_deserializer=json_loads)
    if backend == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, **common)
        _configure_sqlite(engine, in_memory=database in ("", ":memory:"))
        return engine
    if backend == "postgresql":
        if parsed.get_driver_name() != "psycopg2":
            raise ValueError(
                f"PostgreSQL URL uses driver {parsed.get_driver_name()!r}: credit-drift uses "
                "psycopg2 only; write postgresql+psycopg2://..."
            )
        connect_args = {}
        if "connect_timeout" not in parsed.query:
            connect_args["connect_timeout"] = ENGINE_OPTIONS.postgres_connect_timeout_s
        return sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args, **common)
    raise ValueError(f"unsupported database backend {backend!r} in URL; use sqlite or postgresql")


def _configure_sqlite(engine: Engine, *, in_memory: bool) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        # Take transaction control away from pysqlite; the "begin" hook below issues BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not in_memory:
            # WAL: readers (Dagster) never block the writer (the API), and vice versa.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(ENGINE_OPTIONS.sqlite_busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:
        # execution_options(sqlite_begin="IMMEDIATE") takes the write lock up front, so a
        # read-then-write transaction cannot fail on a stale WAL snapshot.
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        if mode not in ("DEFERRED", "IMMEDIATE", "EXCLUSIVE"):
            raise ValueError(f"sqlite_begin must be DEFERRED, IMMEDIATE or EXCLUSIVE, not {mode!r}")
        conn.exec_driver_sql(f"BEGIN {mode}")


# -- migrations ---------------------------------------------------------------------------
def alembic_config() -> Config:
    """Alembic configuration built in code: the scripts are found next to this module, so it
    works from a source checkout and from an installed wheel alike, whatever the cwd."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


@functools.cache
def head_revision() -> str:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"credit-drift migrations must have exactly one head, found {heads}")
    return heads[0]


def _revision_of(conn: sa.Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def current_revision(url: str) -> str | None:
    """The Alembic revision of the database (None when it was never migrated)."""
    with make_engine(url).connect() as conn:
        return _revision_of(conn)


def upgrade(url: str) -> str:
    """Migrate the database to head (no-op when already there); returns the revision."""
    engine = make_engine(url)
    head = head_revision()
    with engine.connect() as conn:
        if _revision_of(conn) == head:
            return head
    with engine.connect().execution_options(sqlite_begin="IMMEDIATE") as conn, conn.begin():
        if engine.dialect.name == "postgresql":
            # Two processes starting on an empty database must not both create the tables.
            conn.execute(
                sa.text("SELECT pg_advisory_xact_lock(:key)"),
                {"key": ENGINE_OPTIONS.migration_lock_key},
            )
        if _revision_of(conn) != head:
            cfg = alembic_config()
            # env.py runs on this connection, inside this transaction (committed below).
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    return head
