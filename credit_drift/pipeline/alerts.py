"""Delivering the alert outbox: each alert row is posted to the webhook by whoever claims it
first (a lease on the row), with retries and backoff; a failure is recorded and retried on
later calls, never raised. The rows themselves are written with the day's report
(`report.write_drift_report`), so no alert depends on this process staying alive.
"""

import datetime as dt
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from credit_drift.storage.alert_outbox import StoredAlert, claim_deliverable, finish_delivery

log = logging.getLogger("credit_drift.alerts")

#: Attempts per delivery; a failed alert is retried on later calls too, up to the total.
WEBHOOK_ATTEMPTS = 3
WEBHOOK_MAX_TOTAL_ATTEMPTS = 9
WEBHOOK_TIMEOUT_S = 5.0
WEBHOOK_BACKOFF_S = 0.5
#: At most this many alerts are delivered per call (oldest day first), so that a webhook that
#: accepts connections but never answers cannot push a sensor tick past Dagster's sensor
#: timeout: worst case 3 x (3 x 5 s timeout + backoff).
WEBHOOK_ALERTS_PER_CALL = 3
#: How long a claimed alert stays reserved for its deliverer: longer than one delivery can take
#: (3 attempts x 5 s + backoff), so a live deliverer never loses its lease; a dead one's alert
#: is taken over after it.
LEASE = dt.timedelta(seconds=60)


def alert_log_line(alert: StoredAlert) -> str:
    return (
        f"DRIFT {alert.severity} window={alert.report_date.isoformat()} "
        f"drift_percentage={alert.drift_percentage or 0.0:.1f} "
        f"top_features={','.join(alert.top_features[:10])}"
    )


def slack_body(alert: StoredAlert, dagster_url: str | None = None) -> dict[str, Any]:
    """A Slack-compatible incoming-webhook body (`text` is what every consumer reads);
    `credit_drift.alert_id` lets a receiver drop the rare second delivery (see the outbox)."""
    day = alert.report_date.isoformat()
    text = (
        f":rotating_light: credit-drift {alert.severity}: {alert.drift_percentage or 0.0:.1f}% "
        f"of the model's features drifted in the window {day} (UTC). "
        f"Top drifted: {', '.join(alert.top_features[:5]) or 'n/a'}."
    )
    body: dict[str, Any] = {
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
        "credit_drift": {
            "alert_id": alert.id,
            "report_date": day,
            "status": alert.severity,
            "drift_percentage": alert.drift_percentage,
            "top_features": list(alert.top_features),
        },
    }
    if dagster_url:
        body["blocks"].append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": dagster_url}]}
        )
    return body


def post_webhook(
    url: str, body: dict[str, Any], attempts: int = WEBHOOK_ATTEMPTS
) -> tuple[bool, int, str | None]:
    """POST with retries and backoff. Returns (delivered, attempts made, last error). Never
    raises: a broken webhook must not crash the sensor or lose the alert."""
    import httpx

    error: str | None = None
    for attempt in range(1, attempts + 1):
        try:
            response = httpx.post(url, json=body, timeout=WEBHOOK_TIMEOUT_S)
            if response.status_code < 300:
                return True, attempt, None
            error = f"HTTP {response.status_code}: {response.text[:200]}"
        except Exception as exc:  # noqa: BLE001 - any transport failure is reported, not raised
            error = f"{type(exc).__name__}: {exc}"
        if attempt < attempts:
            time.sleep(WEBHOOK_BACKOFF_S * 2 ** (attempt - 1))
    return False, attempts, error


@dataclass(frozen=True)
class Delivery:
    report_date: dt.date
    delivered: bool
    attempts: int
    error: str | None


def deliverer_id() -> str:
    """Who holds a lease: host, process and a random suffix (unique per call)."""
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def deliver_alerts(engine: Engine, webhook_url: str) -> list[Delivery]:
    """Claim and post up to WEBHOOK_ALERTS_PER_CALL alerts (pending, or failed with attempts
    left), oldest day first, never more than WEBHOOK_MAX_TOTAL_ATTEMPTS attempts per alert in
    all. An alert another deliverer holds is left to it."""
    if not webhook_url:
        return []
    owner = deliverer_id()
    claimed = claim_deliverable(
        engine,
        owner,
        lease=LEASE,
        max_attempts=WEBHOOK_MAX_TOTAL_ATTEMPTS,
        limit=WEBHOOK_ALERTS_PER_CALL,
    )
    done = []
    for alert in claimed:
        remaining = WEBHOOK_MAX_TOTAL_ATTEMPTS - alert.webhook_attempts
        ok, attempts, error = post_webhook(
            webhook_url, slack_body(alert), attempts=min(WEBHOOK_ATTEMPTS, remaining)
        )
        recorded = finish_delivery(
            engine, alert.id, owner, delivered=ok, attempts=attempts, error=error
        )
        if not recorded:
            log.error(f"alert {alert.report_date}: lease lost before the outcome was recorded")
        if not ok:
            log.error(
                f"alert webhook failed for window {alert.report_date} after {attempts} "
                f"attempts: {error}"
            )
        done.append(Delivery(alert.report_date, ok, attempts, error))
    return done
