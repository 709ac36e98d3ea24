"""The request-log middleware: a request id for every request, then its log line and its
`api_logs` row (see `serving.request_log`)."""

import datetime as dt
import logging
import time
import traceback
import uuid

from credit_drift.serving.balance import ConnectionBalancer
from credit_drift.serving.errors import error_response
from credit_drift.serving.metrics import api_metrics
from credit_drift.serving.request_log import ApiLogWriter, clean_row, log_json
from credit_drift.storage.api_logs import ApiLogRow


class RequestLogMiddleware:
    """Pure ASGI middleware: a request id for every request, then one JSON line and one
    `api_logs` row with the final status, latency and error (also for 401/404/413/422/503
    and unexpected errors, which it turns into a JSON 500 answer). With a `balancer` (several
    workers), an answer may also carry `Connection: close` (`serving.balance`)."""

    def __init__(
        self,
        app,
        writer: ApiLogWriter,
        logger: logging.Logger,
        balancer: ConnectionBalancer | None = None,
    ) -> None:
        self.app = app
        self.writer = writer
        self.logger = logger
        self.balancer = balancer

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        created = dt.datetime.now(dt.UTC)
        request_id = uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["log_error"] = None
        state["n_items"] = 0
        status = 500
        started = False
        logged = False

        def finish() -> None:
            nonlocal logged
            if not logged:
                logged = True
                self._log(scope, state, created, request_id, status, t0)

        async def send_logged(message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status = message["status"]
                started = True
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                client = scope.get("client")
                if self.balancer is not None and client and self.balancer.should_close(client):
                    headers.append((b"connection", b"close"))
                    api_metrics().rebalanced.inc()
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                # Logged before the last byte leaves: a client that has its answer can count
                # on the log row being queued (and on the JSON line being written).
                finish()
            await send(message)

        try:
            await self.app(scope, receive, send_logged)
        except Exception as exc:
            status = 500
            state["log_error"] = f"internal error: {type(exc).__name__}: {str(exc)[:300]}"
            log_json(
                self.logger,
                logging.ERROR,
                {
                    "event": "unhandled_error",
                    "request_id": request_id,
                    "error": state["log_error"],
                    "traceback": traceback.format_exc(),
                },
            )
            if not started:
                response = error_response(request_id, 500, "internal error; see the server log")
                await response(scope, receive, send_logged)
        finally:
            finish()

    def _log(self, scope, state, created, request_id: str, status: int, t0: float) -> None:
        latency_ms = (time.perf_counter() - t0) * 1000.0
        client = scope.get("client")
        # Cleaned once here (NUL bytes, lone surrogates, lengths: see `clean_row`), so the JSON
        # line and the stored row say the same thing.
        row = clean_row(
            ApiLogRow(
                created_at=created,
                request_id=request_id,
                method=scope.get("method", ""),
                endpoint=scope.get("path", ""),
                status_code=status,
                latency_ms=latency_ms,
                error=state.get("log_error"),
                n_items=int(state.get("n_items") or 0),
                client=client[0] if client else None,
            )
        )
        level = (
            logging.ERROR if status >= 500 else logging.WARNING if status >= 400 else logging.INFO
        )
        log_json(
            self.logger,
            level,
            {
                "ts": created.isoformat(),
                "event": "request",
                "request_id": request_id,
                "method": row.method,
                "endpoint": row.endpoint,
                "status": status,
                "latency_ms": round(latency_ms, 3),
                "n_items": row.n_items,
                "error": row.error,
                "client": row.client,
            },
        )
        self.writer.submit(row)
