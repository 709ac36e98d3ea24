"""Freshness checks: a day not processed by its deadline shows on each daily asset in the UI."""

import dagster as dg

# Modules, not names: the definitions loader collects every Dagster object a module holds, and
# an imported asset would be collected twice.
from credit_drift.defs import assets, automation

freshness_checks = dg.build_time_partition_freshness_checks(
    assets=assets.daily_assets, deadline_cron=automation.FRESHNESS_DEADLINE_CRON, timezone="UTC"
)

freshness_checks_sensor = dg.build_sensor_for_freshness_checks(
    freshness_checks=freshness_checks,
    name="credit_drift_freshness_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING,
)
