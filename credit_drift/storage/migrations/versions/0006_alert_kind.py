"""Alert kinds: one outbox row per day AND kind in drift_alerts (drift, estimated_performance).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03

`kind` says what an alert is about: `drift` (the drift report's; every existing row) or
`estimated_performance` (the label-free estimate below CREDIT_DRIFT_MIN_ESTIMATED_AUC). The
uniqueness that makes an alert exactly-once becomes UNIQUE(report_date, kind): a day can raise
one alert of each kind. `details` holds the numbers of a kind that has no column of its own
(the estimated AUC, its bound and band). Written by hand, types spelled out (see 0001).

Downgrade refuses while a non-drift alert is stored: 0005's code reads every row as a drift
alert (and one day could then hold two rows under a UNIQUE(report_date) it cannot have). The
error names the rows and the statement that deletes them, for an operator who accepts losing
them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json():
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    # Plain ADD COLUMNs first (a NOT NULL column needs its default on SQLite): every existing
    # row is a drift alert. The default is then dropped, so every writer names its kind.
    op.add_column(
        "drift_alerts",
        sa.Column(
            "kind",
            sa.String(32),
            nullable=False,
            server_default="drift",
            comment="what the alert is about: drift, estimated_performance",
        ),
    )
    op.add_column(
        "drift_alerts",
        sa.Column(
            "details",
            _json(),
            nullable=True,
            comment="the kind's numbers (estimated AUC, bound, band); NULL for drift",
        ),
    )
    # SQLite: one table copy (rows, ids and the other constraints kept); PostgreSQL: ALTERs.
    with op.batch_alter_table("drift_alerts") as batch:
        batch.alter_column(
            "kind",
            existing_type=sa.String(32),
            existing_nullable=False,
            server_default=None,
            existing_comment="what the alert is about: drift, estimated_performance",
        )
        batch.alter_column(
            "report_date",
            existing_type=sa.Date(),
            existing_nullable=False,
            comment="a day alerts once per kind",
            existing_comment="a window alerts once",
        )
        batch.drop_constraint("uq_drift_alerts_report_date", type_="unique")
        batch.create_unique_constraint("uq_drift_alerts_report_date_kind", ["report_date", "kind"])


def downgrade() -> None:
    other = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT kind, count(*) AS n, min(report_date) AS first FROM drift_alerts "
                "WHERE kind <> 'drift' GROUP BY kind ORDER BY kind"
            )
        )
        .all()
    )
    if other:
        found = ", ".join(f"{r.n} {r.kind} (first on {r.first})" for r in other)
        raise RuntimeError(
            f"cannot downgrade below 0006: drift_alerts holds alerts that are not about drift "
            f"({found}), which revision 0005 would read as drift alerts. Delete them first if "
            "losing them is acceptable: DELETE FROM drift_alerts WHERE kind <> 'drift'"
        )
    with op.batch_alter_table("drift_alerts") as batch:
        batch.drop_constraint("uq_drift_alerts_report_date_kind", type_="unique")
        batch.create_unique_constraint("uq_drift_alerts_report_date", ["report_date"])
        batch.alter_column(
            "report_date",
            existing_type=sa.Date(),
            existing_nullable=False,
            comment="a window alerts once",
            existing_comment="a day alerts once per kind",
        )
        batch.drop_column("details")
        batch.drop_column("kind")
