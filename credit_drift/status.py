"""The drift timeline and the alerts as text: what `credit-drift status`, `credit-drift
materialize` and the demo print."""

from credit_drift.settings import Settings


def print_status(s: Settings) -> None:
    from credit_drift.storage.alert_outbox import read_alerts
    from credit_drift.storage.db import make_engine, upgrade
    from credit_drift.storage.drift_results import read_drift_reports

    upgrade(s.database_url)
    engine = make_engine(s.database_url)
    reports = read_drift_reports(engine)
    if reports.empty:
        print("no drift report yet")
        return
    print(
        f"{'day':<12}{'predictions':>12}{'drifted':>9}{'drifted %':>11}{'weighted %':>12}  status"
    )
    for r in reports.itertuples():
        print(
            f"{str(r.report_date)[:10]:<12}{r.n_predictions:>12}"
            f"{r.n_features_drifted:>4}/{r.n_features_analyzed:<4}"
            f"{_pct(r.drift_percentage):>11}{_pct(r.weighted_drift_percentage):>12}  {r.status}"
        )
    alerts = read_alerts(engine)
    if len(alerts):
        print("\nalerts raised:")
        for a in alerts.itertuples():
            top = ", ".join(list(a.top_features or [])[:5])
            print(
                f"  {str(a.report_date)[:10]} {a.severity}: {a.drift_percentage:.1f}% drifted "
                f"(webhook: {a.webhook_status}); top: {top}"
            )


def _pct(value) -> str:
    import pandas as pd

    return "-" if value is None or pd.isna(value) else f"{value:.1f}"
