"""What the drift pipeline persists per day: the per-feature results (`feature_drift_results`)
and the day's report (`drift_reports`), written with the day's alert when it has one.

Every write is idempotent per day: re-materializing a day replaces its rows, never duplicates
them, and two writers of one day run one after the other (`sql.write_transaction`) instead of
one failing on a unique constraint. The report and its alert are written in one transaction
(the alert outbox): a report that says ALERT always has its alert row.
"""

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from credit_drift.stats.results import FEATURE_RESULT_COLUMNS, FEATURE_RESULT_NAMES, names_of
from credit_drift.storage.alert_outbox import AlertIntent, insert_alert
from credit_drift.storage.schema import REPORT_STATUSES, drift_reports, feature_drift_results
from credit_drift.storage.sql import insert_for, plain, utc_now, write_transaction

_REQUIRED = tuple(c.name for c in FEATURE_RESULT_COLUMNS if not c.nullable)
_PANDAS_TYPES = {"float": "float64", "bool": "bool"}


def _day_lock(report_date: dt.date) -> str:
    return f"credit_drift/day/{report_date.isoformat()}"


# -- per-feature results ------------------------------------------------------------------
def _records(report_date: dt.date, results: pd.DataFrame) -> list[dict[str, Any]]:
    missing = [c for c in _REQUIRED if c not in results.columns]
    if missing:
        raise ValueError(f"feature drift frame lacks required columns {missing}")
    # Columns beyond the declared ones (a caller's own annotations) are not stored.
    present = [c for c in FEATURE_RESULT_NAMES if c in results.columns]
    records = []
    seen: set[str] = set()
    for item in results[present].to_dict(orient="records"):
        rec = {c: plain(item.get(c)) for c in FEATURE_RESULT_NAMES}
        if rec["feature"] in seen:
            raise ValueError(f"feature {rec['feature']!r} appears twice in the window's results")
        seen.add(rec["feature"])
        if rec["drifted"] is None:
            raise ValueError(f"feature {rec['feature']!r}: drifted is missing")
        rec["drifted"] = bool(rec["drifted"])
        for name in names_of("text_list"):
            value = item.get(name)
            is_missing = value is None or (isinstance(value, float) and math.isnan(value))
            rec[name] = None if is_missing else [str(v) for v in value]
        for name in names_of("int"):
            if rec[name] is not None:
                rec[name] = int(rec[name])
        rec["report_date"] = report_date
        records.append(rec)
    return records


def replace_feature_drift(engine: Engine, report_date: dt.date, results: pd.DataFrame) -> int:
    """Replace the day's per-feature results (delete, then insert, in one transaction holding
    the day's lock). `results`: a frame with the declared columns (at least the non-nullable
    ones: feature, kind, test, drifted)."""
    records = _records(report_date, results)
    with write_transaction(engine, lock=_day_lock(report_date)) as conn:
        conn.execute(
            sa.delete(feature_drift_results).where(
                feature_drift_results.c.report_date == report_date
            )
        )
        if records:
            conn.execute(feature_drift_results.insert(), records)
    return len(records)


def read_feature_drift(engine: Engine, report_date: dt.date) -> pd.DataFrame:
    """The day's per-feature results (columns `FEATURE_RESULT_NAMES`), by feature name."""
    cols = [feature_drift_results.c[c] for c in FEATURE_RESULT_NAMES]
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(*cols)
            .where(feature_drift_results.c.report_date == report_date)
            .order_by(feature_drift_results.c.feature)
        ).all()
    frame = pd.DataFrame.from_records(rows, columns=list(FEATURE_RESULT_NAMES))
    return frame.astype(
        {c.name: _PANDAS_TYPES[c.type] for c in FEATURE_RESULT_COLUMNS if c.type in _PANDAS_TYPES}
    )


# -- drift reports ------------------------------------------------------------------------
@dataclass(frozen=True)
class DriftReportRow:
    """A day's drift report. Percentages are 0-100. A NO_DATA day has no drift percentage
    (None), never a fake 0; every other status must have one."""

    report_date: dt.date
    window_start: dt.datetime
    window_end: dt.datetime
    n_predictions: int
    n_features_analyzed: int
    n_features_drifted: int
    drift_percentage: float | None
    status: str
    policy: str
    weighted_drift_percentage: float | None = None
    multivariate_score: float | None = None
    model_version: str | None = None
    profile_version: str | None = None
    details: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.status not in REPORT_STATUSES:
            raise ValueError(f"drift report status {self.status!r} is not one of {REPORT_STATUSES}")
        for name in ("drift_percentage", "weighted_drift_percentage"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 100:
                raise ValueError(f"{name}={value} is not a percentage in [0, 100]")
        if self.status == "NO_DATA" and self.drift_percentage is not None:
            raise ValueError("a NO_DATA report has no drift_percentage (pass None)")
        if self.status != "NO_DATA" and self.drift_percentage is None:
            raise ValueError(f"a {self.status} report needs a drift_percentage")
        if self.n_features_drifted > self.n_features_analyzed:
            raise ValueError(
                f"n_features_drifted={self.n_features_drifted} > "
                f"n_features_analyzed={self.n_features_analyzed}"
            )


_REPORT_FIELDS = tuple(f.name for f in fields(DriftReportRow))
DRIFT_REPORT_COLUMNS: tuple[str, ...] = (*_REPORT_FIELDS, "created_at", "updated_at")


def upsert_drift_report(
    engine: Engine, row: DriftReportRow, *, alert: AlertIntent | None = None
) -> bool:
    """Insert the day's report, or replace the one stored for its report_date (created_at kept,
    updated_at refreshed); with `alert`, record the day's alert in the same transaction. Returns
    whether a new alert row was written (False: no alert given, or the day already alerted)."""
    values = {name: plain(getattr(row, name)) for name in _REPORT_FIELDS}
    values["details"] = dict(row.details) if row.details is not None else None
    now = utc_now()
    with write_transaction(engine, lock=_day_lock(row.report_date)) as conn:
        stmt = insert_for(conn, drift_reports).values(**values, created_at=now, updated_at=now)
        updates = {name: stmt.excluded[name] for name in _REPORT_FIELDS if name != "report_date"}
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["report_date"], set_={**updates, "updated_at": now}
            )
        )
        return alert is not None and insert_alert(conn, alert, created_at=now)


def _report_frame(rows) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(rows, columns=list(DRIFT_REPORT_COLUMNS))
    for col in ("window_start", "window_end", "created_at", "updated_at"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    floats = ["drift_percentage", "weighted_drift_percentage", "multivariate_score"]
    return frame.astype(dict.fromkeys(floats, "float64"))


def read_drift_reports(
    engine: Engine, first_date: dt.date | None = None, last_date: dt.date | None = None
) -> pd.DataFrame:
    """Reports by report_date (inclusive bounds; all when omitted), columns
    `DRIFT_REPORT_COLUMNS`. A NO_DATA day shows NaN drift percentages."""
    stmt = sa.select(*[drift_reports.c[c] for c in DRIFT_REPORT_COLUMNS])
    if first_date is not None:
        stmt = stmt.where(drift_reports.c.report_date >= first_date)
    if last_date is not None:
        stmt = stmt.where(drift_reports.c.report_date <= last_date)
    with engine.connect() as conn:
        rows = conn.execute(stmt.order_by(drift_reports.c.report_date)).all()
    return _report_frame(rows)


def read_drift_report(engine: Engine, report_date: dt.date) -> DriftReportRow | None:
    """The stored report of one day, or None."""
    with engine.connect() as conn:
        row = (
            conn.execute(
                sa.select(*[drift_reports.c[c] for c in _REPORT_FIELDS]).where(
                    drift_reports.c.report_date == report_date
                )
            )
            .mappings()
            .first()
        )
    return None if row is None else DriftReportRow(**row)
