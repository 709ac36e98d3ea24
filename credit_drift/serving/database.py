"""The API's access to the prediction log: lazy migration, outage detection, fast 503s.

`DatabaseGate.run(fn)` runs one storage call. The first successful call migrates the database
(`storage.db.upgrade`, a no-op when at head) and registers the model's feature schema, so the API
starts even while the database is down. A connection-level failure marks the database down for
`ServingConfig.database_retry_seconds`: meanwhile calls fail at once with `DatabaseUnavailable`
(the API answers 503 without waiting on a timeout per request), and afterwards the next call
tries again, so the API recovers by itself when the database comes back.
"""

import contextlib
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from credit_drift.features import FeatureSchema
from credit_drift.storage.db import make_engine, upgrade
from credit_drift.storage.predictions import register_feature_schema

T = TypeVar("T")


def _outage_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [
        sa.exc.OperationalError,
        sa.exc.InterfaceError,
        sa.exc.TimeoutError,
        sqlite3.OperationalError,
        ConnectionError,
        TimeoutError,
    ]
    try:  # the bulk COPY path talks to psycopg2 directly: its errors are not wrapped
        import psycopg2

        errors += [psycopg2.OperationalError, psycopg2.InterfaceError]
    except ImportError:  # pragma: no cover - psycopg2 is a dependency
        pass
    return tuple(errors)


OUTAGE_ERRORS = _outage_errors()


class DatabaseUnavailable(Exception):
    """The prediction log cannot be reached; `reason` is safe to show (no SQL, no password)."""

    def __init__(self, reason: str, retry_after: float) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def short_reason(exc: BaseException) -> str:
    """The driver's own message, first line, without SQLAlchemy's SQL and parameters."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    first = text[0] if text else type(orig).__name__
    return f"{type(orig).__name__}: {first}"[:300]


def is_outage(exc: BaseException) -> bool:
    if isinstance(exc, OUTAGE_ERRORS):
        return True
    return isinstance(exc, sa.exc.DBAPIError) and bool(exc.connection_invalidated)


_ASYNC_COMMIT_OPTION = "credit_drift_synchronous_commit"
_listening: "weakref.WeakSet[Engine]" = weakref.WeakSet()
_listening_lock = threading.Lock()


def _set_commit_mode_on_begin(engine: Engine) -> None:
    """Let `engine.execution_options(credit_drift_synchronous_commit="off")` transactions run
    with `SET LOCAL synchronous_commit` (scoped to that transaction: other users of the same
    cached engine keep the server's setting)."""
    with _listening_lock:
        if engine in _listening:
            return

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn) -> None:
            mode = conn.get_execution_options().get(_ASYNC_COMMIT_OPTION)
            if mode is not None:
                conn.exec_driver_sql(f"SET LOCAL synchronous_commit TO {mode}")

        _listening.add(engine)


class DatabaseGate:
    def __init__(
        self,
        url: str,
        schema: FeatureSchema,
        retry_seconds: float,
        *,
        synchronous_commit: bool = True,
    ) -> None:
        self.url = url
        self.schema = schema
        self.retry_seconds = retry_seconds
        self.synchronous_commit = synchronous_commit
        self._engine: Engine | None = None
        self._ready = False
        self._ready_lock = threading.Lock()
        self._down_until = 0.0
        self._last_error: str | None = None
        # SQLite has one writer at a time. Threads of this process queue on a Python lock and
        # wake the moment it is free; left to SQLite's busy handler they would poll with
        # 1-10 ms sleeps (the p99 of single requests when the api_logs writer flushes).
        # Other processes (uvicorn workers) still wait through SQLite's busy timeout.
        self._write_lock: threading.Lock | contextlib.nullcontext = (
            threading.Lock() if url.startswith("sqlite") else contextlib.nullcontext()
        )

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            # make_engine does not connect: building it costs nothing while the DB is down.
            engine = make_engine(self.url)
            if engine.dialect.name == "sqlite":
                # The API writes from several threads (requests, the api_logs writer). A
                # DEFERRED transaction that reads first (storage looks the feature schema up)
                # and then writes fails at once with "database is locked" when another
                # connection wrote in between; IMMEDIATE takes the write lock up front and
                # waits for it (busy timeout) instead.
                engine = engine.execution_options(sqlite_begin="IMMEDIATE")
            elif engine.dialect.name == "postgresql" and not self.synchronous_commit:
                _set_commit_mode_on_begin(engine)
                engine = engine.execution_options(**{_ASYNC_COMMIT_OPTION: "off"})
            self._engine = engine
        return self._engine

    @property
    def last_error(self) -> str | None:
        return self._last_error

    def _prepare(self) -> None:
        if self._ready:
            return
        with self._ready_lock:
            if not self._ready:
                upgrade(self.url)
                register_feature_schema(self.engine, self.schema)
                self._ready = True

    def _fail(self, exc: BaseException) -> DatabaseUnavailable:
        self._last_error = short_reason(exc)
        self._down_until = time.monotonic() + self.retry_seconds
        return DatabaseUnavailable(self._last_error, self.retry_seconds)

    def run(self, fn: Callable[[Engine], T]) -> T:
        """Run `fn(engine)`; raises DatabaseUnavailable on an outage (now or recent)."""
        remaining = self._down_until - time.monotonic()
        if remaining > 0:
            raise DatabaseUnavailable(self._last_error or "database unavailable", remaining)
        try:
            self._prepare()
            with self._write_lock:
                result = fn(self.engine)
        except Exception as exc:
            if is_outage(exc):
                raise self._fail(exc) from exc
            raise
        self._down_until = 0.0
        return result

    def ping(self) -> str | None:
        """None when the database answers (and is migrated), else the reason. Ignores the
        cool-down, so a health probe notices the recovery first."""
        try:
            self._prepare()
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - any failure means "not usable"
            if is_outage(exc):
                return self._fail(exc).reason
            # Not an outage (a bug, a failed migration): report it, but do not make every
            # prediction answer 503 for it: they will fail on their own, loudly.
            return short_reason(exc)
        self._down_until = 0.0
        return None
