"""Response models of the scoring API: they document every field in the OpenAPI schema.

Requests are validated by hand against the model's feature schema (`serving.validation`); their
OpenAPI description is generated from that schema in `serving.openapi`.
"""

from typing import Literal

from pydantic import BaseModel, Field


class PredictionResponse(BaseModel):
    request_id: str = Field(
        description="Id of this prediction; the `request_id` of its row in `predictions`."
    )
    probability: float = Field(ge=0.0, le=1.0, description="Model probability of default.")
    decision: Literal["APPROVED", "REFUSED"] = Field(
        description="REFUSED when probability >= threshold, else APPROVED."
    )
    threshold: float = Field(description="Decision threshold stored with the model.")
    model_version: str = Field(description="Version (content hash) of the model that answered.")
    inference_time_ms: float = Field(
        description="Validation, packing and model scoring time in milliseconds (for a batch "
        "item: the batch's time divided by its size). Excludes JSON parsing and the log write."
    )
    created_at: str = Field(description="UTC time stamp of the logged prediction (ISO 8601).")


class BatchPredictionResponse(BaseModel):
    request_id: str = Field(description="Id of the request; item k is logged as `<id>-<k>`.")
    model_version: str = Field(description="Version of the model that answered.")
    threshold: float = Field(description="Decision threshold stored with the model.")
    n_predictions: int = Field(description="Number of applications scored and logged.")
    inference_time_ms: float = Field(
        description="Validation, packing and model scoring time of the whole batch (ms)."
    )
    predictions: list[PredictionResponse] = Field(description="One answer per application.")


class FieldErrorModel(BaseModel):
    field: str = Field(description="Feature (or request field) the problem is about.")
    problem: str = Field(description="What is wrong with it.")
    index: int | None = Field(
        default=None, description="Position of the application in a batch request."
    )


class ErrorResponse(BaseModel):
    detail: str = Field(description="Human-readable message naming the problem.")
    request_id: str | None = Field(default=None, description="Id of the rejected request.")
    errors: list[FieldErrorModel] = Field(
        default_factory=list, description="Per-field problems (validation errors)."
    )
    n_errors: int = Field(default=0, description="Total number of field problems found.")


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"] = Field(
        description="ok when the model is loaded and the database takes writes."
    )
    model_loaded: bool = Field(description="The model was loaded at start-up.")
    model_version: str = Field(description="Version of the loaded model.")
    database: Literal["reachable", "unreachable", "read_only", "timeout"] = Field(
        description="Whether the prediction log took a (rolled back, empty) write in the last "
        "check: reachable; or unreachable, read_only (e.g. a standby), timeout (no answer "
        "within CREDIT_DRIFT_DB_TIMEOUT_S)."
    )
    database_error: str | None = Field(
        default=None,
        description="A short fixed sentence when the database is not usable (never the "
        "driver's text: no host, port or SQL).",
    )


class LivenessResponse(BaseModel):
    status: Literal["alive"] = Field(description="The process answers; the database is not asked.")
    model_version: str = Field(description="Version of the loaded model.")


class ModelInfoResponse(BaseModel):
    model_version: str = Field(description="Version (content hash) of the model artifacts.")
    threshold: float = Field(description="Decision threshold (REFUSED when probability >= it).")
    n_features: int = Field(description="Number of model features a request must carry.")
    n_categorical_features: int = Field(description="How many of them are categorical.")
    feature_schema_version: str = Field(description="Hash of the ordered feature list.")
    metrics: dict[str, float] = Field(description="Training metrics (held-out AUC, ...).")
    features: list[str] = Field(description="Feature names, in model order.")
    categorical_features: list[str] = Field(description="Names of the categorical features.")
    replay_allowed: bool = Field(
        description="Whether requests may carry `event_time` (CREDIT_DRIFT_ALLOW_REPLAY)."
    )
    max_batch_size: int = Field(description="Most applications accepted by /predict/batch.")


class OutcomesResponse(BaseModel):
    request_id: str = Field(description="Id of the request.")
    n_outcomes: int = Field(description="Distinct outcomes in the request.")
    inserted: int = Field(description="Outcomes of ids that had none.")
    unchanged: int = Field(
        description="Outcomes already recorded with the same value and observed_at (a resend)."
    )
    updated: int = Field(
        description="Changed outcomes: the previous one is kept as history, marked superseded."
    )
    unknown_ids: int = Field(
        description="Ids of the request that match no logged prediction: kept all the same "
        "(the prediction may come later), listed by `credit-drift outcomes unknown`."
    )
    conflicts: list[str] = Field(
        description='Ids whose outcome changed while the request said "update": false '
        "(not written)."
    )
