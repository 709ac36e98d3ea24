"""Alert outbox: a delivery lease and the delivery time on drift_alerts.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02

The drift report now writes its alert in the same transaction as the report (an outbox), and
whoever delivers it first claims the row with a lease (owner + expiry), so that concurrent
deliverers cannot post one alert twice and a deliverer that dies mid-way is replaced once its
lease expires. Written by hand, types spelled out (see 0001).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("drift_alerts") as batch:
        batch.add_column(sa.Column("lease_owner", sa.String(64), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("drift_alerts") as batch:
        batch.drop_column("delivered_at")
        batch.drop_column("lease_expires_at")
        batch.drop_column("lease_owner")
