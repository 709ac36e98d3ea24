"""The FastAPI scoring app: `create_app(settings, artifacts)`.

Endpoints: `POST /predict` (one application: a JSON object of feature name to value),
`POST /predict/batch` (a JSON array of them, or the same rows in pandas' split layout
`{"columns": [...], "data": [[...], ...]}`, five times smaller and faster to read),
`POST /outcomes` (observed outcomes of applications, linked to predictions by application id),
`GET /health/live`, `GET /health/ready` (and `GET /health`, the same as ready), `GET /model`.
Every answered prediction is logged to `predictions` before its answer is sent (see
`serving.service`); every request, rejected ones included, leaves an `api_logs` row and one
JSON log line (see `serving.request_log`). When `Settings.api_key` is set, every endpoint but
the `/health` probes (and the OpenAPI docs) requires it, as `Authorization: Bearer <key>` or
`X-API-Key: <key>`.

The endpoints are in `serving.routers` (`predict`, `outcomes`, `health`, `model`) and reach the
app's state through `serving.dependencies` (`POST /predict`, the hot path, is a plain Starlette
endpoint that reads it directly, reached past the router: see `routers.predict.predict` and
`routers.predict.PredictFastPath`); error answers are in
`serving.errors`, the request-log middleware in `serving.middleware`, the OpenAPI document in
`serving.openapi`.

For `uvicorn --factory` (several workers) use `credit_drift.serving.app:app_from_env`.
"""

import gc
import inspect
import logging
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from credit_drift.serving import metrics
from credit_drift.serving.balance import balancer_from_env
from credit_drift.serving.config import ServingConfig
from credit_drift.serving.errors import add_error_handlers
from credit_drift.serving.middleware import RequestLogMiddleware
from credit_drift.serving.openapi import install_openapi
from credit_drift.serving.request_log import ApiLogWriter, api_logger, log_json
from credit_drift.serving.routers import health, model, outcomes, predict
from credit_drift.serving.service import ScoringService
from credit_drift.settings import Settings
from credit_drift.storage.api_logs import insert_api_logs

# FastAPI's native telemetry (in recent releases, e.g. 0.165) looks for OpenTelemetry providers
# on every request (environment and provider lookups: about 3% of a prediction's CPU time,
# measured); the API has its own Prometheus metrics (`serving.metrics`), so it is turned off.
_NO_NATIVE_TELEMETRY = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters
    else {}
)


@asynccontextmanager
async def lifespan(app: FastAPI):
    """Startup: reach (and migrate) the database if it is up, and log one startup line.
    Shutdown: flush the queued `api_logs` rows."""
    service: ScoringService = app.state.service
    settings: Settings = app.state.settings
    writer: ApiLogWriter = app.state.api_log_writer
    logger = api_logger()
    # Migrate early when the database is up; when it is down, the first request retries.
    # A first start may have tables to create: allowed longer than a request's bound.
    startup = service.config.startup_database_seconds
    reason = await run_in_threadpool(service.gate.ping, startup)
    log_json(
        logger,
        logging.INFO if reason is None else logging.WARNING,
        {
            "event": "startup",
            "model_version": service.model_version,
            "n_features": len(service.schema),
            "database": "reachable" if reason is None else "unreachable",
            "database_error": None if reason is None else service.gate.last_error,
            "api_key_required": bool(settings.api_key),
            "replay_allowed": settings.allow_replay,
        },
    )
    yield
    await run_in_threadpool(writer.close, service.config.shutdown_flush_seconds)
    service.group_commit.close()
    service.gate.close()
    if app.state.balancer is not None:
        app.state.balancer.close()


def create_app(
    settings: Settings | None = None,
    artifacts: Any = None,
    *,
    config: ServingConfig | None = None,
) -> FastAPI:
    """The scoring app. Loads the model artifacts from `settings.artifacts_dir` unless given;
    touches the database only lazily (it starts while the database is down)."""
    settings = settings or Settings.from_env()
    config = config or ServingConfig(database_timeout_seconds=settings.db_timeout_s)
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
    app = FastAPI(
        title="credit-drift scoring API",
        version=service.model_version,
        description="Scores loan applications with the credit-drift LightGBM model and logs "
        "every prediction (features, probability, decision, latency) for drift monitoring.",
        lifespan=lifespan,
        **_NO_NATIVE_TELEMETRY,
    )
    # What the endpoints reach through `serving.dependencies` (and the tests read).
    app.state.service = service
    app.state.api_log_writer = writer
    app.state.settings = settings
    # Several workers started by `run_server`: keep-alive connections spread evenly.
    app.state.balancer = balancer_from_env()
    # Innermost: POST /predict past the router (see `routers.predict.PredictFastPath`).
    app.add_middleware(predict.PredictFastPath)
    app.add_middleware(
        RequestLogMiddleware, writer=writer, logger=logger, balancer=app.state.balancer
    )
    # Added last, so outermost: /metrics is answered before the request log sees it.
    metrics.instrument(app, service, writer)
    add_error_handlers(app)
    app.include_router(predict.router)
    app.include_router(outcomes.router)
    app.include_router(health.router)
    app.include_router(model.router)
    install_openapi(app, service, config, settings.api_key)
    return app


def freeze_startup_objects() -> int:
    """Move every object alive after start-up (the imported libraries, the model, the app) out
    of the garbage collector's reach, and return how many there are. A server process does this
    once its app is built: otherwise each full collection walks them all again, which took
    140-200 ms on 2 cores (AMD EPYC) and stopped that worker's event loop one to three times in 8 s
    of load at concurrency 32, holding its requests for as long. Objects frozen are still
    freed by reference counting; only cycles among them are never collected."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def app_from_env() -> FastAPI:
    """uvicorn factory (`--factory credit_drift.serving.app:app_from_env`): settings from the
    environment, model from CREDIT_DRIFT_ARTIFACTS_DIR. Used for several worker processes,
    each of which freezes its start-up objects (`freeze_startup_objects`)."""
    app = create_app(Settings.from_env())
    freeze_startup_objects()
    return app
