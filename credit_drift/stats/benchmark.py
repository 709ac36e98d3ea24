"""Timing of the drift statistics against a scipy `ks_2samp` loop (a report, not a test).

    python -m credit_drift.stats.benchmark [--ref-rows 50000] [--repeats 3] [--sizes 1000,10000]

On the 419-feature synthetic table (`synthetic.py`): for each window size, the median wall time
of `evaluate_window` (default policy: KS + BH + PSI + Wasserstein + NaN share), of
`ks_2samp_many` alone, and of a loop calling `scipy.stats.ks_2samp` per feature (reference
columns already NaN-free), plus a check that the KS results are identical.
"""

import argparse
import statistics
import time
import warnings

import numpy as np
import scipy.stats

from credit_drift.stats.ks import ks_2samp_many
from credit_drift.stats.policy import DriftPolicy, evaluate_window
from credit_drift.stats.reference import fit_reference
from credit_drift.stats.synthetic import mixed_frame, mixed_importance, mixed_schema


def _median_time(fn, repeats: int) -> tuple[float, float, object]:
    """Median wall time, median CPU time (all threads of the process), last result."""
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref-rows", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--shift", type=float, default=0.0, help="drift the windows (0 = clean)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)

    workers = args.workers
    reference = mixed_frame(args.ref_rows, seed=1)
    schema = mixed_schema()
    start = time.perf_counter()
    profile = fit_reference(reference, schema, mixed_importance())
    print(f"fit_reference on {args.ref_rows} x {len(schema)}: {time.perf_counter() - start:.2f}s")
    refs = [profile.numeric(n) for n in schema.names]
    ref_cols = [reference[n].to_numpy() for n in schema.names]
    ref_cols = [c[~np.isnan(c)] for c in ref_cols]

    print(
        "| window rows | evaluate_window | ks_2samp_many | scipy loop | speed-up eval / ks "
        "| CPU s: eval / ks / scipy |"
    )
    print("|---|---|---|---|---|---|")
    for size in (int(s) for s in args.sizes.split(",")):
        window = mixed_frame(size, seed=2, shift=args.shift)
        matrix = window[schema.names].to_numpy()
        columns = [window[n].to_numpy() for n in schema.names]

        def scipy_loop(columns=columns):
            out = []
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for ref, col in zip(ref_cols, columns, strict=True):
                    cur = col[~np.isnan(col)]
                    out.append(scipy.stats.ks_2samp(ref, cur) if cur.size and ref.size else None)
            return out

        t_eval, c_eval, drift = _median_time(
            lambda w=window: evaluate_window(profile, w, DriftPolicy.default(), workers=workers),
            args.repeats,
        )
        t_ks, c_ks, ks = _median_time(
            lambda m=matrix: ks_2samp_many(refs, m, workers=workers), args.repeats
        )
        t_scipy, c_scipy, expected = _median_time(scipy_loop, args.repeats)
        same = all(
            (e is None and np.isnan(s)) or (e is not None and e.statistic == s and e.pvalue == p)
            for e, s, p in zip(expected, ks.statistic, ks.pvalue, strict=True)
        )
        print(
            f"| {size:,} | {t_eval:.2f}s | {t_ks:.2f}s | {t_scipy:.2f}s | "
            f"{t_scipy / t_eval:.1f}x / {t_scipy / t_ks:.1f}x | "
            f"{c_eval:.2f} / {c_ks:.2f} / {c_scipy:.2f} |"
            + ("" if same else " KS MISMATCH")
            + f" status={drift.status} drifted={drift.n_drifted}"
        )


if __name__ == "__main__":
    main()
