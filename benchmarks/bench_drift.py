"""Side-by-side timing of the `feature_drift` computation against a scipy `ks_2samp` loop and
Evidently's `DataDriftPreset`, on identical inputs (issue 4).

    /work/venv/bin/python benchmarks/bench_drift.py \
        --sizes 1000,10000,100000 --repeats 3 --evidently-timeout 600 --out drift.md

Inputs: a 50,000-row reference and windows of each size, 419 float64 features, drawn from the
project's synthetic Home-Credit-like generator (`credit_drift.data.generator`; windows are unseen
rows of the same distribution unless `--drift` applies one of the simulator's drift kinds). The
same arrays are handed to every method:

* ours: `evaluate_window(profile, window, get_policy('default'))`, what the `feature_drift`
  asset computes (KS statistic and scipy-equal p-value, BH correction, KS effect floor, PSI,
  normed Wasserstein, NaN-share test), against a `ReferenceProfile` fitted once from the
  reference (the fit is a one-off, timed separately); also `ks_2samp_many` alone;
* scipy: `scipy.stats.ks_2samp(ref[~isnan(ref)], cur[~isnan(cur)])` looped over the 419
  features (the reference notebook's `compute_drift_report`), NaN removal inside the timing;
* Evidently: `Report([DataDriftPreset()]).run(current_data=window, reference_data=reference)`
  on all 419 columns, one run, killed after `--evidently-timeout` seconds (the ratio is then a
  lower bound).

Each method runs in its own process (peak memory = that process's peak RSS; see `common.py`).
Ours and scipy: median of `--repeats` runs. The KS statistic and p-value of ours are compared
with scipy's on every feature (max absolute difference, count of features not bit-identical),
so that the speed comparison is between identical results.
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
#: Targets of issue 4: ours vs the scipy loop and vs Evidently.
TARGET_VS_SCIPY = 5.0
TARGET_VS_EVIDENTLY = 100.0
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
        out = prepare_data(workdir, args.ref_rows, sizes, args.drift, args.drift_intensity)
    elif kind == "fit":
        out = worker_fit(workdir)
    elif kind == "ours":
        out = worker_ours(workdir, args.size, args.repeats, args.workers)
    elif kind == "ks_many":
        out = worker_ks_many(workdir, args.size, args.repeats, args.workers)
    elif kind == "scipy":
        out = worker_scipy(workdir, args.size, args.repeats)
    elif kind == "evidently":
        out = worker_evidently(workdir, args.size)
    else:
        raise SystemExit(f"unknown worker {kind!r}")
    common.write_result(args.result, out)


# == parent side =================================================================================
def prepare_data(workdir: Path, ref_rows: int, sizes: list[int], drift: str, intensity: float):
    from credit_drift.data.generator import FEATURE_NAMES

    (workdir / "names.json").write_text(json.dumps(list(FEATURE_NAMES)))
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
    info = common.machine_info(("evidently",))
    info["threads of ours (workers)"] = str(args.workers)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench_drift_"))
    workdir.mkdir(parents=True, exist_ok=True)
    log = print
    log(f"data in {workdir}")
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
        ev = run("evidently", size, args.evidently_timeout) if size in ev_sizes else None
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
        rows.append((size, ours, ks, sp, ev, checks))

    report = render(args, info, data_info, fit, rows, loads)
    print(report)
    if args.out:
        Path(args.out).write_text(report + "\n")
        log(f"written to {args.out}")
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)


def _med(run: common.WorkerRun | None) -> float:
    if run is None or not run.ok:
        return float("nan")
    return common.median(run.result["walls"])


def render(args, info, data_info, fit, rows, loads) -> str:
    lines = [f"Command: `{' '.join(['python', 'benchmarks/bench_drift.py', *sys.argv[1:]])}`", ""]
    lines += ["Machine:", common.markdown_kv(info), ""]
    lines.append(
        f"Data: reference {args.ref_rows:,} rows x 419 features (synthetic Home-Credit-like, "
        f"`credit_drift.data.generator`); windows: unseen rows of the same generator, drift "
        f"`{args.drift}` intensity {args.drift_intensity}. Reference: "
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
        "scipy / ours",
        "Evidently / ours",
        "CPU s: ours / scipy",
    ]
    table = []
    for size, ours, ks, sp, ev, _ in rows:
        t_ours, t_ks, t_sp = _med(ours), _med(ks), _med(sp)
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
                f"{_ratio(t_sp, t_ours):.1f}x",
                ev_ratio,
                f"{common.fmt_seconds(cpu)} / {common.fmt_seconds(cpu_sp)}",
            ]
        )
    lines += [
        f"Seconds (median of {args.repeats} for ours and scipy, 1 run of Evidently):",
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
    for size, ours, ks, sp, ev, _ in rows:
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
        "not bit-identical D / p",
        "ks_2samp_many vs scipy: max abs diff D / p",
        "not bit-identical D / p",
    ]
    eq = []
    for size, _, _, _, _, checks in rows:
        cells = [
            f"{size:,}",
            str(checks.get("ours", checks.get("ks_many", {})).get("n_tested", "n/a")),
        ]
        for key in ("ours", "ks_many"):
            c = checks.get(key)
            if c is None:
                cells += ["n/a", "n/a"]
            else:
                cells.append(f"{c['max_abs_diff_D']:.3g} / {c['max_abs_diff_p']:.3g}")
                cells.append(f"{c['n_not_identical_D']} / {c['n_not_identical_p']}")
        eq.append(cells)
    lines += ["Equality with scipy (every feature):", "", common.markdown_table(eq_header, eq), ""]

    verdict = []
    for size, ours, _, sp, ev, _ in rows:
        t_ours, t_sp = _med(ours), _med(sp)
        r = _ratio(t_sp, t_ours)
        verdict.append(
            f"- {size:,} rows: vs scipy {r:.1f}x (target >= {TARGET_VS_SCIPY:.0f}x): "
            + ("met" if r >= TARGET_VS_SCIPY else "NOT MET")
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
    for size, ours, _, sp, ev, _ in rows:
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
