"""The demo's default scenario (`demo`) shows both failure modes in one timeline, on the embedded
SQLite default: the notebook's sudden days (covariate drift) ALERT in the drift report while the
model still ranks, and the downturn days (concept drift) are OK in the drift report and in the
label-free estimate while the realized default rate leaves what the calibrated scores expect.

The traffic goes through the replay path (the API's scoring and storage code without HTTP) with
its simulated outcomes, from the small test model's pool; only the assets the lesson rests on
are materialized, on the days that show it (a clean day, the sudden days, the downturn days).
"""

import datetime as dt

import dagster as dg
import numpy as np
import pytest

from credit_drift.defs.assets import (
    drift_report,
    estimated_performance,
    feature_drift,
    production_window,
    realized_performance,
    reference_profile,
    segment_drift,
)
from credit_drift.defs.resources import resources_from_settings
from credit_drift.settings import Settings
from credit_drift_tests.conftest import pipeline_env

pytestmark = pytest.mark.slow

BATCH_SIZE = 350  # 11 days from the small model's 4,000-row pool, each within half its hold-out
START = dt.date(2026, 11, 1)
CLEAN, SUDDEN, CONCEPT = [0], [6, 7], [8, 9, 10]  # batch indices in the demo scenario


def _day(i: int) -> str:
    return (START + dt.timedelta(days=i)).isoformat()


def test_the_demo_scenario_is_the_notebooks_days_then_a_downturn():
    from credit_drift.demo import DEFAULT_SCENARIO
    from credit_drift.simulator.scenario import load_scenario

    demo, notebook = load_scenario(DEFAULT_SCENARIO), load_scenario("notebook")
    assert demo.name == "demo" and len(demo) == 11
    assert demo.batches[:8] == notebook.batches  # the notebook's days first, unchanged
    assert all(b.concept_shift == 0 for b in demo.batches[:8])
    assert [(b.kind, b.concept_shift) for b in demo.batches[8:]] == [
        ("clean", 0.8),
        ("clean", 1.2),
        ("clean", 1.2),
    ]
    assert demo.maturity_days == notebook.maturity_days == 14


@pytest.fixture
def demo_days(sqlite_url, model_dir, tmp_path, monkeypatch):
    """The demo scenario replayed with outcomes into a fresh SQLite database, and the lesson's
    assets materialized on its clean, sudden and downturn days."""
    from credit_drift.data.loader import load_pool, load_pool_ids
    from credit_drift.simulator.replay import replay
    from credit_drift.storage.db import upgrade

    _, paths, artifacts = model_dir
    pipeline_env(monkeypatch, tmp_path, sqlite_url, model_dir)
    upgrade(sqlite_url)
    summary = replay(
        database_url=sqlite_url,
        artifacts=artifacts,
        pool=load_pool(paths.pool, artifacts.schema),
        scenario="demo",
        batch_size=BATCH_SIZE,
        start_date=START.isoformat(),
        progress=False,
        application_ids=load_pool_ids(paths.pool, "SK_ID_CURR"),
        outcomes=True,
    )
    # The last day was scored on 2026-11-11: its outcomes were observed on 2026-11-25.
    assert summary.outcomes.n_observed == 11 * BATCH_SIZE and summary.outcomes.n_pending == 0
    resources = resources_from_settings(Settings.from_env(), evidently_max_columns=8)
    instance = dg.DagsterInstance.ephemeral()
    assert dg.materialize([reference_profile], resources=resources, instance=instance).success
    # drift_report shows segment_drift's table (empty with no segment configured).
    assets = [production_window, feature_drift, segment_drift, drift_report]
    assets += [estimated_performance, realized_performance]
    meta = {}
    for i in CLEAN + SUDDEN + CONCEPT:
        result = dg.materialize(
            assets, partition_key=_day(i), resources=resources, instance=instance
        )
        assert result.success
        meta[i] = {
            name: result.asset_materializations_for_node(name)[0].metadata
            for name in ("drift_report", "estimated_performance", "realized_performance")
        }
    return meta, artifacts


def _value(metadata, key):
    return metadata[key].value


def test_covariate_drift_alerts_and_concept_drift_only_shows_in_the_outcomes(demo_days, capsys):
    from credit_drift.console import CONCEPT_DRIFT_NOTE, print_status
    from credit_drift.pipeline.estimated import cbpe_reference
    from credit_drift.storage.db import make_engine
    from credit_drift.storage.outcomes import read_cohort

    meta, artifacts = demo_days
    drift = {i: _value(m["drift_report"], "status") for i, m in meta.items()}
    estimate = {i: _value(m["estimated_performance"], "status") for i, m in meta.items()}
    real = {i: m["realized_performance"] for i, m in meta.items()}
    assert {i: drift[i] for i in CLEAN + SUDDEN + CONCEPT} == {
        0: "OK",
        6: "ALERT",
        7: "ALERT",
        8: "OK",
        9: "OK",
        10: "OK",
    }
    # The downturn does not move a score: the label-free estimate cannot see it.
    assert [estimate[i] for i in CLEAN + CONCEPT] == ["OK"] * 4
    assert all(_value(real[i], "status") == "mature" for i in meta)

    # Observed defaults against the defaults the calibrated scores expect (the estimate's): a
    # z-score of the count (a sum of Bernoullis with the calibrated probabilities).
    engine = make_engine(Settings.from_env().database_url)
    calibrator = cbpe_reference(artifacts).calibrator
    observed, expected, variance, mean_pd = {}, {}, {}, {}
    for i in meta:
        cohort = read_cohort(engine, _day(i))
        q = calibrator(cohort["probability"].to_numpy())
        y = cohort["outcome"].to_numpy()
        assert len(y) == BATCH_SIZE and not np.isnan(y).any()
        observed[i], expected[i], variance[i] = y.sum(), q.sum(), (q * (1 - q)).sum()
        mean_pd[i] = cohort["probability"].mean()

    def z(days):
        excess = sum(observed[i] - expected[i] for i in days)
        return excess / np.sqrt(sum(variance[i] for i in days))

    assert abs(z(CLEAN)) < 3  # clean: as many defaults as expected
    # The downturn: far more defaults than expected, on the three days together (about 10
    # standard deviations at +0.8, +1.2, +1.2) and on each (about 5, 8 and 8).
    assert z(CONCEPT) > 6 and all(z([i]) > 2 for i in CONCEPT), [z([i]) for i in CONCEPT]
    # ... and the decisions cost more than at validation and than on the clean day.
    validation = artifacts.metrics["cost_per_application"]
    cost = {i: _value(real[i], "cost_per_application") for i in meta}
    downturn_cost = np.mean([cost[i] for i in CONCEPT])
    assert downturn_cost > max(validation, cost[0]), (cost, validation)
    # Covariate drift: the sudden days' applicants are riskier and the model sees it (mean PD
    # up with them: 0.38 clean, 0.41 and 0.43 for the small test model), and it still ranks
    # them (AUC above the estimate's bound, 0.6); the downturn leaves the scores where they were.
    auc = {i: _value(real[i], "auc") for i in meta}
    assert all(mean_pd[i] > mean_pd[0] for i in SUDDEN), mean_pd
    assert np.mean([mean_pd[i] for i in SUDDEN]) > mean_pd[0] + 0.02, mean_pd
    assert all(abs(mean_pd[i] - mean_pd[0]) < 0.03 for i in CONCEPT), mean_pd
    assert all(auc[i] > 0.6 for i in SUDDEN), auc

    # `credit-drift status`: the three tables and the note say the same.
    capsys.readouterr()
    print_status(Settings.from_env())
    out = capsys.readouterr().out
    assert CONCEPT_DRIFT_NOTE in out.splitlines()
    rows: dict[str, list[list[str]]] = {}
    for line in out.splitlines():
        rows.setdefault(line[:10], []).append(line.split())
    for i in CONCEPT:
        timeline, est, realized = rows[_day(i)]
        assert timeline[-1] == "OK" and est[1] == "OK" and realized[1] == "mature"
        # realized: day, status, labeled, default rate, expected (the estimate's), ...
        assert realized[4] == est[3]  # the expected rate is the estimate's default rate
        assert float(realized[3]) > float(realized[4])
