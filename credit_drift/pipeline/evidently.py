"""The day's Evidently 0.7 data-drift HTML report: the window as CURRENT data, the training
reference (rebuilt exactly from the stored profile) as REFERENCE data."""

from dataclasses import dataclass
from pathlib import Path

from credit_drift.pipeline.config import PipelineConfig
from credit_drift.pipeline.feature_drift import FeatureDriftResult
from credit_drift.pipeline.reference import LoadedReference
from credit_drift.pipeline.window import ProductionWindow


@dataclass(frozen=True)
class EvidentlyOutcome:
    path: Path
    n_columns: int
    n_drifted_columns: int
    drift_share: float
    seconds: float


def build_evidently(
    reference: LoadedReference,
    window: ProductionWindow,
    drift: FeatureDriftResult,
    config: PipelineConfig,
) -> EvidentlyOutcome | None:
    """The report on the drifted features plus the most important ones, capped at
    `config.evidently_max_columns` (None for an empty day: nothing to compare)."""
    from credit_drift.reports.evidently_report import (
        build_evidently_report,
        reference_frame_from_summaries,
        select_report_columns,
    )

    if window.n_rows == 0:
        return None
    profile = reference.profile
    columns = select_report_columns(
        drift.results,
        profile.importance,
        max_columns=config.evidently_max_columns,
        include_all=config.evidently_all_columns,
    )
    result = build_evidently_report(
        reference_frame_from_summaries(reference.summaries(columns)),
        window.features.loc[:, columns],
        config.day_dir(window.day.key) / "evidently_report.html",
        categorical_columns=[c for c in columns if c in profile.schema.categorical_names],
    )
    return EvidentlyOutcome(
        result.path, result.n_columns, result.n_drifted_columns, result.drift_share, result.seconds
    )
