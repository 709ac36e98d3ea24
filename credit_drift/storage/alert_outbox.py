"""The alert outbox (`drift_alerts`): one row per alerting day and kind, written in the same
transaction as the day's result that raised it when there is one (the drift report), delivered
by whoever claims it first.

Kinds (`schema.ALERT_KINDS`): `drift` (the drift report's status; `drift_percentage` and
`top_features` say why) and `estimated_performance` (the label-free estimate; `details` holds
the estimated AUC, its bound and band).

Exactly once, as far as a database can make it:
* a day alerts at most once per kind: UNIQUE(report_date, kind), and the insert does nothing on
  conflict (so concurrent writers of one day and kind write one row between them);
* a row is posted only by the deliverer holding its lease (`claim_deliverable` sets owner and
  expiry in one conditional UPDATE, so of two concurrent deliverers one gets the row and the
  other nothing); a deliverer that dies mid-way loses the lease when it expires and the row is
  delivered by the next one. That last case is the one window where a webhook can receive an
  alert twice (posted, then the process died before recording it): the body carries the alert's
  id for the receiver to deduplicate.
"""

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from credit_drift.storage.schema import ALERT_KINDS, drift_alerts
from credit_drift.storage.sql import insert_for, plain, utc_now

ALERT_COLUMNS: tuple[str, ...] = tuple(c.name for c in drift_alerts.columns)


@dataclass(frozen=True)
class AlertIntent:
    """The alert a day raises. deliver: a webhook is configured (the row starts `pending`);
    otherwise it is recorded as `disabled`. kind: what it is about (`ALERT_KINDS`); details:
    that kind's numbers (JSON-ready), None for drift."""

    report_date: dt.date
    severity: str
    drift_percentage: float | None
    top_features: Sequence[str]
    deliver: bool
    kind: str = "drift"
    details: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.kind not in ALERT_KINDS:
            raise ValueError(
                f"unknown alert kind {self.kind!r}: expected one of {', '.join(ALERT_KINDS)}"
            )


@dataclass(frozen=True)
class StoredAlert:
    """An alert row as the deliverer and the sensor use it."""

    id: int
    report_date: dt.date
    severity: str
    drift_percentage: float | None
    top_features: tuple[str, ...]
    webhook_status: str | None
    webhook_attempts: int
    kind: str = "drift"
    details: Mapping[str, Any] | None = None


def insert_alert(conn: Connection, intent: AlertIntent, *, created_at: dt.datetime) -> bool:
    """Record the day's alert inside the caller's transaction. False (and nothing written)
    when that day already raised an alert of that kind: the UNIQUE(report_date, kind)
    constraint decides."""
    stmt = (
        insert_for(conn, drift_alerts)
        .values(
            report_date=intent.report_date,
            kind=intent.kind,
            severity=intent.severity,
            status="open",
            drift_percentage=plain(intent.drift_percentage),
            top_features=[str(v) for v in intent.top_features],
            created_at=created_at,
            webhook_status="pending" if intent.deliver else "disabled",
            webhook_attempts=0,
            webhook_error=None,
            details=sa.null() if intent.details is None else dict(intent.details),
        )
        .on_conflict_do_nothing(index_elements=["report_date", "kind"])
        .returning(drift_alerts.c.id)
    )
    return conn.execute(stmt).first() is not None


def record_alert(engine: Engine, intent: AlertIntent) -> bool:
    """`insert_alert` in a transaction of its own."""
    with engine.begin() as conn:
        return insert_alert(conn, intent, created_at=utc_now())


def _stored(row: Any) -> StoredAlert:
    return StoredAlert(
        id=int(row.id),
        report_date=row.report_date,
        severity=row.severity,
        drift_percentage=row.drift_percentage,
        top_features=tuple(row.top_features or ()),
        webhook_status=row.webhook_status,
        webhook_attempts=int(row.webhook_attempts),
        kind=row.kind,
        details=row.details,
    )


def alerts_after(engine: Engine, after_id: int, limit: int) -> list[StoredAlert]:
    """Alerts with an id above `after_id`, oldest first (the sensor's cursor walk)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(drift_alerts)
            .where(drift_alerts.c.id > after_id)
            .order_by(drift_alerts.c.id)
            .limit(limit)
        ).all()
    return [_stored(r) for r in rows]


def claim_deliverable(
    engine: Engine,
    owner: str,
    *,
    lease: dt.timedelta,
    max_attempts: int,
    limit: int,
    now: dt.datetime | None = None,
) -> list[StoredAlert]:
    """Claim up to `limit` alerts of any kind to post (pending, or failed with attempts left;
    oldest day first, then oldest alert) whose lease is free or expired. Each claim is one
    conditional UPDATE: a row another deliverer claimed first is skipped, never shared."""
    now = now or utc_now()
    deliverable = (
        drift_alerts.c.webhook_status.in_(("pending", "failed"))
        & (drift_alerts.c.webhook_attempts < max_attempts)
        & (drift_alerts.c.lease_expires_at.is_(None) | (drift_alerts.c.lease_expires_at < now))
    )
    with engine.connect() as conn:
        candidates = conn.execute(
            sa.select(drift_alerts.c.id)
            .where(deliverable)
            .order_by(drift_alerts.c.report_date, drift_alerts.c.id)
            .limit(limit)
        ).scalars()
        candidate_ids = list(candidates)
    claimed = []
    for alert_id in candidate_ids:
        with engine.begin() as conn:
            won = conn.execute(
                sa.update(drift_alerts)
                .where(drift_alerts.c.id == alert_id, deliverable)
                .values(lease_owner=owner, lease_expires_at=now + lease)
            ).rowcount
            if won == 1:
                row = conn.execute(
                    sa.select(drift_alerts).where(drift_alerts.c.id == alert_id)
                ).one()
                claimed.append(_stored(row))
    return claimed


def finish_delivery(
    engine: Engine, alert_id: int, owner: str, *, delivered: bool, attempts: int, error: str | None
) -> bool:
    """Record a delivery made under `owner`'s lease and release the lease: `attempts` more
    attempts, `sent` (with the time) or `failed` (with the error). False when the lease was
    lost meanwhile (expired and taken by another deliverer): nothing is written."""
    now = utc_now()
    with engine.begin() as conn:
        return (
            conn.execute(
                sa.update(drift_alerts)
                .where(drift_alerts.c.id == alert_id, drift_alerts.c.lease_owner == owner)
                .values(
                    webhook_status="sent" if delivered else "failed",
                    webhook_attempts=drift_alerts.c.webhook_attempts + int(attempts),
                    webhook_error=None if delivered else error,
                    delivered_at=now if delivered else None,
                    lease_owner=None,
                    lease_expires_at=None,
                )
            ).rowcount
            == 1
        )


def update_alert_webhook(
    engine: Engine,
    report_date: dt.date,
    *,
    webhook_status: str,
    attempts: int,
    error: str | None = None,
    kind: str = "drift",
) -> None:
    """Set the delivery state of a day's alert of `kind` by hand (an operator re-queueing an
    alert as `pending`, or a test seeding a failure); LookupError when there is no such alert."""
    with engine.begin() as conn:
        result = conn.execute(
            sa.update(drift_alerts)
            .where(drift_alerts.c.report_date == report_date, drift_alerts.c.kind == kind)
            .values(
                webhook_status=webhook_status, webhook_attempts=int(attempts), webhook_error=error
            )
        )
        if result.rowcount == 0:
            raise LookupError(f"no {kind} alert stored for window {report_date}")


def read_alerts(engine: Engine) -> pd.DataFrame:
    """Every alert, by report_date then kind (columns `ALERT_COLUMNS`)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(drift_alerts).order_by(drift_alerts.c.report_date, drift_alerts.c.kind)
        ).all()
    frame = pd.DataFrame.from_records(rows, columns=list(ALERT_COLUMNS))
    for col in ("created_at", "lease_expires_at", "delivered_at"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame.astype({"drift_percentage": "float64", "webhook_attempts": "int64"})
