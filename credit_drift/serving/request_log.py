"""The API's request log: one JSON log line per request, and its `api_logs` row.

The JSON line is written synchronously to the `credit_drift.api` logger (stderr by default), so
it goes out even when the database is down. `api_logs` rows go through `ApiLogWriter`, a
background thread that batches them into `storage.api_logs.insert_api_logs` off the request path
(a request never waits on its log row); while the database is unreachable the rows wait in a
bounded queue and are written when it comes back. Headers are never logged: the API key cannot
leak through this module.

Whatever a client sends must not stop the log: every stored string is cleaned first
(`clean_row`: NUL bytes and lone surrogates escaped, lengths cut to the column bounds), and a
batch the database refuses for a reason a retry cannot fix is written row by row, so that one
bad row is stored in a reduced form or dropped (counted in `ApiLogWriter.rejected`, logged)
instead of blocking the rows behind it. Only an outage puts rows back in the queue, and then
the writer backs off (a bounded, growing delay) and logs about one line a second at most.
"""

import collections
import dataclasses
import datetime as dt
import json
import logging
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from fastapi import Request

from credit_drift.serving.database import DatabaseUnavailable, is_outage, short_reason
from credit_drift.storage.api_logs import ApiLogRow
from credit_drift.storage.schema import api_logs

LOGGER_NAME = "credit_drift.api"
#: Longest `api_logs.error` text kept (the column is unbounded TEXT; a log row is not a dump).
MAX_ERROR_CHARS = 2000
#: The writer's longest wait between two attempts while the database is unreachable.
MAX_RETRY_SECONDS = 10.0
#: At most one line per event kind per this many seconds while writes keep failing.
LOG_EVERY_SECONDS = 1.0


def _column_limit(name: str, default: int) -> int:
    length = getattr(api_logs.c[name].type, "length", None)
    return int(length) if length else default


_TEXT_LIMITS: dict[str, int] = {
    name: _column_limit(name, MAX_ERROR_CHARS)
    for name in ("request_id", "method", "endpoint", "error", "client")
}


def clean_text(value: str | None, limit: int) -> str | None:
    """`value` as any database stores it: NUL (which PostgreSQL refuses in text) written as the
    four characters `\\x00`, lone surrogates (not encodable as UTF-8, e.g. from a JSON key
    "\\ud800") as their backslash escape, and at most `limit` characters."""
    if value is None:
        return None
    if not isinstance(value, str):
        value = str(value)
    if "\x00" in value:
        value = value.replace("\x00", "\\x00")
    if not value.isascii():
        value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    if len(value) > limit:
        value = value[: max(limit - 3, 0)] + "..." if limit > 3 else value[:limit]
    return value


def clean_row(row: ApiLogRow) -> ApiLogRow:
    """The row with every string made storable (see `clean_text`); the same row when it is."""
    changes = {}
    for name, limit in _TEXT_LIMITS.items():
        value = getattr(row, name)
        cleaned = clean_text(value, limit)
        if cleaned is not value:
            changes[name] = cleaned
    return dataclasses.replace(row, **changes) if changes else row


def _reduced(row: ApiLogRow, reason: str) -> ApiLogRow:
    """The last form tried for a row the database refused: plain ASCII strings, the error text
    replaced by why the original could not be stored."""

    def ascii_only(value: str | None, limit: int) -> str | None:
        if value is None:
            return None
        text = clean_text(value, limit) or ""
        return text.encode("ascii", "backslashreplace").decode("ascii")[:limit]

    return dataclasses.replace(
        row,
        request_id=ascii_only(row.request_id, _TEXT_LIMITS["request_id"]),
        method=ascii_only(row.method, _TEXT_LIMITS["method"]) or "",
        endpoint=ascii_only(row.endpoint, _TEXT_LIMITS["endpoint"]) or "",
        error=ascii_only(f"(original error text not storable: {reason})", 300),
        client=ascii_only(row.client, _TEXT_LIMITS["client"]),
    )


def is_retryable(exc: BaseException) -> bool:
    """A failure that a later attempt can fix (the database is down or unreachable), as opposed
    to one the database will give again for the same rows (bad data, a constraint)."""
    return isinstance(exc, DatabaseUnavailable) or is_outage(exc)


class _Throttled:
    """Logs an event at most once per `every` seconds, with how many were held back."""

    def __init__(self, logger: logging.Logger, every: float) -> None:
        self._logger = logger
        self._every = every
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def log(self, level: int, payload: dict[str, Any]) -> None:
        event = payload["event"]
        now = time.monotonic()
        last = self._last.get(event)
        if last is not None and now - last < self._every:
            self._held[event] = self._held.get(event, 0) + 1
            return
        self._last[event] = now
        held = self._held.pop(event, 0)
        log_json(self._logger, level, {**payload, "similar_not_logged": held} if held else payload)


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
        try:
            text = orjson.dumps(line).decode()
        except TypeError:
            # orjson refuses lone surrogates (a client's "\ud800" echoed in an error); the
            # standard library writes them as JSON escapes, so the line still goes out.
            text = json.dumps(line, default=str)
        logger.log(level, text)


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
    """Batches `api_logs` rows into the database from a daemon thread.

    `write(rows)` raises on failure; `is_retryable` tells an outage (the rows go back to the
    front of the queue, the writer waits `retry_seconds`, doubling up to `max_retry_seconds`)
    from a refusal (the batch is written row by row; a row refused again is written in a
    reduced form, or dropped and counted in `rejected`)."""

    def __init__(
        self,
        write: Callable[[Sequence[ApiLogRow]], Any],
        *,
        max_rows: int,
        flush_seconds: float,
        batch_rows: int,
        retry_seconds: float,
        logger: logging.Logger,
        max_retry_seconds: float = MAX_RETRY_SECONDS,
        log_every_seconds: float = LOG_EVERY_SECONDS,
    ) -> None:
        self._write = write
        self._max_rows = max_rows
        self._flush_seconds = flush_seconds
        self._batch_rows = batch_rows
        self._retry_seconds = max(retry_seconds, flush_seconds)
        self._max_retry_seconds = max(max_retry_seconds, self._retry_seconds)
        self._delay = self._retry_seconds
        self._logger = logger
        self._throttled = _Throttled(logger, log_every_seconds)
        self._queue: collections.deque[ApiLogRow] = collections.deque()
        self._cond = threading.Condition()
        self._inflight = 0
        self._flush_requested = False
        self._flush_calls = 0
        self._stop = False
        self._thread: threading.Thread | None = None
        self.dropped = 0  # rows dropped because the queue was full
        self.written = 0
        self.failed = 0  # failed write attempts during an outage (the rows were kept)
        self.reduced = 0  # rows stored in the reduced form (original strings refused)
        self.rejected = 0  # rows the database refused in every form (dropped)

    def submit(self, row: ApiLogRow) -> None:
        row = clean_row(row)
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

    @property
    def closed(self) -> bool:
        """True once `close()` has begun (the writer accepts no more work)."""
        return self._stop

    def pending(self) -> int:
        with self._cond:
            return len(self._queue) + self._inflight

    def flush(self, timeout: float = 10.0) -> bool:
        """Write everything queued now; True when the queue is empty within `timeout`. Cuts a
        back-off short once (one more attempt), not for every wait."""
        with self._cond:
            if self._thread is None:
                return not self._queue
            self._flush_requested = True
            self._flush_calls += 1
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
                flush_calls = self._flush_calls
            if not batch:
                with self._cond:
                    self._cond.notify_all()
                continue
            retry, stored = self._write_batch(batch)
            with self._cond:
                self._inflight = 0
                if retry:
                    # Back at the front, oldest first; the queue bound still holds.
                    self._queue.extendleft(reversed(retry))
                    while len(self._queue) > self._max_rows:
                        self._queue.popleft()
                        self.dropped += 1
                self._cond.notify_all()
                if self._stop and retry:
                    return
                if retry or not stored:
                    # An outage, or a batch refused row after row (a missing table, a broken
                    # migration): wait instead of spinning. New rows do not wake this wait
                    # (they arrive all the time under load); stop and a new flush() do.
                    delay = self._delay
                    self._delay = min(self._delay * 2, self._max_retry_seconds)
                    self._cond.wait_for(
                        lambda calls=flush_calls: self._stop or self._flush_calls != calls,
                        timeout=delay,
                    )
                else:
                    self._delay = self._retry_seconds

    def _write_batch(self, batch: list[ApiLogRow]) -> tuple[list[ApiLogRow], int]:
        """Write `batch`; returns (rows to retry later, rows stored)."""
        try:
            self._write(batch)
        except Exception as exc:  # noqa: BLE001 - classified below, never lost silently
            if is_retryable(exc):
                self._outage(exc, len(batch))
                return batch, 0
        else:
            self.written += len(batch)
            return [], len(batch)
        # Refused for good: find the row(s) at fault, store the others.
        stored = 0
        for k, row in enumerate(batch):
            outcome = self._write_one(row)
            if outcome is None:
                return batch[k:], stored
            stored += outcome
        return [], stored

    def _write_one(self, row: ApiLogRow) -> int | None:
        """1 when the row (or its reduced form) is stored, 0 when dropped, None on an outage."""
        try:
            self._write([row])
            self.written += 1
            return 1
        except Exception as exc:  # noqa: BLE001
            if is_retryable(exc):
                self._outage(exc, 1)
                return None
            reason = short_reason(exc)
        try:
            self._write([_reduced(row, reason)])
        except Exception as exc:  # noqa: BLE001
            if is_retryable(exc):
                self._outage(exc, 1)
                return None
            self.rejected += 1
            self._throttled.log(
                logging.ERROR,
                {
                    "event": "api_logs_row_rejected",
                    "reason": short_reason(exc),
                    "request_id": row.request_id,
                    "rejected_total": self.rejected,
                },
            )
            return 0
        self.written += 1
        self.reduced += 1
        self._throttled.log(
            logging.WARNING,
            {
                "event": "api_logs_row_reduced",
                "reason": reason,
                "request_id": row.request_id,
                "reduced_total": self.reduced,
            },
        )
        return 1

    def _outage(self, exc: BaseException, rows: int) -> None:
        self.failed += 1
        self._throttled.log(
            logging.WARNING,
            {
                "event": "api_logs_write_failed",
                "rows": rows,
                "error": short_reason(exc),
                "queued": len(self._queue) + rows,
                "retry_in_seconds": round(self._delay, 3),
                "failures_total": self.failed,
            },
        )
