"""What the CLI and the demo print: the drift timeline and the alerts, and how to run the next
command in the user's own shell."""

import os
import shutil
import sys
from pathlib import Path

from credit_drift.settings import Settings

#: Printed under the label-free estimate: what it cannot see.
CONCEPT_DRIFT_NOTE = (
    "it cannot see concept drift (the same applicant defaulting more often): only outcomes can"
)


def how_to_run(subcommand: str, home: str | None = None) -> str:
    """How the user runs `credit-drift <subcommand> [--home HOME]` from their shell in this
    environment: through run.sh when they started from it, `credit-drift` when that is this
    environment's script on the PATH, else the script's own path."""
    tail = f" --home {home}" if home else ""
    run_sh = os.environ.get("CREDIT_DRIFT_RUN_SH")
    if run_sh:
        if subcommand in ("ui", "demo"):
            return f"{run_sh} {subcommand}{tail}"
        return f"{run_sh} cli {subcommand}{tail}"
    script = Path(sys.executable).parent / "credit-drift"
    on_path = shutil.which("credit-drift")
    if on_path and script.exists() and Path(on_path).resolve() == script.resolve():
        return f"credit-drift {subcommand}{tail}"
    if script.exists():
        return f"{shown_path(script)} {subcommand}{tail}"
    return f"{Path(sys.executable).name} -m credit_drift.cli {subcommand}{tail}"


def shown_path(path: Path) -> str:
    """`path` relative to the current directory when it is under it (shorter to type)."""
    path = Path(path).absolute()
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def print_status(s: Settings) -> None:
    from credit_drift.storage.alert_outbox import read_alerts
    from credit_drift.storage.db import make_engine, upgrade
    from credit_drift.storage.drift_results import read_drift_reports

    upgrade(s.database_url)
    engine = make_engine(s.database_url)
    reports = read_drift_reports(engine)
    if reports.empty:
        print(
            f"no drift report yet in {shown_path(s.home)}: materialize days first "
            f"({how_to_run('materialize')} --reference --from DAY --to DAY)"
        )
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
    days = [str(d)[:10] for d in reports["report_date"]]
    estimated = print_estimated(s, engine, days)
    expected = None
    if estimated is not None:
        expected = dict(zip(estimated["day"], estimated["estimated_default_rate"], strict=True))
    print_realized(s, engine, days, expected=expected)
    alerts = read_alerts(engine)
    if len(alerts):
        print("\nalerts raised:")
        for a in alerts.itertuples():
            print(f"  {alert_line(a)}")


def alert_line(a) -> str:
    """One alert of `read_alerts` as `credit-drift status` lists it: what it is about (drifted
    share and features, or the estimated AUC against its bound) and its webhook state."""
    day = str(a.report_date)[:10]
    if a.kind == "estimated_performance":
        details = a.details or {}
        auc, bound = details.get("estimated_auc"), details.get("min_auc")
        return (
            f"{day} {a.severity} estimated performance: AUC {_num(auc)} "
            f"(bound {'-' if bound is None else f'{bound:g}'}) (webhook: {a.webhook_status})"
        )
    top = ", ".join(list(a.top_features or [])[:5])
    return (
        f"{day} {a.severity}: {a.drift_percentage:.1f}% drifted "
        f"(webhook: {a.webhook_status}); top: {top}"
    )


def print_realized(
    s: Settings, engine, days: list[str], *, expected: dict[str, float] | None = None
) -> None:
    """The realized performance of each day's cohort as of now (read from the database, the
    same numbers as realized_performance's), when any outcome was recorded. `expected`: each
    day's default rate expected from its calibrated scores (the label-free estimate's), shown
    beside the observed one when given."""
    import datetime as dt

    from credit_drift.pipeline.performance_by_day import model_metrics, realized_by_day
    from credit_drift.storage.outcomes import latest_outcome_change

    if latest_outcome_change(engine) is None:
        return
    metrics = model_metrics(s.artifacts_dir)
    frame = realized_by_day(
        engine,
        days,
        as_of=dt.datetime.now(dt.UTC),
        horizon_days=s.outcome_horizon_days,
        model_metrics=metrics,
    )
    validation = metrics.get("cost_per_application")
    shown = "" if expected is None else "expected: the estimate's default rate; "
    print(
        f"\nrealized performance (outcomes observed by now; {shown}cost per application at "
        f"validation: {'-' if validation is None else f'{validation:.3f}'}):"
    )
    print(
        f"{'day':<12}{'status':<11}{'labeled':>9}{'default rate':>14}"
        + ("" if expected is None else f"{'expected':>10}")
        + f"{'mean PD':>9}{'AUC':>7}{'cost/app':>10}"
    )
    for r in frame.itertuples():
        print(
            f"{r.day:<12}{r.status:<11}{'-' if r.n == 0 else f'{r.labeled_share:.0%}':>9}"
            f"{_num(r.observed_default_rate):>14}"
            + ("" if expected is None else f"{_num(expected.get(r.day)):>10}")
            + f"{_num(r.mean_pd):>9}{_num(r.auc):>7}{_num(r.cost_per_application):>10}"
        )


def print_estimated(s: Settings, engine, days: list[str]):
    """The label-free estimate of each day (the same numbers as estimated_performance's), from
    the logged probabilities; nothing when the model has no hold-out to calibrate on. Returns
    the days' estimates (`performance_by_day.estimated_by_day`), None when nothing is printed."""
    from credit_drift.model.artifacts import ArtifactsError, load_artifacts
    from credit_drift.pipeline.config import PipelineConfig
    from credit_drift.pipeline.estimated import cbpe_reference
    from credit_drift.pipeline.performance_by_day import estimated_by_day

    try:
        artifacts = load_artifacts(s.artifacts_dir)
    except ArtifactsError:
        return None
    if artifacts.holdout is None:
        return None
    config = PipelineConfig.from_settings(s)
    frame = estimated_by_day(engine, artifacts, cbpe_reference(artifacts), days, config)
    print(
        "\nestimated performance (label-free, from the calibrated scores; "
        f"validation AUC {_num(artifacts.metrics.get('auc'))}, bound {config.min_estimated_auc:g}):"
    )
    print(f"{'day':<12}{'status':<9}{'est. AUC':>9}{'est. default rate':>19}{'est. cost/app':>15}")
    for r in frame.itertuples():
        print(
            f"{r.day:<12}{r.status:<9}{_num(r.estimated_auc):>9}"
            f"{_num(r.estimated_default_rate):>19}{_num(r.estimated_cost_per_application):>15}"
        )
    print(CONCEPT_DRIFT_NOTE)
    return frame


def _num(value) -> str:
    import math

    return "-" if value is None or math.isnan(value) else f"{value:.3f}"


def _pct(value) -> str:
    import pandas as pd

    return "-" if value is None or pd.isna(value) else f"{value:.1f}"
