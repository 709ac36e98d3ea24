"""The capacity benchmark's harness (benchmarks/bench_capacity.py) at a tiny size: one day of
2,000 predictions on a fresh PostgreSQL database, every daily asset materialized, and its check
that feature_drift's KS figures equal scipy's; plus that check failing on a wrong figure, and the
one-worker stack kept to the benchmark."""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from credit_drift_tests.conftest import postgres_base_url

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_capacity.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_capacity", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _results(reference: pd.DataFrame, window: pd.DataFrame) -> pd.DataFrame:
    from scipy import stats

    rows = []
    for name in reference.columns:
        r, c = reference[name].dropna(), window[name].dropna()
        ks = stats.ks_2samp(r, c)
        rows.append(
            {"feature": name, "kind": "numeric", "statistic": ks.statistic, "p_value": ks.pvalue}
        )
    return pd.DataFrame(rows)


def test_ks_exactness_passes_on_scipy_figures_and_fails_on_a_wrong_one():
    bench = _bench()
    rng = np.random.default_rng(3)
    reference = pd.DataFrame(rng.normal(size=(500, 6)), columns=[f"f{i}" for i in range(6)])
    window = pd.DataFrame(rng.normal(0.1, size=(300, 6)), columns=reference.columns)
    window.iloc[:40, 2] = np.nan
    results = _results(reference, window)
    out = bench.ks_exactness(results, reference, window, n_features=6)
    assert out["n_checked"] == 6 and out["n_bit_identical"] == 6
    wrong = results.copy()
    wrong.loc[4, "p_value"] *= 1 + 1e-9
    with pytest.raises(bench.ExactnessError, match="f4"):
        bench.ks_exactness(wrong, reference, window, n_features=6)
    wrong = results.copy()
    wrong.loc[2, "statistic"] += 1e-9  # the feature with missing values
    with pytest.raises(bench.ExactnessError, match="f2"):
        bench.ks_exactness(wrong, reference, window, n_features=6)


def test_the_stack_refuses_one_celery_worker_unless_a_benchmark_asks(tmp_path):
    from credit_drift import stack
    from credit_drift.settings import Settings

    settings = Settings.from_env({"CREDIT_DRIFT_HOME": str(tmp_path)})
    with pytest.raises(stack.StackError, match="at least 2 API workers and 2 celery workers"):
        stack.up(settings, stack.Ports(), celery_workers=1)
    # Past the worker count, the next refusal is the missing PostgreSQL URL: one worker passed.
    with pytest.raises(stack.StackError, match="needs DATABASE_URL"):
        stack.up(settings, stack.Ports(), celery_workers=1, allow_one_celery_worker=True)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(300)
def test_million_harness_at_two_thousand_rows(tmp_path, postgres_available):
    out = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "million",
            "--rows",
            "2000",
            "--train-rows",
            "2000",
            "--pool-rows",
            "2000",
            "--trees",
            "20",
            "--ks-features",
            "12",
            "--model-dir",
            str(tmp_path / "model"),
            "--database-url",
            postgres_base_url(),
            "--timeout",
            "240",
            "--out",
            str(tmp_path / "million.md"),
        ],
        capture_output=True,
        text=True,
        timeout=280,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    report = (tmp_path / "million.md").read_text()
    assert "Logged 2,000 predictions on 2026-11-02" in report
    size = re.search(r"`predictions` then holds ([0-9.,]+) MB", report)
    assert size and float(size.group(1).replace(",", "")) > 0, report
    assert "Partition 2026-11-02 (2,000 rows)" in report
    for asset in ("production_window", "feature_drift", "evidently_report", "drift_report"):
        assert f"| {asset} |" in report, asset
    assert "on 12 numeric features (evenly spread) equal `scipy.stats.ks_2samp`" in report
    assert "12 bit-identical" in report
