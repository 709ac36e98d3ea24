"""`GET /health`: model loaded and database reachable (open without the API key, for probes)."""

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from credit_drift.serving.dependencies import Service
from credit_drift.serving.errors import json_response
from credit_drift.serving.models import HealthResponse
from credit_drift.serving.request_log import record

router = APIRouter()


@router.get(
    "/health",
    response_model=HealthResponse,
    responses={503: {"model": HealthResponse, "description": "Database unreachable."}},
    summary="Model loaded and database reachable (no API key needed)",
)
async def health(request: Request, service: Service) -> Response:
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
    return json_response(body, 200 if reason is None else 503)
