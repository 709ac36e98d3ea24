"""The FastAPI scoring app: `create_app(settings, artifacts)`.

Endpoints: `POST /predict` (one application: a JSON object of feature name to value),
`POST /predict/batch` (a JSON array of them, or the same rows in pandas' split layout
`{"columns": [...], "data": [[...], ...]}`, five times smaller and faster to read),
`GET /health`, `GET /model`. Every answered
prediction is logged to `predictions` before its answer is sent (see `serving.service`); every
request, rejected ones included, leaves an `api_logs` row and one JSON log line (see
`serving.request_log`). When `Settings.api_key` is set, every endpoint but `/health` (and the
OpenAPI docs) requires it, as `Authorization: Bearer <key>` or `X-API-Key: <key>`.

For `uvicorn --factory` (several workers) use `credit_drift.serving.app:app_from_env`.
"""

import datetime as dt
import hmac
import logging
import time
import traceback
import uuid
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from credit_drift.serving import metrics
from credit_drift.serving.config import ServingConfig
from credit_drift.serving.database import DatabaseUnavailable
from credit_drift.serving.models import (
    BatchPredictionResponse,
    ErrorResponse,
    HealthResponse,
    ModelInfoResponse,
    PredictionResponse,
)
from credit_drift.serving.request_log import ApiLogWriter, api_logger, log_json
from credit_drift.serving.service import ScoredBatch, ScoringService
from credit_drift.serving.validation import (
    EVENT_TIME_FIELD,
    RequestRejected,
    body_has_only_numbers,
    parse_json,
)
from credit_drift.settings import Settings
from credit_drift.storage.api_logs import ApiLogRow, insert_api_logs

JSON = "application/json"
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Body is not valid JSON."},
    401: {"model": ErrorResponse, "description": "Missing or wrong API key."},
    403: {"model": ErrorResponse, "description": "event_time sent to a server without replay."},
    413: {"model": ErrorResponse, "description": "Body or batch larger than the limits."},
    422: {"model": ErrorResponse, "description": "Invalid application: every bad field named."},
    503: {"model": ErrorResponse, "description": "Prediction log unreachable: nothing scored."},
}


def _json_response(payload: Any, status: int = 200, headers: dict | None = None) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type=JSON, headers=headers)


def _error(
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
    return _json_response(body, status, headers)


class _ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


class RequestLogMiddleware:
    """Pure ASGI middleware: a request id for every request, then one JSON line and one
    `api_logs` row with the final status, latency and error (also for 401/404/413/422/503
    and unexpected errors, which it turns into a JSON 500 answer)."""

    def __init__(self, app, writer: ApiLogWriter, logger: logging.Logger) -> None:
        self.app = app
        self.writer = writer
        self.logger = logger

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
                response = _error(request_id, 500, "internal error; see the server log")
                await response(scope, receive, send_logged)
        finally:
            finish()

    def _log(self, scope, state, created, request_id: str, status: int, t0: float) -> None:
        latency_ms = (time.perf_counter() - t0) * 1000.0
        client = scope.get("client")
        row = ApiLogRow(
            created_at=created,
            request_id=request_id,
            method=scope.get("method", ""),
            endpoint=scope.get("path", "")[:256],
            status_code=status,
            latency_ms=latency_ms,
            error=state.get("log_error"),
            n_items=int(state.get("n_items") or 0),
            client=client[0] if client else None,
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


def _bearer_or_header(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def _application_schema(service: ScoringService) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for f in service.schema.features:
        if f.kind == "numeric":
            properties[f.name] = {
                "anyOf": [{"type": "number"}, {"type": "null"}],
                "description": "Numeric feature; null means missing.",
            }
        else:
            properties[f.name] = {
                "anyOf": [{"type": "string"}, {"type": "number"}, {"type": "null"}],
                "description": "Categorical feature; null means missing; an unseen category is "
                f"accepted and treated as missing by the model. Training categories: "
                f"{', '.join(f.categories[:20])}" + (" ..." if len(f.categories) > 20 else ""),
            }
    properties[EVENT_TIME_FIELD] = {
        "type": "string",
        "format": "date-time",
        "description": "Replay only: the prediction's time (ISO 8601 with a time zone). Refused "
        "(403) unless the server runs with CREDIT_DRIFT_ALLOW_REPLAY=1.",
    }
    return {
        "title": "Application",
        "type": "object",
        "description": "One loan application: every model feature (see GET /model), as a JSON "
        "object of feature name to value. Unknown names are refused.",
        "properties": properties,
        "required": service.schema.names,
        "additionalProperties": False,
    }


def _example_application(service: ScoringService) -> dict[str, Any]:
    """A valid example request: each numeric feature at the middle of its training range (read
    from the model's `feature_infos` header; 0 when LightGBM kept no range, e.g. a constant
    feature), each categorical one at its first category. No nulls: FastAPI drops null values
    from OpenAPI examples, which would make the example miss features."""
    text = getattr(service.artifacts, "model_text", "") or ""
    infos: list[str] = []
    for line in text.splitlines()[:20]:
        if line.startswith("feature_infos="):
            infos = line.split("=", 1)[1].split(" ")
    example: dict[str, Any] = {}
    for j, f in enumerate(service.schema.features):
        if f.kind == "categorical":
            example[f.name] = f.categories[0] if f.categories else "unknown"
            continue
        info = infos[j] if j < len(infos) else "none"
        try:
            low, high = (float(x) for x in info.strip("[]").split(":"))
            example[f.name] = round((low + high) / 2, 6)
        except ValueError:
            example[f.name] = 0.0
    return example


def _split_schema(max_rows: int) -> dict[str, Any]:
    return {
        "title": "SplitBatch",
        "type": "object",
        "description": "A batch in pandas' split layout (`DataFrame.to_json(orient='split')`): "
        "the feature names once, then one array of values per application, in column order. "
        "About five times smaller than a list of objects and several times faster to read. "
        "'index' is accepted and ignored; 'event_time' may be a column (replay only).",
        "properties": {
            "columns": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Every model feature once (any order).",
            },
            "data": {
                "type": "array",
                "minItems": 1,
                "maxItems": max_rows,
                "items": {"type": "array", "items": {"type": ["number", "string", "null"]}},
                "description": "One row per application; null means missing.",
            },
            "index": {"type": "array", "description": "Ignored."},
        },
        "required": ["columns", "data"],
        "additionalProperties": False,
    }


def create_app(
    settings: Settings | None = None,
    artifacts: Any = None,
    *,
    config: ServingConfig | None = None,
) -> FastAPI:
    """The scoring app. Loads the model artifacts from `settings.artifacts_dir` unless given;
    touches the database only lazily (it starts while the database is down)."""
    settings = settings or Settings.from_env()
    config = config or ServingConfig()
    if artifacts is None:
        from credit_drift.model.artifacts import load_artifacts

        artifacts = load_artifacts(settings.artifacts_dir)
    service = ScoringService(
        artifacts,
        settings.database_url,
        config=config,
        allow_event_time=settings.allow_replay,
    )
    logger = api_logger()
    writer = ApiLogWriter(
        lambda rows: service.gate.run(lambda engine: insert_api_logs(engine, rows)),
        max_rows=config.log_queue_rows,
        flush_seconds=config.log_flush_seconds,
        batch_rows=config.log_batch_rows,
        retry_seconds=config.database_retry_seconds,
        logger=logger,
    )
    api_key = settings.api_key

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        # Migrate early when the database is up; when it is down, the first request retries.
        reason = await run_in_threadpool(service.gate.ping)
        log_json(
            logger,
            logging.INFO if reason is None else logging.WARNING,
            {
                "event": "startup",
                "model_version": service.model_version,
                "n_features": len(service.schema),
                "database": "reachable" if reason is None else "unreachable",
                "database_error": reason,
                "api_key_required": bool(api_key),
                "replay_allowed": settings.allow_replay,
            },
        )
        yield
        await run_in_threadpool(writer.close, config.shutdown_flush_seconds)

    app = FastAPI(
        title="credit-drift scoring API",
        version=service.model_version,
        description="Scores loan applications with the credit-drift LightGBM model and logs "
        "every prediction (features, probability, decision, latency) for drift monitoring.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.api_log_writer = writer
    app.state.settings = settings
    app.add_middleware(RequestLogMiddleware, writer=writer, logger=logger)
    # Added last, so outermost: /metrics is answered before the request log sees it.
    metrics.instrument(app, service, writer)

    def record(request: Request, *, error: str | None = None, n_items: int | None = None) -> str:
        state = request.scope.setdefault("state", {})
        if error is not None:
            state["log_error"] = error[:1000]
        if n_items is not None:
            state["n_items"] = n_items
        return state.get("request_id") or uuid.uuid4().hex

    @app.exception_handler(_ApiError)
    async def _api_error(request: Request, exc: _ApiError) -> Response:
        rid = record(request, error=exc.message)
        return _error(rid, exc.status, exc.message, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        rid = record(request, error=str(exc.detail))
        return _error(rid, exc.status_code, str(exc.detail), headers=exc.headers)

    def check_key(request: Request) -> None:
        if not api_key:
            return
        given = _bearer_or_header(request)
        # compare_digest: the time taken does not reveal how much of the key matched.
        if given is None or not hmac.compare_digest(given.encode(), api_key.encode()):
            raise _ApiError(
                401,
                "missing or invalid API key: send it as 'Authorization: Bearer <key>' or "
                "'X-API-Key: <key>'",
                headers={"WWW-Authenticate": "Bearer"},
            )

    async def read_body(request: Request, limit: int) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                raise _ApiError(400, f"invalid Content-Length header {declared[:20]!r}")
            if int(declared) > limit:
                raise _ApiError(
                    413, f"request body of {int(declared)} bytes exceeds the limit of {limit} bytes"
                )
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _ApiError(413, f"request body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def answers(scored: ScoredBatch) -> list[dict[str, Any]]:
        per_row_ms = scored.per_row_ms
        iso: dict[int, str] = {}  # rows of a live batch share one time stamp object
        return [
            {
                "request_id": rid,
                "probability": p,
                "decision": decision,
                "threshold": service.threshold,
                "model_version": service.model_version,
                "inference_time_ms": per_row_ms,
                "created_at": iso.get(id(when)) or iso.setdefault(id(when), when.isoformat()),
            }
            for rid, p, decision, when in zip(
                scored.request_ids,
                scored.probability.tolist(),
                scored.decision.tolist(),
                scored.created_at,
                strict=True,
            )
        ]

    def rejected(request: Request, exc: RequestRejected) -> Response:
        rid = record(request, error=exc.message)
        return _error(rid, exc.status, exc.message, exc.errors, exc.n_errors)

    def unavailable(request: Request, exc: DatabaseUnavailable) -> Response:
        message = (
            f"prediction log database unavailable, nothing was scored: {exc.reason}. Retry later."
        )
        rid = record(request, error=message)
        retry = str(max(1, round(exc.retry_after)))
        return _error(rid, 503, message, headers={"Retry-After": retry})

    example = _example_application(service)
    single_body = {
        "requestBody": {
            "required": True,
            "description": "One application (see the Application schema).",
            "content": {
                JSON: {
                    "schema": {"$ref": "#/components/schemas/Application"},
                    "example": example,
                }
            },
        }
    }
    batch_body = {
        "requestBody": {
            "required": True,
            "description": f"1 to {config.max_batch_size} applications: a JSON array of "
            "Application objects, or the same rows in the split layout (faster for large "
            "batches).",
            "content": {
                JSON: {
                    "schema": {
                        "oneOf": [
                            {
                                "type": "array",
                                "items": {"$ref": "#/components/schemas/Application"},
                                "minItems": 1,
                                "maxItems": config.max_batch_size,
                            },
                            {"$ref": "#/components/schemas/SplitBatch"},
                        ]
                    },
                    "example": [example],
                }
            },
        }
    }

    @app.post(
        "/predict",
        response_model=PredictionResponse,
        responses=ERROR_RESPONSES,
        openapi_extra=single_body,
        summary="Score one application and log it",
    )
    async def predict(request: Request) -> Response:
        check_key(request)
        body = await read_body(request, config.max_body_bytes)
        rid = record(request, n_items=1)
        try:
            # Parsing, validation, scoring, the log write and the answer's serialization all
            # run in the thread pool: the event loop only moves bytes.
            content = await run_in_threadpool(handle_single, body, rid)
        except RequestRejected as exc:
            return rejected(request, exc)
        except DatabaseUnavailable as exc:
            return unavailable(request, exc)
        return Response(content, media_type=JSON)

    def handle_single(body: bytes, rid: str) -> bytes:
        item = parse_json(body)
        if not isinstance(item, dict):
            raise RequestRejected(
                422,
                "expected one application as a JSON object of feature name to value "
                "(send a JSON array to /predict/batch)",
            )
        scored = service.score_and_log(
            [item], request_id=rid, batch=False, numbers_only=body_has_only_numbers(body, item)
        )
        return orjson.dumps(answers(scored)[0])

    @app.post(
        "/predict/batch",
        response_model=BatchPredictionResponse,
        responses=ERROR_RESPONSES,
        openapi_extra=batch_body,
        summary="Score a batch of applications and log them (one transaction)",
    )
    async def predict_batch(request: Request) -> Response:
        check_key(request)
        body = await read_body(request, config.max_batch_body_bytes)
        rid = record(request)
        counted: list[int] = []
        try:
            content = await run_in_threadpool(handle_batch, body, rid, counted)
        except RequestRejected as exc:
            return rejected(request, exc)
        except DatabaseUnavailable as exc:
            return unavailable(request, exc)
        finally:
            record(request, n_items=max(counted[0], 0) if counted else 0)
        return Response(content, media_type=JSON)

    def handle_batch(body: bytes, rid: str, counted: list[int]) -> bytes:
        items = parse_json(body)
        rows = items.get("data") if isinstance(items, dict) and "data" in items else items
        if isinstance(rows, list):
            n_items = len(rows)
        elif isinstance(items, dict) and "data" in items:
            n_items = -1  # validate_split names what is wrong with 'data'
        else:
            raise RequestRejected(
                422,
                'expected a JSON array of applications, or a split batch {"columns": '
                '[...], "data": [[...], ...]} (send one object to /predict)',
            )
        counted.append(n_items)
        if not n_items:
            raise RequestRejected(422, "empty batch: send at least one application")
        if n_items > config.max_batch_size:
            raise RequestRejected(
                413,
                f"batch of {n_items} applications exceeds the limit of {config.max_batch_size}",
            )
        scored = service.score_and_log(
            items, request_id=rid, batch=True, numbers_only=body_has_only_numbers(body, items)
        )
        return orjson.dumps(
            {
                "request_id": rid,
                "model_version": service.model_version,
                "threshold": service.threshold,
                "n_predictions": len(scored),
                "inference_time_ms": scored.inference_time_ms,
                "predictions": answers(scored),
            }
        )

    @app.get(
        "/health",
        response_model=HealthResponse,
        responses={503: {"model": HealthResponse, "description": "Database unreachable."}},
        summary="Model loaded and database reachable (no API key needed)",
    )
    async def health(request: Request) -> Response:
        reason = await run_in_threadpool(service.gate.ping)
        if reason is not None:
            record(request, error=f"database unreachable: {reason}")
        body = {
            "status": "ok" if reason is None else "degraded",
            "model_loaded": True,
            "model_version": service.model_version,
            "database": "reachable" if reason is None else "unreachable",
            "database_error": reason,
        }
        return _json_response(body, 200 if reason is None else 503)

    @app.get(
        "/model",
        response_model=ModelInfoResponse,
        responses={401: ERROR_RESPONSES[401]},
        summary="The loaded model: version, threshold, features, training metrics",
    )
    async def model_info(request: Request) -> Response:
        check_key(request)
        schema = service.schema
        metrics = getattr(service.artifacts, "metrics", {}) or {}
        return _json_response(
            {
                "model_version": service.model_version,
                "threshold": service.threshold,
                "n_features": len(schema),
                "n_categorical_features": len(schema.categorical_names),
                "feature_schema_version": schema.version,
                "metrics": {k: float(v) for k, v in metrics.items()},
                "features": schema.names,
                "categorical_features": schema.categorical_names,
                "replay_allowed": settings.allow_replay,
                "max_batch_size": config.max_batch_size,
            }
        )

    application_schema = _application_schema(service)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            components = doc.setdefault("components", {})
            components.setdefault("schemas", {})["Application"] = application_schema
            components["schemas"]["SplitBatch"] = _split_schema(config.max_batch_size)
            components["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            }
            if api_key:
                for path in ("/predict", "/predict/batch", "/model"):
                    for op in doc["paths"].get(path, {}).values():
                        op["security"] = [{"bearer": []}, {"apiKeyHeader": []}]
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def app_from_env() -> FastAPI:
    """uvicorn factory (`--factory credit_drift.serving.app:app_from_env`): settings from the
    environment, model from CREDIT_DRIFT_ARTIFACTS_DIR. Used for several worker processes."""
    return create_app(Settings.from_env())
