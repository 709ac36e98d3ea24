"""Engines and migrations: one cached engine per database URL, Alembic run from code.

SQLite (the embedded default) gets a parent directory, WAL, a busy timeout, foreign keys and
real transactions (pysqlite's own transaction handling is replaced by an explicit BEGIN, as the
SQLAlchemy documentation recommends). PostgreSQL gets pre-ping and a short connect timeout so
that a database that is down fails fast instead of hanging an API request or a Dagster run.
`make_engine(url, timeout_s=...)` (the API's engine) bounds every wait by that many seconds:
connect, pool checkout, statements and lock waits, SQLite's busy wait, and TCP keepalives so a
vanished server host is noticed; a server that is alive but stalled (its process stopped) does
not answer the keepalives' purpose, so the API also puts its own deadline on each call
(`serving.database`).

`upgrade(url)` is safe to call at every start, from several processes at once: it returns after
one cheap query when the database is already at head, and otherwise migrates under a lock
(PostgreSQL advisory lock, SQLite `BEGIN IMMEDIATE`). Everything, the Alembic version table
included, is created in the connection's current schema (PostgreSQL `search_path`), never in a
hard-coded `public`.
"""

import functools
import math
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

_engines: dict[tuple[str, float | None], Engine] = {}
_engines_lock = threading.Lock()


def make_engine(url: str, *, timeout_s: float | None = None) -> Engine:
    """The engine for `url`, created once per process and timeout (engines own connection
    pools). `timeout_s` bounds every database wait of this engine (None: the defaults above,
    for batch work such as Dagster runs, whose queries may legitimately take minutes)."""
    key = (url, None if timeout_s is None else float(timeout_s))
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _create_engine(url, timeout_s)
            _engines[key] = engine
        return engine


def dispose_engines() -> None:
    """Close every cached engine's pool (tests; process shutdown)."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def _create_engine(url: str, timeout_s: float | None = None) -> Engine:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    common = dict(json_serializer=json_dumps, json_deserializer=json_loads)
    if backend == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        pool = {} if timeout_s is None else {"pool_timeout": timeout_s}
        engine = sa.create_engine(url, **pool, **common)
        busy_ms = (
            ENGINE_OPTIONS.sqlite_busy_timeout_ms if timeout_s is None else int(timeout_s * 1000)
        )
        _configure_sqlite(engine, in_memory=database in ("", ":memory:"), busy_timeout_ms=busy_ms)
        return engine
    if backend == "postgresql":
        if parsed.get_driver_name() != "psycopg2":
            raise ValueError(
                f"PostgreSQL URL uses driver {parsed.get_driver_name()!r}: credit-drift uses "
                "psycopg2 only; write postgresql+psycopg2://..."
            )
        connect_args: dict = {}
        if "connect_timeout" not in parsed.query:
            connect_args["connect_timeout"] = ENGINE_OPTIONS.postgres_connect_timeout_s
        if timeout_s is None:
            engine = sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args, **common)
            _prefer_lz4(engine)
            return engine
        connect_args.update(_postgres_bounded_args(parsed.query, timeout_s))
        engine = sa.create_engine(
            url, pool_pre_ping=True, pool_timeout=timeout_s, connect_args=connect_args, **common
        )
        _bound_postgres_statements(engine, timeout_s)
        _prefer_lz4(engine)
        return engine
    raise ValueError(f"unsupported database backend {backend!r} in URL; use sqlite or postgresql")


def _postgres_bounded_args(query, timeout_s: float) -> dict:
    """libpq options that bound a connection's waits by about `timeout_s` (URL values win)."""
    whole = max(1, math.ceil(timeout_s))
    wanted = {
        # libpq counts whole seconds and treats anything under 2 as 2.
        "connect_timeout": max(2, whole),
        # A server host that vanished (no RST ever comes) is found by keepalives, and a
        # request whose bytes are never acknowledged is abandoned by tcp_user_timeout.
        "keepalives": 1,
        "keepalives_idle": whole,
        "keepalives_interval": 1,
        "keepalives_count": 3,
        "tcp_user_timeout": int((whole + 3) * 1000),
    }
    return {k: v for k, v in wanted.items() if k not in query}


# Statements (and, sooner, lock waits) end on the server at these shares of the bound, so that
# the server's own error reaches the caller before its outer deadline and says what happened:
# a lock held by another transaction (e.g. a concurrent retry with the same idempotency key) is
# told apart from a slow or stalled server.
STATEMENT_TIMEOUT_SHARE = 0.75
LOCK_TIMEOUT_SHARE = 0.5


def _bound_postgres_statements(engine: Engine, timeout_s: float) -> None:
    ms = max(1, int(timeout_s * 1000 * STATEMENT_TIMEOUT_SHARE))
    lock_ms = max(1, int(timeout_s * 1000 * LOCK_TIMEOUT_SHARE))

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        # Set per session rather than through the URL's `options`, which the caller may use
        # already (e.g. for search_path). A statement or a lock wait that outlives the
        # request's deadline is cancelled by the server itself, so it does not hold a lock
        # (or a pool connection) after the client was answered 503.
        cursor = dbapi_connection.cursor()
        cursor.execute(f"SET statement_timeout = {ms}")
        cursor.execute(f"SET lock_timeout = {lock_ms}")
        cursor.execute(f"SET idle_in_transaction_session_timeout = {max(2 * ms, 10_000)}")
        cursor.close()
        dbapi_connection.commit()


#: Set on a pooled connection's `info` once its session compresses new values with lz4 (where
#: the server has it): `storage.predictions.write` then skips its per-transaction setting.
LZ4_SESSION_KEY = "credit_drift_toast_compression_set"


def lz4_setting(*, local: bool) -> str:
    """The statement that makes lz4 the TOAST compression where the server has it (PostgreSQL
    14+ built with it), for the current transaction (`local`) or the whole session."""
    return (
        f"SELECT set_config('default_toast_compression', 'lz4', {str(local).lower()}) "
        "FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)"
    )


def _prefer_lz4(engine: Engine) -> None:
    """New values (a feature vector is above the TOAST threshold) are compressed with lz4 rather
    than pglz on every connection of `engine`, set once per connection rather than once per
    write transaction (a round trip that a group commit of the API waits on)."""

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(lz4_setting(local=False))
        cursor.close()
        dbapi_connection.commit()
        record.info[LZ4_SESSION_KEY] = True


def _configure_sqlite(
    engine: Engine, *, in_memory: bool, busy_timeout_ms: int | None = None
) -> None:
    busy_ms = ENGINE_OPTIONS.sqlite_busy_timeout_ms if busy_timeout_ms is None else busy_timeout_ms

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        # Take transaction control away from pysqlite; the "begin" hook below issues BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not in_memory:
            # WAL: readers (Dagster) never block the writer (the API), and vice versa.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
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
