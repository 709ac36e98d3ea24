"""Outcomes at the size of a busy day: recording them (first load, a resend, a correction) and
reading a day's cohort with its outcomes (`storage.outcomes.read_cohort`), against reading the
same day's predictions with their features (`read_predictions`), on SQLite and PostgreSQL.

    python benchmarks/bench_outcomes.py --rows 100000

Per database (a SQLite file in a temporary folder; a throw-away PostgreSQL schema `bench_<random>`,
dropped at the end): migrate, bulk-insert `--rows` predictions x 419 features into one day with
an application id each, then time `record_outcomes` of one outcome per id (all new), the same
outcomes again (all unchanged), and a file where a tenth of them changed (updates), then
`read_cohort(day)` and `read_predictions(day)` (median of `--repeats`). Checks: every count of
the write summaries, and the cohort's labeled share and default rate against what was sent.
"""

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (benchmarks/ is not a package)

DEFAULT_PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
DAY = dt.date(2026, 11, 2)
OBSERVED = dt.datetime(2027, 3, 1, tzinfo=dt.UTC)


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def run_one(url: str, matrix: np.ndarray, names: list[str], repeats: int) -> dict:
    from credit_drift.features import FeatureSchema
    from credit_drift.storage.db import make_engine, upgrade
    from credit_drift.storage.outcomes import OutcomeRow, read_cohort, record_outcomes
    from credit_drift.storage.predictions import bulk_insert_predictions, read_predictions
    from credit_drift.storage.windows import DayWindow

    n = matrix.shape[0]
    schema = FeatureSchema.numeric(names)
    window = DayWindow(DAY)
    rng = np.random.default_rng(11)
    probability = rng.random(n) * 0.3
    created = np.datetime64(window.start.replace(tzinfo=None), "us") + (
        np.sort(rng.choice(86_400_000_000, size=n, replace=False)).astype("timedelta64[us]")
    )
    ids = [str(100_000 + i) for i in range(n)]
    upgrade(url)
    engine = make_engine(url)
    out: dict = {}
    out["write_predictions_s"], _ = _timed(
        lambda: bulk_insert_predictions(
            engine,
            schema,
            created_at=created,
            matrix=matrix,
            probability=probability,
            decision=np.where(probability >= 0.2, "REFUSED", "APPROVED"),
            threshold=0.2,
            model_version="bench",
            application_ids=ids,
        )
    )
    y = (rng.random(n) < probability).astype(int)
    rows = [OutcomeRow(a, int(v), OBSERVED, "file") for a, v in zip(ids, y, strict=True)]
    out["first_load_s"], first = _timed(lambda: record_outcomes(engine, rows))
    out["resend_s"], again = _timed(lambda: record_outcomes(engine, rows))
    changed = rows.copy()
    for i in range(0, n, 10):
        changed[i] = OutcomeRow(ids[i], 1 - int(y[i]), OBSERVED, "file")
        y[i] = 1 - y[i]
    out["correction_s"], corrected = _timed(lambda: record_outcomes(engine, changed))
    assert (first.inserted, first.unknown_ids) == (n, 0), first
    assert (again.inserted, again.unchanged, again.updated) == (0, n, 0), again
    assert (corrected.updated, corrected.unchanged) == (
        len(range(0, n, 10)),
        n - len(range(0, n, 10)),
    )

    cohort_times, read_times = [], []
    for _ in range(repeats):
        t, cohort = _timed(lambda: read_cohort(engine, DAY))
        cohort_times.append(t)
        t, logged = _timed(lambda: read_predictions(engine, schema, window.start, window.end))
        read_times.append(t)
    assert len(cohort) == n == len(logged)
    assert cohort["outcome"].notna().all()
    by_id = dict(zip(ids, y, strict=True))
    expected = np.array([by_id[a] for a in cohort["application_id"]], dtype=float)
    assert np.array_equal(cohort["outcome"].to_numpy(), expected)
    out.update(
        read_cohort_s=statistics.median(cohort_times),
        read_predictions_s=statistics.median(read_times),
        cohort_default_rate=float(cohort["outcome"].mean()),
        sent_default_rate=float(y.mean()),
        load=common.load_average(),
    )
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--postgres-url", default=DEFAULT_PG_URL)
    args = parser.parse_args(argv)

    import sqlalchemy as sa

    from credit_drift.data.generator import FEATURE_NAMES
    from credit_drift.storage.db import dispose_engines

    info = common.machine_info(["SQLAlchemy", "psycopg2-binary"])
    matrix = common.feature_frame(args.rows, 7).to_numpy(np.float64)
    names = list(FEATURE_NAMES)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["SQLite"] = run_one(f"sqlite:///{tmp}/bench.db", matrix, names, args.repeats)
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(args.postgres_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        sep = "&" if "?" in args.postgres_url else "?"
        url = f"{args.postgres_url}{sep}options=-csearch_path%3D{schema}"
        results["PostgreSQL"] = run_one(url, matrix, names, args.repeats)
    finally:
        dispose_engines()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    print(common.markdown_kv(info))
    print()
    header = [
        "database",
        f"write {args.rows:,} predictions (s)",
        "record outcomes: first (s)",
        "resend (s)",
        "10% corrected (s)",
        f"read_cohort (s, median of {args.repeats})",
        "read_predictions (s)",
        "load after",
    ]
    table = [
        [
            name,
            f"{r['write_predictions_s']:.2f}",
            f"{r['first_load_s']:.2f}",
            f"{r['resend_s']:.2f}",
            f"{r['correction_s']:.2f}",
            f"{r['read_cohort_s']:.2f}",
            f"{r['read_predictions_s']:.2f}",
            r["load"],
        ]
        for name, r in results.items()
    ]
    print(common.markdown_table(header, table))
    print()
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
