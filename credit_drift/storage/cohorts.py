"""Which days' cohorts changed: the scoring days of the predictions whose current outcome was
received after a moment (what `late_outcomes_sensor` re-materializes realized_performance for).
"""

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from credit_drift.storage.schema import outcomes, predictions


def cohort_days_changed_after(engine: Engine, after: dt.datetime | None) -> list[dt.date]:
    """The UTC days (sorted) with at least one prediction whose application's current outcome
    was received after `after` (every day with an outcome when None). Reads one timestamp per
    such prediction, no feature vector."""
    p, o = predictions, outcomes
    on = sa.and_(o.c.application_id == p.c.application_id, o.c.superseded_at.is_(None))
    stmt = sa.select(p.c.created_at).distinct().select_from(p.join(o, on))
    if after is not None:
        if after.tzinfo is None or after.utcoffset() is None:
            raise ValueError(f"after {after.isoformat()} must be timezone-aware (UTC)")
        stmt = stmt.where(o.c.received_at > after)
    with engine.connect() as conn:
        created = conn.execute(stmt).scalars().all()
    return sorted({t.astimezone(dt.UTC).date() for t in created})
