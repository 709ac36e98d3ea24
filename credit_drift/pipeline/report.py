"""The day's drift report: the `drift_reports` row (with the domain classifier's score), the
day's alert written in the same transaction when the status calls for one (the outbox that the
alert sensor delivers from), the notebook's figures: KS top 20, top-6 distributions, and the
drift timeline, and, when given, why the score moved (`pipeline.attribution`): its digest in the
report's details and its bar chart."""

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sqlalchemy.engine import Engine

from credit_drift.pipeline.config import PipelineConfig
from credit_drift.pipeline.feature_drift import FeatureDriftResult, important_drifted
from credit_drift.pipeline.reference import LoadedReference
from credit_drift.pipeline.window import ProductionWindow
from credit_drift.stats.attribution import ScoreAttribution
from credit_drift.stats.policy import decide_joint, should_alert
from credit_drift.stats.results import top_drifted


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
    #: The importance-weighted drifted share reached the policy's share for important features.
    important_features_moved: bool = False
    #: Drifted features among the model's 10 most important, most important first.
    important_drifted: tuple[str, ...] = ()
    #: A new alert row was written with this report (False: none due, or the day had alerted).
    alert_raised: bool = False
    #: Why the mean score moved (None for an empty day or when not computed).
    attribution: ScoreAttribution | None = None

    @property
    def summary(self) -> str:
        if self.status == "NO_DATA":
            return "no predictions in this window"
        return (
            f"{self.n_features_drifted}/{self.n_features_analyzed} features drifted "
            f"({self.drift_percentage:.1f}%) over {self.n_predictions} predictions"
        )


def write_drift_report(
    engine: Engine,
    reference: LoadedReference,
    window: ProductionWindow,
    drift: FeatureDriftResult,
    config: PipelineConfig,
    attribution: ScoreAttribution | None = None,
) -> DriftReportOutcome:
    """Upsert the day's report (and, in the same transaction, its alert when the status reaches
    `config.alert_severity`), then draw the day's figures. `attribution` (from
    `pipeline.attribution.compute_score_attribution`) goes into the report's details and gets
    its figure."""
    from credit_drift.stats.multivariate import domain_classifier_drift
    from credit_drift.storage.alert_outbox import AlertIntent
    from credit_drift.storage.drift_results import DriftReportRow, upsert_drift_report

    status = drift.status
    joint = None
    multivariate = None
    if status != "NO_DATA" and window.n_rows >= config.min_window_rows:
        multivariate = domain_classifier_drift(reference.profile, window.features)
        joint = decide_joint(multivariate, config.policy)
    top10 = top_drifted(drift.results, 10)["feature"].tolist()
    row = DriftReportRow(
        report_date=window.day.date,
        window_start=window.day.start,
        window_end=window.day.end,
        n_predictions=window.n_rows,
        n_features_analyzed=drift.n_analyzed,
        n_features_drifted=drift.n_drifted,
        drift_percentage=drift.drift_percentage,
        weighted_drift_percentage=drift.weighted_drift_percentage,
        status=status,
        policy=drift.policy_name,
        multivariate_score=None if joint is None else joint.auc,
        model_version=reference.model_version,
        profile_version=reference.profile_version,
        details={
            "multivariate": None
            if multivariate is None
            else {
                "auc": multivariate.auc,
                "auc_std": multivariate.auc_std,
                "n_ref": multivariate.n_ref,
                "n_cur": multivariate.n_cur,
                "threshold": joint.threshold,
                "drifted": joint.drifted,
                "features": list(multivariate.features),
            },
            "top_features": top10,
            "score_attribution": None if attribution is None else attribution.summary(),
        },
    )
    alert = None
    if should_alert(status, config.alert_severity):
        alert = AlertIntent(
            report_date=window.day.date,
            severity=status,
            drift_percentage=drift.drift_percentage,
            top_features=top10,
            deliver=bool(config.alert_webhook_url),
        )
    raised = upsert_drift_report(engine, row, alert=alert)
    figures = _draw_figures(engine, reference, window, drift, config)
    if attribution is not None:
        from credit_drift.reports.plots import plot_score_attribution

        figures["score_attribution_chart"] = plot_score_attribution(
            attribution.table,
            config.day_dir(window.day.key) / "score_attribution.png",
            mean_log_odds_change=attribution.mean_margin_change,
            mean_probability_change=attribution.mean_probability_change,
        )
    return DriftReportOutcome(
        status=status,
        n_predictions=window.n_rows,
        n_features_analyzed=row.n_features_analyzed,
        n_features_drifted=row.n_features_drifted,
        drift_percentage=row.drift_percentage,
        weighted_drift_percentage=row.weighted_drift_percentage,
        multivariate_score=row.multivariate_score,
        top_features=top_drifted(drift.results, 15),
        figures=figures,
        multivariate_drifted=None if joint is None else joint.drifted,
        multivariate_threshold=None if joint is None else joint.threshold,
        important_features_moved=drift.important_features_moved,
        important_drifted=important_drifted(reference, drift),
        alert_raised=raised,
        attribution=attribution,
    )


def _draw_figures(
    engine: Engine,
    reference: LoadedReference,
    window: ProductionWindow,
    drift: FeatureDriftResult,
    config: PipelineConfig,
) -> dict[str, Path]:
    """The notebook's figures for the day, saved under the day's report folder."""
    from credit_drift.reports.plots import (
        plot_drift_timeline,
        plot_feature_distributions,
        plot_ks_top_features,
    )
    from credit_drift.storage.drift_results import read_drift_reports

    out = config.day_dir(window.day.key)
    results = drift.results
    figures = {"ks_top_features": plot_ks_top_features(results, out / "ks_top_features.png")}
    if window.n_rows:
        top6 = reference.by_importance()[:6]
        ks = dict(zip(results["feature"], results["statistic"], strict=True))
        figures["top_feature_distributions"] = plot_feature_distributions(
            reference.summaries(top6), window.features, top6, ks, out / "distributions.png"
        )
    figures["drift_timeline"] = plot_drift_timeline(
        read_drift_reports(engine),
        out / "drift_timeline.png",
        warning_pct=100 * config.policy.warning_share,
        alert_pct=100 * config.policy.alert_share,
    )
    return figures
