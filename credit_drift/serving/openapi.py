"""The OpenAPI document: the generated one plus what FastAPI cannot derive from the endpoints,
which read raw bytes: the `Application` schema built from the model's features (with a valid
example), the split batch layout, the request bodies, and the API-key security schemes."""

from typing import Any

from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder
from fastapi.openapi.models import Operation
from fastapi.openapi.utils import get_openapi

from credit_drift.serving.config import ServingConfig
from credit_drift.serving.errors import JSON
from credit_drift.serving.routers.predict import DECLARATIONS
from credit_drift.serving.service import ScoringService
from credit_drift.serving.validation import APPLICATION_ID_FIELD, EVENT_TIME_FIELD
from credit_drift.storage.schema import APPLICATION_ID_MAX_LENGTH

_APPLICATION_ID_DESCRIPTION = (
    "Optional: the application's id (e.g. SK_ID_CURR), stored with the prediction so that its "
    "outcome, sent later to POST /outcomes, is linked to it. A string of 1 to "
    f"{APPLICATION_ID_MAX_LENGTH} characters (no NUL) or an integer (stored as its decimal "
    "text); null or absent: none."
)


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
    properties[APPLICATION_ID_FIELD] = {
        "anyOf": [
            {"type": "string", "minLength": 1, "maxLength": APPLICATION_ID_MAX_LENGTH},
            {"type": "integer"},
            {"type": "null"},
        ],
        "description": _APPLICATION_ID_DESCRIPTION,
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


def _split_schema(service: ScoringService, max_rows: int) -> dict[str, Any]:
    names = list(service.schema.names)
    # Every feature once, plus application_id and event_time (replay) when sent: the row width
    # is the column count.
    width = {"minItems": len(names), "maxItems": len(names) + 2}
    return {
        "title": "SplitBatch",
        "type": "object",
        "description": "A batch in pandas' split layout (`DataFrame.to_json(orient='split')`): "
        "the feature names once, then one array of values per application, in column order. "
        "About five times smaller than a list of objects and several times faster to read. "
        "'index' is accepted and ignored; 'application_id' may be a column, and 'event_time' "
        "(replay only).",
        "properties": {
            "columns": {
                "type": "array",
                "items": {
                    "type": "string",
                    "enum": [*names, APPLICATION_ID_FIELD, EVENT_TIME_FIELD],
                },
                "uniqueItems": True,
                **width,
                "description": f"Every model feature once, in any order ({len(names)} names), "
                f"plus '{APPLICATION_ID_FIELD}' (optional) and '{EVENT_TIME_FIELD}' (replay "
                "only).",
            },
            "data": {
                "type": "array",
                "minItems": 1,
                "maxItems": max_rows,
                "items": {
                    "type": "array",
                    "items": {"type": ["number", "string", "null"]},
                    **width,
                    "description": "One value per column, in the order of 'columns': a row "
                    "of another length is refused (422).",
                },
                "description": f"One row per application (1 to {max_rows}; more: 413); null "
                "means missing.",
            },
            "index": {"type": "array", "description": "Ignored."},
        },
        "required": ["columns", "data"],
        "additionalProperties": False,
    }


def _request_bodies(service: ScoringService, config: ServingConfig) -> dict[str, dict[str, Any]]:
    """The request body of each POST path: the endpoints read the raw body, so FastAPI
    documents none."""
    example = _example_application(service)
    single_body = {
        "required": True,
        "description": "One application (see the Application schema).",
        "content": {
            JSON: {
                "schema": {"$ref": "#/components/schemas/Application"},
                "example": example,
            }
        },
    }
    batch_body = {
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
    return {
        "/predict": single_body,
        "/predict/batch": batch_body,
        "/outcomes": _outcomes_body(config),
    }


def _outcomes_body(config: ServingConfig) -> dict[str, Any]:
    outcome = {
        "title": "Outcome",
        "type": "object",
        "properties": {
            APPLICATION_ID_FIELD: {
                "anyOf": [
                    {"type": "string", "minLength": 1, "maxLength": APPLICATION_ID_MAX_LENGTH},
                    {"type": "integer"},
                ],
                "description": "The id sent as `application_id` with the prediction.",
            },
            "outcome": {"type": "integer", "enum": [0, 1], "description": "1 = default."},
            "observed_at": {
                "type": "string",
                "description": "When the outcome was observed: ISO 8601 with a time zone, or a "
                "date (midnight UTC).",
            },
        },
        "required": [APPLICATION_ID_FIELD, "outcome", "observed_at"],
        "additionalProperties": False,
    }
    batch = {
        "type": "object",
        "properties": {
            "outcomes": {
                "type": "array",
                "items": outcome,
                "minItems": 1,
                "maxItems": config.max_outcomes,
            },
            "update": {
                "type": "boolean",
                "default": True,
                "description": "false: a changed outcome is reported in `conflicts`, not written.",
            },
        },
        "required": ["outcomes"],
        "additionalProperties": False,
    }
    example = {"application_id": "100002", "outcome": 1, "observed_at": "2027-03-01T00:00:00Z"}
    return {
        "required": True,
        "description": f"1 to {config.max_outcomes} outcomes, or one outcome object. An "
        "outcome sent again with the same value and observed_at changes nothing; a changed one "
        "replaces the current one (kept as history); an id with no prediction is kept and "
        "counted in `unknown_ids`.",
        "content": {
            JSON: {"schema": {"oneOf": [batch, outcome]}, "example": {"outcomes": [example]}}
        },
    }


def install_openapi(
    app: FastAPI, service: ScoringService, config: ServingConfig, api_key: str | None
) -> None:
    """Make `app.openapi` build (once) the document described in the module docstring."""
    bodies = _request_bodies(service, config)
    limits = {
        "/predict": f"Body larger than {config.max_body_bytes} bytes.",
        "/predict/batch": f"Body larger than {config.max_batch_body_bytes} bytes, or more than "
        f"{config.max_batch_size} applications in the batch.",
        "/outcomes": f"Body larger than {config.max_batch_body_bytes} bytes, or more than "
        f"{config.max_outcomes} outcomes.",
    }
    application_schema = _application_schema(service)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                # Endpoints served as plain Starlette routes are documented by their declarations
                # (first, as their router is included first).
                routes=[*DECLARATIONS, *app.routes],
            )
            for path, limit in limits.items():
                responses = doc["paths"][path]["post"]["responses"]
                responses["413"] = {**responses["413"], "description": limit}
            for path, body in bodies.items():
                # Through FastAPI's own model, as `openapi_extra` would be: the document comes
                # out as when the body was declared on the route (which the routers, shared by
                # every app, cannot do: the body depends on this app's model).
                post = Operation(**{**doc["paths"][path]["post"], "requestBody": body})
                doc["paths"][path]["post"] = jsonable_encoder(
                    post, by_alias=True, exclude_none=True
                )
            components = doc.setdefault("components", {})
            components.setdefault("schemas", {})["Application"] = application_schema
            components["schemas"]["SplitBatch"] = _split_schema(service, config.max_batch_size)
            components["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            }
            if api_key:
                for path in ("/predict", "/predict/batch", "/outcomes", "/model"):
                    for op in doc["paths"].get(path, {}).values():
                        op["security"] = [{"bearer": []}, {"apiKeyHeader": []}]
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
