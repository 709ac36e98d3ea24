"""Realized performance under the two shipped outcome scenarios (issue 15): covariate drift
(`covariate_drift`: the features move, the risk rule does not) against concept drift
(`concept_drift`: clean features, a downturn added to every applicant's log-odds).

Generates the synthetic data, trains the default model, replays each scenario into its own
SQLite database with simulated outcomes (batch i on `today - 40 + i`, so every outcome has
matured with the scenarios' 14-day delay), and prints one markdown row per day: the drift
report's status is not part of it (see the demo); what is measured is what the outcomes say.

    python benchmarks/bench_realized.py [--train-rows 20000] [--batch-size 2000] [--seed 42]
"""

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-rows", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)

    from credit_drift.data.generator import ID_COLUMN, write_datasets
    from credit_drift.data.loader import load_pool, load_pool_ids, load_training_data
    from credit_drift.model.train import TrainConfig, train_model
    from credit_drift.pipeline.performance import band_edges, performance_of_cohort
    from credit_drift.simulator.replay import replay
    from credit_drift.simulator.scenario import load_scenario
    from credit_drift.stats.reference import NumericReference
    from credit_drift.storage.db import make_engine, upgrade
    from credit_drift.storage.outcomes import read_cohort
    from credit_drift.storage.windows import DayWindow

    t0 = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="bench_realized_"))
    paths = write_datasets(root / "data", n_rows=args.train_rows, pool_rows=50_000, seed=args.seed)
    data = load_training_data(paths.train, "TARGET", ID_COLUMN)
    artifacts = train_model(data, seed=args.seed, config=TrainConfig(n_jobs=1))
    pool = load_pool(paths.pool, artifacts.schema)
    ids = load_pool_ids(paths.pool, ID_COLUMN)
    # The development sample's score deciles, as the pipeline takes them from the profile.
    edges = band_edges(NumericReference.from_values(artifacts.predict_proba(data.X)))
    m = artifacts.metrics
    print(
        f"model: validation AUC {m['auc']:.3f}, cost per application "
        f"{m['cost_per_application']:.3f} (cost_fn {m['cost_fn']:g}, cost_fp {m['cost_fp']:g}), "
        f"threshold {artifacts.threshold:.3f}; set-up {time.perf_counter() - t0:.0f} s",
        file=sys.stderr,
    )
    start = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=40)
    as_of = dt.datetime.now(dt.UTC)
    print(
        "| scenario | day | batch | n | observed default rate | mean PD | binomial p | AUC "
        "| Brier | cost / application | bands outside interval |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in ("covariate_drift", "concept_drift"):
        scenario = load_scenario(name)
        url = f"sqlite:///{root / name}.db"
        upgrade(url)
        replay(
            database_url=url,
            artifacts=artifacts,
            pool=pool,
            scenario=scenario,
            batch_size=args.batch_size,
            start_date=start.isoformat(),
            seed=args.seed,
            progress=False,
            application_ids=ids,
            outcomes=True,
        )
        engine = make_engine(url)
        for i, spec in enumerate(scenario.batches):
            day = DayWindow(start + dt.timedelta(days=i))
            cohort = read_cohort(engine, day, as_of=as_of)
            _, _, p = performance_of_cohort(
                cohort, day, as_of=as_of, horizon_days=30, edges=edges, model_metrics=m
            )
            print(
                f"| {name} | {i + 1} | {spec.name} | {p.n_labeled:,} | "
                f"{p.observed_default_rate:.3f} | {p.mean_pd:.3f} | {p.binomial_p_value:.2g} | "
                f"{p.auc:.3f} | {p.brier:.4f} | {p.cost_per_application:.3f} | "
                f"{p.n_bands_miscalibrated}/{len(p.calibration)} |"
            )
        engine.dispose()
    print(f"total {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
