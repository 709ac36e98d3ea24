"""The `credit-drift` command line: one subcommand per step of the monitoring loop.

Imports are deferred into each subcommand so that `credit-drift --help` answers instantly
(LightGBM, Dagster and Evidently each take seconds to import).
"""

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from credit_drift.errors import CreditDriftError
from credit_drift.settings import Settings, SettingsError, env_table_markdown


class CliError(Exception):
    """A user-facing failure: printed without a traceback, exit code 2."""


def _settings() -> Settings:
    return Settings.from_env()


# -- subcommands ---------------------------------------------------------------------------
def cmd_generate_data(args: argparse.Namespace) -> None:
    from credit_drift.data.generator import write_datasets

    s = _settings()
    data_dir = Path(args.data_dir) if args.data_dir else s.data_dir
    paths = write_datasets(data_dir, n_rows=args.rows, pool_rows=args.pool_rows, seed=args.seed)
    print(f"training set: {paths.train}")
    print(f"unseen pool:  {paths.pool}")


def cmd_train(args: argparse.Namespace) -> None:
    s = _settings()
    path = Path(args.data) if args.data else s.training_data
    if not path.exists():
        raise CliError(
            f"training data {path} does not exist: run `credit-drift generate-data` first, "
            "or point --data (or CREDIT_DRIFT_TRAINING_DATA) at your own CSV/Parquet file"
        )
    from credit_drift.data.loader import load_training_data
    from credit_drift.model.artifacts import save_artifacts
    from credit_drift.model.train import train_model

    categorical = (
        tuple(c.strip() for c in args.categorical.split(",") if c.strip())
        if args.categorical is not None
        else s.categorical_columns
    )
    data = load_training_data(
        path,
        target_column=args.target or s.target_column,
        id_column=args.id_column or s.id_column,
        categorical_columns=categorical,
    )
    from credit_drift.model.train import TrainConfig

    artifacts = train_model(
        data,
        config=TrainConfig(n_jobs=s.train_threads),
        cost_fn=args.cost_fn if args.cost_fn is not None else s.cost_fn,
        cost_fp=args.cost_fp if args.cost_fp is not None else s.cost_fp,
        seed=args.seed,
    )
    out = Path(args.artifacts_dir) if args.artifacts_dir else s.artifacts_dir
    save_artifacts(artifacts, out)
    m = artifacts.metrics
    print(f"model version {artifacts.version} written to {out}/")
    print(
        f"  features:  {len(artifacts.schema)} "
        f"({len(artifacts.schema.categorical_names)} categorical)"
    )
    print(f"  held-out AUC: {m['auc']:.4f}")
    t = artifacts.threshold_report
    print(
        f"  threshold: {artifacts.threshold:.4f} (minimizes {t.cost_fn:g} x missed default "
        f"+ {t.cost_fp:g} x refused good client on the held-out split)"
    )


def cmd_db(args: argparse.Namespace) -> None:
    from credit_drift.storage.db import current_revision, upgrade

    url = args.database_url or _settings().database_url
    if args.db_command == "upgrade":
        upgrade(url)
        print(f"database at revision {current_revision(url)}: {_redact(url)}")
    else:
        print(current_revision(url) or "(empty database: run `credit-drift db upgrade`)")


def cmd_serve(args: argparse.Namespace) -> None:
    from credit_drift.serving.server import run_server

    run_server(host=args.host, port=args.port, workers=args.workers, settings=_settings())


def cmd_simulate(args: argparse.Namespace) -> None:
    from credit_drift.simulator.sender import simulate_from_args

    simulate_from_args(args, _settings())


def cmd_materialize(args: argparse.Namespace) -> None:
    from credit_drift import orchestration

    s = _settings()
    days = orchestration.days_between(args.from_day, args.to_day or args.from_day)
    instance = orchestration.instance_for(s)
    if args.reference:
        orchestration.materialize_reference(instance)
        print("reference_profile materialized")
    for outcome in orchestration.materialize_days(instance, days, raise_on_error=False):
        print(
            f"{outcome.partition}: {'ok' if outcome.success else 'FAILED'} (run {outcome.run_id})"
        )
    alerted = orchestration.run_alert_sensor(instance)
    if alerted:
        print(f"alerts raised for: {', '.join(alerted)}")
    print_status(s)


def print_status(s: Settings) -> None:
    from credit_drift.storage.db import make_engine, upgrade
    from credit_drift.storage.reports import read_alerts, read_drift_reports

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


def cmd_status(args: argparse.Namespace) -> None:
    print_status(_settings())


def cmd_ui(args: argparse.Namespace) -> None:
    import os

    from credit_drift import orchestration

    if args.home:
        from credit_drift.demo import MARKER, DemoPaths

        state = Path(args.home).expanduser().resolve()
        if (state / MARKER).exists():
            os.environ.update(DemoPaths(state).environment())
        else:
            os.environ["CREDIT_DRIFT_HOME"] = str(state)
    home = orchestration.dagster_home(_settings())
    cmd = [
        "dagster",
        "dev",
        "-m",
        "credit_drift.definitions",
        "-p",
        str(args.port),
        "-h",
        args.host,
    ]
    print(f"DAGSTER_HOME={home} {' '.join(cmd)}")
    os.environ["DAGSTER_HOME"] = str(home)
    os.execvp(cmd[0], cmd)


def cmd_dashboard(args: argparse.Namespace) -> None:
    import os

    from credit_drift.dashboard.launch import streamlit_command

    argv, env = streamlit_command(port=args.port, host=args.host, home=args.home)
    print(f"dashboard on http://{args.host}:{args.port}")
    os.execve(argv[0], argv, env)


def cmd_demo(args: argparse.Namespace) -> None:
    from credit_drift.demo import run_demo

    home = Path(args.home) if args.home else _settings().home / "demo"
    run_demo(
        home,
        batch_size=args.batch_size,
        train_rows=args.train_rows,
        start_date=args.start_date,
        n_estimators=args.trees,
        seed=args.seed,
        progress=not args.no_progress,
    )


def cmd_env(args: argparse.Namespace) -> None:
    print(env_table_markdown())


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in creds else url
    return url


# -- parser --------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="credit-drift",
        description=(
            "Drift monitoring for a LightGBM credit-scoring model: generate data, train, serve "
            "and log predictions, simulate drifting traffic, and run the daily Dagster drift "
            "pipeline. Configuration comes from environment variables: `credit-drift env` "
            "lists them with their defaults."
        ),
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "generate-data",
        help="write a seeded synthetic Home-Credit-like training set and an unseen pool",
        description="Write data/train.parquet (SK_ID_CURR, TARGET, 419 features) and "
        "data/pool.parquet (unseen applications for the traffic simulator). Deterministic.",
    )
    p.add_argument("--rows", type=int, default=50_000, help="training rows (default 50000)")
    p.add_argument("--pool-rows", type=int, default=50_000, help="unseen pool rows (default 50000)")
    p.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    p.add_argument("--data-dir", help="output folder (default CREDIT_DRIFT_DATA_DIR)")
    p.set_defaults(func=cmd_generate_data)

    p = sub.add_parser(
        "train",
        help="train the LightGBM scorer, choose the cost-minimizing threshold, write artifacts/",
        description="Fit an LGBMClassifier on the training data (yours or the generated one), "
        "evaluate AUC on a held-out split, choose the decision threshold that minimizes "
        "cost_fn x missed defaults + cost_fp x refused good clients, and write the model "
        "(LightGBM text format), feature list, threshold, metrics and model version.",
    )
    p.add_argument(
        "--data", help="CSV or Parquet training file (default CREDIT_DRIFT_TRAINING_DATA)"
    )
    p.add_argument("--target", help="target column (default CREDIT_DRIFT_TARGET_COLUMN)")
    p.add_argument("--id-column", help="id column, not a feature (default CREDIT_DRIFT_ID_COLUMN)")
    p.add_argument(
        "--categorical",
        help="comma-separated categorical columns (default CREDIT_DRIFT_CATEGORICAL_COLUMNS)",
    )
    p.add_argument("--cost-fn", type=float, help="cost of a missed default (default 10)")
    p.add_argument("--cost-fp", type=float, help="cost of refusing a good client (default 1)")
    p.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    p.add_argument("--artifacts-dir", help="output folder (default CREDIT_DRIFT_ARTIFACTS_DIR)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "db",
        help="database schema: `db upgrade` applies migrations (safe to run twice)",
        description="Manage the prediction-log database named by DATABASE_URL (SQLite by default).",
    )
    p.add_argument("db_command", choices=["upgrade", "current"], help="upgrade | current")
    p.add_argument("--database-url", help="override DATABASE_URL")
    p.set_defaults(func=cmd_db)

    p = sub.add_parser(
        "serve",
        help="start the scoring API (FastAPI + uvicorn) that logs every prediction",
        description="POST /predict, POST /predict/batch, GET /health, GET /model. Every answered "
        "prediction is written to the predictions table before the answer is sent.",
    )
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "simulate",
        help="replay unseen applications to the API with a drift scenario (clean/gradual/sudden)",
        description="Send batches drawn from the unseen pool to the API, applying a drift "
        "scenario. Default: the notebook's 8 batches "
        "(3 clean, gradual 0.1/0.2/0.3, sudden 0.5/0.7).",
    )
    try:
        from credit_drift.simulator.sender import add_simulate_arguments
    except ImportError:  # pragma: no cover - simulator not installed in a partial checkout
        add_simulate_arguments = None
    if add_simulate_arguments is not None:
        add_simulate_arguments(p)
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser(
        "materialize",
        help="run the daily drift job for a day or a range of days (persisted, shown in the UI)",
        description="Materialize every windowed drift asset for each day in [--from, --to] on the "
        "state directory's Dagster instance, one run per day, then evaluate the alert sensor and "
        "print the drift timeline. Same runs as a Dagster backfill, without a daemon.",
    )
    p.add_argument("--from", dest="from_day", required=True, help="first day, YYYY-MM-DD (UTC)")
    p.add_argument("--to", dest="to_day", help="last day, inclusive (default: --from)")
    p.add_argument("--reference", action="store_true", help="(re)build the reference profile first")
    p.set_defaults(func=cmd_materialize)

    p = sub.add_parser("status", help="print the drift timeline (drift_reports) and the alerts")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser(
        "ui",
        help="open the Dagster web UI on the state directory (dagster dev, DAGSTER_HOME set)",
    )
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=3000, help="port (default 3000)")
    p.add_argument(
        "--home", help="state directory to browse, e.g. the demo's (default CREDIT_DRIFT_HOME)"
    )
    p.set_defaults(func=cmd_ui)

    p = sub.add_parser(
        "dashboard",
        help="open the Streamlit dashboard (drift timeline, days, scores, operations)",
        description="A read-only web dashboard on the database for people who do not open "
        "Dagster: drift timeline and alerts, a day's drifted features, scores and approval "
        "rate, volume and latency.",
    )
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8501, help="port (default 8501)")
    p.add_argument(
        "--home", help="state directory to show, e.g. the demo's (default CREDIT_DRIFT_HOME)"
    )
    p.set_defaults(func=cmd_dashboard)

    p = sub.add_parser(
        "demo",
        help="the whole loop on SQLite in a fresh folder: data, model, API, traffic, drift, alerts",
        description="Generate data, train, start the API, send the notebook's 8-batch scenario "
        "through it on 8 consecutive days, materialize the 8 daily partitions, evaluate the alert "
        "sensor, and print the timeline. Deletes and recreates its own folder (--home).",
    )
    p.add_argument("--home", help="demo state folder (default $CREDIT_DRIFT_HOME/demo)")
    p.add_argument(
        "--batch-size",
        type=int,
        default=1000,
        help="rows per daily batch (default 1000: the notebook's 50 is too few, see README)",
    )
    p.add_argument("--train-rows", type=int, default=20_000, help="training rows (default 20000)")
    p.add_argument("--trees", type=int, help="LightGBM trees (default: the trainer's 400)")
    p.add_argument("--start-date", default="2026-11-01", help="first day (default 2026-11-01)")
    p.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("env", help="list every environment variable with its default")
    p.set_defaults(func=cmd_env)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (CliError, SettingsError) as exc:
        print(f"credit-drift: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except CreditDriftError as exc:
        # Domain errors (bad training file, missing artifacts...) carry a message for users.
        print(f"credit-drift: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
