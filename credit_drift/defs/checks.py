"""Freshness checks: a day not processed by its deadline shows on each daily asset in the UI."""

import dagster as dg

# Modules, not names: the definitions loader collects every Dagster object a module holds, and
# an imported asset would be collected twice.
from credit_drift.defs import assets, automation

freshness_checks = dg.build_time_partition_freshness_checks(
    assets=assets.daily_assets, deadline_cron=automation.FRESHNESS_DEADLINE_CRON, timezone="UTC"
)

#: A daily deadline needs no 30-second polling: at Dagster's default interval the sensor launched a
#: check run about every 45 s beside a 90-day backfill on the stack (25 runs beside its 26),
#: taking run slots and cores from it (benchmarks/bench_capacity.py backfill).
FRESHNESS_SENSOR_INTERVAL_S = 600

freshness_checks_sensor = dg.build_sensor_for_freshness_checks(
    freshness_checks=freshness_checks,
    minimum_interval_seconds=FRESHNESS_SENSOR_INTERVAL_S,
    name="credit_drift_freshness_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING,
)
