"""`GET /model`: the loaded model (version, threshold, features, training metrics)."""

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from credit_drift.serving.dependencies import AppSettings, Config, Service, require_api_key
from credit_drift.serving.errors import ERROR_RESPONSES, json_response
from credit_drift.serving.models import ModelInfoResponse

router = APIRouter(dependencies=[Depends(require_api_key)])


@router.get(
    "/model",
    response_model=ModelInfoResponse,
    responses={401: ERROR_RESPONSES[401]},
    summary="The loaded model: version, threshold, features, training metrics",
)
async def model_info(service: Service, settings: AppSettings, config: Config) -> Response:
    schema = service.schema
    metrics = getattr(service.artifacts, "metrics", {}) or {}
    return json_response(
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
