"""Read-only queries behind the dashboard: what the pipeline and the API already stored, shaped
per day for charts. Nothing here writes, migrates or recomputes a drift statistic: KS, PSI, NaN
and unseen shares, statuses and alerts are read as the pipeline stored them. The only arithmetic
is counting and ordering rows (volumes, rates, latency percentiles, score histograms), done in
SQL that runs unchanged on SQLite and PostgreSQL.

Days are UTC calendar days, as everywhere in the project; `first` and `last` bounds are inclusive
days. Every frame has a fixed, documented column list, also when it is empty.
"""

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from credit_drift.storage.schema import (
    UTCDateTime,
    api_logs,
    drift_alerts,
    drift_reports,
    feature_drift_results,
    feature_schemas,
    predictions,
    reference_profiles,
    reference_samples,
    training_reference,
)

#: The tables the dashboard reads; a database without them has "no data yet".
DASHBOARD_TABLES = ("drift_reports", "feature_drift_results", "drift_alerts", "predictions")

#: Latency percentiles shown for the API and for inference (numpy's default "linear" method).
PERCENTILES = (50, 95, 99)

TIMELINE_COLUMNS = (
    "report_date",
    "n_predictions",
    "n_features_analyzed",
    "n_features_drifted",
    "drift_percentage",
    "weighted_drift_percentage",
    "status",
    "policy",
    "multivariate_score",
    "model_version",
    "alerted",
    "alert_webhook_status",
)
ALERT_COLUMNS = (
    "report_date",
    "kind",
    "severity",
    "drift_percentage",
    "top_features",
    "created_at",
    "webhook_status",
    "webhook_attempts",
    "details",
)
DAY_FEATURE_COLUMNS = (
    "rank",
    "feature",
    "kind",
    "drifted",
    "reason",
    "importance",
    "test",
    "statistic",
    "p_value",
    "p_adjusted",
    "effect_size",
    "psi",
    "wasserstein_norm",
    "ref_nan_share",
    "cur_nan_share",
    "unseen_share",
    "unseen_categories",
    "n_current",
)
DECISION_COLUMNS = (
    "day",
    "n_predictions",
    "n_approved",
    "n_refused",
    "approval_rate",
    "refusal_rate",
    "mean_probability",
    *(f"inference_p{q}_ms" for q in PERCENTILES),
)
TRAFFIC_COLUMNS = (
    "day",
    "requests",
    "client_errors",
    "server_errors",
    "error_rate",
    "rejection_rate",
    *(f"latency_p{q}_ms" for q in PERCENTILES),
)
SCORE_HISTOGRAM_COLUMNS = ("day", "bin", "bin_start", "bin_end", "count", "share")


# -- helpers ------------------------------------------------------------------------------
def _day_sql(conn: Connection, column: str) -> str:
    """SQL for the UTC calendar day of a timestamp column (SQLite stores naive-UTC text)."""
    if conn.dialect.name == "postgresql":
        return f"CAST(({column} AT TIME ZONE 'UTC') AS DATE)"
    return f"substr({column}, 1, 10)"


def _as_date(value) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def _bounds(first: dt.date | None, last: dt.date | None) -> tuple[dt.datetime, dt.datetime]:
    """[first 00:00, last+1 00:00) UTC; open ends become far bounds."""
    lo = first or dt.date(1970, 1, 1)
    hi = (last or dt.date(9998, 12, 31)) + dt.timedelta(days=1)
    return (
        dt.datetime(lo.year, lo.month, lo.day, tzinfo=dt.UTC),
        dt.datetime(hi.year, hi.month, hi.day, tzinfo=dt.UTC),
    )


def _frame(rows, columns) -> pd.DataFrame:
    return pd.DataFrame.from_records(list(rows), columns=list(columns))


def has_dashboard_tables(engine: Engine) -> bool:
    """True when the database has been migrated (the tables exist, empty or not)."""
    names = set(sa.inspect(engine).get_table_names())
    return all(t in names for t in DASHBOARD_TABLES)


@dataclass(frozen=True)
class DataExtent:
    """What the database holds: counts and the first/last day of each kind of data (None when
    there is none)."""

    n_reports: int
    n_predictions: int
    n_api_requests: int
    first_report: dt.date | None
    last_report: dt.date | None
    first_prediction_day: dt.date | None
    last_prediction_day: dt.date | None

    @property
    def empty(self) -> bool:
        return self.n_reports == 0 and self.n_predictions == 0 and self.n_api_requests == 0

    def day_range(self) -> tuple[dt.date, dt.date] | None:
        """The widest range of days with reports or predictions."""
        days = [
            d
            for d in (
                self.first_report,
                self.last_report,
                self.first_prediction_day,
                self.last_prediction_day,
            )
            if d is not None
        ]
        return (min(days), max(days)) if days else None


def data_extent(engine: Engine) -> DataExtent:
    with engine.connect() as conn:
        n_reports, first_report, last_report = conn.execute(
            sa.select(
                sa.func.count(),
                sa.func.min(drift_reports.c.report_date),
                sa.func.max(drift_reports.c.report_date),
            )
        ).one()
        n_predictions, first_pred, last_pred = conn.execute(
            sa.select(
                sa.func.count(),
                sa.func.min(predictions.c.created_at),
                sa.func.max(predictions.c.created_at),
            )
        ).one()
        n_requests = conn.execute(sa.select(sa.func.count()).select_from(api_logs)).scalar_one()
    return DataExtent(
        n_reports=int(n_reports),
        n_predictions=int(n_predictions),
        n_api_requests=int(n_requests),
        first_report=None if first_report is None else _as_date(first_report),
        last_report=None if last_report is None else _as_date(last_report),
        first_prediction_day=None if first_pred is None else _as_date(first_pred),
        last_prediction_day=None if last_pred is None else _as_date(last_pred),
    )


# -- drift --------------------------------------------------------------------------------
def drift_timeline(
    engine: Engine, first: dt.date | None = None, last: dt.date | None = None
) -> pd.DataFrame:
    """One row per stored window (columns `TIMELINE_COLUMNS`), by day, with whether it raised a
    drift alert (other kinds of alert are in `alerts`). NO_DATA windows have NaN percentages,
    never a fake 0."""
    r, a = drift_reports.c, drift_alerts.c
    stmt = (
        sa.select(
            r.report_date,
            r.n_predictions,
            r.n_features_analyzed,
            r.n_features_drifted,
            r.drift_percentage,
            r.weighted_drift_percentage,
            r.status,
            r.policy,
            r.multivariate_score,
            r.model_version,
            (a.id.is_not(None)).label("alerted"),
            a.webhook_status,
        )
        .select_from(
            drift_reports.outerjoin(
                drift_alerts, (a.report_date == r.report_date) & (a.kind == "drift")
            )
        )
        .order_by(r.report_date)
    )
    if first is not None:
        stmt = stmt.where(r.report_date >= first)
    if last is not None:
        stmt = stmt.where(r.report_date <= last)
    with engine.connect() as conn:
        frame = _frame(conn.execute(stmt), TIMELINE_COLUMNS)
    frame["report_date"] = frame["report_date"].map(_as_date)
    floats = ["drift_percentage", "weighted_drift_percentage", "multivariate_score"]
    return frame.astype(
        {**dict.fromkeys(floats, "float64"), "alerted": bool, "n_predictions": "int64"}
    )


def alerts(
    engine: Engine, first: dt.date | None = None, last: dt.date | None = None
) -> pd.DataFrame:
    """The alerts raised, every kind, by window then kind (columns `ALERT_COLUMNS`; `details`:
    the numbers of a non-drift alert, None for drift)."""
    c = drift_alerts.c
    stmt = sa.select(*[c[name] for name in ALERT_COLUMNS]).order_by(c.report_date, c.kind)
    if first is not None:
        stmt = stmt.where(c.report_date >= first)
    if last is not None:
        stmt = stmt.where(c.report_date <= last)
    with engine.connect() as conn:
        frame = _frame(conn.execute(stmt), ALERT_COLUMNS)
    frame["report_date"] = frame["report_date"].map(_as_date)
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    return frame.astype({"drift_percentage": "float64"})


def day_features(engine: Engine, day: dt.date) -> pd.DataFrame:
    """The window's per-feature results (columns `DAY_FEATURE_COLUMNS`) ranked for a reader:
    drifted features first, then by model importance (largest first), then by KS statistic;
    `rank` starts at 1."""
    c = feature_drift_results.c
    names = [n for n in DAY_FEATURE_COLUMNS if n != "rank"]
    stmt = sa.select(*[c[n] for n in names]).where(c.report_date == day)
    with engine.connect() as conn:
        frame = _frame(conn.execute(stmt), names)
    floats = [
        "importance",
        "statistic",
        "p_value",
        "p_adjusted",
        "effect_size",
        "psi",
        "wasserstein_norm",
        "ref_nan_share",
        "cur_nan_share",
        "unseen_share",
    ]
    frame = frame.astype({**dict.fromkeys(floats, "float64"), "drifted": bool})
    frame = frame.sort_values(
        ["drifted", "importance", "statistic", "feature"],
        ascending=[False, False, False, True],
        na_position="last",
        kind="stable",
    ).reset_index(drop=True)
    frame.insert(0, "rank", np.arange(1, len(frame) + 1))
    return frame


@dataclass(frozen=True)
class StoredReferenceFeature:
    """One feature of the active reference profile as stored: `summary` is the stats layer's
    opaque bytes (decode with `credit_drift.stats.reference.feature_reference_from_record`)."""

    profile_version: str
    feature: str
    position: int
    kind: str
    n_rows: int
    nan_count: int
    importance: float | None
    summary: bytes


def reference_feature(engine: Engine, feature: str) -> StoredReferenceFeature | None:
    """The active profile's stored summary of one feature (None without an active profile or
    when the profile has no such feature)."""
    t, p = training_reference.c, reference_profiles.c
    stmt = (
        sa.select(
            t.profile_version, t.feature, t.position, t.kind, t.n_rows, t.nan_count,
            t.importance, t.summary,
        )
        .join(reference_profiles, p.profile_version == t.profile_version)
        .where(p.is_active, t.feature == feature)
    )  # fmt: skip
    with engine.connect() as conn:
        row = conn.execute(stmt).first()
    if row is None:
        return None
    return StoredReferenceFeature(
        profile_version=row.profile_version,
        feature=row.feature,
        position=int(row.position),
        kind=row.kind,
        n_rows=int(row.n_rows),
        nan_count=int(row.nan_count),
        importance=row.importance,
        summary=bytes(row.summary),
    )


def reference_blob(engine: Engine, name: str) -> bytes | None:
    """A named blob of the active profile (e.g. `training_scores`), or None."""
    s, p = reference_samples.c, reference_profiles.c
    stmt = (
        sa.select(s.data)
        .join(reference_profiles, p.profile_version == s.profile_version)
        .where(p.is_active, s.name == name)
    )
    with engine.connect() as conn:
        data = conn.execute(stmt).scalar()
    return None if data is None else bytes(data)


def feature_values(engine: Engine, day: dt.date, feature: str) -> pd.Series:
    """The logged values of one feature on one day, as they are stored: floats (NaN = missing)
    for a numeric feature; the raw strings (unseen categories included, None = missing) for a
    categorical one. Reads the feature's element of each packed vector, whatever feature-list
    version a prediction was logged with; predictions whose list lacks the feature are skipped."""
    start, end = _bounds(day, day)
    with engine.connect() as conn:
        versions = conn.execute(
            sa.select(feature_schemas.c.version, feature_schemas.c.feature_names)
        ).all()
        spec_rows = conn.execute(
            sa.select(training_reference.c.kind)
            .where(training_reference.c.feature == feature)
            .limit(1)
        ).first()
        categorical = spec_rows is not None and spec_rows.kind == "categorical"
        parts: list[pd.Series] = []
        for version, names in versions:
            names = list(names)
            if feature not in names:
                continue
            position = names.index(feature)
            where = [
                predictions.c.feature_schema_version == version,
                predictions.c.created_at >= start,
                predictions.c.created_at < end,
            ]
            if categorical:
                values = _categorical_values(conn, feature, where)
            else:
                values = _numeric_values(conn, position, where)
            parts.append(values)
    if not parts:
        return pd.Series([], dtype=object if categorical else "float64", name=feature)
    return pd.concat(parts, ignore_index=True).rename(feature)


def _numeric_values(conn: Connection, position: int, where) -> pd.Series:
    if conn.dialect.name == "postgresql":
        # float8[] subscripts start at 1; NaN is stored as the float8 NaN, never NULL.
        element = sa.literal_column(f"features[{position + 1}]", sa.Double())
    else:
        # JSON text array, NaN stored as null.
        element = sa.func.json_extract(sa.literal_column("features"), f"$[{position}]")
    rows = conn.execute(sa.select(element).select_from(predictions).where(*where)).scalars()
    return pd.Series([np.nan if v is None else float(v) for v in rows], dtype="float64")


def _categorical_values(conn: Connection, feature: str, where) -> pd.Series:
    rows = conn.execute(sa.select(predictions.c.categorical_values).where(*where)).scalars()
    return pd.Series([None if raw is None else raw.get(feature) for raw in rows], dtype=object)


# -- the model's scores and decisions -------------------------------------------------------
def _percentile_sql(conn: Connection, table: str, column: str) -> str:
    """Per-day linear-interpolation percentiles (numpy's default) with window functions, so
    SQLite (no percentile_cont) and PostgreSQL give the same numbers: for q and n values, the
    sorted values at positions floor(q(n-1)) and the next one, and the fractional part."""
    day = _day_sql(conn, "created_at")
    cols = []
    for q in PERCENTILES:
        pos = f"({q} * (n - 1))"
        cols.append(f"MAX(CASE WHEN rn = {pos} / 100 THEN v END) AS p{q}_lo")
        cols.append(f"MAX(CASE WHEN rn = {pos} / 100 + 1 THEN v END) AS p{q}_hi")
        cols.append(f"MAX({pos} % 100) AS p{q}_frac")
    return f"""
        WITH v AS (
            SELECT {day} AS day, {column} AS v FROM {table}
            WHERE created_at >= :start AND created_at < :end AND {column} IS NOT NULL
        ), r AS (
            SELECT day, v,
                   ROW_NUMBER() OVER (PARTITION BY day ORDER BY v) - 1 AS rn,
                   COUNT(*) OVER (PARTITION BY day) AS n
            FROM v
        )
        SELECT day, {", ".join(cols)} FROM r GROUP BY day ORDER BY day
    """


def _percentiles_by_day(
    conn: Connection, table: str, column: str, first, last, prefix: str
) -> pd.DataFrame:
    start, end = _bounds(first, last)
    stmt = sa.text(_percentile_sql(conn, table, column)).bindparams(
        sa.bindparam("start", start, type_=UTCDateTime()),
        sa.bindparam("end", end, type_=UTCDateTime()),
    )
    rows = conn.execute(stmt).mappings().all()
    out = {"day": pd.Series([_as_date(r["day"]) for r in rows], dtype=object)}
    for q in PERCENTILES:
        values = []
        for r in rows:
            lo, hi, frac = r[f"p{q}_lo"], r[f"p{q}_hi"], r[f"p{q}_frac"]
            hi = lo if hi is None else hi
            values.append(float(lo) + (float(frac) / 100.0) * (float(hi) - float(lo)))
        out[f"{prefix}_p{q}_ms"] = values
    return pd.DataFrame(out)


def _counts_by_day(
    conn, table: str, aggregates: dict[str, str], first: dt.date | None, last: dt.date | None
) -> pd.DataFrame:
    """One row per UTC day of `table` (by `created_at`) within [first, last]: `day` (a date)
    and one column per SQL aggregate of `aggregates` (name -> expression, written here, never
    from user input)."""
    start, end = _bounds(first, last)
    day = _day_sql(conn, "created_at")
    selected = ", ".join(f"{expression} AS {name}" for name, expression in aggregates.items())
    stmt = sa.text(
        f"""
        SELECT {day} AS day, {selected}
        FROM {table}
        WHERE created_at >= :start AND created_at < :end
        GROUP BY {day} ORDER BY {day}
        """
    ).bindparams(
        sa.bindparam("start", start, type_=UTCDateTime()),
        sa.bindparam("end", end, type_=UTCDateTime()),
    )
    counts = pd.DataFrame(conn.execute(stmt).mappings().all(), columns=["day", *aggregates])
    counts["day"] = counts["day"].map(_as_date).astype(object)
    return counts


def decisions_by_day(
    engine: Engine, first: dt.date | None = None, last: dt.date | None = None
) -> pd.DataFrame:
    """Per day of logged predictions (columns `DECISION_COLUMNS`): volume, APPROVED / REFUSED
    counts and rates, mean probability of default, and inference-time percentiles (the API's
    validation + scoring time per application)."""
    with engine.connect() as conn:
        counts = _counts_by_day(
            conn,
            "predictions",
            {
                "n_predictions": "COUNT(*)",
                "n_approved": "SUM(CASE WHEN decision = 'APPROVED' THEN 1 ELSE 0 END)",
                "n_refused": "SUM(CASE WHEN decision = 'REFUSED' THEN 1 ELSE 0 END)",
                "mean_probability": "AVG(probability)",
            },
            first,
            last,
        )
        latency = _percentiles_by_day(
            conn, "predictions", "inference_time_ms", first, last, "inference"
        )
    counts = counts.astype(
        {"n_predictions": "int64", "n_approved": "int64", "n_refused": "int64"}
    ).astype({"mean_probability": "float64"})
    counts["approval_rate"] = counts["n_approved"] / counts["n_predictions"]
    counts["refusal_rate"] = counts["n_refused"] / counts["n_predictions"]
    frame = counts.merge(latency, on="day", how="left")
    return frame.loc[:, list(DECISION_COLUMNS)].astype(
        dict.fromkeys([f"inference_p{q}_ms" for q in PERCENTILES], "float64")
    )


def api_traffic_by_day(
    engine: Engine, first: dt.date | None = None, last: dt.date | None = None
) -> pd.DataFrame:
    """Per day of `api_logs` (columns `TRAFFIC_COLUMNS`): requests, 4xx (rejected) and 5xx
    (server error) counts, their rates, and request-latency percentiles. Days are when the
    request reached the API, which for replayed traffic is not the prediction's event day."""
    with engine.connect() as conn:
        counts = _counts_by_day(
            conn,
            "api_logs",
            {
                "requests": "COUNT(*)",
                "client_errors": "SUM(CASE WHEN status_code >= 400 AND status_code < 500 "
                "THEN 1 ELSE 0 END)",
                "server_errors": "SUM(CASE WHEN status_code >= 500 THEN 1 ELSE 0 END)",
            },
            first,
            last,
        )
        latency = _percentiles_by_day(conn, "api_logs", "latency_ms", first, last, "latency")
    counts = counts.astype(
        {"requests": "int64", "client_errors": "int64", "server_errors": "int64"}
    )
    counts["error_rate"] = counts["server_errors"] / counts["requests"]
    counts["rejection_rate"] = counts["client_errors"] / counts["requests"]
    frame = counts.merge(latency, on="day", how="left")
    return frame.loc[:, list(TRAFFIC_COLUMNS)].astype(
        dict.fromkeys([f"latency_p{q}_ms" for q in PERCENTILES], "float64")
    )


def score_histogram(
    engine: Engine,
    first: dt.date | None = None,
    last: dt.date | None = None,
    *,
    n_bins: int = 20,
) -> pd.DataFrame:
    """Per day, the probabilities of default counted in `n_bins` equal bins of [0, 1] (columns
    `SCORE_HISTOGRAM_COLUMNS`; bin k is [k/n, (k+1)/n), the last one includes 1; only bins with
    predictions are listed; `share` is the bin's share of the day)."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be positive, got {n_bins}")
    start, end = _bounds(first, last)
    with engine.connect() as conn:
        day = _day_sql(conn, "created_at")
        # CAST truncates toward zero on SQLite and rounds on PostgreSQL: FLOOR is not portable
        # to every SQLite build, so compare instead (bin = number of edges <= p, capped).
        edges = " + ".join(
            f"CASE WHEN probability >= {k / n_bins!r} THEN 1 ELSE 0 END" for k in range(1, n_bins)
        )
        stmt = sa.text(
            f"""
            SELECT day, bin, COUNT(*) AS count FROM (
                SELECT {day} AS day, ({edges or "0"}) AS bin FROM predictions
                WHERE created_at >= :start AND created_at < :end
            ) b GROUP BY day, bin ORDER BY day, bin
            """
        ).bindparams(
            sa.bindparam("start", start, type_=UTCDateTime()),
            sa.bindparam("end", end, type_=UTCDateTime()),
        )
        frame = pd.DataFrame(conn.execute(stmt).mappings().all(), columns=["day", "bin", "count"])
    frame["day"] = frame["day"].map(_as_date)
    frame = frame.astype({"bin": "int64", "count": "int64"})
    frame["bin_start"] = frame["bin"] / n_bins
    frame["bin_end"] = (frame["bin"] + 1) / n_bins
    totals = frame.groupby("day")["count"].transform("sum")
    frame["share"] = frame["count"] / totals
    return frame.loc[:, list(SCORE_HISTOGRAM_COLUMNS)]
