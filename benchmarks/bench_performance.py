"""Accuracy of the label-free performance estimate (stats/cbpe.py) against realized outcomes,
on simulated cohorts, and side by side with NannyML's CBPE when it is installed.

    flock /tmp/credit-drift-heavy.lock .venv/bin/python benchmarks/bench_performance.py
    .venv/bin/python benchmarks/bench_performance.py --quick      # smoke run, writes nothing

Setup (seeded by --seed):
* model: `write_datasets(n_rows, pool_rows, seed)` then `train_model` (fewer trees than the
  shipped default, for time) - the hold-out it keeps (`holdout.json`) is what the pipeline
  calibrates on, and the estimator is `fit_cbpe` on it, exactly as `estimated_performance`.
* cohorts: `--days` days of `--day-size` unseen applications per scenario, drawn from the pool
  without replacement within a day; the simulator's drift (`apply_drift`) applied to the
  features; the model scores the drifted features; each application's outcome is drawn from
  the generator's own risk model on the drifted features (`_risk_logit`, the function TARGET is
  drawn from), plus the scenario's concept shift added to the log-odds.
* scenarios: (a) clean; (b) covariate shift: the simulator's `gradual` (inflation + ageing,
  0.3) and `sudden` (a new customer segment, 0.7); (c) concept drift: +0.5 on the log-odds of
  default (a downturn), no feature drift at all.
* realized metrics: AUC (`roc_auc_score` of the outcomes on the raw scores), default rate, cost
  per application at the model's threshold. Error = estimate - realized per day; MAE over days.
  The "label noise" column is the MAE of the realized metric around its own expectation under
  the TRUE probabilities (the same estimator fed the generator's probabilities instead of the
  calibrated model's): what no label-free estimate can beat at this day size.
* early warning: `--ramp-runs` seeded ramps of the sudden drift, intensity 0, 0.1, ... 1.0 on
  days 0-10; the first day the estimate leaves its band (the asset's: `CbpeReference.bands`,
  mean +/- 3 std of day-sized bootstrap samples of the hold-out) against the first day the
  REALIZED metric leaves a band of the hold-out's realized values, mean +/- 3 std of its
  consecutive day-sized chunks (the asset's band until 2026-12-03; not yet a bootstrap).
* NannyML: `nannyml.CBPE(metrics=["roc_auc"], chunk_size=day_size)` fitted on the same hold-out
  (raw probability, decision, outcome) and run on the same cohorts, in the separate environment
  `--nannyml-python` (default /work/wt/nannyml-venv/bin/python), through
  benchmarks/nannyml_cbpe.py; skipped with the reason when it cannot run.

The markdown goes between `<!-- performance:start -->` and `<!-- performance:end -->` of
benchmarks/README.md (`--quick` prints it and writes nothing).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (benchmarks/ is not a package)
from bench_detection import write_section  # noqa: E402

from credit_drift.data.generator import _risk_logit, write_datasets  # noqa: E402
from credit_drift.data.loader import load_pool, load_training_data  # noqa: E402
from credit_drift.model.train import TrainConfig, train_model  # noqa: E402
from credit_drift.simulator.drift import apply_drift  # noqa: E402
from credit_drift.stats.cbpe import BAND_STD, estimate_performance, fit_cbpe  # noqa: E402

START, END = "<!-- performance:start -->", "<!-- performance:end -->"
SCENARIOS = {
    "(a) clean": ("clean", 0.0, 0.0),
    "(b) covariate: gradual 0.3": ("gradual", 0.3, 0.0),
    "(b) covariate: sudden 0.7": ("sudden", 0.7, 0.0),
    "(c) concept: +0.5 log-odds": ("clean", 0.0, 0.5),
}
METRICS = ("auc", "default_rate", "cost_per_application")
RAMP = tuple(round(0.1 * i, 1) for i in range(11))


def realized(y, scores, refused, cost_fn, cost_fp) -> dict[str, float]:
    fn = int((y & ~refused).sum())
    fp = int((~y & refused).sum())
    return {
        "auc": float(roc_auc_score(y, scores)) if 0 < y.sum() < len(y) else float("nan"),
        "default_rate": float(y.mean()),
        "cost_per_application": (cost_fn * fn + cost_fp * fp) / len(y),
    }


def cohort(pool, kind, intensity, shift, size, rng, model, threshold):
    rows = pool.iloc[rng.choice(len(pool), size, replace=False)].reset_index(drop=True)
    if kind != "clean":
        rows = apply_drift(rows, kind, intensity, rng)
    scores = model.predict_proba(rows)
    truth = 1.0 / (1.0 + np.exp(-(_risk_logit(rows) + shift)))
    y = rng.random(size) < truth
    return scores, scores >= threshold, truth, y


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--train-rows", type=int, default=30_000)
    parser.add_argument("--pool-rows", type=int, default=30_000)
    parser.add_argument("--trees", type=int, default=200)
    parser.add_argument("--day-size", type=int, default=1_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--ramp-runs", type=int, default=20)
    parser.add_argument("--nannyml-python", default="/work/wt/nannyml-venv/bin/python")
    parser.add_argument(
        "--out", default=None, help="README to write (default benchmarks/README.md)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.train_rows, args.pool_rows, args.trees = 8_000, 6_000, 40
        args.day_size, args.days, args.ramp_runs = 300, 5, 3
    started = time.perf_counter()
    info = common.machine_info()
    work = Path(tempfile.mkdtemp(prefix="bench_performance_"))

    paths = write_datasets(work / "data", args.train_rows, args.pool_rows, seed=args.seed)
    data = load_training_data(paths.train, "TARGET", "SK_ID_CURR")
    model = train_model(data, seed=args.seed, config=TrainConfig(n_estimators=args.trees, n_jobs=1))
    pool = load_pool(paths.pool, model.schema)
    cost_fn, cost_fp = model.metrics["cost_fn"], model.metrics["cost_fp"]
    threshold = model.threshold
    ref = fit_cbpe(model.holdout.probability, model.holdout.outcome)
    check = ref.check
    print(f"model trained in {time.perf_counter() - started:.0f} s; hold-out {check.n} rows")

    # -- accuracy per scenario ----------------------------------------------------------------
    rng = np.random.default_rng([args.seed, 1])
    records, cohorts = [], []
    for name, (kind, intensity, shift) in SCENARIOS.items():
        for day in range(args.days):
            scores, refused, truth, y = cohort(
                pool, kind, intensity, shift, args.day_size, rng, model, threshold
            )
            est = ref.estimate(scores, refused, cost_fn=cost_fn, cost_fp=cost_fp)
            oracle = estimate_performance(scores, truth, refused, cost_fn=cost_fn, cost_fp=cost_fp)
            real = realized(y, scores, refused, cost_fn, cost_fp)
            for m in METRICS:
                records.append(
                    {
                        "scenario": name,
                        "day": day,
                        "metric": m,
                        "estimate": est.metric(m),
                        "oracle": oracle.metric(m),
                        "realized": real[m],
                    }
                )
            cohorts.append(
                pd.DataFrame(
                    {
                        "scenario": name,
                        "day": day,
                        "p": scores,
                        "y_pred": refused.astype(int),
                        "y": y.astype(int),
                    }
                )
            )
    frame = pd.DataFrame(records)
    frame["error"] = frame["estimate"] - frame["realized"]
    frame["noise"] = frame["oracle"] - frame["realized"]

    # -- NannyML on the same cohorts ------------------------------------------------------------
    nannyml_note, nml_auc = run_nannyml(args, model, pd.concat(cohorts, ignore_index=True), work)
    if nml_auc is not None:
        auc = frame[frame["metric"] == "auc"].copy()
        auc["nannyml"] = nml_auc
        nml_mae = auc.assign(e=(auc["nannyml"] - auc["realized"]).abs()).groupby("scenario")["e"]
        nml_mae = nml_mae.mean()
        ours_vs_nml = auc.assign(d=(auc["nannyml"] - auc["estimate"]).abs())
        max_gap = float(ours_vs_nml["d"].max())
    rows = []
    for name in SCENARIOS:
        s = frame[frame["scenario"] == name]
        row = [name]
        for m in ("auc", "default_rate"):
            t = s[s["metric"] == m]
            scale = 100 if m == "default_rate" else 1
            fmt = "{:.2f} pt" if m == "default_rate" else "{:.4f}"
            row += [
                fmt.format(scale * t["realized"].mean()),
                fmt.format(scale * t["estimate"].mean()),
                fmt.format(scale * t["error"].abs().mean()),
                fmt.format(scale * t["noise"].abs().mean()),
            ]
        if nml_auc is not None:
            row.append(f"{nml_mae[name]:.4f}")
        rows.append(row)
    header = ["scenario"]
    for label in ("AUC", "default rate"):
        header += [f"realized {label}", f"estimated {label}", "MAE", "label noise"]
    if nml_auc is not None:
        header.append("NannyML AUC MAE")
    accuracy = common.markdown_table(header, rows)
    cost_rows = []
    for name in SCENARIOS:
        t = frame[(frame["scenario"] == name) & (frame["metric"] == "cost_per_application")]
        cost_rows.append(
            [
                name,
                f"{t['realized'].mean():.4f}",
                f"{t['estimate'].mean():.4f}",
                f"{t['error'].abs().mean():.4f}",
                f"{t['noise'].abs().mean():.4f}",
            ]
        )
    cost_table = common.markdown_table(
        ["scenario", "realized cost / application", "estimated", "MAE", "label noise"], cost_rows
    )

    # -- early warning on a ramp ----------------------------------------------------------------
    ramp_rows = early_warning(args, pool, model, ref, threshold, cost_fn, cost_fp)

    elapsed = time.perf_counter() - started
    parts = [
        "### Label-free performance estimate vs realized outcomes (`bench_performance.py`)",
        "",
        f"Command: `flock /tmp/credit-drift-heavy.lock .venv/bin/python "
        f"benchmarks/bench_performance.py{' --quick' if args.quick else ''}` "
        f"({elapsed:.0f} s; load average at the end {common.load_average()}).",
        "",
        common.markdown_kv(info),
        "",
        f"Model: {args.train_rows:,} generated rows, {args.trees} trees, hold-out "
        f"{check.n:,} rows (AUC {model.metrics['auc']:.4f}, threshold {threshold:.4f}). "
        f"Calibration on the hold-out: observed default rate {check.observed_rate:.4f}, mean "
        f"raw PD {check.mean_raw:.4f} (balanced class weights), ECE raw {check.raw_ece:.4f}, "
        f"ECE isotonic (cross-fitted) {check.calibrated_ece:.4f}: the raw model is "
        f"{'already' if check.raw_is_calibrated else 'NOT'} calibrated.",
        "",
        f"{args.days} days of {args.day_size:,} applications per scenario. MAE: mean absolute "
        "error of the estimate against the realized value; label noise: the same for an "
        "estimate given the generator's TRUE probabilities (the floor at this day size).",
        "",
        accuracy,
        "",
        f"Business cost per application at the threshold (cost_fn {cost_fn:g}, cost_fp "
        f"{cost_fp:g}):",
        "",
        cost_table,
        "",
        nannyml_note
        if nml_auc is None
        else f"{nannyml_note} Largest per-day gap between NannyML's and our estimated AUC: "
        f"{max_gap:.1e}.",
        "",
        f"Early warning: {args.ramp_runs} seeded ramps of the sudden drift (intensity 0 to 1.0 "
        f"by 0.1 a day, {args.day_size:,} applications a day); first day outside the band "
        f"(mean +/- {BAND_STD:g} std: the estimate's of day-sized bootstrap samples of the "
        "hold-out, the realized values' of its consecutive chunks), estimate vs realized. "
        "'never' = not within the 11 days.",
        "",
        common.markdown_table(
            [
                "metric",
                "estimate first outside (median day, range)",
                "realized first outside (median day, range)",
                "runs where the estimate warned earlier / same day / later",
            ],
            ramp_rows,
        ),
    ]
    markdown = "\n".join(parts)
    print(markdown)
    if not args.quick or args.out:
        out = Path(args.out) if args.out else Path(__file__).resolve().parent / "README.md"
        write_section(out, markdown, START, END)
        print(f"written to {out}")


def early_warning(args, pool, model, ref, threshold, cost_fn, cost_fp):
    holdout_scores = model.holdout.probability
    y_hold = model.holdout.outcome.astype(bool)
    bands = ref.bands(args.day_size, threshold=threshold, cost_fn=cost_fn, cost_fp=cost_fp)
    n_chunks = len(holdout_scores) // args.day_size
    real_chunks = []
    for k in range(n_chunks):
        sl = slice(k * args.day_size, (k + 1) * args.day_size)
        s = holdout_scores[sl]
        real_chunks.append(realized(y_hold[sl], s, s >= threshold, cost_fn, cost_fp))
    real_bands = {}
    for m in ("auc", "default_rate"):
        v = np.array([c[m] for c in real_chunks])
        real_bands[m] = (v.mean() - BAND_STD * v.std(ddof=1), v.mean() + BAND_STD * v.std(ddof=1))
    first = {m: ([], []) for m in ("auc", "default_rate")}
    for run in range(args.ramp_runs):
        rng = np.random.default_rng([args.seed, 2, run])
        est_day = {m: None for m in first}
        real_day = {m: None for m in first}
        for day, intensity in enumerate(RAMP):
            scores, refused, _, y = cohort(
                pool, "sudden", intensity, 0.0, args.day_size, rng, model, threshold
            )
            est = ref.estimate(scores, refused, cost_fn=cost_fn, cost_fp=cost_fp)
            real = realized(y, scores, refused, cost_fn, cost_fp)
            for m in first:
                if est_day[m] is None and not bands[m].contains(est.metric(m)):
                    est_day[m] = day
                lo, hi = real_bands[m]
                if real_day[m] is None and not lo <= real[m] <= hi:
                    real_day[m] = day
        for m in first:
            first[m][0].append(est_day[m])
            first[m][1].append(real_day[m])
    rows = []
    for m, (est_days, real_days) in first.items():

        def summary(days):
            seen = [d for d in days if d is not None]
            never = len(days) - len(seen)
            if not seen:
                return f"never ({never} runs)"
            text = f"{np.median(seen):g} ({min(seen)}-{max(seen)})"
            return text + (f", never in {never}" if never else "")

        big = len(RAMP)
        e = np.array([big if d is None else d for d in est_days])
        r = np.array([big if d is None else d for d in real_days])
        rows.append(
            [
                m,
                summary(est_days),
                summary(real_days),
                f"{int((e < r).sum())} / {int((e == r).sum())} / {int((e > r).sum())}",
            ]
        )
    return rows


def run_nannyml(args, model, cohorts: pd.DataFrame, work: Path):
    """(note, NannyML's estimated AUC per (scenario, day) in `cohorts` order) or (reason, None)."""
    python = Path(args.nannyml_python)
    if not python.exists():
        return f"NannyML not run: no interpreter at {python}.", None
    reference = pd.DataFrame(
        {
            "p": model.holdout.probability,
            "y_pred": (model.holdout.probability >= model.threshold).astype(int),
            "y": model.holdout.outcome.astype(int),
        }
    )
    reference.to_csv(work / "reference.csv", index=False)
    cohorts.to_csv(work / "analysis.csv", index=False)
    script = Path(__file__).resolve().parent / "nannyml_cbpe.py"
    env = {**os.environ, "NML_DISABLE_USAGE_LOGGING": "1"}
    proc = subprocess.run(
        [str(python), str(script), str(work), str(args.day_size)],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    if proc.returncode != 0:
        return f"NannyML failed: {proc.stderr.strip().splitlines()[-1:]}", None
    out = json.loads((work / "nannyml.json").read_text())
    version = out["version"]
    auc = np.asarray(out["roc_auc"], dtype=float)
    n_days = cohorts.groupby(["scenario", "day"], sort=False).ngroups
    if len(auc) != n_days:
        return f"NannyML gave {len(auc)} chunks for {n_days} days: not compared.", None
    note = (
        f"NannyML {version} `CBPE(problem_type='classification_binary', metrics=['roc_auc'], "
        f"chunk_size={args.day_size})` fitted on the same hold-out (its own isotonic "
        "calibration), on the same cohorts."
    )
    return note, auc


if __name__ == "__main__":
    main()
