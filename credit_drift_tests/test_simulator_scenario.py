"""Scenarios as data and the traffic they produce: the notebook's default schedule, same seed
same traffic, placement in time, user-written scenario files, and the drift the product's
default policy sees on the notebook's days."""

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from credit_drift.data.generator import FEATURE_NAMES, generate_applications
from credit_drift.features import FeatureSchema
from credit_drift.simulator.drift import DRIFT_KINDS
from credit_drift.simulator.scenario import (
    DEFAULT_BATCH_SIZE,
    BatchSpec,
    Scenario,
    ScenarioError,
    available_scenarios,
    default_scenario,
    inert_batches,
    load_scenario,
    parse_interval,
    plan_traffic,
)

UTC = dt.UTC


@pytest.fixture(scope="module")
def pool() -> pd.DataFrame:
    return generate_applications(3_000, seed=11)[list(FEATURE_NAMES)]


def test_default_schedule_is_the_notebooks():
    scenario = default_scenario()
    assert scenario.name == "notebook"
    assert [(b.kind, b.intensity) for b in scenario.batches] == [
        ("clean", 0.0),
        ("clean", 0.0),
        ("clean", 0.0),
        ("gradual", 0.1),
        ("gradual", 0.2),
        ("gradual", 0.3),
        ("sudden", 0.5),
        ("sudden", 0.7),
    ]
    assert DEFAULT_BATCH_SIZE == 50


def test_shipped_scenarios_load_and_cover_every_drift_kind():
    names = available_scenarios()
    assert {"notebook", "feature_shift", "correlation_break"} <= set(names)
    kinds = {b.kind for n in names for b in load_scenario(n).batches}
    # category_mix needs text columns, which the synthetic data has none of (it one-hot encodes).
    assert kinds == set(DRIFT_KINDS) - {"category_mix"}


def test_every_shipped_scenario_changes_the_synthetic_data(pool):
    for name in available_scenarios():
        assert inert_batches(pool, load_scenario(name)) == [], name


def test_home_credit_kinds_on_another_schema_are_found_inert():
    rng = np.random.default_rng(0)
    own = pd.DataFrame(
        {
            "income": rng.lognormal(10, 0.5, 300),
            "flag": rng.random(300) < 0.5,
            "segment": rng.choice(["a", "b", "c"], 300),
        }
    )
    notebook = load_scenario("notebook")
    assert inert_batches(own, notebook) == [3, 4, 5, 6, 7]  # gradual and sudden: 0-based
    assert inert_batches(own, load_scenario("generic")) == []
    only_numeric = own[["income"]]  # (a bool flag is a two-category column to category_mix)
    mix = Scenario("m", (BatchSpec("clean"), BatchSpec("category_mix", 0.5)))
    assert inert_batches(only_numeric, mix) == [1]
    assert inert_batches(own, mix) == []


def test_generic_batches_take_columns_or_a_share(pool, tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(
        json.dumps(
            {
                "batches": [
                    {"kind": "shift", "intensity": 0.5, "columns": ["AMT_CREDIT"]},
                    {"kind": "shift", "intensity": 0.5, "column_share": 0.1},
                    {"kind": "shift", "intensity": 0.7, "column_share": 0.1},
                ]
            }
        )
    )
    scenario = load_scenario(path)
    assert Scenario.from_dict(json.loads(scenario.to_json())) == scenario
    one, share_a, share_b = plan_traffic(pool, scenario, batch_size=400, seed=1)
    clean = [pool.iloc[b.pool_rows].reset_index(drop=True) for b in (one, share_a, share_b)]
    changed = [
        {c for c in b.frame.columns if not b.frame[c].equals(c0[c])}
        for b, c0 in zip((one, share_a, share_b), clean, strict=True)
    ]
    assert changed[0] == {"AMT_CREDIT"}
    # A share is a fixed set of columns: the same ones for every batch.
    assert changed[1] == changed[2] and 10 < len(changed[1]) < 100
    std = pool["AMT_CREDIT"].std(ddof=0)
    np.testing.assert_allclose(one.frame["AMT_CREDIT"] - clean[0]["AMT_CREDIT"], 0.5 * std)


def test_plan_draws_batch_size_rows_per_batch_without_reuse(pool):
    batches = plan_traffic(pool, default_scenario(), batch_size=50, seed=1)
    assert [len(b) for b in batches] == [50] * 8
    used = np.concatenate([b.pool_rows for b in batches])
    assert len(set(used.tolist())) == len(used)  # no application sent twice
    assert list(batches[0].frame.columns) == list(pool.columns)
    # Clean batches are the pool rows themselves.
    pd.testing.assert_frame_equal(
        batches[0].frame, pool.iloc[batches[0].pool_rows].reset_index(drop=True)
    )


def test_same_seed_same_traffic_other_seed_other_traffic(pool):
    a = plan_traffic(pool, default_scenario(), batch_size=40, seed=5)
    b = plan_traffic(pool, default_scenario(), batch_size=40, seed=5)
    c = plan_traffic(pool, default_scenario(), batch_size=40, seed=6)
    for x, y in zip(a, b, strict=True):
        pd.testing.assert_frame_equal(x.frame, y.frame)
    assert not all(x.frame.equals(z.frame) for x, z in zip(a, c, strict=True))


def test_the_pool_is_reshuffled_when_it_runs_out():
    small = generate_applications(30, seed=2)[list(FEATURE_NAMES)]
    batches = plan_traffic(small, Scenario.constant("clean", 3), batch_size=20, seed=0)
    assert [len(b) for b in batches] == [20, 20, 20]
    assert len(set(np.concatenate([b.pool_rows[:10] for b in batches[:2]]).tolist())) == 20


def test_n_batches_and_sizes(pool):
    scenario = default_scenario()
    assert len(plan_traffic(pool, scenario, batch_size=10, n_batches=3)) == 3
    with pytest.raises(ScenarioError, match="has 8 batches; 9 were asked for"):
        plan_traffic(pool, scenario, batch_size=10, n_batches=9)
    sized = Scenario("s", (BatchSpec("clean", size=7), BatchSpec("sudden", 0.5)))
    assert [len(b) for b in plan_traffic(pool, sized, batch_size=12)] == [7, 12]


def test_batches_are_placed_on_consecutive_days(pool):
    batches = plan_traffic(
        pool, default_scenario(), batch_size=24, seed=0, start="2026-11-01", interval="1d"
    )
    for i, b in enumerate(batches):
        day = dt.datetime(2026, 11, 1, tzinfo=UTC) + dt.timedelta(days=i)
        assert (b.start, b.end) == (day, day + dt.timedelta(days=1))
        times = b.event_times()
        assert len(times) == 24
        assert all(day <= t < day + dt.timedelta(days=1) for t in times)
        assert times == sorted(times)
    assert plan_traffic(pool, default_scenario(), batch_size=5)[0].event_times() is None


def test_a_batch_can_name_its_own_day(pool):
    scenario = Scenario(
        "days",
        (
            BatchSpec("clean", day=3),
            BatchSpec("clean", day=dt.date(2026, 12, 25)),
            BatchSpec("clean"),
        ),
    )
    batches = plan_traffic(pool, scenario, batch_size=5, start="2026-11-01", interval="12h")
    assert batches[0].start == dt.datetime(2026, 11, 4, tzinfo=UTC)
    assert batches[1].start == dt.datetime(2026, 12, 25, tzinfo=UTC)
    assert batches[1].end == dt.datetime(2026, 12, 25, 12, tzinfo=UTC)
    assert batches[2].start == dt.datetime(2026, 11, 2, tzinfo=UTC)  # 2 x 12h after the start
    with pytest.raises(ScenarioError, match="give a start date"):
        plan_traffic(pool, Scenario("d", (BatchSpec("clean", day=1),)), batch_size=5)


def test_parse_interval():
    assert parse_interval("1d") == dt.timedelta(days=1)
    assert parse_interval("6h") == dt.timedelta(hours=6)
    assert parse_interval("90s") == dt.timedelta(seconds=90)
    for bad in ("1 week", "0d", "-1d", "d"):
        with pytest.raises(ScenarioError, match="interval"):
            parse_interval(bad)


def test_a_user_scenario_file_round_trips(tmp_path, pool):
    path = tmp_path / "mine.json"
    path.write_text(
        json.dumps(
            {
                "name": "mine",
                "batches": [
                    {"kind": "clean", "size": 10},
                    {"kind": "feature_shift", "intensity": 0.4, "day": "2026-11-20"},
                    {"kind": "correlation_break", "intensity": 1.0, "label": "broken"},
                ],
            }
        )
    )
    scenario = load_scenario(path)
    assert [b.name for b in scenario.batches] == ["clean", "feature_shift 0.4", "broken"]
    assert Scenario.from_dict(json.loads(scenario.to_json())) == scenario
    # A bare list of batches is a scenario too.
    assert len(Scenario.from_dict([{"kind": "clean"}])) == 1


@pytest.mark.parametrize(
    ("batches", "message"),
    [
        ([{"kind": "weather"}], "batch 1: unknown drift kind 'weather'"),
        ([{"kind": "gradual", "intensity": 2}], r"batch 1: gradual: intensity 2.0 must be in"),
        ([{"kind": "clean", "intensity": 0.3}], "clean batches have intensity 0"),
        ([{"kind": "clean"}, {"kind": "sudden", "strength": 1}], r"batch 2: unknown keys"),
        ([{"intensity": 0.1}], "batch 1: missing 'kind'"),
        ([{"kind": "clean", "day": "tomorrow"}], "not an ISO date"),
        ([{"kind": "clean", "size": 0}], "size 0 must be a positive"),
        (
            [{"kind": "sudden", "intensity": 0.5, "columns": ["x"]}],
            "sudden: columns and column_share",
        ),
        ([{"kind": "shift", "intensity": 0.5, "column_share": 0}], r"column_share 0 must be"),
        ([{"kind": "shift", "intensity": 0.5, "columns": "AMT_CREDIT"}], "list of column names"),
        (
            [{"kind": "missing", "intensity": 0.5, "columns": ["a"], "column_share": 0.5}],
            "either columns or column_share",
        ),
        ([], "'batches' must be a non-empty list"),
    ],
)
def test_invalid_scenarios_name_the_problem(tmp_path, batches, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"batches": batches}))
    with pytest.raises(ScenarioError, match=message):
        load_scenario(path)


def test_unknown_scenario_name_lists_the_shipped_ones():
    with pytest.raises(ScenarioError, match="notebook"):
        load_scenario("no-such-scenario")


def test_the_default_policy_alerts_on_the_sudden_days_and_not_on_clean_ones():
    """The product's promise on the notebook's traffic: clean days OK, gradual days below the
    alert line and rising, sudden days (0.5 and 0.7) ALERT (> 30% of features drifted)."""
    from credit_drift.stats.policy import DriftPolicy, evaluate_window
    from credit_drift.stats.reference import fit_reference

    train = generate_applications(20_000, seed=1)[list(FEATURE_NAMES)]
    pool = generate_applications(5_000, seed=2)[list(FEATURE_NAMES)]
    schema = FeatureSchema.numeric(FEATURE_NAMES)
    profile = fit_reference(train, schema, {n: 1.0 for n in FEATURE_NAMES})
    policy = DriftPolicy.default()
    shares = np.array(
        [
            [
                evaluate_window(profile, b.frame, policy).drift_share
                for b in plan_traffic(pool, default_scenario(), batch_size=50, seed=seed)
            ]
            for seed in (42, 7)
        ]
    )
    assert (shares[:, :3] < policy.warning_share).all()
    assert (shares[:, 3:6] < policy.alert_share).all()
    assert (shares[:, 6:] > policy.alert_share).all()
    assert (shares[:, 7] >= shares[:, 6]).all()
    mean = shares.mean(axis=0)
    assert mean[3] <= mean[5] and mean[5] < mean[6]
