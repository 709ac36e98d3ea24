"""The drift pipeline's work, one function per asset, with no Dagster in sight.

`credit_drift.defs` wires these into assets; tests and the CLI can call them directly. Data passed
between assets of one day goes through the database (results, reports) and through the window
file `$CREDIT_DRIFT_HOME/windows/<day>.parquet` written by `production_window` (its path is
configuration, so a run launcher on another machine can share it like any other state).
"""

import datetime as dt
import json
import logging
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from credit_drift.settings import Settings
from credit_drift.storage.windows import window_bounds_for_day

log = logging.getLogger("credit_drift.monitoring")

STATUS_ORDER = {"NO_DATA": -1, "OK": 0, "WARNING": 1, "ALERT": 2}


# -- helpers shared with the Dagster wiring -----------------------------------------------
def plain(value: Any) -> Any:
    """A JSON/Dagster-friendly scalar: numpy types unwrapped, NaN as None, lists as text."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (list, tuple, np.ndarray)):
        return ", ".join(str(v) for v in value)
    return value


def optional_float_metadata(**values: float | None) -> dict[str, Any]:
    """Float metadata for the values that exist: a NO_DATA window has no drift percentage, and
    Dagster should show nothing rather than a fake 0."""
    import dagster as dg  # local: this module stays importable without Dagster's cost

    return {
        k: dg.MetadataValue.float(float(v))
        for k, v in values.items()
        if v is not None and not (isinstance(v, float) and math.isnan(v))
    }


def figure_markdown(path: Path) -> str:
    from credit_drift.reports.plots import figure_markdown as _md

    return _md(path)


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- alerts ------------------------------------------------------------------------------
WEBHOOK_ATTEMPTS = 3  # per delivery; a failed alert is retried on later sensor ticks too
WEBHOOK_MAX_TOTAL_ATTEMPTS = 9
WEBHOOK_TIMEOUT_S = 5.0
WEBHOOK_BACKOFF_S = 0.5


def should_alert(status: str | None, alert_severity: str) -> bool:
    """ALERT always alerts; WARNING too when the user chose CREDIT_DRIFT_ALERT_SEVERITY=WARNING."""
    if status not in STATUS_ORDER:
        return False
    return STATUS_ORDER[status] >= STATUS_ORDER[alert_severity]


@dataclass(frozen=True)
class RaisedAlert:
    report_date: str
    status: str
    drift_percentage: float
    top_features: list[str]
    webhook_status: str

    @property
    def log_line(self) -> str:
        return (
            f"DRIFT {self.status} window={self.report_date} "
            f"drift_percentage={self.drift_percentage:.1f} "
            f"top_features={','.join(self.top_features[:10])} webhook={self.webhook_status}"
        )

    def job_config(self) -> dict[str, Any]:
        return {
            "config": {
                "report_date": self.report_date,
                "status": self.status,
                "drift_percentage": self.drift_percentage,
                "top_features": self.top_features,
                "webhook_status": self.webhook_status,
            }
        }


def slack_body(alert: RaisedAlert, dagster_url: str | None = None) -> dict[str, Any]:
    """A Slack-compatible incoming-webhook body (`text` is what every consumer reads)."""
    text = (
        f":rotating_light: credit-drift {alert.status}: {alert.drift_percentage:.1f}% of the "
        f"model's features drifted in the window {alert.report_date} (UTC). "
        f"Top drifted: {', '.join(alert.top_features[:5]) or 'n/a'}."
    )
    body: dict[str, Any] = {
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
        "credit_drift": {
            "report_date": alert.report_date,
            "status": alert.status,
            "drift_percentage": alert.drift_percentage,
            "top_features": alert.top_features,
        },
    }
    if dagster_url:
        body["blocks"].append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": dagster_url}]}
        )
    return body


def post_webhook(
    url: str, body: dict[str, Any], attempts: int = WEBHOOK_ATTEMPTS
) -> tuple[bool, int, str | None]:
    """POST with retries and backoff. Returns (delivered, attempts made, last error). Never
    raises: a broken webhook must not crash the sensor or lose the alert."""
    import httpx

    error: str | None = None
    for attempt in range(1, attempts + 1):
        try:
            response = httpx.post(url, json=body, timeout=WEBHOOK_TIMEOUT_S)
            if response.status_code < 300:
                return True, attempt, None
            error = f"HTTP {response.status_code}: {response.text[:200]}"
        except Exception as exc:  # noqa: BLE001 - any transport failure is reported, not raised
            error = f"{type(exc).__name__}: {exc}"
        if attempt < attempts:
            time.sleep(WEBHOOK_BACKOFF_S * 2 ** (attempt - 1))
    return False, attempts, error


def raise_alert(engine, settings: Settings, day: str) -> RaisedAlert | None:
    """Record the window's alert (once: None when it already alerted), then notify the webhook.
    The row is written before any delivery attempt, so a down webhook loses nothing."""
    from credit_drift.storage.reports import (
        insert_alert,
        read_drift_report,
        read_feature_drift,
        update_alert_webhook,
    )

    date = dt.date.fromisoformat(day)
    report = read_drift_report(engine, date)
    if report is None:
        raise LookupError(f"no drift report stored for window {day}")
    results = read_feature_drift(engine, date)
    top = top_drifted(results, 10)["feature"].tolist() if len(results) else []
    webhook_status = "pending" if settings.alert_webhook_url else "disabled"
    inserted = insert_alert(
        engine,
        report_date=date,
        severity=report.status,
        drift_percentage=report.drift_percentage,
        top_features=top,
        webhook_status=webhook_status,
    )
    if not inserted:
        return None
    alert = RaisedAlert(
        day, report.status, float(report.drift_percentage or 0.0), top, webhook_status
    )
    log.warning(alert.log_line)
    if settings.alert_webhook_url:
        ok, attempts, error = post_webhook(settings.alert_webhook_url, slack_body(alert))
        webhook_status = "sent" if ok else "failed"
        update_alert_webhook(
            engine, date, webhook_status=webhook_status, attempts=attempts, error=error
        )
        if not ok:
            log.error(f"alert webhook failed for window {day} after {attempts} attempts: {error}")
        alert = RaisedAlert(day, alert.status, alert.drift_percentage, top, webhook_status)
    return alert


#: At most this many failed alerts are re-delivered per sensor tick (oldest first), so that a
#: webhook that accepts connections but never answers cannot push a tick past Dagster's sensor
#: timeout: worst case 3 x (3 x 5 s timeout + backoff).
WEBHOOK_RETRIES_PER_TICK = 3


def retry_failed_webhooks(engine, settings: Settings) -> list[str]:
    """Deliver again the alerts whose webhook failed earlier: never more than
    WEBHOOK_MAX_TOTAL_ATTEMPTS attempts per alert in all, WEBHOOK_RETRIES_PER_TICK alerts per
    call (oldest first)."""
    from credit_drift.storage.reports import read_alerts, update_alert_webhook

    if not settings.alert_webhook_url:
        return []
    alerts = read_alerts(engine)
    retried = []
    pending = alerts[
        alerts["webhook_status"].isin(["failed", "pending"])
        & (alerts["webhook_attempts"] < WEBHOOK_MAX_TOTAL_ATTEMPTS)
    ].sort_values("report_date")
    for row in pending.head(WEBHOOK_RETRIES_PER_TICK).itertuples():
        day = str(row.report_date)[:10]
        alert = RaisedAlert(
            day,
            row.severity,
            float(row.drift_percentage or 0.0),
            list(row.top_features or []),
            "retry",
        )
        remaining = WEBHOOK_MAX_TOTAL_ATTEMPTS - int(row.webhook_attempts)
        ok, attempts, error = post_webhook(
            settings.alert_webhook_url, slack_body(alert), attempts=min(WEBHOOK_ATTEMPTS, remaining)
        )
        update_alert_webhook(
            engine,
            dt.date.fromisoformat(day),
            webhook_status="sent" if ok else "failed",
            attempts=int(row.webhook_attempts) + attempts,
            error=error,
        )
        retried.append(day)
    return retried


# -- reference profile ---------------------------------------------------------------------
@dataclass(frozen=True)
class ReferenceInfo:
    profile_version: str
    model_version: str
    n_rows: int
    n_features: int
    top_importance: pd.DataFrame


def build_reference_profile(engine, settings: Settings) -> ReferenceInfo:
    """Fit the reference profile on the WHOLE training set with the model's feature list,
    importances and training scores, and store it as the active profile."""
    from credit_drift.data.loader import load_training_data
    from credit_drift.model.artifacts import load_artifacts
    from credit_drift.stats.reference import fit_reference
    from credit_drift.storage.reports import ReferenceFeatureRecord, save_reference

    artifacts = load_artifacts(settings.artifacts_dir)
    data = load_training_data(
        settings.training_data,
        target_column=settings.target_column,
        id_column=settings.id_column,
        categorical_columns=artifacts.schema.categorical_names,
        positive_label=settings.positive_label,
    )
    missing = [n for n in artifacts.schema.names if n not in data.X.columns]
    if missing:
        raise ReferenceBuildError(
            f"training data {settings.training_data} lacks {len(missing)} of the model's features "
            f"(e.g. {missing[:5]}): retrain with `credit-drift train` on this file"
        )
    scores = artifacts.predict_proba(data.X)
    profile = fit_reference(data.X, artifacts.schema, artifacts.importance, scores=scores)
    header, rows, blobs = profile.to_records()
    save_reference(
        engine,
        schema=artifacts.schema,
        profile_version=profile.profile_version,
        model_version=artifacts.version,
        n_rows=profile.n_rows,
        features=[ReferenceFeatureRecord(**row) for row in rows],
        samples=blobs,
    )
    importance = (
        pd.Series(artifacts.importance, name="importance")
        .sort_values(ascending=False)
        .head(15)
        .rename_axis("feature")
        .reset_index()
    )
    return ReferenceInfo(
        profile.profile_version,
        artifacts.version,
        profile.n_rows,
        len(artifacts.schema),
        importance,
    )


class ReferenceBuildError(ValueError):
    """The reference profile cannot be built or found; the message says what to do."""


def load_reference_profile(engine):
    """The active stored profile, as the stats layer's `ReferenceProfile`."""
    from dataclasses import asdict

    from credit_drift.stats.reference import ReferenceProfile
    from credit_drift.storage.reports import load_reference

    stored = load_reference(engine)
    if stored is None:
        raise ReferenceBuildError(
            "no reference profile is stored: materialize the reference_profile asset first "
            "(`dagster asset materialize -m credit_drift.definitions --select reference_profile`)"
        )
    header = {
        "profile_version": stored.profile_version,
        "feature_schema_version": stored.feature_schema_version,
        "n_rows": stored.n_rows,
    }
    return ReferenceProfile.from_records(
        header, [asdict(r) for r in stored.features], dict(stored.samples)
    ), stored


# -- production window ---------------------------------------------------------------------
@dataclass(frozen=True)
class WindowData:
    features: pd.DataFrame
    meta: pd.DataFrame
    missing_features: list[str] = field(default_factory=list)
    extra_features: list[str] = field(default_factory=list)
    read_seconds: float = 0.0


def window_dir(settings: Settings, day: str) -> Path:
    return settings.home / "windows" / day


def read_window(engine, settings: Settings, start: dt.datetime, end: dt.datetime) -> WindowData:
    """The window's predictions, aligned to the model's feature list (packed-vector read)."""
    from credit_drift.model.artifacts import load_artifacts
    from credit_drift.storage.predictions import read_window as storage_read_window

    schema = load_artifacts(settings.artifacts_dir).schema
    t0 = time.perf_counter()
    window = storage_read_window(engine, schema, start, end)
    return WindowData(
        features=window.features,
        meta=window.meta,
        missing_features=list(window.missing_features),
        extra_features=list(window.extra_features),
        read_seconds=time.perf_counter() - t0,
    )


def save_window(settings: Settings, day: str, window: WindowData) -> Path:
    """Write the window for the other assets of the same day (atomically, as Parquet)."""
    folder = window_dir(settings, day)
    folder.mkdir(parents=True, exist_ok=True)
    _atomic_write(folder / "features.parquet", lambda p: window.features.to_parquet(p, index=False))
    _atomic_write(folder / "meta.parquet", lambda p: window.meta.to_parquet(p, index=False))
    info = {
        "missing_features": window.missing_features,
        "extra_features": window.extra_features,
        "n_rows": len(window.meta),
    }
    _atomic_write(folder / "info.json", lambda p: p.write_text(json.dumps(info)))
    return folder


def load_window(settings: Settings, day: str) -> WindowData:
    folder = window_dir(settings, day)
    if not (folder / "info.json").exists():
        raise ReferenceBuildError(
            f"no production window stored for {day} under {folder}: materialize "
            f"production_window for partition {day} first"
        )
    info = json.loads((folder / "info.json").read_text())
    return WindowData(
        features=pd.read_parquet(folder / "features.parquet"),
        meta=pd.read_parquet(folder / "meta.parquet"),
        missing_features=info["missing_features"],
        extra_features=info["extra_features"],
    )


def top_drifted(results: pd.DataFrame, n: int) -> pd.DataFrame:
    """The n most drifted features: drifted first, then by statistic (largest first)."""
    if results.empty:
        return pd.DataFrame(columns=["feature", "test", "statistic", "p_value", "drifted"])
    cols = [
        c
        for c in (
            "feature",
            "test",
            "statistic",
            "p_value",
            "p_adjusted",
            "effect_size",
            "drifted",
            "reason",
            "importance",
        )
        if c in results.columns
    ]
    ordered = results.sort_values(
        ["drifted", "statistic"], ascending=[False, False], na_position="last"
    )
    return ordered.loc[:, cols].head(n).reset_index(drop=True)


# -- feature drift -------------------------------------------------------------------------
@dataclass(frozen=True)
class FeatureDriftOutcome:
    results: pd.DataFrame
    status: str
    policy_name: str
    n_rows: int
    n_analyzed: int
    n_drifted: int
    drift_percentage: float | None
    weighted_drift_percentage: float | None
    seconds: float


def _pct(share: float | None) -> float | None:
    if share is None or (isinstance(share, float) and math.isnan(share)):
        return None
    return 100.0 * float(share)


def policy_for(settings: Settings, name: str | None = None):
    """The configured decision policy, with the status thresholds from the settings."""
    from credit_drift.stats.policy import get_policy

    return get_policy(
        name or settings.policy,
        warning_share=settings.warning_share,
        alert_share=settings.alert_share,
    )


def compute_feature_drift(
    engine, settings: Settings, day: str, policy_name: str | None = None
) -> FeatureDriftOutcome:
    """Test every model feature of the stored window against the stored reference and replace
    the window's rows in `feature_drift_results`."""
    from credit_drift.stats.policy import evaluate_window
    from credit_drift.storage.reports import replace_feature_drift

    profile, _ = load_reference_profile(engine)
    window = load_window(settings, day)
    policy = policy_for(settings, policy_name)
    t0 = time.perf_counter()
    drift = evaluate_window(profile, window.features, policy)
    seconds = time.perf_counter() - t0
    replace_feature_drift(engine, dt.date.fromisoformat(day), drift.results)
    outcome = FeatureDriftOutcome(
        results=drift.results,
        status=drift.status,
        policy_name=policy.name,
        n_rows=drift.n_rows,
        n_analyzed=drift.n_analyzed,
        n_drifted=drift.n_drifted,
        drift_percentage=None if drift.status == "NO_DATA" else _pct(drift.drift_share),
        weighted_drift_percentage=None
        if drift.status == "NO_DATA"
        else _pct(drift.weighted_drift_share),
        seconds=seconds,
    )
    # The window-level summary travels to drift_report beside the window (the per-feature rows
    # are in the database).
    summary = {k: plain(v) for k, v in vars(outcome).items() if k != "results"}
    _atomic_write(
        window_dir(settings, day) / "feature_drift.json",
        lambda p: p.write_text(json.dumps(summary)),
    )
    return outcome


def load_feature_drift_summary(settings: Settings, day: str) -> dict[str, Any]:
    path = window_dir(settings, day) / "feature_drift.json"
    if not path.exists():
        raise ReferenceBuildError(f"feature_drift has not been materialized for {day}")
    return json.loads(path.read_text())


# -- reports and figures -------------------------------------------------------------------
def report_dir(settings: Settings, day: str) -> Path:
    return settings.reports_dir / day


def reference_summaries(profile, names) -> dict[str, tuple[np.ndarray, np.ndarray, int]]:
    """{feature: (distinct values, counts, nan_count)} from the stored profile, as the report
    and plot functions take them (categories as an object array, even when empty)."""
    out = {}
    for name in names:
        ref = profile.features[name]
        if profile.schema.spec(name).kind == "categorical":
            out[name] = (
                np.asarray(ref.categories, dtype=object),
                np.asarray(ref.counts),
                ref.nan_count,
            )
        else:
            out[name] = (np.asarray(ref.values), np.asarray(ref.counts), ref.nan_count)
    return out


@dataclass(frozen=True)
class EvidentlyOutcome:
    path: Path
    n_columns: int
    n_drifted_columns: int
    drift_share: float
    seconds: float


def build_evidently(
    engine, settings: Settings, day: str, *, max_columns: int, include_all: bool
) -> EvidentlyOutcome | None:
    """The Evidently HTML of the window (None for an empty window: nothing to compare)."""
    from credit_drift.reports.evidently_report import (
        build_evidently_report,
        reference_frame_from_summaries,
        select_report_columns,
    )
    from credit_drift.storage.reports import read_feature_drift

    window = load_window(settings, day)
    if len(window.meta) == 0:
        return None
    profile, _ = load_reference_profile(engine)
    results = read_feature_drift(engine, dt.date.fromisoformat(day))
    columns = select_report_columns(
        results, profile.importance, max_columns=max_columns, include_all=include_all
    )
    reference = reference_frame_from_summaries(reference_summaries(profile, columns))
    result = build_evidently_report(
        reference,
        window.features.loc[:, columns],
        report_dir(settings, day) / "evidently_report.html",
        categorical_columns=[c for c in columns if c in profile.schema.categorical_names],
    )
    return EvidentlyOutcome(
        result.path, result.n_columns, result.n_drifted_columns, result.drift_share, result.seconds
    )


@dataclass(frozen=True)
class DriftReportOutcome:
    status: str
    n_predictions: int
    n_features_analyzed: int
    n_features_drifted: int
    drift_percentage: float | None
    weighted_drift_percentage: float | None
    multivariate_score: float | None
    top_features: pd.DataFrame
    figures: dict[str, Path]
    #: The domain classifier's verdict and AUC threshold (None when it did not run).
    multivariate_drifted: bool | None = None
    multivariate_threshold: float | None = None
    #: Drifted features among the model's 10 most important, most important first.
    important_drifted: tuple[str, ...] = ()

    @property
    def summary(self) -> str:
        if self.status == "NO_DATA":
            return "no predictions in this window"
        return (
            f"{self.n_features_drifted}/{self.n_features_analyzed} features drifted "
            f"({self.drift_percentage:.1f}%) over {self.n_predictions} predictions"
        )


def write_drift_report(engine, settings: Settings, day: str) -> DriftReportOutcome:
    """Upsert the window's `drift_reports` row (with the multivariate score) and draw the
    notebook's figures for it: KS top 20, top-6 distributions, and the drift timeline."""
    from credit_drift.reports.plots import (
        plot_drift_timeline,
        plot_feature_distributions,
        plot_ks_top_features,
    )
    from credit_drift.storage.reports import (
        DriftReportRow,
        read_drift_reports,
        read_feature_drift,
        upsert_drift_report,
    )

    summary = load_feature_drift_summary(settings, day)
    window = load_window(settings, day)
    profile, stored = load_reference_profile(engine)
    date = dt.date.fromisoformat(day)
    results = read_feature_drift(engine, date)
    status = summary["status"]
    multivariate = None
    if status != "NO_DATA" and len(window.meta) >= settings.min_window_rows:
        multivariate = multivariate_drift(profile, window.features)
    start, end = window_bounds_for_day(day)
    row = DriftReportRow(
        report_date=date,
        window_start=start,
        window_end=end,
        n_predictions=len(window.meta),
        n_features_analyzed=int(summary["n_analyzed"]),
        n_features_drifted=int(summary["n_drifted"]),
        drift_percentage=summary["drift_percentage"],
        weighted_drift_percentage=summary["weighted_drift_percentage"],
        status=status,
        policy=summary["policy_name"],
        multivariate_score=None if multivariate is None else multivariate.auc,
        model_version=stored.model_version,
        profile_version=stored.profile_version,
        details={
            "multivariate": None
            if multivariate is None
            else {k: plain(v) for k, v in vars(multivariate).items()},
            "top_features": top_drifted(results, 10)["feature"].tolist(),
        },
    )
    upsert_drift_report(engine, row)

    out = report_dir(settings, day)
    figures = {
        "ks_top_features": plot_ks_top_features(results, out / "ks_top_features.png"),
    }
    ranked = _by_importance(profile)
    drifted = (
        set(results.loc[results["drifted"].astype(bool), "feature"]) if len(results) else set()
    )
    top6 = ranked[:6]
    if len(window.meta):
        ks = (
            dict(zip(results["feature"], results["statistic"], strict=True)) if len(results) else {}
        )
        figures["top_feature_distributions"] = plot_feature_distributions(
            reference_summaries(profile, top6), window.features, top6, ks, out / "distributions.png"
        )
    figures["drift_timeline"] = plot_drift_timeline(
        read_drift_reports(engine),
        out / "drift_timeline.png",
        warning_pct=100 * settings.warning_share,
        alert_pct=100 * settings.alert_share,
    )
    return DriftReportOutcome(
        status=status,
        n_predictions=len(window.meta),
        n_features_analyzed=row.n_features_analyzed,
        n_features_drifted=row.n_features_drifted,
        drift_percentage=row.drift_percentage,
        weighted_drift_percentage=row.weighted_drift_percentage,
        multivariate_score=row.multivariate_score,
        top_features=top_drifted(results, 15),
        figures=figures,
        multivariate_drifted=None if multivariate is None else multivariate.drifted,
        multivariate_threshold=None if multivariate is None else multivariate.threshold,
        important_drifted=tuple(n for n in ranked[:10] if n in drifted),
    )


def _by_importance(profile) -> list[str]:
    return sorted(profile.importance, key=lambda n: -profile.importance[n])


def multivariate_drift(profile, features: pd.DataFrame):
    """Domain-classifier AUC of the window against the reference's joint sample."""
    from credit_drift.stats.multivariate import domain_classifier_drift

    return domain_classifier_drift(profile, features)


# -- operational metrics -------------------------------------------------------------------
@dataclass(frozen=True)
class OperationalOutcome:
    n_predictions: int
    numbers: dict[str, float | None]
    figure: Path | None


def compute_operational_metrics(engine, settings: Settings, day: str) -> OperationalOutcome:
    """Volume, latency, refusal rate, score distribution and score drift of one window."""
    from credit_drift.reports.plots import plot_operational
    from credit_drift.stats.score_drift import score_drift

    window = load_window(settings, day)
    meta = window.meta
    n = len(meta)
    figure_path = report_dir(settings, day) / "operational.png"
    threshold = float(meta["threshold"].iloc[-1]) if n else None
    figure = plot_operational(meta, threshold, figure_path)
    if n == 0:
        return OperationalOutcome(0, {}, figure)
    latency = meta["inference_time_ms"].astype(float)
    proba = meta["probability"].astype(float).to_numpy()
    profile, _ = load_reference_profile(engine)
    numbers: dict[str, float | None] = {
        "latency_mean_ms": float(latency.mean()),
        "latency_p50_ms": float(latency.quantile(0.5)),
        "latency_p95_ms": float(latency.quantile(0.95)),
        "mean_probability": float(proba.mean()),
        "refusal_rate": float((meta["decision"] == "REFUSED").mean()),
        "probability_p10": float(np.quantile(proba, 0.1)),
        "probability_p50": float(np.quantile(proba, 0.5)),
        "probability_p90": float(np.quantile(proba, 0.9)),
    }
    if profile.training_scores is not None:
        drift = score_drift(profile, proba)
        numbers.update(
            score_ks_statistic=drift.ks_statistic,
            score_ks_pvalue=drift.p_value,
            score_psi=drift.psi,
        )
    return OperationalOutcome(n, numbers, figure)
