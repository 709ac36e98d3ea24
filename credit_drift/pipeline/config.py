"""The settings the pipeline's steps need, resolved once (from `Settings` or a Dagster resource)."""

from dataclasses import dataclass, field
from pathlib import Path

from credit_drift.settings import Settings
from credit_drift.stats.evidence import EvidenceSettings
from credit_drift.stats.policy import DriftPolicy, get_policy
from credit_drift.stats.segments import SegmentSpec


@dataclass(frozen=True)
class PipelineConfig:
    """artifacts_dir / training_data / target_column / id_column / positive_label: what the
    reference profile is fitted on; reports_dir: where each day's Evidently HTML and figures go;
    policy: the drift decision rule (thresholds included); min_window_rows: fewer rows and a day
    is too small for the window check and the domain classifier; alert_severity: the lowest
    status that alerts; alert_webhook_url: where alerts are posted ('' = recorded only);
    evidently_*: the report's column cap (Evidently takes minutes on all 419 columns)."""

    artifacts_dir: Path
    training_data: Path
    target_column: str
    id_column: str
    reports_dir: Path
    policy: DriftPolicy
    min_window_rows: int
    alert_severity: str
    alert_webhook_url: str = field(default="", repr=False)
    evidently_max_columns: int = 30
    evidently_all_columns: bool = False
    #: The target's value that means default, when the target is written as labels ('' = 0/1).
    positive_label: str = ""
    #: The evidence-across-days detector (`drift_evidence`): span, allowance, threshold, and
    #: the status shares (the policy's).
    evidence: EvidenceSettings = field(default_factory=EvidenceSettings)
    #: Days after a cohort's day by which its outcomes count as matured (realized_performance).
    outcome_horizon_days: float = 30.0
    #: estimated_performance is ALERT below this label-free estimated AUC (0: no bound).
    min_estimated_auc: float = 0.6
    #: The segments `segment_drift` tests on their own (no columns: none), fitted into the
    #: reference profile when it is built.
    segments: SegmentSpec = field(default_factory=SegmentSpec)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides) -> "PipelineConfig":
        values = dict(
            artifacts_dir=settings.artifacts_dir,
            training_data=settings.training_data,
            target_column=settings.target_column,
            id_column=settings.id_column,
            reports_dir=settings.reports_dir,
            policy=get_policy(
                settings.policy,
                warning_share=settings.warning_share,
                alert_share=settings.alert_share,
            ),
            min_window_rows=settings.min_window_rows,
            alert_severity=settings.alert_severity,
            alert_webhook_url=settings.alert_webhook_url,
            positive_label=settings.positive_label,
            outcome_horizon_days=settings.outcome_horizon_days,
            min_estimated_auc=settings.min_estimated_auc,
            evidence=EvidenceSettings(
                days=settings.evidence_days,
                allowance=settings.evidence_allowance,
                threshold=settings.evidence_threshold,
                warning_share=settings.warning_share,
                alert_share=settings.alert_share,
            ),
            segments=SegmentSpec(
                settings.segments, settings.score_bands, settings.segment_min_rows
            ),
        )
        values.update(overrides)
        return cls(**values)

    def day_dir(self, day_key: str) -> Path:
        """The folder of one day's reports and figures."""
        return self.reports_dir / day_key
