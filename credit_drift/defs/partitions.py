"""The single daily partitioning shared by every daily asset, check and job, and the one place
a partition becomes a `DayWindow`."""

import dagster as dg

from credit_drift.settings import Settings
from credit_drift.storage.windows import DayWindow

_settings = Settings.from_env()

daily_partitions = dg.DailyPartitionsDefinition(
    start_date=_settings.partitions_start, timezone="UTC"
)

#: A backfill puts this many days in one run (CREDIT_DRIFT_BACKFILL_DAYS_PER_RUN): a 90-day
#: backfill is 13 runs' start-up instead of 90. Every daily asset handles the days of its run.
daily_backfill_policy = dg.BackfillPolicy.multi_run(
    max_partitions_per_run=_settings.backfill_days_per_run
)


#: Days `drift_evidence` reads back (CREDIT_DRIFT_EVIDENCE_DAYS): its partition mapping onto
#: feature_drift, which Dagster needs when the definitions load.
EVIDENCE_DAYS = _settings.evidence_days
evidence_span = dg.TimeWindowPartitionMapping(
    start_offset=-(EVIDENCE_DAYS - 1), end_offset=0, allow_nonexistent_upstream_partitions=True
)

#: Days after its day by which a cohort's outcomes count as matured
#: (CREDIT_DRIFT_OUTCOME_HORIZON_DAYS): realized_performance re-runs the days still maturing.
OUTCOME_HORIZON_DAYS = _settings.outcome_horizon_days


def day_windows(context: dg.AssetExecutionContext) -> list[DayWindow]:
    """The days of the run, oldest first: one for a scheduled or automated run, several for a
    backfill run."""
    days = [DayWindow.of(key) for key in context.partition_keys]
    window = context.partition_time_window
    if days[0].start != window.start or days[-1].end != window.end:
        raise ValueError(
            f"partition keys {context.partition_keys} do not tile the run's time window "
            f"[{window.start}, {window.end})"
        )
    return days
