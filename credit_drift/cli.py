"""The `credit-drift` command line: one subcommand per step of the monitoring loop.

Imports are deferred into each subcommand so that `credit-drift --help` answers instantly
(LightGBM, Dagster and Evidently each take seconds to import).
"""

import argparse
import datetime as dt
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from credit_drift.console import how_to_run, print_status, shown_path
from credit_drift.errors import CreditDriftError
from credit_drift.settings import (
    CATEGORICAL_AUTO,
    ENV_VARS,
    RawSettings,
    Settings,
    env_table_markdown,
    redact_url,
)


class CliError(CreditDriftError):
    """A user-facing failure: printed without a traceback, exit code 2."""


def _settings() -> Settings:
    return Settings.from_env()


def _apply_home(home: str | None) -> None:
    """`--home DIR`: run on that state directory. A demo folder brings its own data, model and
    database; any other folder is CREDIT_DRIFT_HOME (and its Dagster instance)."""
    if not home:
        return
    from credit_drift.demo import MARKER, DemoPaths

    state = Path(home).expanduser().resolve()
    if not state.is_dir():
        raise CliError(f"--home {home}: no such directory")
    if (state / MARKER).exists():
        os.environ.update(DemoPaths(state).environment())
    else:
        os.environ["CREDIT_DRIFT_HOME"] = str(state)
        os.environ["DAGSTER_HOME"] = str(state / "dagster")


def _add_home(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--home",
        help="state directory to use, e.g. the demo's .credit-drift/demo (default "
        "CREDIT_DRIFT_HOME)",
    )


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
    from credit_drift.model.train import TrainConfig, train_model

    if args.categorical is None:
        categorical = s.categorical_columns
    elif args.categorical.strip().lower() == CATEGORICAL_AUTO:
        categorical = CATEGORICAL_AUTO
    else:
        categorical = tuple(c.strip() for c in args.categorical.split(",") if c.strip())
    id_column = args.id_column if args.id_column is not None else s.id_column
    print(f"reading {shown_path(path)}", flush=True)
    data = load_training_data(
        path,
        target_column=args.target or s.target_column,
        id_column=id_column or None,
        categorical_columns=categorical,
        positive_label=(
            args.positive_label if args.positive_label is not None else s.positive_label
        ),
    )
    n_cat = len(data.schema.categorical_names)
    print(
        f"  {len(data.y)} rows, {len(data.schema)} features ({n_cat} categorical), "
        f"{data.y.mean():.1%} defaults"
        + ("" if data.ids is not None or not id_column else f"; no id column {id_column!r}")
    )
    config = TrainConfig(n_jobs=s.train_threads)
    if args.trees is not None:
        config = TrainConfig(n_estimators=args.trees, n_jobs=s.train_threads)
    with _bar(config.n_estimators, "training", "trees", enabled=not args.no_progress) as bar:
        artifacts = train_model(
            data,
            config=config,
            cost_fn=args.cost_fn if args.cost_fn is not None else s.cost_fn,
            cost_fp=args.cost_fp if args.cost_fp is not None else s.cost_fp,
            seed=args.seed,
            progress=lambda done, total: bar.update(done - bar.n),
        )
    out = Path(args.artifacts_dir) if args.artifacts_dir else s.artifacts_dir
    save_artifacts(artifacts, out)
    m = artifacts.metrics
    print(f"model version {artifacts.version} written to {shown_path(out)}/")
    print(f"  held-out AUC: {m['auc']:.4f}")
    t = artifacts.threshold_report
    print(
        f"  threshold: {artifacts.threshold:.4f} (minimizes {t.cost_fn:g} x missed default "
        f"+ {t.cost_fp:g} x refused good client on the held-out split)"
    )


def _bar(total: int, desc: str, unit: str, *, enabled: bool):
    """A tqdm progress bar (on stderr), or a silent stand-in when disabled."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, dynamic_ncols=True)


def cmd_db(args: argparse.Namespace) -> None:
    from credit_drift.storage.db import current_revision, make_engine, upgrade

    url = args.database_url or _settings().database_url
    if args.db_command == "current":
        print(current_revision(url) or "(empty database: run `credit-drift db upgrade`)")
        return
    upgrade(url)
    if args.db_command == "upgrade":
        print(f"database at revision {current_revision(url)}: {redact_url(url)}")
    elif args.db_command == "partitions":
        _db_partitions(make_engine(url), args.ahead)
    else:
        _db_prune(make_engine(url), args)


def _db_partitions(engine, ahead: int) -> None:
    from credit_drift.storage.partitions import ensure_partitions

    if engine.dialect.name != "postgresql":
        print("SQLite: the prediction log is not partitioned; nothing to create")
        return
    try:
        created = ensure_partitions(engine, ahead=ahead)
    except ValueError as exc:
        raise CliError(f"--ahead: {exc}") from exc
    for c in created:
        moved = f" ({c.rows_moved} row(s) moved in from {c.table}_default)" if c.rows_moved else ""
        print(f"created {c.table} partition of {c.day}{moved}")
    print(f"{len(created)} partition(s) created; every day up to {ahead} day(s) ahead has one")


def _db_prune(engine, args: argparse.Namespace) -> None:
    from collections import defaultdict

    from credit_drift.storage.retention import prune

    try:
        result = prune(
            engine, older_than_days=args.older_than, force=args.force, dry_run=args.dry_run
        )
    except ValueError as exc:
        raise CliError(f"--older-than: {exc}") from exc
    verb = "would drop" if result.dry_run else "dropped"
    total: dict[str, int] = defaultdict(int)
    for d in result.dropped:
        how = "partition" if d.how == "partition" else "rows deleted"
        print(f"{verb} {d.table} {d.day}: {d.rows} row(s) ({how})")
        total[d.table] += d.rows
    for d in result.kept_unreported:
        print(
            f"kept {d.table} {d.day}: {d.rows} row(s), no drift report for that day yet "
            "(materialize it, or pass --force)"
        )
    summary = ", ".join(f"{n} {table} row(s)" for table, n in total.items()) or "nothing"
    print(f"{verb} {summary} from before {result.keep_from} (UTC)")


def cmd_serve(args: argparse.Namespace) -> None:
    from credit_drift.serving.server import run_server

    run_server(host=args.host, port=args.port, workers=args.workers, settings=_settings())


def cmd_simulate(args: argparse.Namespace) -> None:
    from credit_drift.simulator.sender import simulate_from_args

    simulate_from_args(args, _settings())


def cmd_outcomes(args: argparse.Namespace) -> None:
    from credit_drift.storage.db import make_engine, upgrade
    from credit_drift.storage.outcomes import (
        count_unknown_outcomes,
        read_unknown_outcomes,
        record_outcomes,
    )

    s = _settings()
    upgrade(s.database_url)
    engine = make_engine(s.database_url)
    if args.outcomes_command == "unknown":
        total = count_unknown_outcomes(engine)
        print(f"{total} current outcome(s) whose application id matches no logged prediction")
        if total:
            print(read_unknown_outcomes(engine, limit=args.limit).to_string(index=False))
        return
    from credit_drift.pipeline.outcome_file import read_outcome_file

    rows = read_outcome_file(
        args.file,
        id_column=args.id_column,
        label_column=args.label_column,
        observed_at_column=args.observed_at_column,
        positive_label=args.positive_label,
    )
    summary = record_outcomes(engine, rows, update=not args.no_update)
    print(
        f"{len(rows)} outcome(s) read from {shown_path(Path(args.file))}: "
        f"{summary.inserted} new, {summary.updated} updated (the previous outcome kept as "
        f"history), {summary.unchanged} unchanged"
    )
    if summary.unknown_ids:
        print(
            f"{summary.unknown_ids} application id(s) match no logged prediction: kept (they "
            "join when the prediction is logged); list them with `credit-drift outcomes unknown`"
        )
    if summary.conflicts:
        shown = ", ".join(summary.conflicts[:10])
        more = f" and {len(summary.conflicts) - 10} more" if len(summary.conflicts) > 10 else ""
        print(
            f"{len(summary.conflicts)} id(s) already had another outcome and were NOT changed "
            f"(--no-update): {shown}{more}"
        )


def cmd_materialize(args: argparse.Namespace) -> int:
    from credit_drift import orchestration

    s = _settings()
    days = orchestration.days_between(args.from_day, args.to_day or args.from_day)
    orchestration.check_partition_days(days, s)
    span = orchestration.log_span(s, days[0], days[-1])
    if span.in_range == 0:
        raise CliError(orchestration.empty_range_message(span, days[0], days[-1], s))
    instance = orchestration.instance_for(s)
    failed = 0
    if args.reference or not orchestration.has_reference(instance):
        # Without a reference profile no day can be compared with anything: build it first.
        print("reference profile ... ", end="", flush=True)
        ref = orchestration.materialize_reference(
            instance, raise_on_error=False, verbose=args.verbose
        )
        if not ref.success:
            print("FAILED")
            raise CliError(f"the reference profile failed: {ref.error} (run {ref.run_id})")
        print(f"done ({ref.seconds:.0f} s)")

    def show(outcome) -> None:
        if outcome.success:
            pct = "-" if outcome.drift_percentage is None else f"{outcome.drift_percentage:.1f}%"
            print(
                f"{outcome.status or '?':<8} {pct:>6} drifted, {outcome.n_predictions or 0} "
                f"predictions ({outcome.seconds:.0f} s)",
                flush=True,
            )
        else:
            print(f"FAILED   {outcome.error} (run {outcome.run_id})", flush=True)

    statuses: dict[str, int] = {}
    for i, day in enumerate(days, 1):
        print(f"[{i}/{len(days)}] {day}  ", end="\n" if args.verbose else "", flush=True)
        (outcome,) = orchestration.materialize_days(
            instance, [day], raise_on_error=False, verbose=args.verbose
        )
        show(outcome)
        if not outcome.success:
            failed += 1
        else:
            statuses[outcome.status or "?"] = statuses.get(outcome.status or "?", 0) + 1
    alerted = orchestration.run_alert_sensor(instance, verbose=args.verbose)
    counts = ", ".join(f"{n} {status}" for status, n in statuses.items())
    print(
        f"{len(days) - failed} of {len(days)} days materialized" + (f": {counts}" if counts else "")
    )
    if alerted:
        print(
            f"alerts raised for {', '.join(alerted)} (details: {how_to_run('status', args.home)})"
        )
    if failed:
        print(
            f"{failed} day(s) failed: run again with --verbose for Dagster's log, or open the "
            f"run in the Dagster UI ({how_to_run('ui', args.home)})",
            file=sys.stderr,
        )
        return 1
    status, ui = how_to_run("status", args.home), how_to_run("ui", args.home)
    print(f"timeline: {status}; Dagster UI: {ui}")
    return 0


def cmd_stability(args: argparse.Namespace) -> None:
    from credit_drift import orchestration
    from credit_drift.pipeline.reference import load_reference_profile
    from credit_drift.pipeline.stability import period_tables, stability_period
    from credit_drift.reports.stability import write_stability_export
    from credit_drift.storage.db import make_engine, upgrade

    s = _settings()
    days = orchestration.days_between(args.from_day, args.to_day or args.from_day)
    first, last = dt.date.fromisoformat(days[0]), dt.date.fromisoformat(days[-1])
    upgrade(s.database_url)
    engine = make_engine(s.database_url)
    reference = load_reference_profile(engine)
    daily, csi = period_tables(stability_period(engine, reference, first, last))
    out = Path(args.out).expanduser().resolve() if args.out else s.reports_dir / "stability"
    paths = write_stability_export(
        daily,
        csi,
        out,
        first,
        last,
        profile_version=reference.profile_version,
        model_version=reference.model_version,
    )
    shown = daily[["day", "n_predictions", "score_psi", "score_band", "approval_rate"]]
    shown = shown.assign(
        max_shifted_csi=daily["max_shifted_csi"],
        characteristic=daily["max_shifted_csi_feature"],
        results=daily["drift_results"],
    )
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-"))
    print(f"report: {shown_path(paths.html)}")
    print(f"tables: {shown_path(paths.daily_csv)}, {shown_path(paths.csi_csv)}")


def cmd_status(args: argparse.Namespace) -> None:
    print_status(_settings())


def cmd_ui(args: argparse.Namespace) -> None:
    from credit_drift import orchestration

    settings = _settings()
    home = orchestration.dagster_home(settings)
    # `dg dev` from this Python environment (never a `dagster` found on the PATH): it starts the
    # web server and the daemon with this same interpreter. The resolved settings go along as
    # absolute values, so Dagster's processes see the same project whatever their directory.
    env = {**os.environ, **settings.environment(), "DAGSTER_HOME": str(home)}
    cmd = [sys.executable, "-m", "dagster_dg_cli.cli", "dev", "-m", "credit_drift.definitions"]
    cmd += ["-p", str(args.port), "-h", args.host]
    if not args.verbose:
        cmd += ["--log-level", "warning"]
    print(
        f"Dagster UI on {shown_path(settings.home)}: http://{args.host}:{args.port} "
        "(Ctrl-C stops it)",
        flush=True,
    )
    # From DAGSTER_HOME: Dagster warns about a dagster.yaml in any other current folder (the
    # checkout has one), and its scratch files stay in the state directory.
    os.chdir(home)
    os.execve(sys.executable, cmd, env)


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
        verbose=args.verbose,
        scenario=args.scenario,
    )


def cmd_env(args: argparse.Namespace) -> None:
    if not args.current:
        print(env_table_markdown())
        return
    raw = RawSettings.read()
    Settings.from_env()  # the values must also parse
    print(f"project file: {raw.project_file or '(none)'}")
    secret = {"CREDIT_DRIFT_API_KEY", "CREDIT_DRIFT_ALERT_WEBHOOK_URL"}
    for var in ENV_VARS:
        value = raw(var.name)
        shown = "***" if var.name in secret and value else value
        print(f"{var.name}={shown}  ({raw.source(var.name)})")


# -- parser --------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="credit-drift",
        description=(
            "Drift monitoring for a LightGBM credit-scoring model: generate data, train, serve "
            "and log predictions, simulate drifting traffic, and run the daily Dagster drift "
            "pipeline. Configuration comes from environment variables or a project file "
            "(credit-drift.toml): `credit-drift env` lists the settings and their defaults."
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
    p.add_argument(
        "--positive-label",
        help="when the target holds labels, the one meaning default, e.g. bad (default "
        "CREDIT_DRIFT_POSITIVE_LABEL; none: the target is 0/1)",
    )
    p.add_argument(
        "--id-column",
        help="id column, not a feature; optional, '' for none (default CREDIT_DRIFT_ID_COLUMN)",
    )
    p.add_argument(
        "--categorical",
        help="comma-separated categorical columns, or auto for every non-numeric column "
        "(default CREDIT_DRIFT_CATEGORICAL_COLUMNS)",
    )
    p.add_argument("--trees", type=int, help="LightGBM trees (default 400)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
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
    p.add_argument("--database-url", help="override DATABASE_URL")
    p.set_defaults(func=cmd_db)
    dsub = p.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    actions = {
        "upgrade": dsub.add_parser("upgrade", help="apply the migrations (safe to run twice)"),
        "current": dsub.add_parser("current", help="print the database's revision"),
        "partitions": dsub.add_parser(
            "partitions",
            help="PostgreSQL: create the prediction log's day partitions ahead",
            description="Create the day partitions of predictions and api_logs from yesterday "
            "to --ahead days ahead (UTC), and of every day whose rows wait in a default "
            "partition (they are moved in). The API at start-up and every pipeline run do the "
            "same with --ahead 7. SQLite: nothing to do.",
        ),
        "prune": dsub.add_parser(
            "prune",
            help="delete the prediction log's days older than N days (PostgreSQL: drop them)",
            description="Remove the predictions and api_logs of the days before today - "
            "--older-than (UTC): PostgreSQL drops whole day partitions, SQLite deletes rows. A "
            "day of predictions without a drift report is kept unless --force. Outcomes stay; "
            "a pruned day's realized performance can no longer be computed.",
        ),
    }
    actions["partitions"].add_argument(
        "--ahead", type=int, default=7, help="days ahead of today to cover (default 7)"
    )
    actions["prune"].add_argument(
        "--older-than", type=int, required=True, metavar="DAYS", help="keep the last DAYS days"
    )
    actions["prune"].add_argument(
        "--force", action="store_true", help="also drop days that have no drift report"
    )
    actions["prune"].add_argument(
        "--dry-run", action="store_true", help="say what would be dropped, drop nothing"
    )
    for action in actions.values():
        # Accepted after the action too (`db upgrade --database-url ...`).
        action.add_argument(
            "--database-url", default=argparse.SUPPRESS, help="override DATABASE_URL"
        )

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
        "outcomes",
        help="load observed outcomes (1 = default) from a CSV/Parquet file; list unknown ids",
        description="`outcomes load FILE`: record each row's outcome for its application id "
        "(the id sent as application_id with the prediction). Loading a file again changes "
        "nothing; a changed outcome replaces the current one, which is kept as history; an id "
        "with no logged prediction is kept and counted. `outcomes unknown`: the outcomes whose "
        "id matches no prediction.",
    )
    osub = p.add_subparsers(dest="outcomes_command", required=True, metavar="ACTION")
    load = osub.add_parser("load", help="record the outcomes of a CSV or Parquet file")
    load.add_argument("file", help="CSV or Parquet file, one outcome per row")
    load.add_argument("--id-column", required=True, help="column of application ids")
    load.add_argument(
        "--label-column", required=True, help="column of outcomes: 0/1 (1 = default) or labels"
    )
    load.add_argument(
        "--observed-at-column",
        help="column of observation times (ISO 8601 or dates; no time zone = UTC); default: now",
    )
    load.add_argument(
        "--positive-label",
        help="when the labels are text, the one meaning default, e.g. bad (the file may hold "
        "one other label)",
    )
    load.add_argument(
        "--no-update",
        action="store_true",
        help="leave an id's recorded outcome alone when the file has another one (reported)",
    )
    _add_home(load)
    unknown = osub.add_parser("unknown", help="list outcomes whose id matches no prediction")
    unknown.add_argument("--limit", type=int, default=50, help="rows shown (default 50)")
    _add_home(unknown)
    p.set_defaults(func=cmd_outcomes)

    p = sub.add_parser(
        "materialize",
        help="run the daily drift job for a day or a range of days (persisted, shown in the UI)",
        description="Materialize every windowed drift asset for each day in [--from, --to] on the "
        "state directory's Dagster instance, one run per day, then evaluate the alert sensor. "
        "Same runs as a Dagster backfill, without a daemon. A day can be materialized once it "
        "is over (UTC).",
    )
    p.add_argument("--from", dest="from_day", required=True, help="first day, YYYY-MM-DD (UTC)")
    p.add_argument("--to", dest="to_day", help="last day, inclusive (default: --from)")
    p.add_argument(
        "--reference",
        action="store_true",
        help="(re)build the reference profile first (after retraining; done anyway when the "
        "instance has none)",
    )
    p.add_argument("--verbose", action="store_true", help="show Dagster's event log")
    _add_home(p)
    p.set_defaults(func=cmd_materialize)

    p = sub.add_parser(
        "stability",
        help="export the stability report (score PSI, characteristic CSI, approval rate) of a "
        "range of days as CSV and HTML",
        description="The stability report a validation team files, for [--from, --to]: PSI of the "
        "score and CSI of every characteristic on the development sample's fixed bins (0.10 / "
        "0.25 bands, with what sampling noise alone gives at each day's size), approval rate "
        "against the development sample's. Reads the database only: CSI needs the days' drift "
        "results (credit-drift materialize).",
    )
    p.add_argument("--from", dest="from_day", required=True, help="first day, YYYY-MM-DD (UTC)")
    p.add_argument("--to", dest="to_day", help="last day, inclusive (default: --from)")
    p.add_argument("--out", help="folder for the files (default: the reports folder/stability)")
    _add_home(p)
    p.set_defaults(func=cmd_stability)

    p = sub.add_parser("status", help="print the drift timeline (drift_reports) and the alerts")
    _add_home(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser(
        "ui",
        help="open the Dagster web UI on the state directory (dg dev, DAGSTER_HOME set)",
        description="Start Dagster's web UI and daemon (`dg dev`) on the state directory's "
        "Dagster instance: every run made by `credit-drift materialize` or the demo is there, "
        "and the daily schedule and the alert sensor run while it is up.",
    )
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=3000, help="port (default 3000)")
    p.add_argument("--verbose", action="store_true", help="Dagster's info logs too")
    _add_home(p)
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
        description="Generate data, train, start the API, send a scenario through it one batch "
        "a day (default: the notebook's 8 days of covariate drift, then 3 days of a downturn), "
        "materialize the daily partitions, evaluate the alert sensor, and print the timeline, "
        "the label-free estimate and the realized performance. Deletes and recreates its own "
        "folder (--home).",
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
    p.add_argument(
        "--scenario",
        default="demo",
        help="traffic scenario, a shipped name or a JSON file (default demo: the notebook's "
        "clean, gradual and sudden days, then 3 clean days in a downturn only the outcomes show; "
        "notebook: the first 8 alone; concept_drift: 8 clean days, a downturn from day 4)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--verbose", action="store_true", help="show Dagster's event log")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "env",
        help="list every setting (environment variable, project file key, default)",
        description="Print the settings table (the README's), or with --current the value in "
        "use for each setting and where it comes from (environment, project file, default).",
    )
    p.add_argument("--current", action="store_true", help="the values in use and their source")
    _add_home(p)
    p.set_defaults(func=cmd_env)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command != "demo":  # the demo's --home is the folder it creates
            _apply_home(getattr(args, "home", None))
        code = args.func(args)
        sys.stdout.flush()  # inside the try: a closed pipe must fail here, not at exit
    except BrokenPipeError:
        # The reader went away (`credit-drift env | head`): not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        return 130
    except CreditDriftError as exc:
        # Every user-facing error (bad input, a bad setting, missing artifacts...) is one of
        # these and carries a message that says what to do.
        print(f"credit-drift: error: {exc}", file=sys.stderr)
        return 2
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
