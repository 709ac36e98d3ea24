"""What the drift pipeline persists: the reference profile, per-feature results, the per-window
drift report and alerts.

Storage treats the reference profile's per-feature summaries and samples as opaque bytes made by
the stats layer; it only checks that every feature of the schema is summarized exactly once. Every
write is idempotent per window: re-materializing a day replaces its rows, it never duplicates
them, and a window raises at most one alert (UNIQUE(report_date), enforced by the database, so two
concurrent sensors cannot both alert).
"""

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from credit_drift.features import FeatureSchema
from credit_drift.storage.predictions import register_feature_schema
from credit_drift.storage.schema import (
    REPORT_STATUSES,
    drift_alerts,
    drift_reports,
    feature_drift_results,
    reference_profiles,
    reference_samples,
    training_reference,
)


def _insert(conn: Connection, table: sa.Table):
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _plain(value: Any) -> Any:
    """numpy scalars -> Python; NaN -> None (a missing statistic is NULL, on both dialects)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


# -- reference profile --------------------------------------------------------------------
@dataclass(frozen=True)
class ReferenceFeatureRecord:
    """One feature of a stored reference profile; `summary` is opaque (stats layer bytes)."""

    feature: str
    position: int
    kind: str
    n_rows: int
    nan_count: int
    importance: float | None
    summary: bytes


@dataclass(frozen=True)
class StoredReference:
    """A reference profile as stored: header, per-feature records in schema order, blobs."""

    profile_version: str
    model_version: str | None
    feature_schema_version: str
    n_rows: int
    created_at: dt.datetime
    is_active: bool
    features: tuple[ReferenceFeatureRecord, ...]
    samples: Mapping[str, bytes] = field(default_factory=dict)

    def header(self) -> dict[str, Any]:
        """The `reference_profiles` row as a dict (what `ReferenceProfile.from_records` takes)."""
        return {
            "profile_version": self.profile_version,
            "model_version": self.model_version,
            "feature_schema_version": self.feature_schema_version,
            "n_rows": self.n_rows,
            "created_at": self.created_at,
            "is_active": self.is_active,
        }

    def feature_rows(self) -> list[dict[str, Any]]:
        """The per-feature rows as dicts, in schema order."""
        return [asdict(r) for r in self.features]


def _as_record(item: ReferenceFeatureRecord | Mapping[str, Any]) -> ReferenceFeatureRecord:
    if isinstance(item, ReferenceFeatureRecord):
        return item
    missing = [f.name for f in fields(ReferenceFeatureRecord) if f.name not in item]
    if missing:
        raise ValueError(f"reference feature row {item.get('feature')!r} lacks {missing}")
    return ReferenceFeatureRecord(**{f.name: item[f.name] for f in fields(ReferenceFeatureRecord)})


def _check_reference_features(
    schema: FeatureSchema, features: Sequence[ReferenceFeatureRecord]
) -> None:
    seen: set[str] = set()
    positions = {name: j for j, name in enumerate(schema.names)}
    for rec in features:
        if rec.feature in seen:
            raise ValueError(f"reference profile summarizes feature {rec.feature!r} twice")
        seen.add(rec.feature)
        j = positions.get(rec.feature)
        if j is None:
            raise ValueError(
                f"reference feature {rec.feature!r} is not in feature schema {schema.version}"
            )
        spec = schema.features[j]
        if rec.position != j or rec.kind != spec.kind:
            raise ValueError(
                f"reference feature {rec.feature!r} has position {rec.position} / kind "
                f"{rec.kind!r}; schema {schema.version} says {j} / {spec.kind!r}"
            )
        if not isinstance(rec.summary, bytes | bytearray | memoryview):
            raise TypeError(
                f"summary of {rec.feature!r} must be bytes, not {type(rec.summary).__name__}"
            )
    missing = [n for n in positions if n not in seen]
    if missing:
        raise ValueError(f"reference profile lacks {len(missing)} schema features: {missing[:10]}")


def save_reference(
    engine: Engine,
    *,
    schema: FeatureSchema,
    profile_version: str,
    model_version: str | None,
    n_rows: int,
    features: Sequence[ReferenceFeatureRecord | Mapping[str, Any]],
    samples: Mapping[str, bytes] | None = None,
    activate: bool = True,
) -> None:
    """Store a reference profile (replacing a stored one of the same version) in one
    transaction; with `activate`, it becomes the one active profile.

    `features` are ReferenceFeatureRecord objects or mappings with the same keys (the
    `feature_rows` of `ReferenceProfile.to_records()`); `samples` are named opaque blobs.
    """
    features = [_as_record(f) for f in features]
    _check_reference_features(schema, features)
    now = _now()
    with engine.begin() as conn:
        register_feature_schema(conn, schema)
        conn.execute(
            sa.delete(reference_profiles).where(
                reference_profiles.c.profile_version == profile_version
            )
        )
        if activate:
            # Deactivate first: the partial unique index allows one active row at any time.
            conn.execute(
                sa.update(reference_profiles)
                .where(reference_profiles.c.is_active)
                .values(is_active=False)
            )
        conn.execute(
            reference_profiles.insert().values(
                profile_version=profile_version,
                model_version=model_version,
                feature_schema_version=schema.version,
                n_rows=int(n_rows),
                created_at=now,
                is_active=activate,
            )
        )
        conn.execute(
            training_reference.insert(),
            [
                {
                    "profile_version": profile_version,
                    "feature": r.feature,
                    "position": int(r.position),
                    "kind": r.kind,
                    "n_rows": int(r.n_rows),
                    "nan_count": int(r.nan_count),
                    "importance": _plain(r.importance),
                    "summary": bytes(r.summary),
                    "created_at": now,
                }
                for r in features
            ],
        )
        if samples:
            conn.execute(
                reference_samples.insert(),
                [
                    {"profile_version": profile_version, "name": name, "data": bytes(data)}
                    for name, data in samples.items()
                ],
            )


def activate_reference(engine: Engine, profile_version: str) -> None:
    """Make a stored profile the active one; LookupError when it is not stored."""
    with engine.begin() as conn:
        exists = conn.execute(
            sa.select(reference_profiles.c.profile_version).where(
                reference_profiles.c.profile_version == profile_version
            )
        ).first()
        if exists is None:
            raise LookupError(f"reference profile {profile_version!r} is not stored")
        conn.execute(
            sa.update(reference_profiles)
            .where(
                reference_profiles.c.is_active,
                reference_profiles.c.profile_version != profile_version,
            )
            .values(is_active=False)
        )
        conn.execute(
            sa.update(reference_profiles)
            .where(reference_profiles.c.profile_version == profile_version)
            .values(is_active=True)
        )


def load_reference(engine: Engine, profile_version: str | None = None) -> StoredReference | None:
    """The active profile (None when no profile is active), or the named one (LookupError when
    it is not stored)."""
    with engine.connect() as conn:
        stmt = sa.select(reference_profiles)
        if profile_version is None:
            stmt = stmt.where(reference_profiles.c.is_active)
        else:
            stmt = stmt.where(reference_profiles.c.profile_version == profile_version)
        header = conn.execute(stmt).mappings().first()
        if header is None:
            if profile_version is not None:
                raise LookupError(f"reference profile {profile_version!r} is not stored")
            return None
        version = header["profile_version"]
        rows = conn.execute(
            sa.select(training_reference)
            .where(training_reference.c.profile_version == version)
            .order_by(training_reference.c.position)
        ).mappings()
        features = tuple(
            ReferenceFeatureRecord(
                feature=r["feature"],
                position=r["position"],
                kind=r["kind"],
                n_rows=r["n_rows"],
                nan_count=r["nan_count"],
                importance=r["importance"],
                summary=bytes(r["summary"]),
            )
            for r in rows
        )
        samples = {
            name: bytes(data)
            for name, data in conn.execute(
                sa.select(reference_samples.c.name, reference_samples.c.data).where(
                    reference_samples.c.profile_version == version
                )
            )
        }
    return StoredReference(
        profile_version=version,
        model_version=header["model_version"],
        feature_schema_version=header["feature_schema_version"],
        n_rows=header["n_rows"],
        created_at=header["created_at"],
        is_active=header["is_active"],
        features=features,
        samples=samples,
    )


def list_references(engine: Engine) -> pd.DataFrame:
    """Headers of every stored profile, newest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(reference_profiles).order_by(reference_profiles.c.created_at.desc())
        ).all()
    return pd.DataFrame.from_records(rows, columns=[c.name for c in reference_profiles.columns])


# -- per-feature results ------------------------------------------------------------------
FEATURE_DRIFT_COLUMNS: tuple[str, ...] = (
    "feature",
    "kind",
    "test",
    "statistic",
    "p_value",
    "p_adjusted",
    "effect_size",
    "effect_metric",
    "drifted",
    "reason",
    "psi",
    "wasserstein_norm",
    "ref_nan_share",
    "cur_nan_share",
    "unseen_categories",
    "unseen_share",
    "importance",
    "n_current",
)
_FEATURE_DRIFT_REQUIRED = ("feature", "kind", "test", "drifted")


@dataclass(frozen=True)
class FeatureDriftRow:
    """One feature's result for one window (the columns of `feature_drift_results`)."""

    feature: str
    kind: str
    test: str
    drifted: bool
    statistic: float | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    effect_size: float | None = None
    effect_metric: str | None = None
    reason: str | None = None
    psi: float | None = None
    wasserstein_norm: float | None = None
    ref_nan_share: float | None = None
    cur_nan_share: float | None = None
    unseen_categories: tuple[str, ...] | None = None
    unseen_share: float | None = None
    importance: float | None = None
    n_current: int | None = None


def _feature_drift_records(
    report_date: dt.date, rows: pd.DataFrame | Sequence[FeatureDriftRow]
) -> list[dict[str, Any]]:
    if isinstance(rows, pd.DataFrame):
        missing = [c for c in _FEATURE_DRIFT_REQUIRED if c not in rows.columns]
        if missing:
            raise ValueError(f"feature drift frame lacks required columns {missing}")
        # Columns beyond the table's (e.g. a policy's explanation) are not stored.
        present = [c for c in FEATURE_DRIFT_COLUMNS if c in rows.columns]
        items = rows[present].to_dict(orient="records")
    else:
        items = [asdict(r) for r in rows]
    records = []
    seen: set[str] = set()
    for item in items:
        rec = {c: _plain(item.get(c)) for c in FEATURE_DRIFT_COLUMNS}
        if rec["feature"] in seen:
            raise ValueError(f"feature {rec['feature']!r} appears twice in the window's results")
        seen.add(rec["feature"])
        if rec["drifted"] is None:
            raise ValueError(f"feature {rec['feature']!r}: drifted is missing")
        rec["drifted"] = bool(rec["drifted"])
        unseen = item.get("unseen_categories")
        if unseen is None or (isinstance(unseen, float) and math.isnan(unseen)):
            rec["unseen_categories"] = None
        else:
            rec["unseen_categories"] = [str(v) for v in unseen]
        if rec["n_current"] is not None:
            rec["n_current"] = int(rec["n_current"])
        rec["report_date"] = report_date
        records.append(rec)
    return records


def replace_feature_drift(
    engine: Engine, report_date: dt.date, rows: pd.DataFrame | Sequence[FeatureDriftRow]
) -> int:
    """Replace the window's per-feature results (delete, then insert, in one transaction).
    `rows`: FeatureDriftRow objects or a frame with (at least) feature, kind, test, drifted."""
    records = _feature_drift_records(report_date, rows)
    with engine.begin() as conn:
        conn.execute(
            sa.delete(feature_drift_results).where(
                feature_drift_results.c.report_date == report_date
            )
        )
        if records:
            conn.execute(feature_drift_results.insert(), records)
    return len(records)


def read_feature_drift(engine: Engine, report_date: dt.date) -> pd.DataFrame:
    """The window's per-feature results (columns `FEATURE_DRIFT_COLUMNS`), by feature name."""
    cols = [feature_drift_results.c[c] for c in FEATURE_DRIFT_COLUMNS]
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(*cols)
            .where(feature_drift_results.c.report_date == report_date)
            .order_by(feature_drift_results.c.feature)
        ).all()
    frame = pd.DataFrame.from_records(rows, columns=list(FEATURE_DRIFT_COLUMNS))
    floats = [
        "statistic",
        "p_value",
        "p_adjusted",
        "effect_size",
        "ref_nan_share",
        "cur_nan_share",
        "importance",
    ]
    return frame.astype({**dict.fromkeys(floats, "float64"), "drifted": bool})


# -- drift reports ------------------------------------------------------------------------
@dataclass(frozen=True)
class DriftReportRow:
    """A window's drift report. Percentages are 0-100. A NO_DATA window has no drift
    percentage (None), never a fake 0; every other status must have one."""

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


def upsert_drift_report(engine: Engine, row: DriftReportRow) -> None:
    """Insert the window's report, or replace the one stored for its report_date (created_at
    kept, updated_at refreshed)."""
    values = {name: _plain(getattr(row, name)) for name in _REPORT_FIELDS}
    values["details"] = dict(row.details) if row.details is not None else None
    now = _now()
    with engine.begin() as conn:
        stmt = _insert(conn, drift_reports).values(**values, created_at=now, updated_at=now)
        updates = {name: stmt.excluded[name] for name in _REPORT_FIELDS if name != "report_date"}
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["report_date"], set_={**updates, "updated_at": now}
            )
        )


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
    `DRIFT_REPORT_COLUMNS`. A NO_DATA window shows NaN drift percentages."""
    stmt = sa.select(*[drift_reports.c[c] for c in DRIFT_REPORT_COLUMNS])
    if first_date is not None:
        stmt = stmt.where(drift_reports.c.report_date >= first_date)
    if last_date is not None:
        stmt = stmt.where(drift_reports.c.report_date <= last_date)
    with engine.connect() as conn:
        rows = conn.execute(stmt.order_by(drift_reports.c.report_date)).all()
    return _report_frame(rows)


def read_drift_report(engine: Engine, report_date: dt.date) -> DriftReportRow | None:
    """The stored report of one window, or None."""
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


# -- alerts -------------------------------------------------------------------------------
ALERT_COLUMNS: tuple[str, ...] = tuple(c.name for c in drift_alerts.columns)


def insert_alert(
    engine: Engine,
    *,
    report_date: dt.date,
    severity: str,
    drift_percentage: float | None,
    top_features: Sequence[Any] | None,
    status: str = "open",
    webhook_status: str | None = None,
    created_at: dt.datetime | None = None,
) -> bool:
    """Record the window's alert. Returns False (and writes nothing) when that window already
    alerted: the UNIQUE(report_date) constraint decides, so concurrent callers cannot both win.

    severity: the window status that raised it (e.g. ALERT or WARNING); status: the alert's own
    state (default "open"); webhook_status: e.g. "pending", "sent", "failed", "disabled".
    """
    with engine.begin() as conn:
        stmt = (
            _insert(conn, drift_alerts)
            .values(
                report_date=report_date,
                severity=severity,
                status=status,
                drift_percentage=_plain(drift_percentage),
                top_features=None if top_features is None else [_plain(v) for v in top_features],
                created_at=created_at or _now(),
                webhook_status=webhook_status,
                webhook_attempts=0,
                webhook_error=None,
            )
            .on_conflict_do_nothing(index_elements=["report_date"])
            .returning(drift_alerts.c.id)
        )
        return conn.execute(stmt).first() is not None


def update_alert_webhook(
    engine: Engine,
    report_date: dt.date,
    *,
    webhook_status: str,
    attempts: int,
    error: str | None = None,
) -> None:
    """Record the outcome of delivering the window's alert; LookupError when it has no alert."""
    with engine.begin() as conn:
        result = conn.execute(
            sa.update(drift_alerts)
            .where(drift_alerts.c.report_date == report_date)
            .values(
                webhook_status=webhook_status, webhook_attempts=int(attempts), webhook_error=error
            )
        )
        if result.rowcount == 0:
            raise LookupError(f"no alert stored for window {report_date}")


def read_alerts(engine: Engine) -> pd.DataFrame:
    """Every alert, by report_date (columns `ALERT_COLUMNS`)."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(drift_alerts).order_by(drift_alerts.c.report_date)).all()
    frame = pd.DataFrame.from_records(rows, columns=list(ALERT_COLUMNS))
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    return frame.astype({"drift_percentage": "float64", "webhook_attempts": "int64"})
