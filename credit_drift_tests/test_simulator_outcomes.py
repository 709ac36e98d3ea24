"""Simulated outcomes: drawn from the generator's own risk model on the features as sent."""

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from sklearn.metrics import roc_auc_score

from credit_drift.data.generator import (
    FEATURE_NAMES,
    ID_COLUMN,
    TARGET_COLUMN,
    generate_applications,
    risk_logit,
)
from credit_drift.simulator.outcomes import (
    OutcomeSimulationError,
    default_probability,
    outcome_rng,
    simulate_outcomes,
)
from credit_drift.simulator.scenario import (
    DEFAULT_MATURITY_DAYS,
    BatchSpec,
    Scenario,
    ScenarioError,
    load_scenario,
    plan_traffic,
)


@pytest.fixture(scope="module")
def applications() -> pd.DataFrame:
    return generate_applications(4_000, seed=23)


@pytest.fixture(scope="module")
def pool(applications) -> pd.DataFrame:
    return applications[list(FEATURE_NAMES)]


def _traffic(pool, applications, scenario, seed=5):
    kwargs = dict(batch_size=500, start="2026-11-01")
    batches = plan_traffic(pool, scenario, seed=seed, **kwargs)
    outcomes = simulate_outcomes(pool, applications[ID_COLUMN], scenario, seed=seed, **kwargs)
    return batches, outcomes


def test_the_risk_model_is_the_one_target_is_drawn_from(applications):
    # TARGET ~ Bernoulli(sigmoid(risk_logit)): its mean matches the mean probability within
    # sampling noise, and the logit ranks TARGET far better than chance.
    p = expit(risk_logit(applications))
    y = applications[TARGET_COLUMN].to_numpy()
    se = np.sqrt(np.sum(p * (1 - p))) / len(p)
    assert abs(y.mean() - p.mean()) < 4 * se
    assert roc_auc_score(y, p) > 0.7


def test_outcomes_equal_the_risk_model_on_the_features_as_sent(pool, applications):
    scenario = Scenario(
        "t", (BatchSpec("clean"), BatchSpec("gradual", 0.3), BatchSpec("clean", concept_shift=0.7))
    )
    batches, outcomes = _traffic(pool, applications, scenario)
    assert [len(o) for o in outcomes] == [500, 500, 500]
    for batch, out in zip(batches, outcomes, strict=True):
        # The drifted frame as sent, not the clean pool rows.
        expected = expit(risk_logit(batch.frame) + batch.spec.concept_shift)
        np.testing.assert_array_equal(out.default_probability, expected)
        uniforms = outcome_rng(5, batch.index).random(len(batch))
        np.testing.assert_array_equal(out.outcome, (uniforms < expected).astype(np.int64))
        ids = applications[ID_COLUMN].to_numpy()[batch.pool_rows].astype(str)
        assert list(out.application_id) == list(ids)
        assert out.concept_shift == batch.spec.concept_shift
    # The gradual batch's applicants are older and borrow more: the clean pool's rows would
    # give other probabilities.
    clean_rows = pool.iloc[batches[1].pool_rows]
    assert not np.allclose(default_probability(clean_rows), outcomes[1].default_probability)


def test_same_seed_same_draws_other_seed_other_draws(pool, applications):
    scenario = load_scenario("concept_drift")
    _, first = _traffic(pool, applications, scenario, seed=9)
    _, again = _traffic(pool, applications, scenario, seed=9)
    _, other = _traffic(pool, applications, scenario, seed=10)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a.outcome, b.outcome)
        np.testing.assert_array_equal(a.observed_at, b.observed_at)
    assert any(not np.array_equal(a.outcome, c.outcome) for a, c in zip(first, other, strict=True))


def test_a_concept_shift_raises_the_default_rate_on_the_same_applicants(pool, applications):
    base = Scenario("base", (BatchSpec("clean"),) * 4)
    downturn = Scenario("down", (BatchSpec("clean", concept_shift=1.0),) * 4)
    plain_batches, plain = _traffic(pool, applications, base)
    down_batches, down = _traffic(pool, applications, downturn)
    for p, d, pb, db in zip(plain, down, plain_batches, down_batches, strict=True):
        pd.testing.assert_frame_equal(pb.frame, db.frame)  # the model sees the same inputs
        # Same uniforms, higher probabilities: whoever defaulted still does, and more do.
        assert np.all(d.outcome >= p.outcome)
        assert np.all(d.default_probability > p.default_probability)
    plain_rate = np.mean(np.concatenate([o.outcome for o in plain]))
    down_rate = np.mean(np.concatenate([o.outcome for o in down]))
    assert down_rate > 1.5 * plain_rate


def test_outcomes_are_observed_after_the_maturity_delay(pool, applications):
    scenario = Scenario("t", (BatchSpec("clean"), BatchSpec("clean")), maturity_days=14)
    batches, outcomes = _traffic(pool, applications, scenario)
    for batch, out in zip(batches, outcomes, strict=True):
        times = np.array(
            [t.replace(tzinfo=None) for t in batch.event_times()], dtype="datetime64[us]"
        )
        np.testing.assert_array_equal(out.predicted_at, times)
        assert np.all(out.observed_at - out.predicted_at == np.timedelta64(14, "D"))
    # Not placed in time: scored now, observed maturity_days later.
    now = dt.datetime(2026, 12, 2, 12, tzinfo=dt.UTC)
    live = simulate_outcomes(
        pool, applications[ID_COLUMN], scenario, seed=1, now=now, batch_size=10
    )
    assert live[0].predicted_at[0] == np.datetime64("2026-12-02T12:00:00")
    assert live[0].observed_at[0] == np.datetime64("2026-12-16T12:00:00")


def test_a_pool_without_the_generators_columns_is_a_clear_error(applications):
    own = pd.DataFrame({"income": np.linspace(1, 2, 50)})
    with pytest.raises(OutcomeSimulationError, match="lack the column"):
        simulate_outcomes(own, np.arange(50), Scenario.constant("clean", 1), seed=1, batch_size=10)
    with pytest.raises(OutcomeSimulationError, match="application ids"):
        simulate_outcomes(own, np.arange(3), Scenario.constant("clean", 1), seed=1)


def test_scenario_concept_shift_and_maturity_round_trip_and_validate():
    scenario = load_scenario("concept_drift")
    assert scenario.maturity_days == 14
    assert [b.concept_shift for b in scenario.batches][:4] == [0, 0, 0, 0.4]
    assert {b.kind for b in scenario.batches} == {"clean"}  # no feature drift at all
    assert Scenario.from_dict(json.loads(scenario.to_json())) == scenario
    covariate = load_scenario("covariate_drift")
    assert all(b.concept_shift == 0 for b in covariate.batches)
    assert any(b.kind != "clean" for b in covariate.batches)
    assert Scenario.constant("clean", 1).maturity_days == DEFAULT_MATURITY_DAYS
    assert BatchSpec("clean", concept_shift=0.5).name == "clean, concept +0.5"
    with pytest.raises(ScenarioError, match="concept_shift"):
        Scenario.from_dict({"batches": [{"kind": "clean", "concept_shift": "high"}]})
    with pytest.raises(ScenarioError, match="concept_shift"):
        BatchSpec("clean", concept_shift=float("nan"))
    with pytest.raises(ScenarioError, match="maturity_days"):
        Scenario.from_dict({"maturity_days": -1, "batches": [{"kind": "clean"}]})


# -- delivery: replay, bulk and HTTP record the outcomes observed by now ----------------------
def _stored_outcomes(db_url):
    from credit_drift_tests.test_serving_support import rows

    return rows(
        db_url,
        "SELECT o.application_id, o.outcome, o.observed_at, o.source, p.created_at "
        "FROM outcomes o JOIN predictions p ON p.application_id = o.application_id "
        "ORDER BY p.id",
    )


def test_replay_delivers_observed_outcomes_and_holds_back_the_future(db_url, model_dir):
    from credit_drift.data.loader import load_pool, load_pool_ids
    from credit_drift.simulator.replay import SimulatorError, replay
    from credit_drift.storage.db import upgrade

    _, paths, artifacts = model_dir
    upgrade(db_url)
    pool = load_pool(paths.pool, artifacts.schema)
    ids = load_pool_ids(paths.pool, ID_COLUMN)
    today = dt.datetime.now(dt.UTC).date()
    # Batch 1 scored 30 days ago (observed 16 days ago); batch 2 today (observed in 14 days).
    scenario = Scenario(
        "t",
        (BatchSpec("clean", day=0), BatchSpec("clean", day=30, concept_shift=0.5)),
        maturity_days=14,
    )
    kwargs = dict(
        database_url=db_url,
        artifacts=artifacts,
        pool=pool,
        scenario=scenario,
        batch_size=40,
        start_date=(today - dt.timedelta(days=30)).isoformat(),
        seed=3,
        progress=False,
        application_ids=ids,
    )
    summary = replay(**kwargs, outcomes=True)
    delivery = summary.outcomes
    assert (delivery.n_observed, delivery.n_pending) == (40, 40)
    assert delivery.summary.inserted == 40 and delivery.summary.unknown_ids == 0
    assert "40 not observed yet" in summary.table()
    stored = _stored_outcomes(db_url)
    assert len(stored) == 40 and {r.source for r in stored} == {"simulator"}
    expected = simulate_outcomes(
        pool, ids, scenario, seed=3, batch_size=40, start=kwargs["start_date"]
    )[0]
    by_id = dict(zip(expected.application_id, expected.outcome, strict=True))
    assert all(r.outcome == by_id[r.application_id] for r in stored)
    from credit_drift.storage.db import make_engine
    from credit_drift.storage.outcomes import read_cohort

    first = read_cohort(make_engine(db_url), today - dt.timedelta(days=30))
    assert first["outcome"].notna().all() and len(first) == 40
    assert (first["observed_at"] - first["created_at"] == pd.Timedelta(days=14)).all()
    assert read_cohort(make_engine(db_url), today)["outcome"].isna().all()  # not yet
    with pytest.raises(SimulatorError, match="application id"):
        replay(**{**kwargs, "application_ids": None}, outcomes=True)


def test_bulk_and_http_deliver_outcomes(sqlite_url, model_dir, tmp_path):
    from credit_drift.data.loader import load_pool, load_pool_ids
    from credit_drift.serving.app import create_app
    from credit_drift.simulator.replay import bulk_backfill
    from credit_drift.simulator.sender import simulate
    from credit_drift.storage.db import upgrade
    from credit_drift_tests.test_serving_support import live_server, settings_for

    root, paths, artifacts = model_dir
    upgrade(sqlite_url)
    pool = load_pool(paths.pool, artifacts.schema)
    ids = load_pool_ids(paths.pool, ID_COLUMN)
    backfill = bulk_backfill(
        database_url=sqlite_url,
        artifacts=artifacts,
        pool=pool,
        scenario=Scenario("b", (BatchSpec("clean", concept_shift=1.0),), maturity_days=3),
        rows_per_day=50,
        start_date="2026-10-01",
        chunk_rows=20,
        progress=False,
        application_ids=ids,
        outcomes=True,
    )
    assert backfill.outcomes.n_observed == 50 and backfill.outcomes.summary.inserted == 50
    settings = settings_for(sqlite_url, root / "artifacts", tmp_path, allow_replay=True)
    app = create_app(settings, artifacts)
    with live_server(app) as base:
        summary = simulate(
            base,
            pool=pool.assign(**{ID_COLUMN: ids}).iloc[2000:].reset_index(drop=True),
            scenario=Scenario("h", (BatchSpec("clean"),), maturity_days=1),
            batch_size=30,
            request_size=10,
            start_date="2026-10-10",
            progress=False,
            outcomes=True,
        )
    app.state.api_log_writer.flush(timeout=10)
    assert summary.outcomes.n_observed == 30 and summary.outcomes.summary.inserted == 30
    assert summary.outcomes.summary.unknown_ids == 0
    stored = _stored_outcomes(sqlite_url)
    assert len(stored) == 80
    assert sum(r.source == "simulator" for r in stored) == 50  # HTTP ones come in as 'api'
