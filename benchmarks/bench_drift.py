"""Side-by-side timing of the `feature_drift` computation against a scipy `ks_2samp` loop and
Evidently's `DataDriftPreset`, on identical inputs (issues 4 and 13).

    python benchmarks/bench_drift.py --shapes generated,continuous,ties \
        --sizes 1000,10000,100000 --repeats 3 --evidently-sizes '' --out drift.md

Inputs: a 50,000-row reference and windows of each size, 419 float64 features, in one of three
data shapes (`--shapes`, each measured in turn in one run):

* generated: the project's synthetic Home-Credit-like generator (`credit_drift.data.generator`;
  windows are unseen rows of the same distribution unless `--drift` applies one of the
  simulator's drift kinds): many low-cardinality columns, so most KS statistics are 0 or large;
* continuous: continuous columns whose values are all distinct (normal, lognormal, Student t,
  uniform), a third with 1-30% NaN, the window shifted by 0 to 0.1 of a unit per column, so that
  most KS statistics are below 0.05 and many p-values come from scipy's exact Smirnov sum;
* ties: integer columns with 2 to 30 values, drawn from the same distribution in reference and
  window (small non-zero statistics: Durbin's matrix method and the Pelz-Good series).

The same arrays are handed to every method:

* ours: `evaluate_window(profile, window, get_policy('default'))`, what the `feature_drift`
  asset computes (KS statistic and scipy-equal p-value, BH correction, KS effect floor, PSI,
  normed Wasserstein, NaN-share test), against a `ReferenceProfile` fitted once from the
  reference (the fit is a one-off, timed separately); also `ks_2samp_many` alone;
* scipy: `scipy.stats.ks_2samp(ref[~isnan(ref)], cur[~isnan(cur)])` looped over the 419
  features (the reference notebook's `compute_drift_report`), NaN removal inside the timing;
* Evidently: `Report([DataDriftPreset()]).run(current_data=window, reference_data=reference)`
  on all 419 columns, one run, killed after `--evidently-timeout` seconds (the ratio is then a
  lower bound).

* floor: sorting the window's columns (a copy of each column sorted by numpy, on the same
  threads as ours), the least an exact two-sample KS must do; timed in its own process like
  the others, and again in turn with ours in one process ("paired": the ratio of each pair,
  so that the VM's speed, which moves by up to 1.5x within minutes, cancels out).

Each method runs in its own process (peak memory = that process's peak RSS; see `common.py`).
Ours, scipy and the floor: median of `--repeats` runs. The KS statistic and p-value of ours are
compared with scipy's on every feature (max absolute and relative difference, count of features
not bit-identical), so that the speed comparison is between equal results.
"""

import argparse
import json
import pickle
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (benchmarks/ is not a package)

SCRIPT = Path(__file__).resolve()
#: Default window sizes and reference rows (issue 4).
DEFAULT_SIZES = "1000,10000,100000"
DEFAULT_REF_ROWS = 50_000
#: Seconds after which the Evidently process is killed (stack-notes: ~2 minutes per window at
#: 1,000 and 10,000 rows, unfinished after 7 minutes at 100,000).
DEFAULT_EVIDENTLY_TIMEOUT = 600.0
#: Targets: ours vs the scipy loop (issue 13; issue 4 asked 5x) and vs Evidently (issue 4), and
#: ours vs the sort floor at the largest window (issue 13: within 2x at 100,000 rows).
TARGET_VS_SCIPY = 10.0
TARGET_VS_EVIDENTLY = 100.0
TARGET_VS_FLOOR = 2.0
SHAPES = ("generated", "continuous", "ties")
#: Child stream of the data seed that the reference is drawn from (windows use 1 + size index).
REFERENCE_STREAM = 0


# == worker side (runs in a child process) ===================================================
def _names(workdir: Path) -> list[str]:
    return json.loads((workdir / "names.json").read_text())


def _frame(workdir: Path, stem: str):
    import pandas as pd

    return pd.DataFrame(np.load(workdir / f"{stem}.npy"), columns=_names(workdir), copy=False)


def _load_profile(workdir: Path):
    with open(workdir / "profile.pkl", "rb") as fh:
        return pickle.load(fh)


def worker_fit(workdir: Path) -> dict:
    from credit_drift.features import FeatureSchema
    from credit_drift.stats.reference import fit_reference

    reference = _frame(workdir, "reference")
    schema = FeatureSchema.numeric(list(reference.columns))
    # Importance changes no timing (it only weights the share): uniform.
    importance = {n: 1.0 / len(schema) for n in schema.names}
    before = common.peak_rss_mb()
    walls, cpus, profile = common.timed_repeats(
        lambda: fit_reference(reference, schema, importance), 1
    )
    peak = common.peak_rss_mb()
    with open(workdir / "profile.pkl", "wb") as fh:
        pickle.dump(profile, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return {"walls": walls, "cpus": cpus, "rss_before_mb": before, "peak_rss_mb": peak}


def worker_ours(workdir: Path, size: int, repeats: int, workers: int) -> dict:
    from credit_drift.stats.policy import evaluate_window, get_policy

    profile = _load_profile(workdir)
    window = _frame(workdir, f"window_{size}")
    policy = get_policy("default")
    before = common.peak_rss_mb()
    walls, cpus, drift = common.timed_repeats(
        lambda: evaluate_window(profile, window, policy, workers=workers), repeats
    )
    peak = common.peak_rss_mb()
    res = drift.results
    np.save(workdir / f"ours_{size}_stat.npy", res["statistic"].to_numpy(np.float64))
    np.save(workdir / f"ours_{size}_p.npy", res["p_value"].to_numpy(np.float64))
    return {
        "walls": walls,
        "cpus": cpus,
        "rss_before_mb": before,
        "peak_rss_mb": peak,
        "status": drift.status,
        "n_drifted": drift.n_drifted,
        "n_analyzed": drift.n_analyzed,
        "n_drifted_by_distribution": int(res["reason"].str.contains("distribution").sum()),
        "n_p_below_005": int((res["p_value"] < 0.05).sum()),
    }


def worker_ks_many(workdir: Path, size: int, repeats: int, workers: int) -> dict:
    from credit_drift.stats.ks import ks_2samp_many

    profile = _load_profile(workdir)
    refs = [profile.numeric(n) for n in profile.schema.names]
    matrix = np.load(workdir / f"window_{size}.npy")
    before = common.peak_rss_mb()
    walls, cpus, ks = common.timed_repeats(
        lambda: ks_2samp_many(refs, matrix, workers=workers), repeats
    )
    peak = common.peak_rss_mb()
    np.save(workdir / f"ks_{size}_stat.npy", ks.statistic)
    np.save(workdir / f"ks_{size}_p.npy", ks.pvalue)
    return {"walls": walls, "cpus": cpus, "rss_before_mb": before, "peak_rss_mb": peak}


def worker_floor(workdir: Path, size: int, repeats: int, workers: int) -> dict:
    """Sort a copy of every window column, on `workers` threads with interleaved columns, as
    `scan_numeric` does before its merge."""
    run = _floor_run(np.load(workdir / f"window_{size}.npy"), workers)
    walls, cpus, _ = common.timed_repeats(run, repeats)
    return {"walls": walls, "cpus": cpus, "rss_before_mb": 0.0, "peak_rss_mb": 0.0}


def worker_paired(workdir: Path, size: int, repeats: int, workers: int) -> dict:
    """The floor and ours in turn in one process, on the same window in memory, after one
    uncounted run of each: this VM's speed moves by up to 1.5x within minutes, which the
    separate processes of the other columns (minutes apart) see as a change of ratio."""
    import pandas as pd

    from credit_drift.stats.policy import evaluate_window, get_policy

    profile = _load_profile(workdir)
    matrix = np.load(workdir / f"window_{size}.npy")
    window = pd.DataFrame(matrix, columns=_names(workdir), copy=False)
    policy = get_policy("default")
    floor = _floor_run(matrix, workers)

    def ours():
        evaluate_window(profile, window, policy, workers=workers)

    floor()
    ours()
    floor_walls, ours_walls = [], []
    for _ in range(repeats):
        for fn, walls in ((floor, floor_walls), (ours, ours_walls)):
            t0 = time.perf_counter()
            fn()
            walls.append(time.perf_counter() - t0)
    return {"walls": ours_walls, "floor_walls": floor_walls}


def _floor_run(matrix: np.ndarray, workers: int):
    from concurrent.futures import ThreadPoolExecutor

    columns = [matrix[:, j] for j in range(matrix.shape[1])]
    chunks = [range(i, len(columns), workers) for i in range(max(1, workers))]

    def work(js: range) -> None:
        scratch = np.empty(matrix.shape[0])
        for j in js:
            np.copyto(scratch, columns[j])
            scratch.sort()

    def run() -> None:
        if len(chunks) <= 1:
            for js in chunks:
                work(js)
        else:
            with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
                list(pool.map(work, chunks))

    return run


def worker_scipy(workdir: Path, size: int, repeats: int) -> dict:
    import scipy.stats

    reference = _frame(workdir, "reference")
    window = _frame(workdir, f"window_{size}")
    names = list(reference.columns)

    def loop():
        stat = np.full(len(names), np.nan)
        pval = np.full(len(names), np.nan)
        with warnings.catch_warnings():
            # scipy warns when its exact method falls back to the asymptotic one.
            warnings.simplefilter("ignore", RuntimeWarning)
            for j, name in enumerate(names):
                ref = reference[name].to_numpy()
                cur = window[name].to_numpy()
                ref, cur = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
                if ref.size and cur.size:  # ks_2samp raises on an empty sample
                    res = scipy.stats.ks_2samp(ref, cur)
                    stat[j], pval[j] = res.statistic, res.pvalue
        return stat, pval

    before = common.peak_rss_mb()
    walls, cpus, (stat, pval) = common.timed_repeats(loop, repeats)
    peak = common.peak_rss_mb()
    np.save(workdir / f"scipy_{size}_stat.npy", stat)
    np.save(workdir / f"scipy_{size}_p.npy", pval)
    return {
        "walls": walls,
        "cpus": cpus,
        "rss_before_mb": before,
        "peak_rss_mb": peak,
        "n_p_below_005": int((pval < 0.05).sum()),
    }


def _evidently_drift_count(snapshot) -> tuple[int | None, float | None]:
    """(drifted columns, share) from the snapshot's metrics (the DriftedColumnsCount metric)."""
    for metric in snapshot.dict().get("metrics", []):
        value = metric.get("value")
        if isinstance(value, dict) and {"count", "share"} <= set(value):
            return int(value["count"]), float(value["share"])
    return None, None


def worker_evidently(workdir: Path, size: int) -> dict:
    t0 = time.perf_counter()
    from evidently import Report
    from evidently.presets import DataDriftPreset

    import_seconds = time.perf_counter() - t0
    reference = _frame(workdir, "reference")
    window = _frame(workdir, f"window_{size}")
    before = common.peak_rss_mb()
    # If this process gets killed, the parent computes how long `run` had been going from this.
    (workdir / f"evidently_{size}_started").write_text(repr(time.time()))
    walls, cpus, snapshot = common.timed_repeats(
        lambda: Report([DataDriftPreset()]).run(current_data=window, reference_data=reference),
        1,
    )
    peak = common.peak_rss_mb()
    count, share = _evidently_drift_count(snapshot)
    return {
        "walls": walls,
        "cpus": cpus,
        "rss_before_mb": before,
        "peak_rss_mb": peak,
        "import_seconds": import_seconds,
        "drifted_columns": count,
        "drift_share": share,
    }


def run_as_worker(args: argparse.Namespace) -> None:
    workdir = Path(args.workdir)
    kind = args.worker
    if kind == "prepare":
        sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
        out = prepare_data(
            workdir, args.ref_rows, sizes, args.drift, args.drift_intensity, args.shapes
        )
    elif kind == "fit":
        out = worker_fit(workdir)
    elif kind == "ours":
        out = worker_ours(workdir, args.size, args.repeats, args.workers)
    elif kind == "ks_many":
        out = worker_ks_many(workdir, args.size, args.repeats, args.workers)
    elif kind == "scipy":
        out = worker_scipy(workdir, args.size, args.repeats)
    elif kind == "floor":
        out = worker_floor(workdir, args.size, args.repeats, args.workers)
    elif kind == "paired":
        out = worker_paired(workdir, args.size, args.repeats, args.workers)
    elif kind == "evidently":
        out = worker_evidently(workdir, args.size)
    else:
        raise SystemExit(f"unknown worker {kind!r}")
    common.write_result(args.result, out)


# == parent side =================================================================================
def continuous_shape(n_rows: int, stream: int, *, window: bool) -> np.ndarray:
    """419 all-distinct continuous columns (see the module docstring), reference or window."""
    rng = np.random.default_rng(np.random.SeedSequence(common.DATA_SEED, spawn_key=(stream,)))
    n_cols = 419
    shifts = np.linspace(0.0, 0.1, n_cols) if window else np.zeros(n_cols)
    out = np.empty((n_rows, n_cols))
    for j in range(n_cols):
        s = shifts[j]
        kind = j % 4
        if kind == 0:
            v = rng.normal(s, 1.0, n_rows)
        elif kind == 1:
            v = rng.lognormal(1.0 + s * 0.7, 0.7, n_rows)
        elif kind == 2:
            v = rng.standard_t(4, n_rows) + s
        else:
            v = rng.uniform(s * 0.29, 1.0 + s * 0.29, n_rows)
        if j % 3 == 0:
            v[rng.random(n_rows) < 0.01 + 0.29 * (j % 7) / 6] = np.nan
        out[:, j] = v
    return out


def ties_shape(n_rows: int, stream: int) -> np.ndarray:
    """419 integer columns with 2 to 30 values; one fixed distribution per column."""
    col_rng = np.random.default_rng(common.DATA_SEED)
    rng = np.random.default_rng(np.random.SeedSequence(common.DATA_SEED, spawn_key=(stream,)))
    n_cols = 419
    out = np.empty((n_rows, n_cols))
    for j in range(n_cols):
        k = 2 + j % 29
        probs = col_rng.dirichlet(np.ones(k))
        out[:, j] = rng.choice(k, size=n_rows, p=probs).astype(np.float64)
    return out


def prepare_data(
    workdir: Path,
    ref_rows: int,
    sizes: list[int],
    drift: str,
    intensity: float,
    shape: str = "generated",
):
    from credit_drift.data.generator import FEATURE_NAMES

    (workdir / "names.json").write_text(json.dumps(list(FEATURE_NAMES)))
    if shape != "generated":
        make = {
            "continuous": lambda rows, stream, window: continuous_shape(
                rows, stream, window=window
            ),
            "ties": lambda rows, stream, window: ties_shape(rows, stream),
        }[shape]
        reference = make(ref_rows, REFERENCE_STREAM, False)
        np.save(workdir / "reference.npy", reference)
        for k, size in enumerate(sizes):
            np.save(workdir / f"window_{size}.npy", make(size, 1 + k, True))
        nan_share = np.isnan(reference).mean(axis=0)
        distinct = [np.unique(c[~np.isnan(c)]).size for c in reference.T]
        return {
            "columns with NaN": int((nan_share > 0).sum()),
            "columns with >= 10% NaN": int((nan_share >= 0.10).sum()),
            "max NaN share": float(nan_share.max()),
            "columns with <= 2 distinct values": int(sum(d <= 2 for d in distinct)),
            "median distinct values per column": float(np.median(distinct)),
        }
    reference = common.feature_frame(ref_rows, REFERENCE_STREAM)
    np.save(workdir / "reference.npy", reference.to_numpy(np.float64))
    nan_share = reference.isna().mean()
    for k, size in enumerate(sizes):
        window = common.feature_frame(size, 1 + k)
        window = common.drifted(window, drift, intensity, seed=1000 + k)
        np.save(workdir / f"window_{size}.npy", window[list(FEATURE_NAMES)].to_numpy(np.float64))
    return {
        "columns with NaN": int((nan_share > 0).sum()),
        "columns with >= 10% NaN": int((nan_share >= 0.10).sum()),
        "max NaN share": float(nan_share.max()),
        "columns with <= 2 distinct values": int((reference.nunique() <= 2).sum()),
        "median distinct values per column": float(reference.nunique().median()),
    }


def compare(workdir: Path, size: int, ours: str) -> dict:
    """Max |difference| of D and p between `ours` (saved arrays) and scipy, NaN-aware."""
    out = {}
    s_stat = np.load(workdir / f"scipy_{size}_stat.npy")
    s_p = np.load(workdir / f"scipy_{size}_p.npy")
    o_stat = np.load(workdir / f"{ours}_{size}_stat.npy")
    o_p = np.load(workdir / f"{ours}_{size}_p.npy")
    for label, a, b in (("D", o_stat, s_stat), ("p", o_p, s_p)):
        same_nan = np.array_equal(np.isnan(a), np.isnan(b))
        ok = ~np.isnan(a) & ~np.isnan(b)
        diff = np.abs(a[ok] - b[ok])
        out[f"max_abs_diff_{label}"] = float(diff.max()) if diff.size else 0.0
        # relative to scipy's value, where that value is a normal double
        normal = np.abs(b[ok]) >= np.finfo(np.float64).tiny
        rel = diff[normal] / np.abs(b[ok][normal])
        out[f"max_rel_diff_{label}"] = float(rel.max()) if rel.size else 0.0
        out[f"n_not_identical_{label}"] = int((diff != 0).sum()) + int(not same_nan)
        out[f"nan_pattern_equal_{label}"] = same_nan
    out["n_tested"] = int((~np.isnan(s_stat)).sum())
    return out


def _ratio(slow: float, fast: float) -> float:
    return slow / fast if fast > 0 else float("nan")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="window rows, comma-separated")
    parser.add_argument("--ref-rows", type=int, default=DEFAULT_REF_ROWS)
    parser.add_argument("--repeats", type=int, default=3, help="runs of ours and scipy (median)")
    parser.add_argument(
        "--evidently-sizes",
        default=None,
        help="window sizes to run Evidently on (default: all of --sizes; '' for none)",
    )
    parser.add_argument("--evidently-timeout", type=float, default=DEFAULT_EVIDENTLY_TIMEOUT)
    common.add_drift_arguments(parser, "the windows")
    parser.add_argument("--workers", type=int, default=None, help="threads of ours (default: 2)")
    parser.add_argument(
        "--shapes",
        default="generated",
        help=f"data shapes, comma-separated, measured in turn: {', '.join(SHAPES)}",
    )
    parser.add_argument("--out", default=None, help="write the markdown report here")
    parser.add_argument("--workdir", default=None, help="keep the data here (default: temp)")
    # worker mode (internal)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.workers is None:
        from credit_drift.stats.numeric import DEFAULT_WORKERS

        args.workers = DEFAULT_WORKERS
    if args.worker:
        run_as_worker(args)
        return

    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    ev_sizes = (
        sizes
        if args.evidently_sizes is None
        else [int(s) for s in args.evidently_sizes.split(",") if s.strip()]
    )
    shapes = [x.strip() for x in args.shapes.split(",") if x.strip()]
    unknown = sorted(set(shapes) - set(SHAPES))
    if unknown:
        raise SystemExit(f"unknown --shapes {unknown}; choose from {', '.join(SHAPES)}")
    info = common.machine_info(("evidently",))
    info["threads of ours (workers)"] = str(args.workers)
    root = Path(args.workdir or tempfile.mkdtemp(prefix="bench_drift_"))
    log = print
    log(f"data in {root}")
    reports = [f"Command: `{' '.join(['python', 'benchmarks/bench_drift.py', *sys.argv[1:]])}`"]
    reports += ["", "Machine:", common.markdown_kv(info), ""]
    summary = []
    for shape in shapes:
        workdir = root / shape
        workdir.mkdir(parents=True, exist_ok=True)
        log(f"== data shape {shape}")
        report, lines = measure_shape(args, shape, workdir, sizes, ev_sizes, log)
        reports += [f"### Data shape: {shape}", "", report, ""]
        summary += lines
    reports[5:5] = [
        "Summary (ours = `evaluate_window`, the whole `feature_drift` computation):",
        "",
    ]
    reports[7:7] = [*summary, ""]
    text = "\n".join(reports)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
        log(f"written to {args.out}")
    if not args.workdir:
        shutil.rmtree(root, ignore_errors=True)


def measure_shape(args, shape, workdir, sizes, ev_sizes, log):
    """Every method at every size on one data shape: (markdown report, summary lines)."""
    # In a child process, like every method: a child's peak RSS counts the parent's memory as
    # it was at fork time, so the parent never holds the data.
    prep = common.run_worker(
        SCRIPT,
        [
            "--worker",
            "prepare",
            "--workdir",
            str(workdir),
            "--sizes",
            ",".join(map(str, sizes)),
            "--ref-rows",
            str(args.ref_rows),
            "--drift",
            args.drift,
            "--drift-intensity",
            str(args.drift_intensity),
            "--shapes",
            shape,
        ],
        label="prepare",
    )
    if not prep.ok:
        raise SystemExit(f"data generation failed: {prep.error}")
    data_info = prep.result
    log(f"data generated in {prep.wall_seconds:.1f} s: {data_info}")

    def run(kind: str, size: int | None = None, timeout: float | None = None):
        cmd = ["--worker", kind, "--workdir", str(workdir), "--repeats", str(args.repeats)]
        cmd += ["--workers", str(args.workers)]
        if size is not None:
            cmd += ["--size", str(size)]
        label = f"{kind}@{size}" if size else kind
        r = common.run_worker(SCRIPT, cmd, label=label, timeout=timeout)
        status = "ok" if r.ok else r.error[:2000]
        walls = r.result.get("walls")
        log(
            f"  {label}: {status}; walls={walls}; peak {r.peak_rss_mb:.0f} MB; "
            f"load {common.load_average()}"
        )
        return r

    fit = run("fit")
    if not fit.ok:
        raise SystemExit(f"fit_reference failed: {fit.error}")
    rows = []
    loads = []
    for size in sizes:
        log(f"window {size:,} rows")
        loads.append(common.load_average())
        ours = run("ours", size)
        ks = run("ks_many", size)
        sp = run("scipy", size)
        floor = run("floor", size)
        paired = run("paired", size)
        run_ev = size in ev_sizes and shape == "generated"
        ev = run("evidently", size, args.evidently_timeout) if run_ev else None
        if ev is not None and ev.timed_out:
            marker = workdir / f"evidently_{size}_started"
            # Seconds `Report.run` itself had been running when the process was killed (the
            # timeout also covers `import evidently` and loading the inputs).
            ev.result["run_seconds_at_kill"] = (
                ev.ended_at - float(marker.read_text()) if marker.exists() else 0.0
            )
        checks = {}
        if sp.ok and ours.ok:
            checks["ours"] = compare(workdir, size, "ours")
        if sp.ok and ks.ok:
            checks["ks_many"] = compare(workdir, size, "ks")
        rows.append((size, ours, ks, sp, ev, checks, floor, paired))

    summary = []
    for size, ours, _, sp, _, checks, floor, paired in rows:
        t_ours, t_sp, t_fl = _med(ours), _med(sp), _med(floor)
        c = checks.get("ours", {})
        summary.append(
            f"- {shape}, {size:,} rows: ours {common.fmt_seconds(t_ours)} s, scipy loop "
            f"{common.fmt_seconds(t_sp)} s ({_ratio(t_sp, t_ours):.1f}x), sort floor "
            f"{common.fmt_seconds(t_fl)} s (ours / floor {_ratio(t_ours, t_fl):.1f}x; "
            f"{_paired_text(paired)}); p-values "
            f"max relative difference {c.get('max_rel_diff_p', float('nan')):.2g}, "
            f"{c.get('n_not_identical_p', 'n/a')} of {c.get('n_tested', 'n/a')} not bit-identical"
        )
    return render(args, shape, data_info, fit, rows, loads), summary


def _paired_ratio(run: common.WorkerRun | None) -> float:
    """Median over the paired runs of ours / the floor just before it."""
    if run is None or not run.ok:
        return float("nan")
    pairs = zip(run.result["walls"], run.result["floor_walls"], strict=True)
    return common.median([o / f for o, f in pairs])


def _paired_text(run: common.WorkerRun | None) -> str:
    if run is None or not run.ok:
        return "paired run failed"
    return (
        f"paired in one process {_paired_ratio(run):.2f}x, medians "
        f"{common.fmt_seconds(_med(run))} / "
        f"{common.fmt_seconds(common.median(run.result['floor_walls']))} s"
    )


def _med(run: common.WorkerRun | None) -> float:
    if run is None or not run.ok:
        return float("nan")
    return common.median(run.result["walls"])


def render(args, shape, data_info, fit, rows, loads) -> str:
    lines = []
    described = {
        "generated": "synthetic Home-Credit-like, `credit_drift.data.generator`; windows: unseen "
        f"rows of the same generator, drift `{args.drift}` intensity {args.drift_intensity}",
        "continuous": "continuous, all values distinct; windows shifted by 0 to 0.1 per column",
        "ties": "integer columns with 2 to 30 values; windows from the same distribution",
    }[shape]
    lines.append(
        f"Data: reference {args.ref_rows:,} rows x 419 features ({described}). Reference: "
        + ", ".join(
            f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in data_info.items()
        )
        + "."
    )
    lines.append("")
    fit_s = common.median(fit.result["walls"])
    lines.append(
        f"One-off `fit_reference` on the reference: {fit_s:.2f} s, "
        f"peak RSS {fit.peak_rss_mb:,.0f} MB."
    )
    lines.append("")

    header = [
        "window rows",
        "ours: evaluate_window (s)",
        "ks_2samp_many alone (s)",
        "scipy ks_2samp loop (s)",
        "Evidently DataDriftPreset (s)",
        "floor: sort the window's columns (s)",
        "scipy / ours",
        "ours / floor",
        "ours / floor, paired in one process",
        "Evidently / ours",
        "CPU s: ours / scipy",
    ]
    table = []
    for size, ours, ks, sp, ev, _, floor, paired in rows:
        t_ours, t_ks, t_sp, t_fl = _med(ours), _med(ks), _med(sp), _med(floor)
        if ev is None:
            ev_cell, ev_ratio = "not run", "n/a"
        elif ev.timed_out:
            killed_after = ev.result["run_seconds_at_kill"]
            ev_cell = f"> {killed_after:.0f} (killed)"
            ev_ratio = f"> {_ratio(killed_after, t_ours):,.0f}x"
        elif not ev.ok:
            ev_cell, ev_ratio = "failed", "n/a"
        else:
            t_ev = _med(ev)
            ev_cell, ev_ratio = common.fmt_seconds(t_ev), f"{_ratio(t_ev, t_ours):,.0f}x"
        cpu = common.median(ours.result["cpus"]) if ours.ok else float("nan")
        cpu_sp = common.median(sp.result["cpus"]) if sp.ok else float("nan")
        table.append(
            [
                f"{size:,}",
                common.fmt_seconds(t_ours),
                common.fmt_seconds(t_ks),
                common.fmt_seconds(t_sp),
                ev_cell,
                common.fmt_seconds(t_fl),
                f"{_ratio(t_sp, t_ours):.1f}x",
                f"{_ratio(t_ours, t_fl):.1f}x",
                f"{_paired_ratio(paired):.2f}x",
                ev_ratio,
                f"{common.fmt_seconds(cpu)} / {common.fmt_seconds(cpu_sp)}",
            ]
        )
    lines += [
        f"Seconds (median of {args.repeats} for ours, scipy and the floor, each in its own "
        f"process, 1 run of Evidently; paired: the floor and ours in turn {args.repeats} times "
        "in one process after one uncounted run of each, the median of the pairs' ratios):",
        "",
        common.markdown_table(header, table),
        "",
    ]

    mem_header = [
        "window rows",
        "ours: peak RSS / method's increase (MB)",
        "ks_2samp_many",
        "scipy loop",
        "Evidently",
    ]
    mem = []
    for size, ours, ks, sp, ev, *_ in rows:
        cells = []
        for r in (ours, ks, sp, ev):
            if r is None:
                cells.append("not run")
            elif r.timed_out:
                cells.append(f">= {common.fmt_mb(r.peak_rss_mb)} (when killed)")
            elif not r.ok:
                cells.append("failed")
            else:
                inc = r.peak_rss_mb - r.result["rss_before_mb"]
                cells.append(f"{common.fmt_mb(r.peak_rss_mb)} / +{common.fmt_mb(inc)}")
        mem.append([f"{size:,}", *cells])
    lines += [
        "Peak memory: each method in its own process; peak RSS of that process "
        "(`getrusage(RUSAGE_SELF).ru_maxrss`, or `/proc/PID/status` VmHWM sampled by the parent "
        "for a killed process) / increase over the peak just before the method ran (inputs "
        "loaded: reference and window as DataFrames, or the pickled profile and the window):",
        "",
        common.markdown_table(mem_header, mem),
        "",
    ]

    eq_header = [
        "window rows",
        "features tested",
        "evaluate_window vs scipy: max abs diff D / p",
        "max relative diff p",
        "not bit-identical D / p",
        "ks_2samp_many vs scipy: max abs diff D / p",
        "max relative diff p",
        "not bit-identical D / p",
    ]
    eq = []
    for size, _, _, _, _, checks, *_ in rows:
        cells = [
            f"{size:,}",
            str(checks.get("ours", checks.get("ks_many", {})).get("n_tested", "n/a")),
        ]
        for key in ("ours", "ks_many"):
            c = checks.get(key)
            if c is None:
                cells += ["n/a", "n/a", "n/a"]
            else:
                cells.append(f"{c['max_abs_diff_D']:.3g} / {c['max_abs_diff_p']:.3g}")
                cells.append(f"{c['max_rel_diff_p']:.3g}")
                cells.append(f"{c['n_not_identical_D']} / {c['n_not_identical_p']}")
        eq.append(cells)
    lines += ["Equality with scipy (every feature):", "", common.markdown_table(eq_header, eq), ""]

    verdict = []
    for size, ours, _, sp, ev, _, floor, paired in rows:
        t_ours, t_sp = _med(ours), _med(sp)
        r = _ratio(t_sp, t_ours)
        verdict.append(
            f"- {size:,} rows: vs scipy {r:.1f}x (target >= {TARGET_VS_SCIPY:.0f}x): "
            + ("met" if r >= TARGET_VS_SCIPY else "NOT MET")
        )
        if size == max(r_[0] for r_ in rows):
            f = _paired_ratio(paired)
            verdict[-1] += (
                f"; vs the sort floor {f:.2f}x paired in one process "
                f"({_ratio(t_ours, _med(floor)):.1f}x from the separate runs) "
                f"(target <= {TARGET_VS_FLOOR:.0f}x): "
                + ("met" if f <= TARGET_VS_FLOOR else "NOT MET")
            )
        if ev is not None:
            if ev.timed_out:
                killed_after = ev.result["run_seconds_at_kill"]
                lb = _ratio(killed_after, t_ours)
                verdict[-1] += (
                    f"; vs Evidently > {lb:,.0f}x (lower bound: Evidently's `run` killed after "
                    f"{killed_after:.0f} s, process timeout {args.evidently_timeout:.0f} s; "
                    f"target >= {TARGET_VS_EVIDENTLY:.0f}x): "
                    + ("met" if lb >= TARGET_VS_EVIDENTLY else "not shown")
                )
            elif ev.ok:
                re_ = _ratio(_med(ev), t_ours)
                verdict[-1] += (
                    f"; vs Evidently {re_:,.0f}x (target >= {TARGET_VS_EVIDENTLY:.0f}x): "
                    + ("met" if re_ >= TARGET_VS_EVIDENTLY else "NOT MET")
                )
            else:
                verdict[-1] += f"; Evidently failed: {ev.error[:300]}"
    lines += ["Targets:", *verdict, ""]

    notes = []
    for size, ours, _, sp, ev, *_ in rows:
        if ours.ok:
            o = ours.result
            notes.append(
                f"- {size:,} rows: ours status {o['status']}, {o['n_drifted']}/{o['n_analyzed']} "
                f"features drifted under the default policy ({o['n_p_below_005']} with raw KS "
                f"p < 0.05); scipy loop: {sp.result.get('n_p_below_005', 'n/a')} with p < 0.05"
                + (
                    f"; Evidently: {ev.result.get('drifted_columns')} drifted columns "
                    f"(share {ev.result.get('drift_share')}), `import evidently` "
                    f"{ev.result.get('import_seconds', float('nan')):.1f} s"
                    if ev is not None and ev.ok
                    else ""
                )
                + f". Individual runs, ours: {', '.join(f'{w:.3f}' for w in o['walls'])} s; "
                f"scipy: {', '.join(f'{w:.2f}' for w in sp.result.get('walls', []))} s."
            )
    lines += ["Detail:", *notes, ""]
    lines.append(
        "Load average (1/5/15 min) before each window size: "
        + "; ".join(f"{size:,}: {load}" for (size, *_), load in zip(rows, loads, strict=True))
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
