"""The API's access to the prediction log: lazy migration, bounded waits, outage detection,
fast 503s, and the readiness check.

`DatabaseGate.run(fn)` runs one storage call. The first successful call migrates the database
(`storage.db.upgrade`, a no-op when at head), creates the prediction log's coming day partitions
on PostgreSQL (`storage.partitions.ensure_partitions`) and registers the model's feature schema,
so the API starts even while the database is down.

Every call has a deadline (`ServingConfig.database_timeout_seconds`): it runs on the gate's own
worker threads and the caller stops waiting at the deadline. The engine bounds what it can
(connect timeout, pool checkout, `statement_timeout`, TCP keepalives, SQLite's busy timeout),
but a server that is alive and stalled (its process stopped, a full disk, a hung storage
volume) leaves a socket that never answers, and only a deadline outside the driver bounds
that. A call abandoned before it started never runs; one that was running may still commit
later (its client was told 503 and may retry with an `Idempotency-Key`: see
`serving.idempotency`).

A failure that means "the database cannot take this write now" (unreachable, timed out,
read-only) marks the database down for `ServingConfig.database_retry_seconds`: meanwhile calls
fail at once with `DatabaseUnavailable` (the API answers 503 without waiting), and afterwards
the next call tries again, so the API recovers by itself when the database comes back. The
driver's message stays in the server's log: what a client is told is one of a few fixed
sentences (`DatabaseUnavailable.public`), never a host, port or SQL.
"""

import sqlite3
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from credit_drift.features import FeatureSchema
from credit_drift.storage.db import make_engine, upgrade
from credit_drift.storage.partitions import ensure_partitions
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

# SQLSTATEs that mean "this server cannot take writes now", whatever class psycopg2 maps them
# to: a read-only transaction (a standby after a failover, default_transaction_read_only) is an
# InternalError, not an OperationalError.
_READ_ONLY_SQLSTATES = {"25006"}  # read_only_sql_transaction
_TIMEOUT_SQLSTATES = {"57014", "55P03"}  # statement / lock timeout
_UNAVAILABLE_SQLSTATES = {"57P01", "57P02", "57P03", "53300", "08000", "08003", "08006"}


class DatabaseUnavailable(Exception):
    """The prediction log cannot take the call now. `reason` is the driver's first line (for
    the server's log); `public` is safe to show anyone (no host, port, SQL or password)."""

    def __init__(self, reason: str, retry_after: float, public: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.public = public or "database unreachable"


class _Deadline(TimeoutError):
    """The call's deadline passed before it could start (or before it took the write lock)."""


def short_reason(exc: BaseException) -> str:
    """The driver's own message, first line, without SQLAlchemy's SQL and parameters."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    first = text[0] if text else type(orig).__name__
    return f"{type(orig).__name__}: {first}"[:300]


def _sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None) or exc
    return getattr(orig, "pgcode", None)


def public_reason(exc: BaseException, timeout_seconds: float | None = None) -> str:
    """One of a few fixed sentences for `exc`, safe on an unauthenticated endpoint."""
    code = _sqlstate(exc)
    text = str(getattr(exc, "orig", None) or exc).lower()
    if code in _READ_ONLY_SQLSTATES or "read-only" in text or "readonly" in text:
        return "database is read-only"
    if (
        code in _TIMEOUT_SQLSTATES
        or isinstance(exc, TimeoutError | sa.exc.TimeoutError)
        or "timeout" in text
        or "timed out" in text
    ):
        within = f" within {timeout_seconds:g} s" if timeout_seconds else ""
        return f"database did not answer{within}"
    if "locked" in text:
        return "database is busy"
    return "database unreachable"


def is_outage(exc: BaseException) -> bool:
    if isinstance(exc, OUTAGE_ERRORS):
        return True
    if _sqlstate(exc) in _READ_ONLY_SQLSTATES | _TIMEOUT_SQLSTATES | _UNAVAILABLE_SQLSTATES:
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


def check_writable(engine: Engine) -> None:
    """Raise unless the database would take a prediction now: an INSERT into `predictions` that
    inserts nothing, rolled back. It goes through the server's read-only check (a standby, or
    `default_transaction_read_only`), the API user's INSERT privilege, and on SQLite the write
    lock and a read-only file, without writing a row."""
    with engine.connect() as conn, conn.begin() as tx:
        conn.execute(sa.text("INSERT INTO predictions (request_id) SELECT 'x' WHERE 1 = 0"))
        tx.rollback()


@dataclass(frozen=True)
class Readiness:
    """The outcome of the last readiness check (`DatabaseGate.readiness`)."""

    ready: bool
    #: "reachable" when ready, else "unreachable", "read_only" or "timeout".
    database: str
    #: A fixed sentence safe to show anyone (None when ready).
    public: str | None
    checked_at: float


def _state_of(public: str | None) -> str:
    if public is None:
        return "reachable"
    if "read-only" in public:
        return "read_only"
    if "did not answer" in public or "busy" in public:
        return "timeout"
    return "unreachable"


class DatabaseGate:
    def __init__(
        self,
        url: str,
        schema: FeatureSchema,
        retry_seconds: float,
        *,
        timeout_seconds: float | None = 2.0,
        synchronous_commit: bool = True,
        ready_cache_seconds: float = 1.0,
        threads: int = 16,
    ) -> None:
        self.url = url
        self.schema = schema
        self.retry_seconds = retry_seconds
        self.timeout_seconds = timeout_seconds
        self.synchronous_commit = synchronous_commit
        self.ready_cache_seconds = ready_cache_seconds
        self._engine: Engine | None = None
        self._ready = False
        self._ready_lock = threading.Lock()
        self._down_until = 0.0
        self._last_error: str | None = None
        self._last_public: str | None = None
        self._readiness: Readiness | None = None
        self._readiness_lock = threading.Lock()
        # Calls that hang on a stalled server keep their thread until the server answers;
        # a fixed pool bounds how many can, and a queued call whose caller gave up is
        # cancelled before it starts.
        self._threads = threads
        self._calls: ThreadPoolExecutor | None = None
        self._calls_lock = threading.Lock()
        # SQLite has one writer at a time. Threads of this process queue on a Python lock and
        # wake the moment it is free; left to SQLite's busy handler they would poll with
        # 1-10 ms sleeps (the p99 of single requests when the api_logs writer flushes).
        # Other processes (uvicorn workers) still wait through SQLite's busy timeout.
        self._write_lock: threading.Lock | None = (
            threading.Lock() if url.startswith("sqlite") else None
        )

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            # make_engine does not connect: building it costs nothing while the DB is down.
            engine = make_engine(self.url, timeout_s=self.timeout_seconds)
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
                # PostgreSQL: the coming days' partitions of the log (cheap when they exist;
                # a day without one would still be written, to the default partition).
                ensure_partitions(make_engine(self.url))
                register_feature_schema(self.engine, self.schema)
                self._ready = True

    def _fail(self, exc: BaseException) -> DatabaseUnavailable:
        self._last_error = short_reason(exc)
        self._last_public = public_reason(exc, self.timeout_seconds)
        now = time.monotonic()
        self._down_until = now + self.retry_seconds
        # What a call just learnt is what a probe should say, without a check of its own.
        self._readiness = Readiness(False, _state_of(self._last_public), self._last_public, now)
        return DatabaseUnavailable(self._last_error, self.retry_seconds, self._last_public)

    def deadline_passed(self, what: str) -> DatabaseUnavailable:
        """The error for a write that waited past the gate's bound before it could start (a
        group commit's queue): a timeout, which marks the database down like any other."""
        return self._fail(_Deadline(f"{what} (bound {self.timeout_seconds:g} s)"))

    # -- bounded calls -------------------------------------------------------------------------
    def _executor(self) -> ThreadPoolExecutor:
        with self._calls_lock:
            if self._calls is None:
                self._calls = ThreadPoolExecutor(self._threads, thread_name_prefix="db-call")
            return self._calls

    def _call(self, fn: Callable[[Engine], T], deadline: float | None) -> T:
        if deadline is not None and time.monotonic() >= deadline:
            raise _Deadline("the call's deadline passed before it started")
        self._prepare()
        if self._write_lock is None:
            return fn(self.engine)
        wait = -1 if deadline is None else max(deadline - time.monotonic(), 0.0)
        if not self._write_lock.acquire(timeout=wait):
            raise _Deadline("the SQLite write lock was not free before the deadline")
        try:
            if deadline is not None and time.monotonic() >= deadline:
                raise _Deadline("the call's deadline passed while it waited for the write lock")
            return fn(self.engine)
        finally:
            self._write_lock.release()

    def _bounded(self, fn: Callable[[Engine], T], timeout: float | None = None) -> T:
        """`fn(engine)` within the deadline (`timeout`, default the gate's); TimeoutError
        past it."""
        timeout = self.timeout_seconds if timeout is None else timeout
        if timeout is None:
            return self._call(fn, None)
        deadline = time.monotonic() + timeout
        future = self._executor().submit(self._call, fn, deadline)
        try:
            return future.result(timeout=timeout)
        except TimeoutError:
            # Not started yet: it never will. Started: it finishes (or fails) on its own,
            # bounded by the engine's own timeouts where the server still answers.
            future.cancel()
            raise _Deadline(f"no answer from the database within {timeout:g} s") from None

    def run(self, fn: Callable[[Engine], T]) -> T:
        """Run `fn(engine)`; raises DatabaseUnavailable on an outage (now or recent)."""
        remaining = self._down_until - time.monotonic()
        if remaining > 0:
            raise DatabaseUnavailable(
                self._last_error or "database unavailable",
                remaining,
                self._last_public,
            )
        try:
            result = self._bounded(fn)
        except Exception as exc:
            if is_outage(exc):
                raise self._fail(exc) from exc
            raise
        self._down_until = 0.0
        if self._readiness is not None and not self._readiness.ready:
            self._readiness = None  # the database answered: the next probe checks again
        return result

    # -- readiness -----------------------------------------------------------------------------
    def ping(self, timeout: float | None = None) -> str | None:
        """None when the database takes writes (migrated, writable), else a public reason.
        Ignores the cool-down, so a probe notices the recovery first; bounded like a call
        (or by `timeout`: the API's start, which may have a migration to run)."""
        try:
            self._bounded(check_writable, timeout)
        except Exception as exc:  # noqa: BLE001 - any failure means "not usable"
            if is_outage(exc):
                return self._fail(exc).public
            # Not an outage (a bug, a failed migration): report it, but do not make every
            # prediction answer 503 for it: they will fail on their own, loudly.
            self._last_error = short_reason(exc)
            return "database not usable"
        self._down_until = 0.0
        return None

    def cached_readiness(self) -> Readiness | None:
        """The last readiness answer if it is still fresh, else None (never blocks)."""
        cached = self._readiness
        if cached is not None and time.monotonic() - cached.checked_at < self.ready_cache_seconds:
            return cached
        return None

    def readiness(self) -> Readiness:
        """The database's readiness, checked at most once per `ready_cache_seconds` whatever
        the number of probes (one checks, the others wait for its answer or reuse it)."""
        cached = self.cached_readiness()
        if cached is not None:
            return cached
        wait = -1 if self.timeout_seconds is None else self.timeout_seconds
        if not self._readiness_lock.acquire(timeout=wait):
            public = "database did not answer" + (
                f" within {self.timeout_seconds:g} s" if self.timeout_seconds else ""
            )
            return Readiness(False, "timeout", public, time.monotonic())
        try:
            cached = self.cached_readiness()
            if cached is not None:
                return cached
            public = self.ping()
            self._readiness = Readiness(public is None, _state_of(public), public, time.monotonic())
            return self._readiness
        finally:
            self._readiness_lock.release()

    def close(self) -> None:
        """Stop the worker threads (calls stuck on a stalled server are left to finish)."""
        with self._calls_lock:
            if self._calls is not None:
                self._calls.shutdown(wait=False, cancel_futures=True)
                self._calls = None
