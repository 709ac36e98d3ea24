"""`POST /outcomes`: observed outcomes of applications (1 = default), linked to their
predictions by application id (see `storage.outcomes`). Authenticated like `/predict`;
idempotent by nature (an outcome sent again changes nothing) and with an `Idempotency-Key`
for an exact replay of the first answer."""

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import Response

from credit_drift.serving.config import ServingConfig
from credit_drift.serving.dependencies import Config, Service, require_api_key
from credit_drift.serving.errors import ERROR_RESPONSES
from credit_drift.serving.idempotency import DESCRIPTION, KeyedRequest
from credit_drift.serving.models import OutcomesResponse
from credit_drift.serving.routers.predict import _logged as logged_answer
from credit_drift.serving.routers.predict import answer_many
from credit_drift.serving.service import ScoringService
from credit_drift.serving.validation import RequestRejected, parse_json, validate_outcomes
from credit_drift.storage.outcomes import OutcomeValidationError, record_outcomes

router = APIRouter(dependencies=[Depends(require_api_key)])

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", description=DESCRIPTION)]
ENDPOINT = "/outcomes"


@router.post(
    ENDPOINT,
    response_model=OutcomesResponse,
    responses=ERROR_RESPONSES,
    summary="Record observed outcomes (1 = default) of scored applications",
)
async def post_outcomes(
    request: Request,
    service: Service,
    config: Config,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    return await answer_many(
        request,
        service,
        config,
        ENDPOINT,
        idempotency_key,
        handle_outcomes,
        lost="no outcome was recorded",
    )


def handle_outcomes(
    service: ScoringService,
    config: ServingConfig,
    body: bytes,
    rid: str,
    counted: list[int],
    keyed: KeyedRequest | None = None,
) -> tuple[bytes, bool]:
    if keyed is not None and (previous := keyed.previous_answer(service)) is not None:
        return previous, True
    valid = validate_outcomes(
        parse_json(body),
        max_rows=config.max_outcomes,
        max_listed=config.max_listed_errors,
    )
    counted.append(len(valid.rows))

    def render(summary) -> bytes:
        return orjson.dumps({"request_id": rid, "n_outcomes": len(valid.rows), **summary.to_dict()})

    try:
        # The same keyed-answer handling as /predict: the answer is stored with the outcomes.
        return logged_answer(
            service,
            keyed,
            rid,
            render,
            lambda same_transaction: service.gate.run(
                lambda engine: record_outcomes(
                    engine, valid.rows, update=valid.update, same_transaction=same_transaction
                )
            ),
        )
    except OutcomeValidationError as exc:
        raise RequestRejected(422, str(exc)) from None
