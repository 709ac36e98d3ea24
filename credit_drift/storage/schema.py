"""The one SQLAlchemy metadata of credit-drift: every table, on SQLite and PostgreSQL alike.

Column types that differ per dialect are hidden behind two TypeDecorators, so that queries and
tests see the same Python values on both databases:

- `UTCDateTime`: accepts only timezone-aware datetimes, stores UTC (PostgreSQL `timestamptz`;
  SQLite: naive-UTC ISO text, which sorts and compares correctly as text) and returns aware UTC.
- `PackedVector`: the feature vector of a prediction, in feature-schema order. PostgreSQL
  `float8[]` with NaN stored as the float8 value 'NaN' (never a NULL element), so every row of a
  schema has the same binary size and a window can be read with binary COPY + `np.frombuffer`.
  SQLite: a JSON text array with NaN as `null`, so `json_each` can rebuild the JSON view. Both
  round-trip float64 bit for bit (orjson writes the shortest repr that parses back exactly).

Free-form JSON columns are JSONB on PostgreSQL and JSON text on SQLite. The view
`predictions_json` is created by migration 0001 (it is not a table of this metadata);
`predictions_json_view` below lets Core queries select from it.

On PostgreSQL, `predictions` and `api_logs` are range-partitioned by UTC day on `created_at`
(migration 0005, `storage.partitions`): their primary key there is (id, created_at) and request
ids are kept unique by `prediction_request_ids`. Objects of one dialect only carry
`info[ONLY_ON]`; `include_object` is the schema comparison that knows it.
"""

import datetime as dt
from typing import Any

import numpy as np
import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from credit_drift.stats.results import FEATURE_RESULT_COLUMNS, ResultColumn

# Stable constraint names, so that the hand-written migration and the metadata agree on both
# dialects (SQLite cannot rename a constraint later).
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

PREDICTION_SOURCES = ("api", "replay", "bulk")
OUTCOME_SOURCES = ("api", "file", "simulator")
# Longest application id accepted (predictions and outcomes alike).
APPLICATION_ID_MAX_LENGTH = 128
REPORT_STATUSES = ("OK", "WARNING", "ALERT", "NO_DATA")

# Storage format of SQLAlchemy's SQLite DATETIME; bulk paths write the same text directly.
SQLITE_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def json_dumps(value: Any) -> str:
    """JSON serializer of every engine: NaN/inf become null (JSONB and SQLite's JSON functions
    reject bare NaN), numpy scalars and arrays are accepted."""
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS).decode()


def json_loads(text: str | bytes) -> Any:
    return orjson.loads(text)


class UTCDateTime(sa.TypeDecorator):
    """Timezone-aware UTC timestamps on both dialects; naive datetimes are refused."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is None:
            return None
        if not isinstance(value, dt.datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}: {value!r}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"naive datetime {value.isoformat()} : pass a timezone-aware (UTC) one"
            )
        value = value.astimezone(dt.UTC)
        # SQLite has no time zones: store naive UTC so text comparison is time comparison.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def vector_to_json(vector: np.ndarray) -> str:
    """SQLite storage of a packed vector: JSON array, NaN as null."""
    return orjson.dumps(
        np.ascontiguousarray(vector, dtype=np.float64), option=orjson.OPT_SERIALIZE_NUMPY
    ).decode()


def float8_array_literal(vector: np.ndarray) -> str:
    """PostgreSQL text form of a float8[]: `{1.5,NaN,-0.0}`. Python's repr is the shortest
    string that parses back to the same double; sending the array as text (rather than
    psycopg2's ARRAY[...] of numeric literals) also keeps -0.0 and NaN exactly."""
    return "{" + ",".join(map(repr, vector.tolist())) + "}"


class PackedVector(sa.TypeDecorator):
    """A float64 feature vector: `float8[]` on PostgreSQL, JSON text array on SQLite.

    Binds any 1-d float sequence, returns a float64 `np.ndarray` (NaN for missing values).
    """

    impl = sa.Text
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.ARRAY(postgresql.DOUBLE_PRECISION()))
        return dialect.type_descriptor(sa.Text())

    def bind_processor(self, dialect):
        def process(value):
            if value is None:
                return None
            vector = np.asarray(value, dtype=np.float64)
            if vector.ndim != 1:
                raise ValueError(f"a packed feature vector must be 1-d, got shape {vector.shape}")
            if dialect.name == "postgresql":
                return float8_array_literal(vector)
            return vector_to_json(vector)

        return process

    def bind_expression(self, bindvalue):
        # PostgreSQL: the parameter is an array literal, cast by the server (a no-op on SQLite).
        return sa.cast(bindvalue, self)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, str | bytes):
            value = orjson.loads(value)
        # None (JSON null, or a NULL element written by hand on PostgreSQL) -> NaN.
        return np.array(value, dtype=np.float64)


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _big_id() -> sa.types.TypeEngine:
    # SQLite only auto-increments an INTEGER PRIMARY KEY.
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


# Key of `info` naming the one dialect a table or constraint exists on (migration 0005: the
# prediction log is partitioned by day on PostgreSQL only); see `include_object`.
ONLY_ON = "credit_drift_only_on"


def _created_at_index(table: str) -> sa.Index:
    # PostgreSQL: BRIN (rows arrive in time order): 48 KiB per day partition whatever its
    # rows, where a btree takes about 25 bytes a row (benchmarks/README.md, "Partitions").
    # SQLite: a btree.
    return sa.Index(f"ix_{table}_created_at", "created_at", postgresql_using="brin")


def include_object(dialect_name: str):
    """Alembic's `include_object` for a database of `dialect_name`: leaves out the objects of
    the other dialect (`ONLY_ON`) and the day partitions of the prediction log, which the
    metadata does not list (they come and go with `storage.partitions`)."""
    from credit_drift.storage.partitions import is_partition_name

    def include(obj, name, type_, reflected, compare_to) -> bool:
        if type_ == "table" and reflected and compare_to is None and is_partition_name(name):
            return False
        declared = compare_to if reflected else obj
        only_on = None if declared is None else declared.info.get(ONLY_ON)
        return only_on is None or only_on == dialect_name

    return include


feature_schemas = sa.Table(
    "feature_schemas",
    metadata,
    sa.Column("version", sa.String(64), primary_key=True, comment="FeatureSchema.version hash"),
    sa.Column("feature_names", _json(), nullable=False, comment="JSON array, in vector order"),
    sa.Column("spec", _json(), nullable=False, comment="FeatureSchema.to_json() content"),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

predictions = sa.Table(
    "predictions",
    metadata,
    sa.Column("id", _big_id(), primary_key=True, autoincrement=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("request_id", sa.String(128), nullable=False),
    sa.Column(
        "feature_schema_version",
        sa.String(64),
        sa.ForeignKey("feature_schemas.version"),
        nullable=False,
    ),
    sa.Column("features", PackedVector(), nullable=False),
    sa.Column(
        "categorical_values",
        _json(),
        nullable=True,
        comment="raw strings of categorical features, unseen categories included",
    ),
    sa.Column("probability", sa.Double(), nullable=False),
    sa.Column("decision", sa.String(32), nullable=False),
    sa.Column("threshold", sa.Double(), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("inference_time_ms", sa.Double(), nullable=True),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column(
        "application_id",
        sa.String(APPLICATION_ID_MAX_LENGTH),
        nullable=True,
        index=True,
        comment="the client's application id (e.g. SK_ID_CURR); links outcomes",
    ),
    sa.CheckConstraint(f"source IN {PREDICTION_SOURCES!r}", name="source"),
    # SQLite: request ids are unique by this constraint. PostgreSQL (partitioned by day, where
    # a unique constraint must include created_at): by `prediction_request_ids` below.
    sa.UniqueConstraint("request_id", info={ONLY_ON: "sqlite"}),
    _created_at_index("predictions"),
)

api_logs = sa.Table(
    "api_logs",
    metadata,
    sa.Column("id", _big_id(), primary_key=True, autoincrement=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("request_id", sa.String(128), nullable=True),
    sa.Column("method", sa.String(16), nullable=False),
    sa.Column("endpoint", sa.String(256), nullable=False),
    sa.Column("status_code", sa.Integer(), nullable=False),
    sa.Column("latency_ms", sa.Double(), nullable=False),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("n_items", sa.Integer(), nullable=False),
    sa.Column("client", sa.String(256), nullable=True),
    _created_at_index("api_logs"),
)

# PostgreSQL only (migration 0005): the request id of every logged prediction, filled by a
# statement trigger on `predictions` in the inserting statement itself (INSERT and COPY alike),
# so its primary key keeps request ids unique across all day partitions. `db prune` deletes the
# ids of the rows it drops.
prediction_request_ids = sa.Table(
    "prediction_request_ids",
    metadata,
    sa.Column("request_id", sa.String(128), primary_key=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    info={ONLY_ON: "postgresql"},
)

reference_profiles = sa.Table(
    "reference_profiles",
    metadata,
    sa.Column("profile_version", sa.String(64), primary_key=True),
    sa.Column("model_version", sa.String(64), nullable=True),
    sa.Column(
        "feature_schema_version",
        sa.String(64),
        sa.ForeignKey("feature_schemas.version"),
        nullable=False,
    ),
    sa.Column("n_rows", sa.BigInteger(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("is_active", sa.Boolean(), nullable=False),
    # At most one active profile: a partial unique index (both dialects support them).
    sa.Index(
        "uq_reference_profiles_one_active",
        "is_active",
        unique=True,
        postgresql_where=sa.text("is_active"),
        sqlite_where=sa.text("is_active"),
    ),
)

training_reference = sa.Table(
    "training_reference",
    metadata,
    sa.Column("id", _big_id(), primary_key=True, autoincrement=True),
    sa.Column(
        "profile_version",
        sa.String(64),
        sa.ForeignKey("reference_profiles.profile_version", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("feature", sa.String(256), nullable=False),
    sa.Column("position", sa.Integer(), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("n_rows", sa.BigInteger(), nullable=False),
    sa.Column("nan_count", sa.BigInteger(), nullable=False),
    sa.Column("importance", sa.Double(), nullable=True),
    sa.Column("summary", sa.LargeBinary(), nullable=False, comment="opaque, from the stats layer"),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("profile_version", "feature"),
)

reference_samples = sa.Table(
    "reference_samples",
    metadata,
    sa.Column(
        "profile_version",
        sa.String(64),
        sa.ForeignKey("reference_profiles.profile_version", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("data", sa.LargeBinary(), nullable=False, comment="opaque, from the stats layer"),
)

drift_reports = sa.Table(
    "drift_reports",
    metadata,
    sa.Column("id", _big_id(), primary_key=True, autoincrement=True),
    sa.Column("report_date", sa.Date(), nullable=False, unique=True),
    sa.Column("window_start", UTCDateTime(), nullable=False),
    sa.Column("window_end", UTCDateTime(), nullable=False),
    sa.Column("n_predictions", sa.BigInteger(), nullable=False),
    sa.Column("n_features_analyzed", sa.Integer(), nullable=False),
    sa.Column("n_features_drifted", sa.Integer(), nullable=False),
    sa.Column("drift_percentage", sa.Double(), nullable=True, comment="NULL for NO_DATA"),
    sa.Column("weighted_drift_percentage", sa.Double(), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("policy", sa.String(64), nullable=False),
    sa.Column("multivariate_score", sa.Double(), nullable=True),
    sa.Column("model_version", sa.String(64), nullable=True),
    sa.Column("profile_version", sa.String(64), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("details", _json(), nullable=True),
    sa.CheckConstraint(f"status IN {REPORT_STATUSES!r}", name="status"),
)


def _result_type(column: ResultColumn) -> sa.types.TypeEngine:
    if column.type == "text":
        return sa.String(column.length)
    return {
        "float": sa.Double(),
        "int": sa.BigInteger(),
        "bool": sa.Boolean(),
        "text_list": _json(),
    }[column.type]


# The per-feature columns come from the one declaration of a result's shape (stats/results.py).
# UNIQUE(report_date, feature) is also the index for "the results of one window": report_date
# is its leading column, so a separate report_date index would only slow the writes down.
feature_drift_results = sa.Table(
    "feature_drift_results",
    metadata,
    sa.Column("id", _big_id(), primary_key=True, autoincrement=True),
    sa.Column("report_date", sa.Date(), nullable=False),
    *(
        sa.Column(c.name, _result_type(c), nullable=c.nullable, comment=c.comment)
        for c in FEATURE_RESULT_COLUMNS
    ),
    sa.UniqueConstraint("report_date", "feature"),
)

#: Alert states of the outbox: `pending` (to deliver), `sent`, `failed` (retried on later
#: ticks until its attempts run out), `disabled` (no webhook configured: recorded, not sent).
WEBHOOK_STATUSES = ("pending", "sent", "failed", "disabled")
#: What an alert is about: the drift report's status, or the label-free performance estimate
#: below its bound. A day alerts at most once per kind (checked by `AlertIntent`, not by a
#: CHECK constraint, so that a new kind needs no table copy on SQLite).
ALERT_KINDS = ("drift", "estimated_performance")

drift_alerts = sa.Table(
    "drift_alerts",
    metadata,
    sa.Column("id", _big_id(), primary_key=True, autoincrement=True),
    sa.Column("report_date", sa.Date(), nullable=False, comment="a day alerts once per kind"),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("drift_percentage", sa.Double(), nullable=True),
    sa.Column("top_features", _json(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("webhook_status", sa.String(16), nullable=True),
    sa.Column("webhook_attempts", sa.Integer(), nullable=False),
    sa.Column("webhook_error", sa.Text(), nullable=True),
    # The outbox lease: a deliverer claims a row (owner + expiry) before posting it, so two
    # concurrent sensor ticks or CLI runs cannot both post one alert.
    sa.Column("lease_owner", sa.String(64), nullable=True),
    sa.Column("lease_expires_at", UTCDateTime(), nullable=True),
    sa.Column("delivered_at", UTCDateTime(), nullable=True),
    sa.Column(
        "kind",
        sa.String(32),
        nullable=False,
        comment="what the alert is about: drift, estimated_performance",
    ),
    sa.Column(
        "details",
        _json(),
        nullable=True,
        comment="the kind's numbers (estimated AUC, bound, band); NULL for drift",
    ),
    sa.UniqueConstraint("report_date", "kind"),
)

# Client retries: one row per `Idempotency-Key` that got an answer, written in the same
# transaction as that answer's predictions, so a key has its predictions or nothing.
idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("key", sa.String(128), primary_key=True, comment="the client's Idempotency-Key"),
    sa.Column("endpoint", sa.String(64), nullable=False),
    sa.Column(
        "body_sha256", sa.String(64), nullable=False, comment="hash of endpoint and request body"
    ),
    sa.Column("request_id", sa.String(128), nullable=False, comment="the first answer's id"),
    sa.Column("response", sa.Text(), nullable=False, comment="the first answer's JSON body"),
    sa.Column("created_at", UTCDateTime(), nullable=False, index=True),
)

# Observed outcomes of applications (1 = default), linked to predictions by application_id.
# One row per outcome received: the current outcome of an id is its row with superseded_at
# NULL (at most one, by the partial unique index); a changed outcome supersedes that row and
# adds a new one, so the history stays.
outcomes = sa.Table(
    "outcomes",
    metadata,
    sa.Column("id", _big_id(), primary_key=True, autoincrement=True),
    sa.Column("application_id", sa.String(APPLICATION_ID_MAX_LENGTH), nullable=False),
    sa.Column("outcome", sa.SmallInteger(), nullable=False, comment="1 = default"),
    sa.Column("observed_at", UTCDateTime(), nullable=False),
    sa.Column("received_at", UTCDateTime(), nullable=False, index=True),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column(
        "superseded_at",
        UTCDateTime(),
        nullable=True,
        comment="NULL for the current outcome of the id",
    ),
    sa.CheckConstraint("outcome IN (0, 1)", name="outcome"),
    sa.CheckConstraint(f"source IN {OUTCOME_SOURCES!r}", name="source"),
    sa.Index(
        "uq_outcomes_current",
        "application_id",
        unique=True,
        postgresql_where=sa.text("superseded_at IS NULL"),
        sqlite_where=sa.text("superseded_at IS NULL"),
    ),
)

# The view created by migration 0001, for Core queries (not part of `metadata`, so no
# create_all or autogenerate ever mistakes it for a table).
predictions_json_view = sa.table(
    "predictions_json",
    sa.column("id", sa.BigInteger()),
    sa.column("created_at", UTCDateTime()),
    sa.column("request_id", sa.String()),
    sa.column("model_version", sa.String()),
    sa.column("probability", sa.Double()),
    sa.column("decision", sa.String()),
    sa.column("features", sa.JSON()),
)
