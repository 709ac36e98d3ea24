"""Initial schema: prediction log, API log, reference profile, drift reports, alerts, JSON view.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Written by hand to match `credit_drift.storage.schema.metadata` (a test runs Alembic's
compare_metadata against it on SQLite and PostgreSQL). Types are spelled out here instead of
imported from the live schema module, so this revision stays what it was when later ones change
the metadata. Nothing names a schema: tables, indexes and the view land in the connection's
current schema (PostgreSQL search_path).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json():
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _big_id():
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts():
    return sa.DateTime(timezone=True)


def _vector():
    # float8[] on PostgreSQL (NaN as the float8 'NaN'), JSON text array on SQLite.
    return sa.Text().with_variant(postgresql.ARRAY(postgresql.DOUBLE_PRECISION()), "postgresql")


# The feature vector rebuilt as one JSON object {feature name: value}, NaN -> null, with the raw
# categorical strings (unseen categories included) merged over their codes. For people and
# ad-hoc SQL only: the pipeline reads the packed vector.
PREDICTIONS_JSON_POSTGRESQL = """
CREATE VIEW predictions_json AS
SELECT p.id, p.created_at, p.request_id, p.model_version, p.probability, p.decision,
       COALESCE(f.features, '{}'::jsonb) || COALESCE(p.categorical_values, '{}'::jsonb)
           AS features
FROM predictions AS p
JOIN feature_schemas AS s ON s.version = p.feature_schema_version
CROSS JOIN LATERAL (
    SELECT jsonb_object_agg(
               u.name,
               CASE WHEN u.value = 'NaN'::float8 OR u.value IS NULL THEN 'null'::jsonb
                    ELSE to_jsonb(u.value) END
           ) AS features
    FROM unnest(ARRAY(SELECT jsonb_array_elements_text(s.feature_names)), p.features)
         AS u(name, value)
    WHERE u.name IS NOT NULL
) AS f
"""

PREDICTIONS_JSON_SQLITE = """
CREATE VIEW predictions_json AS
SELECT p.id, p.created_at, p.request_id, p.model_version, p.probability, p.decision,
       json_patch(
           -- p.features -> i is the element's JSON text as stored: full float precision
           -- (json_each's value would be re-printed with 15 digits).
           (SELECT json_group_object(n.value, json(p.features -> n.key))
              FROM json_each(s.feature_names) AS n),
           COALESCE(p.categorical_values, '{}')
       ) AS features
FROM predictions AS p
JOIN feature_schemas AS s ON s.version = p.feature_schema_version
"""


def upgrade() -> None:
    op.create_table(
        "feature_schemas",
        sa.Column("version", sa.String(64), nullable=False, comment="FeatureSchema.version hash"),
        sa.Column(
            "feature_names", _json(), nullable=False, comment="JSON array, in vector order"
        ),
        sa.Column("spec", _json(), nullable=False, comment="FeatureSchema.to_json() content"),
        sa.Column("created_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("version", name="pk_feature_schemas"),
    )
    op.create_table(
        "predictions",
        sa.Column("id", _big_id(), autoincrement=True, nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("feature_schema_version", sa.String(64), nullable=False),
        sa.Column("features", _vector(), nullable=False),
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
        sa.PrimaryKeyConstraint("id", name="pk_predictions"),
        sa.ForeignKeyConstraint(
            ["feature_schema_version"],
            ["feature_schemas.version"],
            name="fk_predictions_feature_schema_version_feature_schemas",
        ),
        sa.UniqueConstraint("request_id", name="uq_predictions_request_id"),
        sa.CheckConstraint(
            "source IN ('api', 'replay', 'bulk')", name="ck_predictions_source"
        ),
    )
    op.create_index("ix_predictions_created_at", "predictions", ["created_at"])

    op.create_table(
        "api_logs",
        sa.Column("id", _big_id(), autoincrement=True, nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("endpoint", sa.String(256), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("latency_ms", sa.Double(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("n_items", sa.Integer(), nullable=False),
        sa.Column("client", sa.String(256), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_logs"),
    )
    op.create_index("ix_api_logs_created_at", "api_logs", ["created_at"])

    op.create_table(
        "reference_profiles",
        sa.Column("profile_version", sa.String(64), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=True),
        sa.Column("feature_schema_version", sa.String(64), nullable=False),
        sa.Column("n_rows", sa.BigInteger(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("profile_version", name="pk_reference_profiles"),
        sa.ForeignKeyConstraint(
            ["feature_schema_version"],
            ["feature_schemas.version"],
            name="fk_reference_profiles_feature_schema_version_feature_schemas",
        ),
    )
    op.create_index(
        "uq_reference_profiles_one_active",
        "reference_profiles",
        ["is_active"],
        unique=True,
        postgresql_where=sa.text("is_active"),
        sqlite_where=sa.text("is_active"),
    )

    op.create_table(
        "training_reference",
        sa.Column("id", _big_id(), autoincrement=True, nullable=False),
        sa.Column("profile_version", sa.String(64), nullable=False),
        sa.Column("feature", sa.String(256), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("n_rows", sa.BigInteger(), nullable=False),
        sa.Column("nan_count", sa.BigInteger(), nullable=False),
        sa.Column("importance", sa.Double(), nullable=True),
        sa.Column(
            "summary", sa.LargeBinary(), nullable=False, comment="opaque, from the stats layer"
        ),
        sa.Column("created_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_training_reference"),
        sa.ForeignKeyConstraint(
            ["profile_version"],
            ["reference_profiles.profile_version"],
            name="fk_training_reference_profile_version_reference_profiles",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "profile_version", "feature", name="uq_training_reference_profile_version_feature"
        ),
    )

    op.create_table(
        "reference_samples",
        sa.Column("profile_version", sa.String(64), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False, comment="opaque, from the stats layer"),
        sa.PrimaryKeyConstraint("profile_version", "name", name="pk_reference_samples"),
        sa.ForeignKeyConstraint(
            ["profile_version"],
            ["reference_profiles.profile_version"],
            name="fk_reference_samples_profile_version_reference_profiles",
            ondelete="CASCADE",
        ),
    )

    op.create_table(
        "drift_reports",
        sa.Column("id", _big_id(), autoincrement=True, nullable=False),
        sa.Column("report_date", sa.Date(), nullable=False),
        sa.Column("window_start", _ts(), nullable=False),
        sa.Column("window_end", _ts(), nullable=False),
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
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.Column("details", _json(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_drift_reports"),
        sa.UniqueConstraint("report_date", name="uq_drift_reports_report_date"),
        sa.CheckConstraint(
            "status IN ('OK', 'WARNING', 'ALERT', 'NO_DATA')", name="ck_drift_reports_status"
        ),
    )

    op.create_table(
        "feature_drift_results",
        sa.Column("id", _big_id(), autoincrement=True, nullable=False),
        sa.Column("report_date", sa.Date(), nullable=False),
        sa.Column("feature", sa.String(256), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("test", sa.String(32), nullable=False),
        sa.Column("statistic", sa.Double(), nullable=True),
        sa.Column("p_value", sa.Double(), nullable=True),
        sa.Column("p_adjusted", sa.Double(), nullable=True),
        sa.Column("effect_size", sa.Double(), nullable=True),
        sa.Column("effect_metric", sa.String(32), nullable=True),
        sa.Column("drifted", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(32), nullable=True, comment="why it drifted, '' if not"),
        sa.Column("psi", sa.Double(), nullable=True),
        sa.Column("wasserstein_norm", sa.Double(), nullable=True),
        sa.Column("ref_nan_share", sa.Double(), nullable=True),
        sa.Column("cur_nan_share", sa.Double(), nullable=True),
        sa.Column("unseen_categories", _json(), nullable=True),
        sa.Column("unseen_share", sa.Double(), nullable=True),
        sa.Column("importance", sa.Double(), nullable=True),
        sa.Column("n_current", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_feature_drift_results"),
        sa.UniqueConstraint(
            "report_date", "feature", name="uq_feature_drift_results_report_date_feature"
        ),
    )

    op.create_table(
        "drift_alerts",
        sa.Column("id", _big_id(), autoincrement=True, nullable=False),
        sa.Column("report_date", sa.Date(), nullable=False, comment="a window alerts once"),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("drift_percentage", sa.Double(), nullable=True),
        sa.Column("top_features", _json(), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("webhook_status", sa.String(16), nullable=True),
        sa.Column("webhook_attempts", sa.Integer(), nullable=False),
        sa.Column("webhook_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_drift_alerts"),
        sa.UniqueConstraint("report_date", name="uq_drift_alerts_report_date"),
    )

    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(PREDICTIONS_JSON_POSTGRESQL)
    elif dialect == "sqlite":
        op.execute(PREDICTIONS_JSON_SQLITE)
    else:
        raise NotImplementedError(f"no predictions_json view for dialect {dialect!r}")


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS predictions_json")
    op.drop_table("drift_alerts")
    op.drop_table("feature_drift_results")
    op.drop_table("drift_reports")
    op.drop_table("reference_samples")
    op.drop_table("training_reference")
    op.drop_index("uq_reference_profiles_one_active", table_name="reference_profiles")
    op.drop_table("reference_profiles")
    op.drop_table("api_logs")
    op.drop_index("ix_predictions_created_at", table_name="predictions")
    op.drop_table("predictions")
    op.drop_table("feature_schemas")
