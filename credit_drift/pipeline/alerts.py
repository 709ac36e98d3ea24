"""Delivering the alert outbox: each alert row, of any kind, is posted to the webhook by whoever
claims it first (a lease on the row), with retries and backoff; a failure is recorded and
retried on later calls, never raised. The rows themselves are written by the step that raised
them (drift: with the day's report, `report.write_drift_report`; estimated performance:
`estimated.raise_alert`), so no alert depends on this process staying alive. The body says what
the alert is about: drifted share and features, or estimated AUC against its bound and band.
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


#: The Dagster asset whose partition page shows the day behind an alert of each kind.
ALERT_ASSETS = {"drift": "drift_report", "estimated_performance": "estimated_performance"}


def alert_run_key(alert: StoredAlert) -> str:
    """The run key of the alert's `drift_alert_job` run: `drift-alert-<day>` for drift (the key
    deployments already have, so no drift alert is announced twice after an upgrade),
    `<kind>-alert-<day>` for the other kinds."""
    day = alert.report_date.isoformat()
    return f"drift-alert-{day}" if alert.kind == "drift" else f"{alert.kind}-alert-{day}"


def day_link(dagster_url: str, alert: StoredAlert) -> str:
    """The alert's day in the Dagster UI: the partition of the asset that raised it."""
    asset = ALERT_ASSETS.get(alert.kind, "drift_report")
    return (
        f"{dagster_url.rstrip('/')}/assets/{asset}?view=partitions"
        f"&partition={alert.report_date.isoformat()}"
    )


def _num(value: Any, fmt: str = ".3f") -> str:
    return "n/a" if value is None else format(float(value), fmt)


def _estimate_numbers(alert: StoredAlert) -> tuple[Any, Any, list | None]:
    details = alert.details or {}
    return details.get("estimated_auc"), details.get("min_auc"), details.get("auc_band")


def alert_log_line(alert: StoredAlert) -> str:
    day = alert.report_date.isoformat()
    if alert.kind == "estimated_performance":
        auc, bound, band = _estimate_numbers(alert)
        shown = "n/a" if not band else f"{_num(band[0])}-{_num(band[1])}"
        return (
            f"ESTIMATED PERFORMANCE {alert.severity} window={day} "
            f"estimated_auc={_num(auc)} min_auc={_num(bound, 'g')} auc_band={shown}"
        )
    return (
        f"DRIFT {alert.severity} window={day} "
        f"drift_percentage={alert.drift_percentage or 0.0:.1f} "
        f"top_features={','.join(alert.top_features[:10])}"
    )


def alert_text(alert: StoredAlert) -> str:
    """What the alert says, in one paragraph (the webhook body's `text`)."""
    day = alert.report_date.isoformat()
    if alert.kind == "estimated_performance":
        auc, bound, band = _estimate_numbers(alert)
        details = alert.details or {}
        if auc is not None and bound and auc < bound:
            what = f"the estimated AUC is {_num(auc)}, below the bound {_num(bound, 'g')}"
        else:
            outside = ", ".join(details.get("outside_band") or []) or "n/a"
            what = f"estimated {outside} outside the reference band (AUC {_num(auc)})"
        shown = (
            f"{_num(band[0])} to {_num(band[1])} for a day of "
            f"{details.get('n_predictions', 0):,} applications"
            if band
            else "none (the day is too large for the hold-out's chunks)"
        )
        return (
            f":rotating_light: credit-drift {alert.severity}: in the window {day} (UTC) {what}. "
            f"AUC band: {shown}. Label-free estimate (CBPE) from the logged probabilities: "
            "realized outcomes confirm it once they arrive."
        )
    return (
        f":rotating_light: credit-drift {alert.severity}: {alert.drift_percentage or 0.0:.1f}% "
        f"of the model's features drifted in the window {day} (UTC). "
        f"Top drifted: {', '.join(alert.top_features[:5]) or 'n/a'}."
    )


def slack_body(alert: StoredAlert, dagster_url: str | None = None) -> dict[str, Any]:
    """A Slack-compatible incoming-webhook body (`text` is what every consumer reads) saying
    what the alert is about, with the day's link in the Dagster UI when `dagster_url` is set;
    `credit_drift.alert_id` lets a receiver drop the rare second delivery (see the outbox)."""
    day = alert.report_date.isoformat()
    text = alert_text(alert)
    structured: dict[str, Any] = {
        "alert_id": alert.id,
        "kind": alert.kind,
        "report_date": day,
        "status": alert.severity,
    }
    if alert.kind == "drift":
        structured.update(
            drift_percentage=alert.drift_percentage, top_features=list(alert.top_features)
        )
    else:
        structured.update({k: v for k, v in (alert.details or {}).items() if k != "summary"})
    body: dict[str, Any] = {
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
        "credit_drift": structured,
    }
    if dagster_url:
        link = day_link(dagster_url, alert)
        structured["link"] = link
        body["blocks"].append({"type": "context", "elements": [{"type": "mrkdwn", "text": link}]})
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
    kind: str = "drift"


def deliverer_id() -> str:
    """Who holds a lease: host, process and a random suffix (unique per call)."""
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def deliver_alerts(engine: Engine, webhook_url: str, dagster_url: str = "") -> list[Delivery]:
    """Claim and post up to WEBHOOK_ALERTS_PER_CALL alerts of any kind (pending, or failed with
    attempts left), oldest day first, never more than WEBHOOK_MAX_TOTAL_ATTEMPTS attempts per
    alert in all. An alert another deliverer holds is left to it. `dagster_url`: the day's link
    in each body ('' = none)."""
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
            webhook_url,
            slack_body(alert, dagster_url),
            attempts=min(WEBHOOK_ATTEMPTS, remaining),
        )
        recorded = finish_delivery(
            engine, alert.id, owner, delivered=ok, attempts=attempts, error=error
        )
        if not recorded:
            log.error(
                f"{alert.kind} alert {alert.report_date}: lease lost before the outcome was "
                "recorded"
            )
        if not ok:
            log.error(
                f"{alert.kind} alert webhook failed for window {alert.report_date} after "
                f"{attempts} attempts: {error}"
            )
        done.append(Delivery(alert.report_date, ok, attempts, error, alert.kind))
    return done
