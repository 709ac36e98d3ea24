"""drift_alert_sensor: delivers the alert outbox and announces each alert once.

Alerts are written by `drift_report` in the same transaction as the day's report (the outbox,
`drift_alerts`), so an ALERT in the database is alerted even if the run died right after writing
it, and by `estimated_performance` (kind `estimated_performance`, insert-if-absent) when the
day's estimated AUC is below its bound. Every tick, for every kind:
1. posts the outbox's undelivered alerts to the webhook (`pipeline.alerts.deliver_alerts`: a
   lease on each row, so a concurrent tick, CLI run or second daemon never posts one twice; at
   most 3 alerts per tick; failures recorded and retried on later ticks, never raised);
2. requests one `drift_alert_job` run per alert it has not seen (cursor: the last alert id),
   with run key `drift-alert-<day>` (drift) or `<kind>-alert-<day>` (the other kinds), so even a
   reset cursor launches no second run.

late_outcomes_sensor: re-materializes realized_performance for the days whose outcomes arrived.
Its cursor is `latest_outcome_change` (the latest received_at of the outcomes table) as last
seen: when it moves, the days of the predictions whose current outcome was received after the
cursor each get a realized_performance_job run (run key `realized-<day>-<change>`, so a tick
that dies after requesting but before moving its cursor requests no second run). Only days that
are partitions and have ended are requested (a day still open is measured when it closes).
"""

import datetime as dt

import dagster as dg

from credit_drift.defs import jobs  # the module: the loader would collect the job twice
from credit_drift.defs.partitions import daily_partitions
from credit_drift.defs.resources import PredictionDatabaseResource, ProjectResource
from credit_drift.pipeline.alerts import alert_log_line, alert_run_key, deliver_alerts
from credit_drift.storage.alert_outbox import alerts_after

#: New alerts announced per tick at most (the rest on the next tick).
BATCH = 100


@dg.sensor(
    job=jobs.drift_alert_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Delivers each alert of drift_alerts (written with an ALERT day's report, or "
    "WARNING with CREDIT_DRIFT_ALERT_SEVERITY=WARNING; or by estimated_performance when the "
    "estimated AUC is below CREDIT_DRIFT_MIN_ESTIMATED_AUC) to the webhook once, and launches "
    "one drift_alert_job run per alert (day and kind).",
)
def drift_alert_sensor(
    context: dg.SensorEvaluationContext,
    database: PredictionDatabaseResource,
    project: ProjectResource,
):
    engine = database.engine()
    try:
        for d in deliver_alerts(engine, project.alert_webhook_url, project.dagster_url):
            outcome = "delivered" if d.delivered else f"failed ({d.error})"
            context.log.info(f"{d.kind} alert webhook for window {d.report_date}: {outcome}")
    except Exception as exc:  # noqa: BLE001 - a delivery failure must not stop new announcements
        context.log.error(f"delivering alerts failed: {type(exc).__name__}: {exc}")
    cursor = int(context.cursor) if context.cursor else 0
    alerts = alerts_after(engine, cursor, BATCH)
    if not alerts:
        return dg.SkipReason("no new alert")
    requests = []
    for alert in alerts:
        # INFO: the alert itself was logged (WARNING) by the run that raised it, and a daemon
        # starting on state the CLI already handled re-reads old alerts here.
        line = alert_log_line(alert)
        context.log.info(f"announcing {line}")
        day = alert.report_date.isoformat()
        drift = alert.kind == "drift"
        requests.append(
            dg.RunRequest(
                run_key=alert_run_key(alert),
                run_config=dg.RunConfig(
                    ops={
                        "drift_alert": {
                            "config": {
                                "report_date": day,
                                "status": alert.severity,
                                "drift_percentage": float(alert.drift_percentage or 0.0)
                                if drift
                                else None,
                                "top_features": list(alert.top_features),
                                "webhook_status": alert.webhook_status or "",
                                "kind": alert.kind,
                                "message": line,
                            }
                        }
                    }
                ),
                tags={
                    "credit_drift/report_date": day,
                    "credit_drift/status": alert.severity,
                    "credit_drift/alert_kind": alert.kind,
                },
            )
        )
    context.update_cursor(str(alerts[-1].id))
    return requests


@dg.sensor(
    job=jobs.realized_performance_job,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Re-runs realized_performance for each day whose outcomes arrived or changed "
    "since the last tick (late outcomes, corrections, a loaded file).",
)
def late_outcomes_sensor(context: dg.SensorEvaluationContext, database: PredictionDatabaseResource):
    from credit_drift.storage.cohorts import cohort_days_changed_after
    from credit_drift.storage.outcomes import latest_outcome_change

    engine = database.engine()
    latest = latest_outcome_change(engine)
    if latest is None:
        return dg.SkipReason("no outcome recorded yet")
    seen = dt.datetime.fromisoformat(context.cursor) if context.cursor else None
    if seen is not None and latest <= seen:
        return dg.SkipReason(f"no outcome received since {seen.isoformat()}")
    now = dt.datetime.now(dt.UTC)
    existing = set(daily_partitions.get_partition_keys(current_time=now))
    days = [d.isoformat() for d in cohort_days_changed_after(engine, seen)]
    requested = [d for d in days if d in existing]
    if len(requested) < len(days):
        context.log.info(
            f"outcomes of {len(days) - len(requested)} day(s) outside the partitions or not "
            "ended yet are not measured now: " + ", ".join(sorted(set(days) - set(requested))[:10])
        )
    context.update_cursor(latest.isoformat())
    stamp = latest.strftime("%Y%m%dT%H%M%S%f")
    return [
        dg.RunRequest(
            run_key=f"realized-{day}-{stamp}",
            partition_key=day,
            tags={"credit_drift/kind": "late_outcomes"},
        )
        for day in requested
    ]
