"""The API's error answers: one JSON body shape for every error (`ErrorResponse`), the
exception handlers that produce it, and the error responses documented in OpenAPI."""

import json
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from credit_drift.serving.database import DatabaseUnavailable
from credit_drift.serving.models import ErrorResponse
from credit_drift.serving.request_log import record
from credit_drift.serving.validation import RequestRejected

JSON = "application/json"
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {
        "model": ErrorResponse,
        "description": "Body is not valid JSON, or a malformed Idempotency-Key.",
    },
    401: {"model": ErrorResponse, "description": "Missing or wrong API key."},
    403: {"model": ErrorResponse, "description": "event_time sent to a server without replay."},
    409: {
        "model": ErrorResponse,
        "description": "Idempotency-Key already used for a different request, or its first "
        "request is still being answered (retry with the same key).",
    },
    413: {"model": ErrorResponse, "description": "Body or batch larger than the limits."},
    422: {"model": ErrorResponse, "description": "Invalid application: every bad field named."},
    503: {"model": ErrorResponse, "description": "Prediction log unreachable: nothing scored."},
}


def json_response(payload: Any, status: int = 200, headers: dict | None = None) -> Response:
    try:
        content = orjson.dumps(payload)
    except TypeError:
        # A lone surrogate from the client's own JSON (a key "\ud800" named in a 422): orjson
        # refuses to write it, the standard library escapes it.
        content = json.dumps(payload, default=str).encode()
    return Response(content, status_code=status, media_type=JSON, headers=headers)


def error_response(
    request_id: str | None,
    status: int,
    message: str,
    errors: list | None = None,
    n_errors: int = 0,
    headers: dict | None = None,
) -> Response:
    body = {
        "detail": message,
        "request_id": request_id,
        "errors": [e.to_dict() for e in errors or []],
        "n_errors": n_errors or len(errors or []),
    }
    return json_response(body, status, headers)


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


def rejected(request: Request, exc: RequestRejected) -> Response:
    rid = record(request, error=exc.message)
    return error_response(rid, exc.status, exc.message, exc.errors, exc.n_errors)


def unavailable(
    request: Request, exc: DatabaseUnavailable, *, lost: str = "nothing was scored"
) -> Response:
    # The client is told a fixed sentence; the driver's text (host, port) goes to the log only.
    message = f"prediction log database unavailable, {lost}: {exc.public}. Retry later."
    rid = record(request, error=f"{message} ({exc.reason})")
    retry = str(max(1, round(exc.retry_after)))
    return error_response(rid, 503, message, headers={"Retry-After": retry})


async def api_error_handler(request: Request, exc: ApiError) -> Response:
    rid = record(request, error=exc.message)
    return error_response(rid, exc.status, exc.message, headers=exc.headers)


async def http_error_handler(request: Request, exc: StarletteHTTPException) -> Response:
    rid = record(request, error=str(exc.detail))
    return error_response(rid, exc.status_code, str(exc.detail), headers=exc.headers)


def add_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, api_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
