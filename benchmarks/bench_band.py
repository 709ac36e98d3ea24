"""How often a clean day leaves the label-free estimate's band (a false WARNING), at the demo's
size, over several seeds.

    flock /tmp/credit-drift-heavy.lock .venv/bin/python benchmarks/bench_band.py
    .venv/bin/python benchmarks/bench_band.py --seeds 1 --days 5     # smoke run

Per seed: `write_datasets(train_rows, pool_rows, seed)` and `train_model` exactly as the demo
(`credit-drift demo`: 20,000 training rows, the trainer's default trees), so the hold-out is the
demo's (20% of the training rows: 4,000). Then the unseen pool is shuffled and cut into `--days`
disjoint clean days of `--day-size` applications, scored by the model, and each day goes
through `pipeline.estimated.estimate_logged` (the asset's and `credit-drift status`'s code):
its status (OK / WARNING / ALERT) and which metrics left their band. No drift and no concept
shift: every WARNING is a false one. Prints one line per seed and the total.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (benchmarks/ is not a package)

from credit_drift.data.generator import write_datasets  # noqa: E402
from credit_drift.data.loader import load_pool, load_training_data  # noqa: E402
from credit_drift.model.train import TrainConfig, train_model  # noqa: E402
from credit_drift.pipeline.config import PipelineConfig  # noqa: E402
from credit_drift.pipeline.estimated import cbpe_reference, estimate_logged  # noqa: E402
from credit_drift.stats.cbpe import BAND_METRICS  # noqa: E402


def clean_days(artifacts, pool: pd.DataFrame, day_size: int, days: int, seed: int):
    """`days` disjoint days of `day_size` clean applications from the pool, as logged."""
    order = np.random.default_rng([seed, 99]).permutation(len(pool))
    if days * day_size > len(pool):
        raise SystemExit(f"{days} days of {day_size} need {days * day_size} pool rows")
    for d in range(days):
        rows = pool.iloc[order[d * day_size : (d + 1) * day_size]]
        p = artifacts.predict_proba(rows)
        yield pd.DataFrame(
            {
                "probability": p,
                "decision": np.where(p >= artifacts.threshold, "REFUSED", "APPROVED"),
                "threshold": artifacts.threshold,
                "model_version": artifacts.version,
            }
        )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="models (seeds 1..N)")
    parser.add_argument("--train-rows", type=int, default=20_000)
    parser.add_argument("--pool-rows", type=int, default=20_000)
    parser.add_argument("--trees", type=int, help="default: the trainer's (the demo's)")
    parser.add_argument("--day-size", type=int, default=1_000)
    parser.add_argument("--days", type=int, default=20, help="clean days per seed")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    print(f"load average at start: {common.load_average()}")
    config = SimpleNamespace(min_estimated_auc=PipelineConfig.min_estimated_auc)
    work = Path(tempfile.mkdtemp(prefix="bench_band_"))
    total = {"days": 0, "WARNING": 0, "ALERT": 0, **dict.fromkeys(BAND_METRICS, 0)}
    for seed in range(1, args.seeds + 1):
        paths = write_datasets(work / str(seed), args.train_rows, args.pool_rows, seed=seed)
        data = load_training_data(paths.train, "TARGET", "SK_ID_CURR")
        train = TrainConfig() if args.trees is None else TrainConfig(n_estimators=args.trees)
        artifacts = train_model(data, seed=seed, config=train)
        pool = load_pool(paths.pool, artifacts.schema)
        reference = cbpe_reference(artifacts)
        statuses, outside = [], dict.fromkeys(BAND_METRICS, 0)
        for k, logged in enumerate(clean_days(artifacts, pool, args.day_size, args.days, seed)):
            e = estimate_logged(artifacts, reference, logged, f"day-{k}", config, plot=False)
            statuses.append(e.status)
            for name in e.outside_band:
                outside[name] += 1
        n_warn, n_alert = statuses.count("WARNING"), statuses.count("ALERT")
        print(
            f"seed {seed}: hold-out {len(artifacts.holdout.probability)} rows, "
            f"{len(statuses)} clean days of {args.day_size}: {n_warn} WARNING, {n_alert} ALERT; "
            "outside the band: " + ", ".join(f"{m} {outside[m]}" for m in BAND_METRICS),
            flush=True,
        )
        total["days"] += len(statuses)
        total["WARNING"] += n_warn
        total["ALERT"] += n_alert
        for m in BAND_METRICS:
            total[m] += outside[m]
    print(
        f"total: {total['WARNING']} WARNING and {total['ALERT']} ALERT of {total['days']} clean "
        "days; outside the band: " + ", ".join(f"{m} {total[m]}" for m in BAND_METRICS)
    )
    print(f"load average at end: {common.load_average()}; {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
