"""Outcomes: the application id on predictions, and the outcomes table (with its history).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

`predictions.application_id` (NULL when the client sent none; existing rows keep NULL) links a
prediction to the outcome of the same application. `outcomes` holds one row per outcome
received: the current outcome of an id is its row with `superseded_at IS NULL` (a partial unique
index keeps it to one); a changed outcome marks that row superseded and adds a new one, so the
history is kept. Written by hand, types spelled out (see 0001). Adding a NULL column rewrites no
row on either database.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _big_id():
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts():
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    # A plain ADD COLUMN (not a batch table copy): SQLite supports it for a NULL column, and
    # the predictions_json view that depends on the table stays as it is.
    op.add_column(
        "predictions",
        sa.Column(
            "application_id",
            sa.String(128),
            nullable=True,
            comment="the client's application id (e.g. SK_ID_CURR); links outcomes",
        ),
    )
    op.create_index("ix_predictions_application_id", "predictions", ["application_id"])
    op.create_table(
        "outcomes",
        sa.Column("id", _big_id(), autoincrement=True, nullable=False),
        sa.Column("application_id", sa.String(128), nullable=False),
        sa.Column("outcome", sa.SmallInteger(), nullable=False, comment="1 = default"),
        sa.Column("observed_at", _ts(), nullable=False),
        sa.Column("received_at", _ts(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column(
            "superseded_at",
            _ts(),
            nullable=True,
            comment="NULL for the current outcome of the id",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_outcomes"),
        sa.CheckConstraint("outcome IN (0, 1)", name="ck_outcomes_outcome"),
        sa.CheckConstraint(
            "source IN ('api', 'file', 'simulator')", name="ck_outcomes_source"
        ),
    )
    op.create_index(
        "uq_outcomes_current",
        "outcomes",
        ["application_id"],
        unique=True,
        postgresql_where=sa.text("superseded_at IS NULL"),
        sqlite_where=sa.text("superseded_at IS NULL"),
    )
    op.create_index("ix_outcomes_received_at", "outcomes", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_outcomes_received_at", table_name="outcomes")
    op.drop_index("uq_outcomes_current", table_name="outcomes")
    op.drop_table("outcomes")
    op.drop_index("ix_predictions_application_id", table_name="predictions")
    if op.get_bind().dialect.name == "sqlite":
        # SQLite >= 3.35 drops a column in place; a batch table copy would trip on the view.
        op.execute("ALTER TABLE predictions DROP COLUMN application_id")
    else:
        op.drop_column("predictions", "application_id")
