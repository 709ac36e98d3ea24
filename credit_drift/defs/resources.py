"""The Dagster resources of the drift assets, as typed configuration.

* `database` (PredictionDatabaseResource): the prediction log's URL;
* `reference` (ReferenceProfileResource): the stored reference profile, loaded once per run;
* `project` (ProjectResource): model artifacts, training data, reports folder, drift policy and
  thresholds, alerting;
* `daily_io_manager`: where each day's values travel between the daily assets.

`resources_from_settings` fills them from `credit_drift.settings` (the environment) when the
definitions load; secrets (the database URL, the webhook URL) are passed as `dg.EnvVar` when
they come from the environment, so the UI shows the variable's name, never its value. Nothing
connects or loads at import or construction time.
"""

import os
from typing import Any

import dagster as dg
from pydantic import PrivateAttr
from sqlalchemy.engine import Engine

from credit_drift.defs.io_manager import DailyValueIOManagerFactory
from credit_drift.defs.partitions import EVIDENCE_DAYS
from credit_drift.pipeline.config import PipelineConfig
from credit_drift.pipeline.reference import LoadedReference
from credit_drift.settings import Settings, normalize_database_url
from credit_drift.stats.evidence import EvidenceSettings
from credit_drift.stats.policy import DEFAULT_ALERT_SHARE, DEFAULT_WARNING_SHARE, get_policy
from credit_drift.stats.segments import SegmentSpec


class PredictionDatabaseResource(dg.ConfigurableResource):
    """The prediction log: a SQLAlchemy URL, `sqlite:///...` or `postgresql+psycopg2://...`.
    The schema is migrated to the latest revision the first time a run uses it."""

    url: str

    _engine: Engine | None = PrivateAttr(default=None)

    def engine(self) -> Engine:
        if self._engine is None:
            from credit_drift.storage.db import make_engine, upgrade
            from credit_drift.storage.partitions import ensure_partitions

            url = normalize_database_url(self.url)
            upgrade(url)  # idempotent and cheap; a fresh state directory just works
            self._engine = make_engine(url)
            # PostgreSQL: each run creates the log's partitions a week ahead (no-op on SQLite).
            ensure_partitions(self._engine)
        return self._engine


class ReferenceProfileResource(dg.ConfigurableResource):
    """The active reference profile from the database, loaded once per run and shared by every
    daily asset of the run (restored from the database once per process while it stays the
    active one: `pipeline.reference.load_reference_profile`)."""

    database: PredictionDatabaseResource

    _loaded: LoadedReference | None = PrivateAttr(default=None)

    def load(self) -> LoadedReference:
        if self._loaded is None:
            from credit_drift.pipeline.reference import load_reference_profile

            self._loaded = load_reference_profile(self.database.engine())
        return self._loaded


class ProjectResource(dg.ConfigurableResource):
    """What the drift assets need to know: the model (artifacts_dir), the data its reference is
    fitted on, where reports go, the drift policy and its thresholds, and alerting. Every field
    is documented in `credit-drift env` under its environment variable."""

    artifacts_dir: str
    training_data: str
    reports_dir: str
    target_column: str = "TARGET"
    id_column: str = "SK_ID_CURR"
    positive_label: str = ""
    policy: str = "default"
    warning_share: float = DEFAULT_WARNING_SHARE
    alert_share: float = DEFAULT_ALERT_SHARE
    min_window_rows: int = 30
    alert_severity: str = "ALERT"
    alert_webhook_url: str = ""
    #: The Dagster UI's address, for the day's link in an alert's webhook body ('' = no link).
    dagster_url: str = ""
    evidently_max_columns: int = 30
    evidently_all_columns: bool = False
    evidence_allowance: float = 0.005
    evidence_threshold: float = 0.05
    outcome_horizon_days: float = 30.0
    min_estimated_auc: float = 0.6
    #: Comma-separated segment columns and score band edges (CREDIT_DRIFT_SEGMENTS, _SCORE_BANDS).
    segments: str = ""
    score_bands: str = "0.05,0.1,0.2"
    segment_min_rows: int = 100

    def config(self) -> PipelineConfig:
        from pathlib import Path

        return PipelineConfig(
            artifacts_dir=Path(self.artifacts_dir),
            training_data=Path(self.training_data),
            target_column=self.target_column,
            id_column=self.id_column,
            reports_dir=Path(self.reports_dir),
            policy=get_policy(
                self.policy, warning_share=self.warning_share, alert_share=self.alert_share
            ),
            min_window_rows=self.min_window_rows,
            alert_severity=self.alert_severity,
            alert_webhook_url=self.alert_webhook_url,
            evidently_max_columns=self.evidently_max_columns,
            evidently_all_columns=self.evidently_all_columns,
            positive_label=self.positive_label,
            outcome_horizon_days=self.outcome_horizon_days,
            min_estimated_auc=self.min_estimated_auc,
            evidence=EvidenceSettings(
                # The span is the asset's partition mapping, fixed when the definitions load.
                days=EVIDENCE_DAYS,
                allowance=self.evidence_allowance,
                threshold=self.evidence_threshold,
                warning_share=self.warning_share,
                alert_share=self.alert_share,
            ),
            segments=SegmentSpec(
                tuple(c for c in self.segments.split(",") if c.strip()),
                tuple(float(e) for e in self.score_bands.split(",") if e.strip()),
                self.segment_min_rows,
            ),
        )

    _artifacts: Any = PrivateAttr(default=None)

    def artifacts(self):
        """The model, read from `artifacts_dir` once per run (Dagster builds the resource anew
        for each run): every asset of the run scores with the same model, and the booster is
        not parsed again for each of them."""
        if self._artifacts is None:
            from credit_drift.model.artifacts import load_artifacts

            self._artifacts = load_artifacts(self.config().artifacts_dir)
        return self._artifacts


def _from_env(name: str, value: str, normalize=lambda v: v) -> Any:
    """`dg.EnvVar(name)` when the environment is where `value` came from, else `value`."""
    raw = os.environ.get(name, "")
    return dg.EnvVar(name) if raw and normalize(raw) == value else value


def resources_from_settings(settings: Settings | None = None, **project: Any) -> dict[str, Any]:
    """Every resource the drift definitions use, from `settings` (default: the environment);
    keyword arguments override ProjectResource fields (tests: evidently_max_columns=8)."""
    settings = settings or Settings.from_env()
    database = PredictionDatabaseResource(
        url=_from_env("DATABASE_URL", settings.database_url, normalize_database_url)
    )
    fields = dict(
        artifacts_dir=str(settings.artifacts_dir),
        training_data=str(settings.training_data),
        reports_dir=str(settings.reports_dir),
        target_column=settings.target_column,
        id_column=settings.id_column,
        positive_label=settings.positive_label,
        policy=settings.policy,
        warning_share=settings.warning_share,
        alert_share=settings.alert_share,
        min_window_rows=settings.min_window_rows,
        alert_severity=settings.alert_severity,
        alert_webhook_url=_from_env("CREDIT_DRIFT_ALERT_WEBHOOK_URL", settings.alert_webhook_url),
        dagster_url=settings.dagster_url,
        evidence_allowance=settings.evidence_allowance,
        evidence_threshold=settings.evidence_threshold,
        outcome_horizon_days=settings.outcome_horizon_days,
        min_estimated_auc=settings.min_estimated_auc,
        segments=",".join(settings.segments),
        score_bands=",".join(repr(e) for e in settings.score_bands),
        segment_min_rows=settings.segment_min_rows,
    )
    fields.update(project)
    return {
        "database": database,
        "reference": ReferenceProfileResource(database=database),
        "project": ProjectResource(**fields),
        "daily_io_manager": DailyValueIOManagerFactory(base=settings.io_base),
    }


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources=resources_from_settings())
