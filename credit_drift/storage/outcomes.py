"""Observed outcomes (1 = the applicant defaulted), linked to predictions by application id.

`record_outcomes` writes a batch in one transaction, idempotently: an outcome sent again with
the same value and observation time changes nothing; a changed outcome for an id is an explicit
update (the current row is marked superseded and the new one added, so the history stays), or,
with `update=False`, a conflict that is reported and not written. An outcome whose id matches no
prediction is kept and counted (it may belong to a prediction not logged yet, or to a client's
mistake: `read_unknown_outcomes` lists them); nothing is dropped.

`read_cohort` is what performance metrics read: the predictions logged on one UTC day (the same
`[start, end)` as `DayWindow` and `read_predictions`) with the current outcome of each one's
application id, when it was observed by `as_of`. It reads no feature vector.
"""

import datetime as dt
import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine

from credit_drift.errors import CreditDriftError
from credit_drift.storage.schema import (
    APPLICATION_ID_MAX_LENGTH,
    OUTCOME_SOURCES,
    json_dumps,
    outcomes,
    predictions,
)
from credit_drift.storage.sql import (
    bulk_timestamp,
    timestamp_series,
    utc_now,
    write_transaction,
)
from credit_drift.storage.windows import DayWindow

# Names the PostgreSQL advisory lock that serializes outcome writers (SQLite: BEGIN IMMEDIATE).
_WRITE_LOCK = "outcomes"

COHORT_COLUMNS: tuple[str, ...] = (
    "request_id",
    "application_id",
    "created_at",
    "probability",
    "decision",
    "threshold",
    "model_version",
    "outcome",
    "observed_at",
)
UNKNOWN_COLUMNS: tuple[str, ...] = (
    "application_id",
    "outcome",
    "observed_at",
    "received_at",
    "source",
)


class OutcomeValidationError(CreditDriftError, ValueError):
    """An outcome row is malformed; the message names the row and the field."""


@dataclass(frozen=True)
class OutcomeRow:
    """One observed outcome: `outcome` 1 = default, 0 = repaid; `observed_at` timezone-aware
    (when the outcome became known); `source` one of OUTCOME_SOURCES."""

    application_id: str
    outcome: int
    observed_at: dt.datetime
    source: str


@dataclass(frozen=True)
class OutcomeWriteSummary:
    """What `record_outcomes` did. `unknown_ids`: distinct ids of the batch that match no
    prediction (kept all the same); `conflicts`: ids whose outcome changed while update=False
    (not written)."""

    inserted: int = 0
    unchanged: int = 0
    updated: int = 0
    unknown_ids: int = 0
    conflicts: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "inserted": self.inserted,
            "unchanged": self.unchanged,
            "updated": self.updated,
            "unknown_ids": self.unknown_ids,
            "conflicts": list(self.conflicts),
        }


# -- validation ---------------------------------------------------------------------------
def check_application_id(value: object, where: str) -> str:
    """A non-empty string of at most APPLICATION_ID_MAX_LENGTH characters without NUL (which
    PostgreSQL text cannot hold); OutcomeValidationError naming `where` otherwise."""
    if not isinstance(value, str):
        shown = repr(value)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        raise OutcomeValidationError(
            f"{where}: application_id must be a string, got {type(value).__name__} {shown}"
        )
    if not value.strip():
        raise OutcomeValidationError(f"{where}: application_id is empty")
    if len(value) > APPLICATION_ID_MAX_LENGTH:
        raise OutcomeValidationError(
            f"{where}: application_id has {len(value)} characters, at most "
            f"{APPLICATION_ID_MAX_LENGTH} are allowed"
        )
    if "\x00" in value:
        raise OutcomeValidationError(f"{where}: application_id contains a NUL character")
    return value


def _check_outcome(value: object, where: str) -> int:
    # bool is an int, but True/False as a default flag is ambiguous enough to refuse.
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        if isinstance(value, float) and not math.isnan(value) and value in (0.0, 1.0):
            return int(value)
        raise OutcomeValidationError(f"{where}: outcome must be 0 or 1, got {value!r}")
    if int(value) not in (0, 1):
        raise OutcomeValidationError(f"{where}: outcome must be 0 or 1, got {int(value)}")
    return int(value)


def _check_observed_at(value: object, where: str) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        raise OutcomeValidationError(
            f"{where}: observed_at must be a datetime, got {type(value).__name__} {value!r}"
        )
    if value.tzinfo is None or value.utcoffset() is None:
        raise OutcomeValidationError(
            f"{where}: observed_at {value.isoformat()} has no time zone; give one (UTC)"
        )
    # The database keeps microseconds: compare what will be stored.
    return value.astimezone(dt.UTC)


def _validate(rows: Sequence[OutcomeRow]) -> list[OutcomeRow]:
    """Validated, normalized rows, one per id (an id sent twice with the same value is kept
    once; with different values the batch is refused: which one holds is not ours to guess)."""
    out: dict[str, tuple[int, OutcomeRow]] = {}
    for i, row in enumerate(rows):
        if not isinstance(row, OutcomeRow):
            raise OutcomeValidationError(f"outcome row {i}: expected an OutcomeRow, got {row!r}")
        where = f"outcome row {i}"
        app_id = check_application_id(row.application_id, where)
        where = f"outcome row {i} (application_id {app_id!r})"
        clean = OutcomeRow(
            application_id=app_id,
            outcome=_check_outcome(row.outcome, where),
            observed_at=_check_observed_at(row.observed_at, where),
            source=row.source,
        )
        if clean.source not in OUTCOME_SOURCES:
            raise OutcomeValidationError(
                f"{where}: source {clean.source!r} is not one of {OUTCOME_SOURCES}"
            )
        first = out.get(app_id)
        if first is not None and (first[1].outcome, first[1].observed_at) != (
            clean.outcome,
            clean.observed_at,
        ):
            raise OutcomeValidationError(
                f"{where}: the same application_id has another outcome or observed_at in row "
                f"{first[0]} of this batch; send one outcome per id"
            )
        if first is None:
            out[app_id] = (i, clean)
    return [row for _, row in out.values()]


def _among(conn: Connection, column: sa.ColumnElement, values: Sequence) -> sa.ColumnElement:
    """`column IN values` as one bound parameter however many values (100,000 ids of a file):
    an array on PostgreSQL (`= ANY`), a JSON array unpacked by `json_each` on SQLite."""
    if conn.dialect.name == "postgresql":
        array = postgresql.ARRAY(column.type)
        return column == sa.any_(sa.bindparam(None, list(values), type_=array))
    unpacked = sa.func.json_each(sa.bindparam(None, json_dumps(list(values)), type_=sa.Text()))
    return column.in_(sa.select(sa.column("value")).select_from(unpacked))


# -- writing ------------------------------------------------------------------------------
def record_outcomes(
    engine: Engine,
    rows: Sequence[OutcomeRow],
    *,
    update: bool = True,
    same_transaction: Callable[[Connection, OutcomeWriteSummary], None] | None = None,
) -> OutcomeWriteSummary:
    """Record outcomes in one transaction (all or nothing); see the module docstring.

    A row counts as `unchanged` when its id's current outcome has the same value and
    observed_at, `updated` when either differs (update=True), `inserted` when the id had none.
    Raises OutcomeValidationError naming the row and field before anything is written.
    `same_transaction(conn, summary)` runs last in the same transaction (the API stores an
    idempotency key's answer there); if it raises, nothing is written.
    """
    clean = _validate(rows)
    duplicates_in_batch = len(rows) - len(clean)
    ids = [r.application_id for r in clean]
    now = utc_now()
    if not clean and same_transaction is None:
        return OutcomeWriteSummary(unchanged=duplicates_in_batch)
    t = outcomes
    with write_transaction(engine, lock=_WRITE_LOCK) as conn:
        current: dict[str, tuple[int, int, dt.datetime]] = {}
        if ids:
            for row in conn.execute(
                sa.select(t.c.id, t.c.application_id, t.c.outcome, t.c.observed_at).where(
                    _among(conn, t.c.application_id, ids), t.c.superseded_at.is_(None)
                )
            ):
                current[row.application_id] = (row.id, row.outcome, row.observed_at)
        new_rows, superseded, conflicts = [], [], []
        unchanged = duplicates_in_batch
        for r in clean:
            have = current.get(r.application_id)
            if have is not None and (have[1], have[2]) == (r.outcome, r.observed_at):
                unchanged += 1
                continue
            if have is not None:
                if not update:
                    conflicts.append(r.application_id)
                    continue
                superseded.append(have[0])
            new_rows.append(
                {
                    "application_id": r.application_id,
                    "outcome": r.outcome,
                    "observed_at": r.observed_at,
                    "received_at": now,
                    "source": r.source,
                    "superseded_at": None,
                }
            )
        if superseded:
            conn.execute(
                t.update().where(_among(conn, t.c.id, superseded)).values(superseded_at=now)
            )
        if new_rows:
            conn.execute(t.insert(), new_rows)
        known: set[str] = set()
        if ids:
            known.update(
                conn.execute(
                    sa.select(predictions.c.application_id)
                    .where(_among(conn, predictions.c.application_id, ids))
                    .distinct()
                ).scalars()
            )
        summary = OutcomeWriteSummary(
            inserted=len(new_rows) - len(superseded),
            unchanged=unchanged,
            updated=len(superseded),
            unknown_ids=len(set(ids) - known),
            conflicts=conflicts,
        )
        if same_transaction is not None:
            same_transaction(conn, summary)
    return summary


# -- reading ------------------------------------------------------------------------------
def _as_utc(value: dt.datetime, name: str) -> dt.datetime:
    if not isinstance(value, dt.datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise CreditDriftError(f"{name} {value!r} must be a timezone-aware datetime")
    return value.astimezone(dt.UTC)


def _utc_series(values: Sequence[dt.datetime | None]) -> pd.Series:
    # UTCDateTime returns aware UTC datetimes (None for NULL -> NaT).
    return pd.Series(pd.to_datetime(list(values), utc=True), dtype="datetime64[us, UTC]")


def read_cohort(
    engine: Engine, day: "dt.date | str | DayWindow", *, as_of: dt.datetime | None = None
) -> pd.DataFrame:
    """Every prediction created on `day` (UTC), in logging order, with its outcome.

    Columns (COHORT_COLUMNS): request_id, application_id (None when the client sent none),
    created_at (datetime64[us, UTC]), probability (float64), decision (as stored: "APPROVED" /
    "REFUSED"), threshold (float64), model_version, outcome (float64: 1.0 default, 0.0 repaid,
    NaN when the id has no current outcome observed at or before `as_of`; None = any time),
    observed_at (datetime64[us, UTC], NaT when outcome is NaN). Several predictions of one
    application id all get its outcome.
    """
    window = DayWindow.of(day)
    postgres = engine.dialect.name == "postgresql"
    p, o = predictions, outcomes
    on = sa.and_(o.c.application_id == p.c.application_id, o.c.superseded_at.is_(None))
    if as_of is not None:
        on = sa.and_(on, o.c.observed_at <= _as_utc(as_of, "as_of"))
    stmt = (
        sa.select(
            p.c.request_id,
            p.c.application_id,
            # Time stamps in bulk form: no Python datetime per row (100,000 rows a day).
            bulk_timestamp(p.c.created_at, postgres),
            p.c.probability,
            p.c.decision,
            p.c.threshold,
            p.c.model_version,
            o.c.outcome,
            bulk_timestamp(o.c.observed_at, postgres),
        )
        .select_from(p.outerjoin(o, on))
        .where(p.c.created_at >= window.start, p.c.created_at < window.end)
        .order_by(p.c.id)
    )
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    cols = list(zip(*rows, strict=True)) if rows else [()] * len(COHORT_COLUMNS)
    data = dict(zip(COHORT_COLUMNS, cols, strict=True))
    return pd.DataFrame(
        {
            "request_id": pd.Series(data["request_id"], dtype=object),
            "application_id": pd.Series(data["application_id"], dtype=object),
            "created_at": timestamp_series(data["created_at"], postgres),
            "probability": pd.Series(data["probability"], dtype="float64"),
            "decision": pd.Series(data["decision"], dtype=object),
            "threshold": pd.Series(data["threshold"], dtype="float64"),
            "model_version": pd.Series(data["model_version"], dtype=object),
            "outcome": pd.Series(np.asarray(data["outcome"], dtype=float), dtype="float64"),
            "observed_at": timestamp_series(data["observed_at"], postgres),
        },
        columns=list(COHORT_COLUMNS),
    )


def _unknown_clause():
    known = sa.select(predictions.c.id).where(
        predictions.c.application_id == outcomes.c.application_id
    )
    return sa.and_(outcomes.c.superseded_at.is_(None), ~sa.exists(known))


def count_unknown_outcomes(engine: Engine) -> int:
    """Current outcomes whose application id matches no logged prediction."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).select_from(outcomes).where(_unknown_clause())
            ).scalar_one()
        )


def read_unknown_outcomes(engine: Engine, limit: int = 100) -> pd.DataFrame:
    """The most recently received current outcomes whose id matches no prediction (at most
    `limit`), columns UNKNOWN_COLUMNS: what a user checks after loading a file."""
    if limit < 1:
        raise CreditDriftError(f"limit must be a positive number of rows, got {limit}")
    t = outcomes
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(*(t.c[c] for c in UNKNOWN_COLUMNS))
            .where(_unknown_clause())
            .order_by(t.c.received_at.desc(), t.c.id.desc())
            .limit(limit)
        ).all()
    cols = list(zip(*rows, strict=True)) if rows else [()] * len(UNKNOWN_COLUMNS)
    data = dict(zip(UNKNOWN_COLUMNS, cols, strict=True))
    return pd.DataFrame(
        {
            "application_id": pd.Series(data["application_id"], dtype=object),
            "outcome": pd.Series(data["outcome"], dtype="int64"),
            "observed_at": _utc_series(data["observed_at"]),
            "received_at": _utc_series(data["received_at"]),
            "source": pd.Series(data["source"], dtype=object),
        },
        columns=list(UNKNOWN_COLUMNS),
    )


def read_outcome_history(engine: Engine, application_id: str) -> pd.DataFrame:
    """Every outcome received for one id, oldest first (superseded_at NaT on the current one)."""
    t = outcomes
    columns = ("outcome", "observed_at", "received_at", "source", "superseded_at")
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(*(t.c[c] for c in columns))
            .where(t.c.application_id == application_id)
            .order_by(t.c.id)
        ).all()
    cols = list(zip(*rows, strict=True)) if rows else [()] * len(columns)
    data = dict(zip(columns, cols, strict=True))
    return pd.DataFrame(
        {
            "outcome": pd.Series(data["outcome"], dtype="int64"),
            "observed_at": _utc_series(data["observed_at"]),
            "received_at": _utc_series(data["received_at"]),
            "source": pd.Series(data["source"], dtype=object),
            "superseded_at": _utc_series(data["superseded_at"]),
        },
        columns=list(columns),
    )


def latest_outcome_change(engine: Engine) -> dt.datetime | None:
    """When outcomes last changed (the latest received_at; an update's new row carries it),
    None when there are none: a cursor for re-materializing cohorts when late outcomes
    arrive."""
    with engine.connect() as conn:
        return _latest(conn)


def _latest(conn: Connection) -> dt.datetime | None:
    value = conn.execute(sa.select(sa.func.max(outcomes.c.received_at))).scalar_one()
    if value is None:
        return None
    # max() loses the column type on SQLite (text comes back): parse it the same way.
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
