"""The prediction log: feature schemas, writing predictions (one by one or in bulk) and reading
the predictions of a time interval back.

`write` validates and inserts, `read` reads an interval back, `pgcopy` is the PostgreSQL binary
COPY codec both use, `feature_schemas` stores the schemas the vectors are packed in.
"""

from credit_drift.storage.predictions.feature_schemas import (
    load_feature_schema,
    register_feature_schema,
)
from credit_drift.storage.predictions.read import (
    META_COLUMNS,
    LoggedPredictions,
    count_predictions,
    read_decisions,
    read_predictions,
)
from credit_drift.storage.predictions.write import (
    DEFAULT_CHUNK_ROWS,
    DuplicateRequestIdError,
    PredictionRow,
    bulk_insert_predictions,
    insert_predictions,
)

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "META_COLUMNS",
    "DuplicateRequestIdError",
    "LoggedPredictions",
    "PredictionRow",
    "bulk_insert_predictions",
    "count_predictions",
    "insert_predictions",
    "load_feature_schema",
    "read_decisions",
    "read_predictions",
    "register_feature_schema",
]
