"""The API's request log: one JSON log line per request, and its `api_logs` row.

The JSON line is written synchronously to the `credit_drift.api` logger (stderr by default), so
it goes out even when the database is down. `api_logs` rows go through `ApiLogWriter`, a
background thread that batches them into `storage.api_logs.insert_api_logs` off the request path
(a request never waits on its log row); while the database is unreachable the rows wait in a
bounded queue and are written when it comes back. Headers are never logged: the API key cannot
leak through this module.
"""

import collections
import datetime as dt
import logging
import sys
import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from fastapi import Request

from credit_drift.serving.database import short_reason
from credit_drift.storage.api_logs import ApiLogRow

LOGGER_NAME = "credit_drift.api"


def api_logger() -> logging.Logger:
    """The JSON-lines logger (a stderr handler is added once unless one is configured)."""
    logger = logging.getLogger(LOGGER_NAME)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        # The line is already JSON: do not let a root handler print it a second time.
        logger.propagate = False
    return logger


def log_json(logger: logging.Logger, level: int, payload: dict[str, Any]) -> None:
    """One JSON line; `ts` (UTC) and `level` are added when the payload has none."""
    if logger.isEnabledFor(level):
        line = {
            "ts": payload.get("ts") or dt.datetime.now(dt.UTC).isoformat(),
            "level": logging.getLevelName(level),
            **payload,
        }
        logger.log(level, orjson.dumps(line).decode())


def record(request: Request, *, error: str | None = None, n_items: int | None = None) -> str:
    """Note this request's error and item count for its log line and `api_logs` row (written by
    `serving.middleware.RequestLogMiddleware`); returns the request id."""
    state = request.scope.setdefault("state", {})
    if error is not None:
        state["log_error"] = error[:1000]
    if n_items is not None:
        state["n_items"] = n_items
    return state.get("request_id") or uuid.uuid4().hex


class ApiLogWriter:
    """Batches `api_logs` rows into the database from a daemon thread."""

    def __init__(
        self,
        write: Callable[[Sequence[ApiLogRow]], Any],
        *,
        max_rows: int,
        flush_seconds: float,
        batch_rows: int,
        retry_seconds: float,
        logger: logging.Logger,
    ) -> None:
        self._write = write
        self._max_rows = max_rows
        self._flush_seconds = flush_seconds
        self._batch_rows = batch_rows
        self._retry_seconds = max(retry_seconds, flush_seconds)
        self._logger = logger
        self._queue: collections.deque[ApiLogRow] = collections.deque()
        self._cond = threading.Condition()
        self._inflight = 0
        self._flush_requested = False
        self._stop = False
        self._thread: threading.Thread | None = None
        self.dropped = 0
        self.written = 0
        self.failed = 0  # failed write attempts (each batch retried later)

    def submit(self, row: ApiLogRow) -> None:
        with self._cond:
            if len(self._queue) >= self._max_rows:
                self._queue.popleft()
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 1000 == 0:
                    log_json(
                        self._logger,
                        logging.WARNING,
                        {"event": "api_logs_dropped", "dropped": self.dropped},
                    )
            self._queue.append(row)
            if self._thread is None:
                self._start()
            if len(self._queue) >= self._batch_rows:
                self._cond.notify_all()

    def pending(self) -> int:
        with self._cond:
            return len(self._queue) + self._inflight

    def flush(self, timeout: float = 10.0) -> bool:
        """Write everything queued now; True when the queue is empty within `timeout`."""
        with self._cond:
            if self._thread is None:
                return not self._queue
            self._flush_requested = True
            self._cond.notify_all()
            return self._cond.wait_for(
                lambda: not self._queue and not self._inflight, timeout=timeout
            )

    def close(self, timeout: float = 5.0) -> None:
        """Flush for at most `timeout` seconds, then stop the thread (rows still queued, e.g.
        while the database is down, are dropped with a warning)."""
        flushed = self.flush(timeout)
        with self._cond:
            self._stop = True
            lost = len(self._queue)
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(max(timeout, 1.0))
        if not flushed and lost:
            log_json(self._logger, logging.WARNING, {"event": "api_logs_lost", "rows": lost})

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="api-log-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(
                    lambda: (
                        self._stop or self._flush_requested or len(self._queue) >= self._batch_rows
                    ),
                    timeout=self._flush_seconds,
                )
                if self._stop and not self._queue:
                    return
                batch = [
                    self._queue.popleft() for _ in range(min(self._batch_rows, len(self._queue)))
                ]
                self._inflight = len(batch)
                if not self._queue:
                    self._flush_requested = False
            if not batch:
                with self._cond:
                    self._cond.notify_all()
                continue
            ok = True
            try:
                self._write(batch)
            except Exception as exc:  # noqa: BLE001 - keep the rows, retry later
                ok = False
                self.failed += 1
                log_json(
                    self._logger,
                    logging.WARNING,
                    {
                        "event": "api_logs_write_failed",
                        "rows": len(batch),
                        "error": short_reason(exc),
                    },
                )
            with self._cond:
                self._inflight = 0
                if ok:
                    self.written += len(batch)
                else:
                    # Back at the front, oldest first; the queue bound still holds.
                    self._queue.extendleft(reversed(batch))
                    while len(self._queue) > self._max_rows:
                        self._queue.popleft()
                        self.dropped += 1
                    if self._stop:
                        return
                    self._cond.wait(timeout=self._retry_seconds)
                self._cond.notify_all()
