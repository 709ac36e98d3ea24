"""Capacity figures for the deployment plan (issue 14 item 5): one day of a million predictions,
the database's size per million predictions, and a backfill on the production stack.

    python benchmarks/bench_capacity.py million [--rows 1000000] [--out million.md]
    python benchmarks/bench_capacity.py size [--sizes 100000,300000] [--out size.md]
    python benchmarks/bench_capacity.py backfill [--days 90] [--rows-per-day 1000] \
        [--workers 1,2] [--out backfill.md]

Every subcommand works on fresh PostgreSQL databases (`cap_<random>` on --database-url's
server, dropped afterwards) and a model trained once into --model-dir (reused when it is there
already). Predictions are logged through the bulk path (`simulator.replay.bulk_backfill`: the
model scores each row, `storage.predictions.bulk_insert_predictions` writes them with binary
COPY), not through the HTTP API, whose own rates are in the "Scoring API" and "Load" sections.

- `million`: `--rows` predictions on one day, then every daily asset of that day materialized in
  one child process (in-process executor, `dagster.materialize`, ephemeral instance; killed
  after --timeout). Per asset: Dagster's step duration, and the process's resident set size
  sampled every 0.1 s while the step ran (peak, and its rise over the step's start). The
  child's whole-process peak is `getrusage` (exact); the per-step peaks are best-effort (a
  sample every 0.1 s; memory an earlier step still holds counts in a later step's peak). Then
  exactness: for --ks-features numeric features evenly spread over the feature list,
  `feature_drift`'s stored KS statistic and p-value equal `scipy.stats.ks_2samp` on the same
  columns (the whole training set against the day's logged rows, missing values left out);
  the benchmark fails when one differs by more than 1e-12.
- `size`: for each of --sizes, a fresh database holding that many predictions (one day) and as
  many `api_logs` rows (one request per prediction: the worst case, a batch request logs one
  row for many predictions); the size of each table with its indexes and TOAST (summed over
  `pg_partition_tree`, so a day-partitioned `predictions` counts whole), and the per-million
  figure from the slope between the two sizes (measured at two sizes, extrapolated linearly).
- `backfill`: for each of --workers, the stack (`credit_drift.stack.up`: supervisord, redis,
  code server, N dagster-celery workers, API, web server, daemon) on its own ports, state
  directory and databases; --days days of --rows-per-day predictions logged; the reference
  profile run, then a backfill of every daily asset over those days launched through the web
  server's GraphQL API; wall time from the launch to the backfill's end -> days per hour.
  One worker is below what `stack up` allows (2): the benchmark asks `stack.up` for it with
  `allow_one_celery_worker=True`; each worker runs one step at a time (solo pool).
"""

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
import threading
import time
import traceback
import uuid
from contextlib import contextmanager
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (benchmarks/ is not a package)

from credit_drift.stack import free_port  # noqa: E402 - after common, as the other imports

DEFAULT_PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
DAY = "2026-11-02"
#: Largest difference allowed between feature_drift's KS figures and scipy's.
KS_TOLERANCE = 1e-12
#: RSS sampling interval of the materializing child (seconds).
RSS_SAMPLE_SECONDS = 0.1
SCRIPT = Path(__file__).resolve()
REPO = SCRIPT.parent.parent


class ExactnessError(AssertionError):
    """feature_drift's KS statistics differ from scipy's on the same columns."""


# -- shared -------------------------------------------------------------------------------------
def _command() -> str:
    return " ".join(["python", "benchmarks/bench_capacity.py", *sys.argv[1:]])


@contextmanager
def fresh_database(base_url: str, prefix: str = "cap"):
    """A new database on `base_url`'s server (its URL), dropped on exit."""
    import sqlalchemy as sa

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(
        base_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 10}
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(base_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        from credit_drift.storage.db import dispose_engines

        dispose_engines()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def prepare_model(model_dir: Path, train_rows: int, pool_rows: int, trees: int | None):
    """(training data path, pool path, artifacts): the generated data set and a model trained on
    it (one LightGBM thread), written under `model_dir` once and reused afterwards."""
    from credit_drift.model.artifacts import load_artifacts, save_artifacts

    data, art = model_dir / "data", model_dir / "artifacts"
    train, pool = data / "train.parquet", data / "pool.parquet"
    if (art / "model.txt").is_file() and train.is_file() and pool.is_file():
        return train, pool, load_artifacts(art)
    from credit_drift.data.generator import write_datasets
    from credit_drift.data.loader import load_training_data
    from credit_drift.model.train import TrainConfig, train_model

    paths = write_datasets(data, n_rows=train_rows, pool_rows=pool_rows)
    loaded = load_training_data(paths.train, target_column="TARGET", id_column="SK_ID_CURR")
    config = TrainConfig(n_jobs=1) if trees is None else TrainConfig(n_jobs=1, n_estimators=trees)
    artifacts = train_model(loaded, config=config)
    save_artifacts(artifacts, art)
    return paths.train, paths.pool, artifacts


def log_days(url: str, artifacts, pool_path: Path, *, days: int, rows_per_day: int, start: str):
    """`days` days of `rows_per_day` clean predictions from `start`, through the bulk path;
    returns simulator.replay.BackfillSummary."""
    from credit_drift.data.loader import load_pool
    from credit_drift.simulator.replay import bulk_backfill
    from credit_drift.storage.db import upgrade

    upgrade(url)
    pool = load_pool(pool_path, artifacts.schema)
    return bulk_backfill(
        database_url=url,
        artifacts=artifacts,
        pool=pool,
        days=days,
        rows_per_day=rows_per_day,
        start_date=start,
        progress=False,
    )


def table_bytes(url: str, table: str) -> int:
    """`table` with its indexes and TOAST, summed over its partitions when it has any."""
    import sqlalchemy as sa

    from credit_drift.storage.db import make_engine

    with make_engine(url).connect() as conn:
        # pg_partition_tree lists a partitioned table and its partitions, and nothing for a
        # plain table.
        return int(
            conn.execute(
                sa.text(
                    "SELECT CASE WHEN EXISTS"
                    " (SELECT 1 FROM pg_partition_tree(CAST(:t AS regclass)))"
                    " THEN (SELECT sum(pg_total_relation_size(relid))"
                    " FROM pg_partition_tree(CAST(:t AS regclass)))"
                    " ELSE pg_total_relation_size(CAST(:t AS regclass)) END"
                ),
                {"t": table},
            ).scalar_one()
        )


def database_bytes(url: str) -> int:
    import sqlalchemy as sa

    from credit_drift.storage.db import make_engine

    with make_engine(url).connect() as conn:
        return int(conn.execute(sa.text("SELECT pg_database_size(current_database())")).scalar())


def _mb(n_bytes: float) -> str:
    return f"{n_bytes / 1e6:,.1f}"


def ks_exactness(results, reference, window, n_features: int) -> dict:
    """Compare `results` (feature_drift's rows: feature, kind, statistic, p_value) with
    `scipy.stats.ks_2samp(reference[f], window[f])` (missing values left out) on `n_features`
    numeric features evenly spread over `results`; raises ExactnessError when the statistic or
    the p-value differs by more than KS_TOLERANCE (relative for the p-value)."""
    from scipy import stats

    numeric = results[(results["kind"] == "numeric") & results["statistic"].notna()]
    if numeric.empty:
        raise ExactnessError("feature_drift holds no numeric KS result to check")
    picks = np.unique(np.linspace(0, len(numeric) - 1, min(n_features, len(numeric))).astype(int))
    worst_d = worst_p = 0.0
    identical = 0
    bad = []
    for _, row in numeric.iloc[picks].iterrows():
        name = row["feature"]
        ref = reference[name].to_numpy(np.float64)
        cur = window[name].to_numpy(np.float64)
        expected = stats.ks_2samp(ref[~np.isnan(ref)], cur[~np.isnan(cur)])
        d_diff = abs(float(row["statistic"]) - float(expected.statistic))
        p_diff = abs(float(row["p_value"]) - float(expected.pvalue)) / max(
            abs(float(expected.pvalue)), np.finfo(float).tiny
        )
        worst_d, worst_p = max(worst_d, d_diff), max(worst_p, p_diff)
        identical += d_diff == 0 and p_diff == 0
        if d_diff > KS_TOLERANCE or p_diff > KS_TOLERANCE:
            bad.append(
                f"{name}: D {row['statistic']!r} vs scipy {expected.statistic!r}, "
                f"p {row['p_value']!r} vs scipy {expected.pvalue!r}"
            )
    if bad:
        raise ExactnessError(
            f"{len(bad)} of {len(picks)} features differ from scipy.stats.ks_2samp: "
            + "; ".join(bad[:5])
        )
    return {
        "n_checked": len(picks),
        "n_bit_identical": int(identical),
        "max_abs_diff_statistic": worst_d,
        "max_rel_diff_p_value": worst_p,
    }


# -- million: the child that materializes the day -------------------------------------------------
class RssSampler:
    """This process's resident set size every RSS_SAMPLE_SECONDS, with the time of each sample."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def rss_mb() -> float:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), self.rss_mb()))
            self._stop.wait(RSS_SAMPLE_SECONDS)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def during(self, start: float, end: float) -> tuple[float, float]:
        """(peak RSS, RSS at the first sample) over the samples in [start, end] (MB)."""
        inside = [rss for t, rss in self.samples if start <= t <= end]
        before = [rss for t, rss in self.samples if t <= start]
        at_start = before[-1] if before else (inside[0] if inside else float("nan"))
        return (max(inside) if inside else at_start), at_start


def worker_materialize(args) -> None:
    """Child process: materialize reference_profile, then every daily asset of DAY, and check
    feature_drift's KS figures against scipy; writes a JSON result."""
    state, model_dir = Path(args.state), Path(args.model_dir)
    os.environ["CREDIT_DRIFT_HOME"] = str(state)
    os.environ["DATABASE_URL"] = args.url
    os.environ.pop("DAGSTER_HOME", None)
    import dagster as dg

    from credit_drift.defs.assets import daily_assets, predictions, reference_profile
    from credit_drift.defs.resources import resources_from_settings
    from credit_drift.settings import Settings

    resources = resources_from_settings(
        Settings.from_env(
            database_url=args.url,
            artifacts_dir=model_dir / "artifacts",
            training_data=model_dir / "data" / "train.parquet",
            reports_dir=state / "reports",
            io_base=str(state / "io"),
        )
    )
    instance = dg.DagsterInstance.ephemeral()
    t = time.perf_counter()
    dg.materialize([reference_profile], resources=resources, instance=instance)
    reference_seconds = time.perf_counter() - t
    skip = {s for s in args.skip_assets.split(",") if s}
    keys = [a.key for a in daily_assets if a.key.to_user_string() not in skip]
    rss_before = RssSampler.rss_mb()
    load = common.load_average()
    with RssSampler() as sampler:
        t, cpu = time.perf_counter(), time.process_time()
        result = dg.materialize(
            [predictions, reference_profile, *daily_assets],
            selection=keys,
            partition_key=DAY,
            resources=resources,
            instance=instance,
        )
        total, cpu = time.perf_counter() - t, time.process_time() - cpu
    steps = {}
    for s in instance.get_run_step_stats(result.run_id):
        if s.start_time is None or s.end_time is None:
            continue
        peak, at_start = sampler.during(s.start_time, s.end_time)
        steps[s.step_key] = {
            "seconds": s.end_time - s.start_time,
            "peak_rss_mb": peak,
            "rss_at_start_mb": at_start,
        }
    metadata = {}
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        metadata[mat.asset_key.to_user_string()] = {
            k: getattr(v, "value", v)
            for k, v in mat.metadata.items()
            if isinstance(getattr(v, "value", v), int | float | str)
        }
    materialize_peak = common.peak_rss_mb()
    del result

    from credit_drift.data.loader import load_training_data
    from credit_drift.model.artifacts import load_artifacts
    from credit_drift.pipeline.window import read_production_window
    from credit_drift.storage.db import make_engine
    from credit_drift.storage.drift_results import read_feature_drift
    from credit_drift.storage.windows import DayWindow

    engine = make_engine(args.url)
    schema = load_artifacts(model_dir / "artifacts").schema
    day = DayWindow.of(DAY)
    results = read_feature_drift(engine, day.date)
    reference = load_training_data(
        model_dir / "data" / "train.parquet", target_column="TARGET", id_column="SK_ID_CURR"
    ).X
    window = read_production_window(engine, schema, day)
    t = time.perf_counter()
    exact = ks_exactness(results, reference, window.features, args.ks_features)
    exact["seconds"] = time.perf_counter() - t
    common.write_result(
        args.result,
        {
            "reference_seconds": reference_seconds,
            "total_seconds": total,
            "cpu_seconds": cpu,
            "rss_before_mb": rss_before,
            "materialize_peak_rss_mb": materialize_peak,
            "peak_rss_mb": common.peak_rss_mb(),
            "load_before": load,
            "load_after": common.load_average(),
            "steps": steps,
            "metadata": metadata,
            "exactness": exact,
            "n_window_rows": int(window.n_rows),
        },
    )


# -- million -------------------------------------------------------------------------------------
def run_million(args) -> str:
    info = common.machine_info(("dagster", "evidently", "lightgbm", "psycopg2-binary"))
    model_dir = Path(args.model_dir)
    t = time.perf_counter()
    _, pool_path, artifacts = prepare_model(model_dir, args.train_rows, args.pool_rows, args.trees)
    model_seconds = time.perf_counter() - t
    lines = [
        f"Command: `{_command()}`",
        "",
        "Machine:",
        common.markdown_kv(info),
        "",
    ]
    with fresh_database(args.database_url) as url:
        load_insert = common.load_average()
        logged = log_days(url, artifacts, pool_path, days=1, rows_per_day=args.rows, start=DAY)
        size = table_bytes(url, "predictions")
        from credit_drift.storage.db import dispose_engines

        dispose_engines()
        lines += [
            f"Model and data (reused from {model_dir} when present): {model_seconds:.1f} s.",
            "",
            f"Logged {logged.n_rows:,} predictions on {DAY} through the bulk path (model scoring "
            "+ binary COPY, no HTTP), load before "
            f"{load_insert}: {logged.elapsed_s:.1f} s, **{logged.rows_per_second:,.0f} rows/s** "
            f"(scoring {logged.scoring_s:.1f} s, writing {logged.writing_s:.1f} s: "
            f"{logged.n_rows / logged.writing_s:,.0f} rows/s written). `predictions` then holds "
            f"{_mb(size)} MB with its indexes and TOAST.",
            "",
        ]
        state = Path(tempfile.mkdtemp(prefix="cap_million_"))
        try:
            run = common.run_worker(
                SCRIPT,
                [
                    "--worker",
                    "materialize",
                    "--url",
                    url,
                    "--state",
                    str(state),
                    "--model-dir",
                    str(model_dir),
                    "--ks-features",
                    str(args.ks_features),
                    "--skip-assets",
                    args.skip_assets,
                ],
                label="materialize",
                timeout=args.timeout,
            )
        finally:
            shutil.rmtree(state, ignore_errors=True)
    if not run.ok:
        lines += ["Materialization FAILED:", "```", run.error, "```"]
        return "\n".join(lines)
    r = run.result
    rows = [
        [
            name,
            common.fmt_seconds(s["seconds"]),
            common.fmt_mb(s["peak_rss_mb"]),
            common.fmt_mb(s["peak_rss_mb"] - s["rss_at_start_mb"]),
        ]
        for name, s in r["steps"].items()
    ]
    rows.append(
        [
            "**whole partition (wall time)**",
            f"**{common.fmt_seconds(r['total_seconds'])}**",
            f"**{common.fmt_mb(r['materialize_peak_rss_mb'])}** (getrusage)",
            "",
        ]
    )
    meta = r["metadata"]
    notes = []
    for key, fields in (
        ("production_window", ("n_predictions", "read_seconds")),
        ("feature_drift", ("status", "n_features_drifted", "compute_seconds")),
        ("evidently_report", ("n_columns", "seconds")),
        ("drift_report", ("status", "n_features_drifted", "multivariate_auc")),
    ):
        m = meta.get(key, {})
        notes.append(f"- {key}: " + ", ".join(f"{f} = {m.get(f)!r}" for f in fields if f in m))
    ex = r["exactness"]
    lines += [
        f"Partition {DAY} ({r['n_window_rows']:,} rows), every daily asset in one child process "
        f"(in-process executor; skipped: {args.skip_assets or 'none'}); load before "
        f"{r['load_before']}, after {r['load_after']}. RSS before the run "
        f"{common.fmt_mb(r['rss_before_mb'])} MB (imports, reference profile materialized in "
        f"{r['reference_seconds']:.1f} s). CPU time of the process over the run (every "
        f"thread): {r['cpu_seconds']:.0f} s.",
        "",
        common.markdown_table(
            ["asset (step)", "seconds", "peak RSS while it ran (MB)", "rise during the step (MB)"],
            rows,
        ),
        "",
        "Asset metadata:",
        *notes,
        "",
        f"Exactness: feature_drift's KS statistic and p-value on {ex['n_checked']} numeric "
        f"features (evenly spread) equal `scipy.stats.ks_2samp` on the same columns: "
        f"{ex['n_bit_identical']} bit-identical, largest difference "
        f"{ex['max_abs_diff_statistic']:.3g} (statistic), {ex['max_rel_diff_p_value']:.3g} "
        f"(p-value, relative); tolerance {KS_TOLERANCE:g}. scipy took {ex['seconds']:.1f} s.",
        f"Child process: {run.wall_seconds:.0f} s in all, peak RSS {common.fmt_mb(run.peak_rss_mb)}"
        " MB (the exactness check re-reads the day and the training set after the run).",
    ]
    return "\n".join(lines)


# -- size ----------------------------------------------------------------------------------------
def _log_api_requests(url: str, n: int, day: str) -> None:
    """`n` api_logs rows on `day`, one POST /predict of one application each."""
    from credit_drift.storage.api_logs import ApiLogRow, insert_api_logs
    from credit_drift.storage.db import make_engine

    engine = make_engine(url)
    start = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)
    step = dt.timedelta(microseconds=86_400_000_000 // n)
    rng = np.random.default_rng(5)
    latency = rng.gamma(2.0, 3.0, n)
    chunk = 20_000
    for lo in range(0, n, chunk):
        rows = [
            ApiLogRow(
                created_at=start + k * step,
                request_id=f"req-{uuid.uuid4().hex}",
                method="POST",
                endpoint="/predict",
                status_code=200,
                latency_ms=float(latency[k]),
                n_items=1,
                client="10.0.0.1",
            )
            for k in range(lo, min(lo + chunk, n))
        ]
        insert_api_logs(engine, rows)


def run_size(args) -> str:
    info = common.machine_info(("psycopg2-binary",))
    sizes = [int(s) for s in args.sizes.split(",")]
    if len(sizes) != 2 or sizes[0] >= sizes[1] or sizes[0] < 1:
        raise SystemExit("--sizes takes two increasing row counts, e.g. 100000,300000")
    _, pool_path, artifacts = prepare_model(
        Path(args.model_dir), args.train_rows, args.pool_rows, args.trees
    )
    points = []
    for n in sizes:
        with fresh_database(args.database_url) as url:
            log_days(url, artifacts, pool_path, days=1, rows_per_day=n, start=DAY)
            _log_api_requests(url, n, DAY)
            points.append(
                {
                    "rows": n,
                    "predictions": table_bytes(url, "predictions"),
                    "api_logs": table_bytes(url, "api_logs"),
                    "database": database_bytes(url),
                }
            )
            print(points[-1])
    (a, b) = points
    per_row = {k: (b[k] - a[k]) / (b["rows"] - a["rows"]) for k in ("predictions", "api_logs")}
    per_row["database"] = (b["database"] - a["database"]) / (b["rows"] - a["rows"])
    rows = [
        [f"{p['rows']:,}", _mb(p["predictions"]), _mb(p["api_logs"]), _mb(p["database"])]
        for p in points
    ]
    rows.append(
        [
            "**slope x 1,000,000**",
            f"**{_mb(per_row['predictions'] * 1e6)}**",
            f"**{_mb(per_row['api_logs'] * 1e6)}**",
            f"**{_mb(per_row['database'] * 1e6)}**",
        ]
    )
    return "\n".join(
        [
            f"Command: `{_command()}`",
            "",
            "Machine:",
            common.markdown_kv(info),
            "",
            f"One day of N predictions ({len(artifacts.schema)} features, bulk path) and N "
            "api_logs rows (one single-application request each), in a fresh database per N; "
            f"sizes with indexes and TOAST, in MB (10^6 bytes); load at the end "
            f"{common.load_average()}:",
            "",
            common.markdown_table(
                ["N", "predictions", "api_logs", "whole database (pg_database_size)"], rows
            ),
            "",
            f"Per prediction: {per_row['predictions']:,.0f} bytes in `predictions`, "
            f"{per_row['api_logs']:,.0f} bytes in `api_logs` (slope between the two sizes).",
        ]
    )


# -- backfill ------------------------------------------------------------------------------------
def _wait(what: str, predicate, timeout: float, poll: float = 2.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(poll)


@contextmanager
def _environment(values: dict[str, str]):
    """os.environ without credit-drift and Dagster settings, plus `values`; restored on exit."""
    saved = dict(os.environ)
    for key in list(os.environ):
        if key.startswith(("CREDIT_DRIFT_", "DAGSTER_")) or key == "DATABASE_URL":
            del os.environ[key]
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def backfill_once(args, workers: int, model_dir: Path, artifacts, pool_path: Path) -> dict:
    """One stack with `workers` celery workers: log the days, run the reference profile, launch
    the backfill of every daily asset and time it."""
    today = dt.datetime.now(dt.UTC).date()
    first = today - dt.timedelta(days=args.days + 1)
    days = [(first + dt.timedelta(days=i)).isoformat() for i in range(args.days)]
    with fresh_database(args.database_url) as log_url, fresh_database(args.database_url) as dg_url:
        t = time.perf_counter()
        logged = log_days(
            log_url,
            artifacts,
            pool_path,
            days=args.days,
            rows_per_day=args.rows_per_day,
            start=days[0],
        )
        log_seconds = time.perf_counter() - t
        from credit_drift.storage.db import dispose_engines

        dispose_engines()
        home = Path(tempfile.mkdtemp(prefix="cap", dir="/tmp"))
        env = {
            "CREDIT_DRIFT_HOME": str(home),
            "DATABASE_URL": log_url,
            "DAGSTER_PG_URL": dg_url,
            "CREDIT_DRIFT_ARTIFACTS_DIR": str(model_dir / "artifacts"),
            "CREDIT_DRIFT_TRAINING_DATA": str(model_dir / "data" / "train.parquet"),
            "CREDIT_DRIFT_DATA_DIR": str(model_dir / "data"),
            "CREDIT_DRIFT_PARTITIONS_START": days[0],
        }
        with _environment(env):
            import dagster as dg
            from dagster._core.execution.backfill import BulkActionStatus
            from dagster._core.instance.ref import InstanceRef

            from credit_drift import stack
            from credit_drift.settings import Settings

            settings = Settings.from_env()
            ports = stack.Ports(free_port(), free_port(), free_port(), free_port())
            lay = stack.layout(settings)
            t = time.perf_counter()
            try:
                stack.up(settings, ports, celery_workers=workers, allow_one_celery_worker=True)
                up_seconds = time.perf_counter() - t
                web = f"http://127.0.0.1:{ports.webserver}"
                instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(lay.dagster_home)))
                repo = {
                    "repositoryLocationName": stack.LOCATION_NAME,
                    "repositoryName": "__repository__",
                }
                launched = stack.graphql(
                    web,
                    stack.LAUNCH_RUN,
                    {"params": {"selector": {**repo, "jobName": "reference_profile_job"}}},
                )["launchRun"]
                if launched["__typename"] != "LaunchRunSuccess":
                    raise RuntimeError(f"reference profile run not launched: {launched}")
                ref_id = launched["run"]["runId"]

                def finished(run_id):
                    run = instance.get_run_by_id(run_id)
                    return run if run and run.is_finished else None

                ref_run = _wait("the reference profile run", lambda: finished(ref_id), 900)
                if ref_run.status != dg.DagsterRunStatus.SUCCESS:
                    raise RuntimeError(f"reference profile run {ref_id}: {ref_run.status}")
                names = _daily_asset_names()
                load_before = common.load_average()
                t = time.perf_counter()
                launched = stack.graphql(
                    web,
                    stack.LAUNCH_BACKFILL,
                    {
                        "params": {
                            "assetSelection": [{"path": [n]} for n in names],
                            "partitionNames": days,
                        }
                    },
                )["launchPartitionBackfill"]
                if launched["__typename"] != "LaunchBackfillSuccess":
                    raise RuntimeError(f"backfill not launched: {launched}")
                backfill_id = launched["backfillId"]
                in_progress = (
                    BulkActionStatus.REQUESTED,
                    BulkActionStatus.CANCELING,
                    BulkActionStatus.FAILING,
                )

                def done():
                    b = instance.get_backfill(backfill_id)
                    return b if b.status not in in_progress else None

                backfill = _wait("the backfill", done, args.timeout, poll=1.0)
                wall = time.perf_counter() - t
                load_after = common.load_average()
                records = instance.get_run_records(
                    dg.RunsFilter(tags={"dagster/backfill": backfill_id})
                )
                statuses = [r.dagster_run.status.value for r in records]
                failed = [s for s in statuses if s != "SUCCESS"]
                missing = {
                    n: sorted(set(days) - instance.get_materialized_partitions(dg.AssetKey(n)))
                    for n in names
                }
                missing = {n: m for n, m in missing.items() if m}
                run_seconds = [
                    r.end_time - r.start_time for r in records if r.start_time and r.end_time
                ]
                # Runs the daemon's sensors launched while the stack was up (they share the
                # run queue and the cores with the backfill).
                sensor_runs = sum(
                    "dagster/sensor_name" in run.tags for run in instance.get_runs(limit=10_000)
                )
            finally:
                stack.down(settings)
                shutil.rmtree(home, ignore_errors=True)
    return {
        "workers": workers,
        "days": len(days),
        "first_day": days[0],
        "rows_per_day": args.rows_per_day,
        "log_seconds": log_seconds,
        "log_rows_per_second": logged.rows_per_second,
        "up_seconds": up_seconds,
        "backfill_status": backfill.status.value,
        "wall_seconds": wall,
        "days_per_hour": len(days) / (wall / 3600),
        "n_runs": len(records),
        "sensor_runs": sensor_runs,
        "failed_runs": failed,
        "missing_partitions": missing,
        "run_seconds_mean": float(np.mean(run_seconds)) if run_seconds else float("nan"),
        "load_before": load_before,
        "load_after": load_after,
        "n_assets": len(names),
    }


def _daily_asset_names() -> list[str]:
    from credit_drift.defs.assets import daily_assets

    return [a.key.to_user_string() for a in daily_assets]


def run_backfill(args) -> str:
    info = common.machine_info(("dagster", "dagster-celery", "evidently", "lightgbm"))
    model_dir = Path(args.model_dir)
    _, pool_path, artifacts = prepare_model(model_dir, args.train_rows, args.pool_rows, args.trees)
    results, failures = [], []
    for w in [int(x) for x in args.workers.split(",")]:
        try:
            results.append(backfill_once(args, w, model_dir, artifacts, pool_path))
            print(results[-1])
        except Exception:
            failures.append(f"{w} worker(s):\n{traceback.format_exc()}")
            print(failures[-1])
    lines = [f"Command: `{_command()}`", "", "Machine:", common.markdown_kv(info), ""]
    if results:
        r0 = results[0]
        lines += [
            f"{r0['days']} days ({r0['first_day']} on) of {r0['rows_per_day']:,} predictions a "
            f"day (bulk path); backfill of the {r0['n_assets']} daily assets launched through "
            "GraphQL; CREDIT_DRIFT_BACKFILL_DAYS_PER_RUN at its default; deploy/dagster.yaml "
            "as shipped (2 runs at once).",
            "",
            common.markdown_table(
                [
                    "celery workers",
                    "backfill wall (s)",
                    "**days per hour**",
                    "backfill runs",
                    "mean run (s)",
                    "sensor runs",
                    "status",
                    "load (1/5/15) before; after",
                ],
                [
                    [
                        r["workers"],
                        f"{r['wall_seconds']:.0f}",
                        f"**{r['days_per_hour']:.0f}**",
                        r["n_runs"],
                        f"{r['run_seconds_mean']:.0f}",
                        r["sensor_runs"],
                        r["backfill_status"]
                        + (f", failed runs {r['failed_runs']}" if r["failed_runs"] else "")
                        + (
                            f", missing {r['missing_partitions']}"
                            if r["missing_partitions"]
                            else ""
                        ),
                        f"{r['load_before']}; {r['load_after']}",
                    ]
                    for r in results
                ],
            ),
            "",
            "Setup per stack (not in the wall time): "
            + "; ".join(
                f"{r['workers']} worker(s): logging {r['log_seconds']:.0f} s, stack up "
                f"{r['up_seconds']:.0f} s"
                for r in results
            )
            + ".",
        ]
    for f in failures:
        lines += ["", "FAILED:", "```", f, "```"]
    return "\n".join(lines)


# -- entry point ---------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--state", help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command")

    def common_args(p):
        p.add_argument("--database-url", default=DEFAULT_PG_URL, help="PostgreSQL server URL")
        p.add_argument(
            "--model-dir",
            default=str(Path(tempfile.gettempdir()) / "credit_drift_capacity_model"),
            help="generated data and trained model, made once and reused",
        )
        p.add_argument("--train-rows", type=int, default=50_000)
        p.add_argument("--pool-rows", type=int, default=100_000)
        p.add_argument("--trees", type=int, default=None, help="LightGBM trees (default 400)")
        p.add_argument("--out", default=None)

    p = sub.add_parser("million", help="one day of --rows predictions, materialized")
    common_args(p)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--ks-features", type=int, default=40)
    p.add_argument("--skip-assets", default="", help="daily assets left out (comma-separated)")
    p.add_argument("--timeout", type=float, default=3600)
    p = sub.add_parser("size", help="database size per million predictions")
    common_args(p)
    p.add_argument("--sizes", default="100000,300000")
    p = sub.add_parser("backfill", help="a backfill on the stack at 1 and 2 celery workers")
    common_args(p)
    p.add_argument("--days", type=int, default=90)
    p.add_argument("--rows-per-day", type=int, default=1_000)
    p.add_argument("--workers", default="1,2")
    p.add_argument("--timeout", type=float, default=3 * 3600, help="per backfill (seconds)")
    # The child's own options (parsed when --worker is given).
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    parser.add_argument("--ks-features", type=int, default=40, help=argparse.SUPPRESS)
    parser.add_argument("--skip-assets", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker == "materialize":
        worker_materialize(args)
        return 0
    if args.command is None:
        parser.error("a subcommand is required: million, size or backfill")
    report = {"million": run_million, "size": run_size, "backfill": run_backfill}[args.command](
        args
    )
    print(report)
    if args.out:
        Path(args.out).write_text(report + "\n")
    return 1 if "FAILED" in report else 0


if __name__ == "__main__":
    sys.exit(main())
