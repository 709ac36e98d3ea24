"""`POST /predict` (one application) and `POST /predict/batch` (a JSON array of applications,
or the same rows in pandas' split layout). Every answered prediction is logged before its
answer is sent (see `serving.service`)."""

from collections.abc import Callable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette._utils import get_route_path
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route

from credit_drift.serving.config import ServingConfig
from credit_drift.serving.database import DatabaseUnavailable
from credit_drift.serving.dependencies import Config, Service, check_api_key, require_api_key
from credit_drift.serving.errors import (
    ERROR_RESPONSES,
    JSON,
    ApiError,
    api_error_handler,
    rejected,
    unavailable,
)
from credit_drift.serving.idempotency import DESCRIPTION, HEADER, KeyedRequest
from credit_drift.serving.models import BatchPredictionResponse, PredictionResponse
from credit_drift.serving.request_log import record
from credit_drift.serving.service import ScoredBatch, ScoringService
from credit_drift.serving.validation import RequestRejected, body_has_only_numbers, parse_json
from credit_drift.storage.idempotency import IdempotencyKeyBusy, IdempotencyKeyTaken

router = APIRouter(dependencies=[Depends(require_api_key)])

IdempotencyKey = Annotated[str | None, Header(alias=HEADER, description=DESCRIPTION)]
REPLAYED = {"Idempotent-Replayed": "true"}


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


async def predict(request: Request) -> Response:
    """`POST /predict`, served as a plain Starlette endpoint: the single-prediction path is the
    one that runs thousands of times a second, and FastAPI's per-request dependency solving
    and parameter binding were a quarter of the event loop's time for it. The API key, the
    Idempotency-Key header and the state are read directly; errors take the same handlers.
    `predict_declaration` describes it in the OpenAPI document."""
    # The route template the metrics label requests with (FastAPI's routes set it themselves).
    request.scope["route"] = PREDICT_ROUTE
    service: ScoringService = request.app.state.service
    check_api_key(request, request.app.state.settings.api_key)
    body = await read_body(request, service.config.max_body_bytes)
    rid = record(request, n_items=1)
    try:
        keyed = KeyedRequest.of(request.headers.get(HEADER), "/predict", body)
        if keyed is None and len(body) <= service.config.loop_body_bytes:
            content, replayed = await answer_single(service, body, rid), False
        else:
            # An idempotency key's lookups and its answer's storage are blocking database
            # calls, and a large body takes long to parse: those run in the thread pool.
            content, replayed = await run_in_threadpool(handle_single, service, body, rid, keyed)
    except RequestRejected as exc:
        return rejected(request, exc)
    except DatabaseUnavailable as exc:
        return unavailable(request, exc)
    return Response(content, media_type=JSON, headers=REPLAYED if replayed else None)


PREDICT_ROUTE = Route("/predict", predict, methods=["POST"], include_in_schema=False)
router.routes.append(PREDICT_ROUTE)


class PredictFastPath:
    """Pure ASGI middleware, innermost of the app's own: `POST /predict` goes straight to
    `predict`, past FastAPI's exception middleware, exit stack, router and route wrappers
    (in process, without the socket and the database write: about 100 of 450 us of CPU a
    request, measured on 2 cores, AMD EPYC; see benchmarks/README.md), with the same answers:
    its `ApiError`s through the app's handler, anything else raised to the request-log
    middleware (a JSON 500), as the router would. Every other request, and `/predict` with
    another method or path (405, the trailing-slash redirect), takes the router."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and get_route_path(scope) == PREDICT_ROUTE.path
        ):
            request = Request(scope, receive, send)
            try:
                response = await predict(request)
            except ApiError as exc:
                response = await api_error_handler(request, exc)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


# Never called (no docstring: it would become the operation's description): declares
# `predict`'s header, API key, answers and errors for the OpenAPI document.
def predict_declaration(idempotency_key: IdempotencyKey = None) -> PredictionResponse:
    raise NotImplementedError  # pragma: no cover


#: The OpenAPI declarations of the endpoints served without FastAPI's routing.
DECLARATIONS = [
    APIRoute(
        "/predict",
        predict_declaration,
        methods=["POST"],
        response_model=PredictionResponse,
        responses=ERROR_RESPONSES,
        summary="Score one application and log it",
        name="predict",  # the operationId FastAPI derived from the endpoint `predict`
        dependencies=[Depends(require_api_key)],
    )
]


def _single_item(body: bytes) -> dict:
    item = parse_json(body)
    if not isinstance(item, dict):
        raise RequestRejected(
            422,
            "expected one application as a JSON object of feature name to value "
            "(send a JSON array to /predict/batch)",
        )
    return item


async def answer_single(service: ScoringService, body: bytes, rid: str) -> bytes:
    """The answer's bytes to one application without an idempotency key, on the event loop:
    parsing, validation and scoring take a fraction of a millisecond, and the request awaits
    its group commit without holding a thread (see `GroupCommit.commit_async`)."""
    item = _single_item(body)
    scored = await service.score_and_log_async(item, request_id=rid)
    return orjson.dumps(answers(service, scored)[0])


def handle_single(
    service: ScoringService, body: bytes, rid: str, keyed: KeyedRequest | None = None
) -> tuple[bytes, bool]:
    """The answer's bytes, and whether it is a stored answer to an idempotency key."""
    if keyed is not None and (previous := keyed.previous_answer(service)) is not None:
        return previous, True
    item = _single_item(body)
    return _logged(
        service,
        keyed,
        rid,
        lambda scored: orjson.dumps(answers(service, scored)[0]),
        lambda same_transaction: service.score_and_log(
            [item],
            request_id=rid,
            batch=False,
            same_transaction=same_transaction,
        ),
    )


def _logged(
    service: ScoringService,
    keyed: KeyedRequest | None,
    rid: str,
    render: Callable[[ScoredBatch], bytes],
    score_and_log: Callable[[Any], ScoredBatch],
) -> tuple[bytes, bool]:
    """Score and log, storing the rendered answer with the predictions when keyed."""
    if keyed is None:
        return render(score_and_log(None)), False
    rendered: list[bytes] = []

    def render_once(scored: ScoredBatch) -> bytes:
        rendered.append(render(scored))
        return rendered[-1]

    try:
        scored = score_and_log(keyed.keeper(rid, render_once))
    except IdempotencyKeyBusy:
        raise RequestRejected(
            409,
            "a request with this Idempotency-Key is still being answered; retry it shortly "
            "(with the same key) to get its answer",
        ) from None
    except IdempotencyKeyTaken:
        # A concurrent request with the same key committed first; ours rolled back whole.
        previous = keyed.previous_answer(service)
        if previous is None:  # pragma: no cover - the key's row was committed before this
            raise
        return previous, True
    return (rendered[-1] if rendered else render(scored)), False


@router.post(
    "/predict/batch",
    response_model=BatchPredictionResponse,
    responses=ERROR_RESPONSES,
    summary="Score a batch of applications and log them (one transaction)",
)
async def predict_batch(
    request: Request,
    service: Service,
    config: Config,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    return await answer_many(
        request, service, config, "/predict/batch", idempotency_key, handle_batch
    )


async def answer_many(
    request: Request,
    service: ScoringService,
    config: ServingConfig,
    endpoint: str,
    idempotency_key: str | None,
    handle: Callable[..., tuple[bytes, bool]],
    *,
    lost: str = "nothing was scored",
) -> Response:
    """The body of an endpoint taking many items (`/predict/batch`, `/outcomes`): read the
    bounded body, run `handle(service, config, body, rid, counted, keyed)` in the thread pool
    (it appends the number of items to `counted` once it knows it, -1 when it cannot tell),
    and answer with its bytes, a 4xx it raised, or a 503 saying `lost`."""
    body = await read_body(request, config.max_batch_body_bytes)
    rid = record(request)
    counted: list[int] = []
    try:
        keyed = KeyedRequest.of(idempotency_key, endpoint, body)
        content, replayed = await run_in_threadpool(
            handle, service, config, body, rid, counted, keyed
        )
    except RequestRejected as exc:
        return rejected(request, exc)
    except DatabaseUnavailable as exc:
        return unavailable(request, exc, lost=lost)
    finally:
        record(request, n_items=max(counted[0], 0) if counted else 0)
    return Response(content, media_type=JSON, headers=REPLAYED if replayed else None)


def split_has_only_numbers(body: bytes, items: Any) -> bool:
    """The numbers-only hint (`body_has_only_numbers`) for a batch in the split layout only.
    Scanning a body costs about as much per byte as the type check it saves costs per value,
    and an application sent as a JSON object carries its feature names with every value: on
    2 cores (AMD EPYC), 7 ms of scan saved 12.6 ms of checks for a split batch of 1,000
    applications, but 42 ms of scan saved 12 ms for the same as JSON objects, and 44 us
    saved 14 us for one application (`POST /predict` therefore never scans)."""
    return isinstance(items, dict) and body_has_only_numbers(body, items)


def handle_batch(
    service: ScoringService,
    config: ServingConfig,
    body: bytes,
    rid: str,
    counted: list[int],
    keyed: KeyedRequest | None = None,
) -> tuple[bytes, bool]:
    if keyed is not None and (previous := keyed.previous_answer(service)) is not None:
        return previous, True
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

    def render(scored: ScoredBatch) -> bytes:
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

    return _logged(
        service,
        keyed,
        rid,
        render,
        lambda same_transaction: service.score_and_log(
            items,
            request_id=rid,
            batch=True,
            numbers_only=split_has_only_numbers(body, items),
            same_transaction=same_transaction,
        ),
    )
