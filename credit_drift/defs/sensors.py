"""drift_alert_sensor: one alert per alerting window, exactly once.

The cursor is the storage id of the last drift_report materialization seen, so every partition's
materialization is visited once (backfills included, several per tick included). Exactly-once
does not rest on the cursor alone: the alert row is inserted under a UNIQUE(report_date)
constraint and the alert run carries run_key `drift-alert-<day>`, so a reset cursor, a daemon
restart or a re-materialization of the same window alerts nothing twice.

Every tick (also one with no new materialization) first re-delivers the alerts whose webhook
failed earlier (`monitoring.retry_failed_webhooks`, bounded by WEBHOOK_MAX_TOTAL_ATTEMPTS per
alert); a failure there is logged, never raised, so it cannot stop new windows from alerting.
"""

import dagster as dg

from credit_drift import monitoring
from credit_drift.defs.assets import drift_report
from credit_drift.defs.jobs import drift_alert_job
from credit_drift.defs.resources import CreditDriftResource

BATCH = 100


@dg.sensor(
    job=drift_alert_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Raises an alert (alerts table row, log line, webhook, alert run) for each window "
    "whose drift_report status reaches CREDIT_DRIFT_ALERT_SEVERITY (ALERT by default).",
)
def drift_alert_sensor(context: dg.SensorEvaluationContext, project: CreditDriftResource):
    settings = project.settings()
    engine = None
    if settings.alert_webhook_url:
        # Before the new windows: an alert that fails right now has had its attempts this tick.
        try:
            engine = project.engine()
            retried = monitoring.retry_failed_webhooks(engine, settings)
            if retried:
                context.log.info(f"retried the alert webhook for window(s) {', '.join(retried)}")
        except Exception as exc:  # noqa: BLE001 - a retry failure must not stop new alerts
            context.log.error(f"retrying failed alert webhooks failed: {type(exc).__name__}: {exc}")
    cursor = int(context.cursor) if context.cursor else 0
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=drift_report.key, after_storage_id=cursor),
        limit=BATCH,
        ascending=True,
    ).records
    if not records:
        return dg.SkipReason("no new drift_report materialization")
    run_requests = []
    for record in records:
        cursor = max(cursor, record.storage_id)
        materialization = record.asset_materialization
        if materialization is None or materialization.partition is None:
            continue
        day = materialization.partition
        status_meta = materialization.metadata.get("status")
        status = status_meta.value if status_meta is not None else None
        if not monitoring.should_alert(status, settings.alert_severity):
            continue
        engine = engine or project.engine()
        alert = monitoring.raise_alert(engine, settings, day)
        if alert is None:  # the window already alerted (re-materialization, replayed cursor)
            context.log.info(f"window {day} already alerted; not repeating")
            continue
        context.log.warning(alert.log_line)
        run_requests.append(
            dg.RunRequest(
                run_key=f"drift-alert-{day}",
                run_config=dg.RunConfig(ops={"drift_alert": alert.job_config()}),
                tags={"credit_drift/report_date": day, "credit_drift/status": alert.status},
            )
        )
    context.update_cursor(str(cursor))
    if not run_requests:
        return dg.SkipReason(f"{len(records)} new report(s), none alerting")
    return run_requests
