"""Reading a day of predictions out of PostgreSQL: `storage.predictions.read_predictions` (packed
`float8[]` vectors, binary COPY) against the reference notebook's `pd.read_sql` +
`pd.json_normalize` (issue 4).

    /work/venv/bin/python benchmarks/bench_window_read.py --rows 100000 --out read.md

Everything happens in a dedicated PostgreSQL schema `bench_<random>` (selected through the
connection's `search_path`, created at the start and dropped at the end), so nothing else in the
database is touched. Steps:

1. Migrate the empty schema (`storage.db.upgrade`), then write `--rows` rows x 419 features
   (synthetic Home-Credit-like, `credit_drift.data.generator`) into one day with
   `bulk_insert_predictions` (binary COPY), timed.
2. Also materialize the notebook's storage for comparison: a `notebook_predictions` table with
   one JSONB object of features per row, built server-side from the `predictions_json` view
   (`CREATE TABLE ... AS SELECT`), timed, with its own `created_at` index.
3. `VACUUM (ANALYZE)` both tables (so that no read pays for setting hint bits), then in separate
   processes (peak memory = that process's peak RSS):
   * ours: `read_predictions(engine, schema, start, end)`, median of `--repeats`;
   * naive, view: `pd.read_sql("SELECT features, probability, decision, created_at FROM
     predictions_json WHERE created_at >= ... AND created_at < ... ORDER BY created_at, id")`
     + `pd.json_normalize(raw["features"])` (the view has no inference_time_ms column);
   * naive, JSONB table: the same query on `notebook_predictions` (what the notebook stored and
     read: `features, probability, decision, inference_time_ms, created_at`).
4. Check that all three give the same feature matrix (NaN-aware, every value) and probabilities.
"""

import argparse
import datetime as dt
import json
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (benchmarks/ is not a package)

SCRIPT = Path(__file__).resolve()
DEFAULT_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
DEFAULT_ROWS = 100_000
#: The day every benchmark row is logged in (UTC).
DAY = dt.date(2026, 11, 2)
#: Target of issue 4: our read at least this many times faster than the naive one.
TARGET_VS_NAIVE = 10.0
#: The naive queries: the notebook's, on the project's JSON view and on a notebook-style table.
NAIVE_VIEW_SQL = (
    "SELECT features, probability, decision, created_at FROM predictions_json "
    "WHERE created_at >= %(start)s AND created_at < %(end)s ORDER BY created_at, id"
)
NAIVE_TABLE_SQL = (
    "SELECT features, probability, decision, inference_time_ms, created_at "
    "FROM notebook_predictions "
    "WHERE created_at >= %(start)s AND created_at < %(end)s ORDER BY created_at, id"
)


def schema_url(base: str, schema: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


def window_bounds() -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime(DAY.year, DAY.month, DAY.day, tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=1)


def _schema(workdir: Path):
    from credit_drift.features import FeatureSchema

    return FeatureSchema.numeric(json.loads((workdir / "names.json").read_text()))


# == workers (child processes) ===================================================================
def worker_write(workdir: Path, url: str) -> dict:
    from credit_drift.storage.db import make_engine
    from credit_drift.storage.predictions import bulk_insert_predictions

    schema = _schema(workdir)
    matrix = np.load(workdir / "matrix.npy")
    meta = np.load(workdir / "meta.npz")
    n = matrix.shape[0]
    engine = make_engine(url)
    before = common.peak_rss_mb()
    walls, cpus, written = common.timed_repeats(
        lambda: bulk_insert_predictions(
            engine,
            schema,
            created_at=meta["created_at"],
            matrix=matrix,
            probability=meta["probability"],
            decision=np.where(meta["probability"] >= 0.5, "REFUSED", "APPROVED"),
            threshold=0.5,
            model_version="bench",
            inference_time_ms=meta["inference_time_ms"],
            request_ids=[f"bench-{i}" for i in range(n)],
        ),
        1,
    )
    return {
        "walls": walls,
        "cpus": cpus,
        "rows": written,
        "rss_before_mb": before,
        "peak_rss_mb": common.peak_rss_mb(),
    }


def worker_ours(workdir: Path, url: str, repeats: int) -> dict:
    from credit_drift.storage.db import make_engine
    from credit_drift.storage.predictions import read_predictions

    schema = _schema(workdir)
    engine = make_engine(url)
    start, end = window_bounds()
    before = common.peak_rss_mb()
    walls, cpus, window = common.timed_repeats(
        lambda: read_predictions(engine, schema, start, end), repeats
    )
    peak = common.peak_rss_mb()
    np.save(workdir / "read_ours.npy", window.features[schema.names].to_numpy(np.float64))
    np.save(workdir / "prob_ours.npy", window.meta["probability"].to_numpy(np.float64))
    return {"walls": walls, "cpus": cpus, "rss_before_mb": before, "peak_rss_mb": peak}


def worker_naive(workdir: Path, url: str, repeats: int, which: str) -> dict:
    import pandas as pd
    import sqlalchemy as sa

    schema = _schema(workdir)
    # A plain engine, as the notebook had: the driver (psycopg2) decodes JSONB into dicts.
    engine = sa.create_engine(url)
    start, end = window_bounds()
    sql = NAIVE_VIEW_SQL if which == "view" else NAIVE_TABLE_SQL

    def naive():
        raw = pd.read_sql(sql, engine, params={"start": start, "end": end})
        features = pd.json_normalize(raw["features"])
        features.index = raw.index
        return raw, features

    before = common.peak_rss_mb()
    walls, cpus, (raw, features) = common.timed_repeats(naive, repeats)
    peak = common.peak_rss_mb()
    # JSONB orders keys by length then bytes: put the columns back in schema order (outside
    # the timing; the notebook selected columns by name later as well).
    missing = [n for n in schema.names if n not in features.columns]
    matrix = features.reindex(columns=schema.names).to_numpy(np.float64, na_value=np.nan)
    np.save(workdir / f"read_naive_{which}.npy", matrix)
    np.save(workdir / f"prob_naive_{which}.npy", raw["probability"].to_numpy(np.float64))
    return {
        "walls": walls,
        "cpus": cpus,
        "rss_before_mb": before,
        "peak_rss_mb": peak,
        "columns": int(features.shape[1]),
        "columns_missing": missing[:10],
        "n_missing_columns": len(missing),
    }


def run_as_worker(args: argparse.Namespace) -> None:
    workdir = Path(args.workdir)
    if args.worker == "prepare":
        prepare_data(workdir, args.rows)
        out = {"rows": args.rows}
    elif args.worker == "write":
        out = worker_write(workdir, args.url)
    elif args.worker == "ours":
        out = worker_ours(workdir, args.url, args.repeats)
    elif args.worker in ("naive_view", "naive_table"):
        out = worker_naive(workdir, args.url, args.repeats, args.worker.removeprefix("naive_"))
    else:
        raise SystemExit(f"unknown worker {args.worker!r}")
    common.write_result(args.result, out)


# == parent ======================================================================================
def prepare_data(workdir: Path, n: int) -> None:
    from credit_drift.data.generator import FEATURE_NAMES

    frame = common.feature_frame(n, 7)
    (workdir / "names.json").write_text(json.dumps(list(FEATURE_NAMES)))
    np.save(workdir / "matrix.npy", frame.to_numpy(np.float64))
    rng = np.random.default_rng(7)
    start, _ = window_bounds()
    # Distinct, increasing timestamps spread over the day (microsecond resolution).
    offsets = np.sort(rng.choice(86_400_000_000, size=n, replace=False))
    created = np.datetime64(start.replace(tzinfo=None), "us") + offsets.astype("timedelta64[us]")
    np.savez(
        workdir / "meta.npz",
        created_at=created,
        probability=rng.random(n),
        inference_time_ms=rng.gamma(2.0, 3.0, n),
    )


def nan_equal(a: np.ndarray, b: np.ndarray) -> tuple[bool, int]:
    """(NaN-aware exact equality, number of differing values)."""
    if a.shape != b.shape:
        return False, -1
    diff = ~((a == b) | (np.isnan(a) & np.isnan(b)))
    return not diff.any(), int(diff.sum())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS)
    parser.add_argument("--repeats", type=int, default=3, help="runs of our read (median)")
    parser.add_argument(
        "--naive-repeats", type=int, default=1, help="runs of each naive read (median)"
    )
    parser.add_argument(
        "--skip-naive-view",
        action="store_true",
        help="skip the naive read through the predictions_json view",
    )
    parser.add_argument("--naive-timeout", type=float, default=1800.0)
    parser.add_argument("--out", default=None, help="write the markdown report here")
    parser.add_argument("--keep-schema", action="store_true", help="do not drop the schema")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        run_as_worker(args)
        return

    import sqlalchemy as sa

    info = common.machine_info(("SQLAlchemy", "psycopg2-binary"))
    schema_name = f"bench_{uuid.uuid4().hex[:10]}"
    url = schema_url(args.database_url, schema_name)
    admin = sa.create_engine(args.database_url)
    with admin.connect() as conn:
        info["PostgreSQL"] = conn.execute(sa.text("SHOW server_version")).scalar_one()
    workdir = Path(tempfile.mkdtemp(prefix="bench_read_"))
    print(f"schema {schema_name}, data in {workdir}")
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema_name}"'))
    try:
        report = _run(args, info, url, workdir, schema_name, admin)
    finally:
        if not args.keep_schema:
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema_name}" CASCADE'))
        admin.dispose()
        shutil.rmtree(workdir, ignore_errors=True)
    print(report)
    if args.out:
        Path(args.out).write_text(report + "\n")


def _run(args, info, url, workdir, schema_name, admin) -> str:
    import sqlalchemy as sa

    from credit_drift.storage.db import upgrade

    upgrade(url)

    def run(kind: str, repeats: int = 1, timeout: float | None = None) -> common.WorkerRun:
        cmd = ["--worker", kind, "--workdir", str(workdir), "--url", url]
        cmd += ["--repeats", str(repeats)]
        r = common.run_worker(SCRIPT, cmd, label=kind, timeout=timeout)
        walls = r.result.get("walls")
        print(
            f"  {kind}: {'ok' if r.ok else r.error[:3000]}; walls={walls}; "
            f"peak {r.peak_rss_mb:.0f} MB; load {common.load_average()}"
        )
        return r

    # In a child process, like every step: a child's peak RSS counts the parent's memory as it
    # was at fork time, so the parent never holds the data.
    prep = common.run_worker(
        SCRIPT,
        ["--worker", "prepare", "--workdir", str(workdir), "--rows", str(args.rows)],
        label="prepare",
    )
    if not prep.ok:
        raise SystemExit(f"data generation failed: {prep.error}")
    print(f"data generated in {prep.wall_seconds:.1f} s")
    write = run("write")
    if not write.ok:
        raise SystemExit(f"bulk_insert_predictions failed: {write.error}")
    eng = sa.create_engine(url)
    sizes = {}
    with eng.begin() as conn:
        t = time.perf_counter()
        conn.execute(
            sa.text(
                "CREATE TABLE notebook_predictions AS SELECT p.id, p.created_at, j.features, "
                "p.probability, p.decision, p.inference_time_ms FROM predictions AS p "
                "JOIN predictions_json AS j ON j.id = p.id"
            )
        )
        conn.execute(
            sa.text("CREATE INDEX ix_notebook_created_at ON notebook_predictions (created_at)")
        )
        jsonb_seconds = time.perf_counter() - t
    with eng.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        t = time.perf_counter()
        conn.execute(sa.text("VACUUM (ANALYZE) predictions"))
        conn.execute(sa.text("VACUUM (ANALYZE) notebook_predictions"))
        vacuum_seconds = time.perf_counter() - t
        for table in ("predictions", "notebook_predictions"):
            sizes[table] = conn.execute(
                sa.text("SELECT pg_total_relation_size(CAST(:t AS regclass))"), {"t": table}
            ).scalar_one()
        n_rows = conn.execute(sa.text("SELECT count(*) FROM predictions")).scalar_one()
    eng.dispose()
    print(f"  JSONB copy {jsonb_seconds:.1f} s, vacuum {vacuum_seconds:.1f} s, sizes {sizes}")

    loads = {"ours": common.load_average()}
    ours = run("ours", args.repeats)
    naive = {}
    for which in ("table",) + (() if args.skip_naive_view else ("view",)):
        loads[which] = common.load_average()
        naive[which] = run(f"naive_{which}", args.naive_repeats, args.naive_timeout)

    checks = {}
    if ours.ok:
        ref = np.load(workdir / "matrix.npy")
        mat = np.load(workdir / "read_ours.npy")
        checks["ours vs written"] = nan_equal(mat, ref)
        for which, r in naive.items():
            if r.ok:
                other = np.load(workdir / f"read_naive_{which}.npy")
                checks[f"naive ({which}) vs ours: features"] = nan_equal(other, mat)
                checks[f"naive ({which}) vs ours: probability"] = nan_equal(
                    np.load(workdir / f"prob_naive_{which}.npy"), np.load(workdir / "prob_ours.npy")
                )
    return render(
        args, info, schema_name, n_rows, write, jsonb_seconds, sizes, ours, naive, checks, loads
    )


def render(
    args, info, schema_name, n_rows, write, jsonb_seconds, sizes, ours, naive, checks, loads
) -> str:
    lines = [
        f"Command: `{' '.join(['python', 'benchmarks/bench_window_read.py', *sys.argv[1:]])}`",
        "",
        "Machine:",
        common.markdown_kv(info),
        "",
        f"Data: {n_rows:,} rows x 419 features (synthetic Home-Credit-like) in one day, "
        f"written into the throw-away schema `{schema_name}`.",
        "",
    ]
    t_ours = common.median(ours.result.get("walls", [])) if ours.ok else float("nan")
    header = ["read", "seconds", "vs ours", "CPU s (client)", "peak RSS / increase (MB)"]
    rows = [
        [
            f"ours: `read_predictions` (float8[] + binary COPY), median of {args.repeats}",
            common.fmt_seconds(t_ours),
            "1x",
            common.fmt_seconds(common.median(ours.result.get("cpus", []))),
            f"{common.fmt_mb(ours.peak_rss_mb)} / +"
            f"{common.fmt_mb(ours.peak_rss_mb - ours.result.get('rss_before_mb', 0))}",
        ]
    ]
    titles = {
        "table": "naive: notebook JSONB table, `pd.read_sql` + `pd.json_normalize`",
        "view": "naive: `predictions_json` view, `pd.read_sql` + `pd.json_normalize`",
    }
    for which, r in naive.items():
        if r.ok:
            t = common.median(r.result["walls"])
            rows.append(
                [
                    titles[which] + f", median of {args.naive_repeats}",
                    common.fmt_seconds(t),
                    f"{t / t_ours:.1f}x slower",
                    common.fmt_seconds(common.median(r.result["cpus"])),
                    f"{common.fmt_mb(r.peak_rss_mb)} / +"
                    f"{common.fmt_mb(r.peak_rss_mb - r.result['rss_before_mb'])}",
                ]
            )
        else:
            rows.append(
                [
                    titles[which],
                    "failed" if not r.timed_out else "timed out",
                    "n/a",
                    "n/a",
                    common.fmt_mb(r.peak_rss_mb),
                ]
            )
    lines += [common.markdown_table(header, rows), ""]

    w = write.result
    lines += [
        "Writing and size on disk:",
        "",
        common.markdown_table(
            ["what", "seconds", "on disk (pg_total_relation_size)"],
            [
                [
                    f"`bulk_insert_predictions` (binary COPY, float8[]) of {n_rows:,} rows, "
                    f"peak RSS {common.fmt_mb(write.peak_rss_mb)} MB",
                    common.fmt_seconds(common.median(w["walls"])),
                    f"{sizes['predictions'] / 2**20:,.0f} MiB (`predictions`)",
                ],
                [
                    "notebook-style JSONB copy, built server-side from the view "
                    "(`CREATE TABLE AS`, + index)",
                    common.fmt_seconds(jsonb_seconds),
                    f"{sizes['notebook_predictions'] / 2**20:,.0f} MiB (`notebook_predictions`)",
                ],
            ],
        ),
        "",
        "Same numbers:",
    ]
    for name, (same, ndiff) in checks.items():
        lines.append(
            f"- {name}: "
            + ("identical (NaN-aware, every value)" if same else f"DIFFERENT ({ndiff} values)")
        )
    lines.append("")
    verdict = []
    for which, r in naive.items():
        if r.ok:
            ratio = common.median(r.result["walls"]) / t_ours
            verdict.append(
                f"- vs naive ({which}): {ratio:.1f}x (target >= {TARGET_VS_NAIVE:.0f}x): "
                + ("met" if ratio >= TARGET_VS_NAIVE else "NOT MET")
            )
    lines += ["Target:", *verdict, ""]
    lines.append(
        "Individual runs, ours: "
        + ", ".join(f"{x:.2f}" for x in ours.result.get("walls", []))
        + " s. Load average (1/5/15) before each read: "
        + "; ".join(f"{k}: {v}" for k, v in loads.items())
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
