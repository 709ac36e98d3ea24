"""Idempotency keys: a client's retry of an answered request gets the first answer back.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

One row per `Idempotency-Key` that was answered, with a hash of what was asked and the answer
itself; the API writes it in the same transaction as the answer's predictions, and its primary
key makes two concurrent requests with one key write one set of predictions. Written by hand,
types spelled out (see 0001).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(128), nullable=False, comment="the client's Idempotency-Key"),
        sa.Column("endpoint", sa.String(64), nullable=False),
        sa.Column(
            "body_sha256",
            sa.String(64),
            nullable=False,
            comment="hash of endpoint and request body",
        ),
        sa.Column(
            "request_id", sa.String(128), nullable=False, comment="the first answer's id"
        ),
        sa.Column("response", sa.Text(), nullable=False, comment="the first answer's JSON body"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_idempotency_keys"),
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_created_at", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
