"""`POST /predict` (one application) and `POST /predict/batch` (a JSON array of applications,
or the same rows in pandas' split layout). Every answered prediction is logged before its
answer is sent (see `serving.service`)."""

from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from credit_drift.serving.config import ServingConfig
from credit_drift.serving.database import DatabaseUnavailable
from credit_drift.serving.dependencies import Config, Service, require_api_key
from credit_drift.serving.errors import (
    ERROR_RESPONSES,
    JSON,
    ApiError,
    rejected,
    unavailable,
)
from credit_drift.serving.models import BatchPredictionResponse, PredictionResponse
from credit_drift.serving.request_log import record
from credit_drift.serving.service import ScoredBatch, ScoringService
from credit_drift.serving.validation import RequestRejected, body_has_only_numbers, parse_json

router = APIRouter(dependencies=[Depends(require_api_key)])


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ApiError(400, f"invalid Content-Length header {declared[:20]!r}")
        if int(declared) > limit:
            raise ApiError(
                413, f"request body of {int(declared)} bytes exceeds the limit of {limit} bytes"
            )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def answers(service: ScoringService, scored: ScoredBatch) -> list[dict[str, Any]]:
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


@router.post(
    "/predict",
    response_model=PredictionResponse,
    responses=ERROR_RESPONSES,
    summary="Score one application and log it",
)
async def predict(request: Request, service: Service, config: Config) -> Response:
    body = await read_body(request, config.max_body_bytes)
    rid = record(request, n_items=1)
    try:
        # Parsing, validation, scoring, the log write and the answer's serialization all
        # run in the thread pool: the event loop only moves bytes.
        content = await run_in_threadpool(handle_single, service, body, rid)
    except RequestRejected as exc:
        return rejected(request, exc)
    except DatabaseUnavailable as exc:
        return unavailable(request, exc)
    return Response(content, media_type=JSON)


def handle_single(service: ScoringService, body: bytes, rid: str) -> bytes:
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
    return orjson.dumps(answers(service, scored)[0])


@router.post(
    "/predict/batch",
    response_model=BatchPredictionResponse,
    responses=ERROR_RESPONSES,
    summary="Score a batch of applications and log them (one transaction)",
)
async def predict_batch(request: Request, service: Service, config: Config) -> Response:
    body = await read_body(request, config.max_batch_body_bytes)
    rid = record(request)
    counted: list[int] = []
    try:
        content = await run_in_threadpool(handle_batch, service, config, body, rid, counted)
    except RequestRejected as exc:
        return rejected(request, exc)
    except DatabaseUnavailable as exc:
        return unavailable(request, exc)
    finally:
        record(request, n_items=max(counted[0], 0) if counted else 0)
    return Response(content, media_type=JSON)


def handle_batch(
    service: ScoringService, config: ServingConfig, body: bytes, rid: str, counted: list[int]
) -> bytes:
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
            "predictions": answers(service, scored),
        }
    )
