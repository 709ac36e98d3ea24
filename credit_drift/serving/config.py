"""Limits and tuning knobs of the scoring API, with documented defaults."""

from dataclasses import dataclass


@dataclass(frozen=True)
class ServingConfig:
    """What the API accepts and how it behaves under load or outage.

    max_body_bytes: largest `POST /predict` body. One application of 419 features is about
        15 KB of JSON; 1 MB leaves room for long categorical values.
    max_batch_size: most applications in one `POST /predict/batch` request.
    max_batch_body_bytes: largest batch body (1,000 applications are about 17 MB of JSON);
        also the largest `POST /outcomes` body.
    max_outcomes: most outcomes in one `POST /outcomes` request (about 90 bytes of JSON each).
    database_timeout_seconds: the longest a request waits on the database (connect, pool
        checkout, statement, SQLite write lock), from CREDIT_DRIFT_DB_TIMEOUT_S; past it the
        request answers 503. None: no deadline (the simulator's bulk backfill, whose writes of
        thousands of rows may take longer).
    startup_database_seconds: how long the API's start waits for the database (and its
        migration, on a first start) before it serves anyway (requests then retry it).
    ready_cache_seconds: `GET /health/ready` checks the database at most this often, however
        many probes ask (a load balancer's probes must not load the database).
    database_retry_seconds: after the database failed, requests are answered 503 at once for
        this long instead of each waiting for a connection timeout; then the next request (or
        `GET /health`) tries again, so the API recovers by itself.
    single_row_threads: LightGBM threads for small requests. One thread is about 200x faster
        than the default for a single row on 2 cores (thread start-up dominates).
    batch_threads: LightGBM threads for requests of at least `batch_threads_min_rows` rows
        (0 = LightGBM's default, every core).
    log_queue_rows: `api_logs` rows buffered in memory while the database is unreachable (the
        oldest are dropped beyond this, with a warning; the JSON log line is never dropped).
    log_flush_seconds / log_batch_rows: the background `api_logs` writer flushes at least this
        often, or as soon as this many rows wait.
    max_listed_errors: validation errors listed in one 422 answer (the count is always exact).
    postgres_synchronous_commit: True (default) keeps PostgreSQL's durable commit: a
        prediction is on disk before its answer leaves (one WAL flush per request, about 4 ms
        on this project's VMs). False sets `synchronous_commit = off` for the API's own
        transactions only: the row is committed and visible before the answer, but a crash of
        the PostgreSQL server (not of the API) can lose the last ~0.6 s of them. Never corrupts.
    group_commit_max_rows: the most prediction rows written in one transaction by a group
        commit (concurrent requests' rows committed together, each answered after that
        commit; see `serving.group_commit`). A larger request is written alone. 1 commits
        every request on its own (no grouping).
    loop_body_bytes: a `POST /predict` body without an Idempotency-Key up to this size is
        parsed, validated and scored on the event loop (a fraction of a millisecond for one
        application of about 15 KB) and awaits its group commit there, without a thread of
        its own; a larger body (long categorical values, or a hostile one up to
        `max_body_bytes`) goes to the thread pool, so that it never holds the loop. 0 sends
        every request to the thread pool.
    shutdown_flush_seconds: how long shutdown waits for queued `api_logs` rows to be written
        (they are lost after that, e.g. when the database is down at shutdown).
    """

    max_body_bytes: int = 1 << 20
    max_batch_size: int = 1_000
    max_batch_body_bytes: int = 32 << 20
    max_outcomes: int = 1_000
    database_retry_seconds: float = 1.0
    database_timeout_seconds: float | None = 2.0
    ready_cache_seconds: float = 1.0
    startup_database_seconds: float = 10.0
    single_row_threads: int = 1
    batch_threads: int = 0
    batch_threads_min_rows: int = 200
    log_queue_rows: int = 100_000
    log_flush_seconds: float = 0.5
    log_batch_rows: int = 500
    max_listed_errors: int = 500
    shutdown_flush_seconds: float = 5.0
    postgres_synchronous_commit: bool = True
    group_commit_max_rows: int = 1_000
    loop_body_bytes: int = 64 << 10

    def __post_init__(self) -> None:
        for name in (
            "max_body_bytes",
            "max_batch_size",
            "max_batch_body_bytes",
            "max_outcomes",
            "log_batch_rows",
            "group_commit_max_rows",
        ):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"ServingConfig.{name} must be positive, got {getattr(self, name)}"
                )
        if self.loop_body_bytes < 0:
            raise ValueError(
                f"ServingConfig.loop_body_bytes must be >= 0, got {self.loop_body_bytes}"
            )
        if self.database_timeout_seconds is not None and self.database_timeout_seconds <= 0:
            raise ValueError("ServingConfig.database_timeout_seconds must be positive or None")
        if self.database_retry_seconds < 0 or self.log_flush_seconds <= 0:
            raise ValueError("ServingConfig retry/flush intervals must be positive")
