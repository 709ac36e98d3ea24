"""The daily schedule: every windowed asset for the day that just ended (UTC)."""

from dagster import build_schedule_from_partitioned_job

from credit_drift.defs.jobs import daily_drift_job

# Runs at 00:30 UTC and targets the previous day's partition (the last complete window).
daily_drift_schedule = build_schedule_from_partitioned_job(
    daily_drift_job, hour_of_day=0, minute_of_hour=30, name="daily_drift_schedule"
)
