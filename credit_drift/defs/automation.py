"""When the daily assets run by themselves (Declarative Automation, evaluated by the daemon's
`credit_drift_automation_sensor`), and how late a day may be before the UI says so.

* `production_window` runs once a day's window has closed: at 00:30 UTC for the day that just
  ended (the external `predictions` table is not materialized by Dagster, so it is not waited
  for).
* Everything downstream of it runs as soon as its upstream day is updated, and again whenever
  that day's upstream changes (late predictions re-read, a new reference profile), for the
  last seven days.
* `realized_performance` re-runs, once a day at the same tick, every day still maturing (the
  last CREDIT_DRIFT_OUTCOME_HORIZON_DAYS days plus the 7-day lookback): a cohort's status moves
  from partial to mature with the calendar alone. Outcomes arriving are the job of
  `late_outcomes_sensor` (defs/sensors.py), which re-runs exactly the days they belong to.
* Freshness: each daily asset's previous day must be materialized by 02:00 UTC, or its freshness
  check fails (WARN) in the UI.
"""

import datetime as dt

import dagster as dg

#: The cron tick at which a day's window counts as closed (the day that just ended, UTC).
DAY_CLOSES_CRON = "30 0 * * *"
#: By when the day that just ended must be processed (UTC).
FRESHNESS_DEADLINE_CRON = "0 2 * * *"
#: How far back an upstream change still re-runs a day's downstream assets.
RECOMPUTE_LOOKBACK = dt.timedelta(days=7)

WHEN_THE_DAY_CLOSES = (
    dg.AutomationCondition.on_cron(DAY_CLOSES_CRON)
    .ignore(dg.AssetSelection.assets("predictions"))
    .with_label("when the day closes")
)

DOWNSTREAM_OF_THE_DAY = (
    dg.AutomationCondition.eager()
    .replace(
        dg.AutomationCondition.in_latest_time_window(),
        dg.AutomationCondition.in_latest_time_window(RECOMPUTE_LOOKBACK),
    )
    .with_label("when the day's upstream updates (last 7 days)")
)

#: drift_evidence reads the last days of feature_drift: a day that was never materialized (before
#: the first day with traffic, or skipped) must not hold it back forever, as eager's "no
#: dependency missing" would; it counts the days that exist. It still waits for runs in progress.
WITH_THE_DAYS_THAT_EXIST = DOWNSTREAM_OF_THE_DAY.without(
    ~dg.AutomationCondition.any_deps_missing()
).with_label("when any of its days' upstream updates (last 7 days)")


def while_cohorts_mature(horizon_days: float) -> dg.AutomationCondition:
    """Once a day (at the day-closing tick), each day whose cohort may still be maturing:
    the last `horizon_days` days plus RECOMPUTE_LOOKBACK."""
    lookback = dt.timedelta(days=horizon_days) + RECOMPUTE_LOOKBACK
    return (
        dg.AutomationCondition.in_latest_time_window(lookback)
        & dg.AutomationCondition.cron_tick_passed(DAY_CLOSES_CRON)
        & ~dg.AutomationCondition.in_progress()
    ).with_label("daily, while the day's cohort matures")


automation_sensor = dg.AutomationConditionSensorDefinition(
    "credit_drift_automation_sensor",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Evaluates the daily assets' automation conditions (runs under the daemon).",
)
