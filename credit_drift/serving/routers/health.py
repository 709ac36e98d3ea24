"""Health probes, open without the API key.

`GET /health/live`: the process answers (never touches the database): a liveness probe restarts
the process only when it is wedged, not when the database is down. `GET /health/ready`: the
database takes writes now (a rolled-back, empty INSERT, bounded by CREDIT_DRIFT_DB_TIMEOUT_S and
checked at most once per `ServingConfig.ready_cache_seconds` however many probes ask): a load
balancer sends traffic only to ready instances. `GET /health` is the readiness answer (what it
always meant: model loaded and database usable).
"""

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from credit_drift.serving.dependencies import Service
from credit_drift.serving.errors import json_response
from credit_drift.serving.models import HealthResponse, LivenessResponse
from credit_drift.serving.request_log import record
from credit_drift.serving.service import ScoringService

router = APIRouter()

NOT_READY = {503: {"model": HealthResponse, "description": "Database not usable now."}}


async def _readiness(request: Request, service: ScoringService) -> Response:
    # A fresh cached answer costs no thread hop; otherwise one thread checks (bounded).
    state = service.gate.cached_readiness() or await run_in_threadpool(service.gate.readiness)
    if not state.ready:
        # The driver's text is in the server log (`database_error` of the startup line and
        # the failed requests), never in this unauthenticated answer.
        record(request, error=f"not ready: {state.public}")
    body = {
        "status": "ok" if state.ready else "degraded",
        "model_loaded": True,
        "model_version": service.model_version,
        "database": state.database,
        "database_error": state.public,
    }
    return json_response(body, 200 if state.ready else 503)


@router.get(
    "/health/live",
    response_model=LivenessResponse,
    summary="The process answers (liveness; never touches the database, no API key needed)",
)
async def live(service: Service) -> Response:
    return json_response({"status": "alive", "model_version": service.model_version})


@router.get(
    "/health/ready",
    response_model=HealthResponse,
    responses=NOT_READY,
    summary="Model loaded and database takes writes (readiness; no API key needed)",
)
async def ready(request: Request, service: Service) -> Response:
    return await _readiness(request, service)


@router.get(
    "/health",
    response_model=HealthResponse,
    responses=NOT_READY,
    summary="Same as /health/ready (no API key needed)",
)
async def health(request: Request, service: Service) -> Response:
    return await _readiness(request, service)
