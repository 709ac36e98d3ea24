"""The label-free performance estimate of a day (`stats.cbpe`): the day's logged probabilities
calibrated on the model's hold-out, the expected AUC, default rate, confusion matrix and cost,
against the band that days of the same size drawn from the hold-out give, and the configured
AUC bound.

Status: NO_DATA (no predictions of this model version), ALERT (estimated AUC below
`min_estimated_auc`), WARNING (a metric outside its band), OK. What it cannot see: a change in
P(default | features) (concept drift); only realized outcomes show that.

A day whose status reaches the configured alert severity raises one `estimated_performance`
alert in the outbox (`raise_alert`), which `drift_alert_sensor` delivers like a drift alert.
"""

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from credit_drift.errors import CreditDriftError
from credit_drift.pipeline.config import PipelineConfig
from credit_drift.pipeline.window import ProductionWindow
from credit_drift.stats.cbpe import (
    BAND_METRICS,
    Band,
    CalibrationCheck,
    CbpeReference,
    PerformanceEstimate,
    fit_cbpe,
)


class EstimateUnavailableError(CreditDriftError, ValueError):
    """The model artifacts cannot support the estimate; the message says what to do."""


@dataclass(frozen=True)
class EstimatedPerformance:
    """estimate: None on a day without predictions of this model; bands: None when the day is
    larger than half the hold-out (see `CbpeReference.bands`); outside_band: the metrics outside
    their band; n_other_model: the day's predictions scored by another model version (not
    estimated: this model's calibration says nothing about them), counted, never dropped
    silently."""

    day: str
    status: str
    n_predictions: int
    n_other_model: int
    estimate: PerformanceEstimate | None
    bands: dict[str, Band] | None
    outside_band: tuple[str, ...]
    min_auc: float
    validation: dict[str, float]
    calibration: CalibrationCheck
    figure: Path | None

    @property
    def summary(self) -> str:
        other = (
            f"; {self.n_other_model} prediction(s) by another model version not estimated"
            if self.n_other_model
            else ""
        )
        if self.estimate is None:
            return ("no predictions of this model version" if other else "no predictions") + other
        e = self.estimate
        text = (
            f"estimated AUC {e.auc:.3f}, default rate {e.default_rate:.2%}, cost per "
            f"application {e.cost_per_application:.3f}"
        )
        if self.status == "ALERT":
            text += f"; AUC below the bound {self.min_auc}"
        if self.outside_band:
            text += f"; outside the reference band: {', '.join(self.outside_band)}"
        return text + other

    def numbers(self) -> dict[str, float | None]:
        """Every number of the day, for the UI (None when it does not exist)."""
        e, c = self.estimate, self.calibration
        out: dict[str, float | None] = {
            "calibration_raw_ece": c.raw_ece,
            "calibration_calibrated_ece": c.calibrated_ece,
            "validation_auc": self.validation.get("auc"),
            "validation_default_rate": self.validation.get("test_default_rate"),
            "validation_cost_per_application": self.validation.get("cost_per_application"),
        }
        for name in BAND_METRICS:
            out[f"estimated_{name}"] = e.metric(name) if e else None
            band = (self.bands or {}).get(name)
            out[f"{name}_band_lower"] = band.lower if band else None
            out[f"{name}_band_upper"] = band.upper if band else None
        if e is not None:
            out.update(
                expected_tp=e.expected_tp,
                expected_fp=e.expected_fp,
                expected_fn=e.expected_fn,
                expected_tn=e.expected_tn,
                estimated_cost=e.cost,
            )
        return out


def cbpe_reference(artifacts) -> CbpeReference:
    """The calibration and band reference of a model: its hold-out (`holdout.json`)."""
    if artifacts.holdout is None:
        raise EstimateUnavailableError(
            "the model artifacts have no holdout.json (trained before the label-free estimate "
            "existed): retrain with `credit-drift train` to keep the hold-out's probabilities "
            "and outcomes"
        )
    return fit_cbpe(artifacts.holdout.probability, artifacts.holdout.outcome)


def costs(artifacts) -> tuple[float, float]:
    """The model's business costs (metrics.json, else the threshold report)."""
    report = artifacts.threshold_report
    return (
        float(artifacts.metrics.get("cost_fn", report.cost_fn)),
        float(artifacts.metrics.get("cost_fp", report.cost_fp)),
    )


def estimate_day(
    artifacts,
    reference: CbpeReference,
    window: ProductionWindow,
    config: PipelineConfig,
    *,
    plot: bool = True,
) -> EstimatedPerformance:
    """The day's estimate, band, status and figure (see the module docstring)."""
    return estimate_logged(artifacts, reference, window.meta, window.day.key, config, plot=plot)


def estimate_logged(
    artifacts,
    reference: CbpeReference,
    logged,
    day_key: str,
    config: PipelineConfig,
    *,
    plot: bool = True,
) -> EstimatedPerformance:
    """`estimate_day` on a day's logged predictions (`logged`: a frame with the columns
    probability, decision, threshold and model_version, e.g. `ProductionWindow.meta` or
    `storage.outcomes.read_cohort`'s), without reading the feature vectors."""
    from credit_drift.reports.plots import plot_estimated_performance

    mine = (logged["model_version"] == artifacts.version).to_numpy(bool)
    meta = logged[mine]
    cost_fn, cost_fp = costs(artifacts)
    estimate, bands, outside = None, None, ()
    status = "NO_DATA"
    if len(meta):
        scores = meta["probability"].to_numpy(np.float64)
        refused = (meta["decision"] == "REFUSED").to_numpy(bool)
        # The threshold in force at the end of the day decides the band's samples.
        threshold = float(meta["threshold"].iloc[-1])
        estimate = reference.estimate(scores, refused, cost_fn=cost_fn, cost_fp=cost_fp)
        bands = reference.bands(len(meta), threshold=threshold, cost_fn=cost_fn, cost_fp=cost_fp)
        outside = tuple(
            name
            for name, band in (bands or {}).items()
            if np.isfinite(estimate.metric(name)) and not band.contains(estimate.metric(name))
        )
        below = config.min_estimated_auc > 0 and estimate.auc < config.min_estimated_auc
        status = "ALERT" if below else "WARNING" if outside else "OK"
    validation = {
        k: float(artifacts.metrics[k])
        for k in ("auc", "test_default_rate", "cost_per_application")
        if k in artifacts.metrics
    }
    figure = None
    if plot:
        figure = plot_estimated_performance(
            estimate,
            bands,
            reference.check,
            config.min_estimated_auc,
            config.day_dir(day_key) / "estimated_performance.png",
        )
    return EstimatedPerformance(
        day=day_key,
        status=status,
        n_predictions=len(meta),
        n_other_model=int((~mine).sum()),
        estimate=estimate,
        bands=bands,
        outside_band=outside,
        min_auc=config.min_estimated_auc,
        validation=validation,
        calibration=reference.check,
        figure=figure,
    )


#: The outbox kind of the estimate's alerts (`storage.schema.ALERT_KINDS`).
ALERT_KIND = "estimated_performance"


def alert_details(out: EstimatedPerformance) -> dict[str, Any]:
    """What the alert says about the day (JSON-ready; NaN and a missing band as None): the
    estimated AUC, its bound and band, the day's size, the metrics outside their band."""
    from credit_drift.storage.sql import plain

    e = out.estimate
    band = (out.bands or {}).get("auc")
    return {
        "estimated_auc": None if e is None else plain(float(e.auc)),
        "min_auc": float(out.min_auc),
        "auc_band": None if band is None else [plain(band.lower), plain(band.upper)],
        "estimated_default_rate": None if e is None else plain(float(e.default_rate)),
        "n_predictions": int(out.n_predictions),
        "outside_band": list(out.outside_band),
        "summary": out.summary,
    }


def raise_alert(engine, out: EstimatedPerformance, config: PipelineConfig) -> bool:
    """Record the day's `estimated_performance` alert when its status reaches
    `config.alert_severity` (ALERT: the estimated AUC below the bound; WARNING too with
    CREDIT_DRIFT_ALERT_SEVERITY=WARNING). The estimate itself is not stored, so the alert is
    written alone, insert-if-absent: a re-materialized or concurrently materialized day writes
    one row between them. True when this call wrote it."""
    from credit_drift.stats.policy import should_alert
    from credit_drift.storage.alert_outbox import AlertIntent, record_alert

    if not should_alert(out.status, config.alert_severity):
        return False
    intent = AlertIntent(
        report_date=dt.date.fromisoformat(out.day),
        severity=out.status,
        drift_percentage=None,
        top_features=(),
        deliver=bool(config.alert_webhook_url),
        kind=ALERT_KIND,
        details=alert_details(out),
    )
    return record_alert(engine, intent)
