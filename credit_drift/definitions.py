"""The single Dagster entry point (workspace.yaml, `dagster dev -m credit_drift.definitions`)."""

import dagster as dg

from credit_drift.defs.assets import predictions, reference_profile, windowed_assets
from credit_drift.defs.jobs import daily_drift_job, drift_alert_job, reference_profile_job
from credit_drift.defs.loggers import pipeline_loggers
from credit_drift.defs.resources import CreditDriftResource
from credit_drift.defs.schedules import daily_drift_schedule
from credit_drift.defs.sensors import drift_alert_sensor

defs = dg.Definitions(
    assets=[predictions, reference_profile, *windowed_assets],
    jobs=[daily_drift_job, reference_profile_job, drift_alert_job],
    schedules=[daily_drift_schedule],
    sensors=[drift_alert_sensor],
    resources={"project": CreditDriftResource()},
    executor=dg.in_process_executor,
    loggers=pipeline_loggers(),
)
