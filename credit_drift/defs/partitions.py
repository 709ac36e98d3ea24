"""The single daily partitioning shared by every windowed asset, check, job and schedule."""

import datetime as dt

import dagster as dg

from credit_drift.settings import Settings

daily_partitions = dg.DailyPartitionsDefinition(
    start_date=Settings.from_env().partitions_start, timezone="UTC"
)


def window_for(context: dg.AssetExecutionContext) -> tuple[dt.datetime, dt.datetime]:
    """The half-open UTC window [day, day + 1) of the partition being materialized."""
    window = context.partition_time_window
    return window.start.astimezone(dt.UTC), window.end.astimezone(dt.UTC)
