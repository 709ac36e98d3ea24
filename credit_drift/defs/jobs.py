"""Jobs: every daily asset for one or more days (backfills, the CLI), the reference profile,
and the alert job the sensor launches."""

import dagster as dg

# Modules, not names: the definitions loader would collect imported assets twice.
from credit_drift.defs import assets, execution
from credit_drift.defs.loggers import SELECT_CONSOLE_LOGGER
from credit_drift.defs.partitions import daily_partitions

daily_drift_job = dg.define_asset_job(
    "daily_drift_job",
    selection=dg.AssetSelection.assets(*assets.daily_assets),
    partitions_def=daily_partitions,
    description="Materialize every daily drift asset for a day (a backfill runs it for a range, "
    "several days per run).",
    # In-process, or celery workers in the production stack (CREDIT_DRIFT_EXECUTOR).
    executor_def=execution.pipeline_executor(),
    config=SELECT_CONSOLE_LOGGER,
)

realized_performance_job = dg.define_asset_job(
    "realized_performance_job",
    selection=dg.AssetSelection.assets(assets.realized_performance),
    partitions_def=daily_partitions,
    description="Measure a day's cohort against its observed outcomes (late_outcomes_sensor "
    "launches it for the days whose outcomes arrived).",
    executor_def=execution.pipeline_executor(),
    config=SELECT_CONSOLE_LOGGER,
)

reference_profile_job = dg.define_asset_job(
    "reference_profile_job",
    selection=dg.AssetSelection.assets(assets.reference_profile),
    description="Refit the reference profile (after retraining the model).",
    executor_def=execution.pipeline_executor(),
    config=SELECT_CONSOLE_LOGGER,
)


class DriftAlertConfig(dg.Config):
    report_date: str
    status: str
    drift_percentage: float | None = None
    top_features: list[str] = []
    webhook_status: str
    #: What the alert is about (`storage.schema.ALERT_KINDS`) and its one-line summary.
    kind: str = "drift"
    message: str = ""


@dg.op(
    description="Records an alert (drift or estimated performance) in the run log so that it "
    "shows up in the Dagster UI."
)
def drift_alert(context: dg.OpExecutionContext, config: DriftAlertConfig) -> None:
    if config.kind == "drift":
        context.log.warning(
            f"DRIFT {config.status} for window {config.report_date}: "
            f"{config.drift_percentage or 0.0:.1f}% of features drifted; top: "
            f"{', '.join(config.top_features[:10])}; webhook: {config.webhook_status}"
        )
    else:
        context.log.warning(f"{config.message}; webhook: {config.webhook_status}")


@dg.job(
    description="Launched by drift_alert_sensor once per alert (day and kind).",
    executor_def=execution.pipeline_executor(),
    tags={"credit_drift/kind": "alert"},
)
def drift_alert_job():
    drift_alert()
