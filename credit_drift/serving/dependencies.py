"""What the endpoints need, as FastAPI dependencies: the app's state (set once by
`serving.app.create_app`) and the API-key check. All are `async def`: FastAPI would run plain
functions in the thread pool, a thread hop per request for a dictionary read."""

import hmac
from typing import Annotated

from fastapi import Depends, Request

from credit_drift.serving.config import ServingConfig
from credit_drift.serving.errors import ApiError
from credit_drift.serving.service import ScoringService
from credit_drift.settings import Settings


async def get_service(request: Request) -> ScoringService:
    return request.app.state.service


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_config(request: Request) -> ServingConfig:
    return request.app.state.service.config


Service = Annotated[ScoringService, Depends(get_service)]
AppSettings = Annotated[Settings, Depends(get_settings)]
Config = Annotated[ServingConfig, Depends(get_config)]


def _bearer_or_header(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


async def require_api_key(request: Request, settings: AppSettings) -> None:
    """401 unless the request carries `Settings.api_key` (no check when none is set)."""
    check_api_key(request, settings.api_key)


def check_api_key(request: Request, api_key: str | None) -> None:
    """Raise the 401 `ApiError` unless the request carries `api_key` (no check when None/empty);
    what `require_api_key` runs, callable from an endpoint that FastAPI does not solve."""
    if not api_key:
        return
    given = _bearer_or_header(request)
    # compare_digest: the time taken does not reveal how much of the key matched.
    if given is None or not hmac.compare_digest(given.encode(), api_key.encode()):
        raise ApiError(
            401,
            "missing or invalid API key: send it as 'Authorization: Bearer <key>' or "
            "'X-API-Key: <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
