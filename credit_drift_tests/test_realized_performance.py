"""realized_performance[day] on SQLite and PostgreSQL: cohorts read with their outcomes, the
maturity statuses (no predictions, immature, partial, mature), metrics equal to scikit-learn's on
the same rows, the value through the daily IO manager, and late outcomes re-running exactly the
days they belong to (late_outcomes_sensor), plus the daily automation while cohorts mature."""

import datetime as dt

import dagster as dg
import numpy as np
import pytest
import sqlalchemy as sa
from sklearn.metrics import brier_score_loss, roc_auc_score

from credit_drift.definitions import defs
from credit_drift.defs.assets import realized_performance, reference_profile
from credit_drift.defs.resources import resources_from_settings
from credit_drift.pipeline.performance import CohortPerformance, cohort_status
from credit_drift.settings import Settings
from credit_drift.storage.db import make_engine
from credit_drift.storage.outcomes import OutcomeRow, read_cohort, record_outcomes
from credit_drift.storage.schema import predictions
from credit_drift.storage.windows import DayWindow
from credit_drift_tests.conftest import replay_batches

DAYS = ("2026-11-01", "2026-11-02", "2026-11-03")


def test_cohort_status_rules():
    day = DayWindow.of("2026-11-01")
    before = dt.datetime(2026, 11, 10, tzinfo=dt.UTC)
    after = dt.datetime(2026, 12, 5, tzinfo=dt.UTC)  # past 2026-11-02 + 30 days
    assert cohort_status(0, 0, day, before, 30)[0] == "no_predictions"
    status, message = cohort_status(100, 0, day, before, 30)
    assert status == "immature" and message.startswith("no outcomes yet")
    assert "2026-12-02" in message  # when it matures
    assert cohort_status(100, 40, day, before, 30)[0] == "partial"
    assert cohort_status(100, 100, day, before, 30)[0] == "mature"
    status, message = cohort_status(100, 40, day, after, 30)
    assert status == "mature" and "40.0%" in message
    status, message = cohort_status(100, 0, day, after, 30)
    assert status == "mature" and "no outcome received" in message


def _engine_with_ids(db_url, model_dir, tmp_path, monkeypatch):
    """Three days of 300 clean predictions, each with an application id (as a client sends
    one), on a fresh state directory; the horizon far enough that only complete cohorts are
    mature whatever today's date."""
    root, paths, _ = model_dir
    monkeypatch.setenv("CREDIT_DRIFT_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("CREDIT_DRIFT_ARTIFACTS_DIR", str(root / "artifacts"))
    monkeypatch.setenv("CREDIT_DRIFT_TRAINING_DATA", str(paths.train))
    monkeypatch.setenv("CREDIT_DRIFT_OUTCOME_HORIZON_DAYS", "3650")
    replay_batches(db_url, model_dir, [{"kind": "clean"}] * 3, batch_size=300)
    engine = make_engine(db_url)
    with engine.begin() as conn:
        app_id = sa.literal("app-") + predictions.c.request_id
        conn.execute(predictions.update().values(application_id=app_id))
    return engine


def _send_outcomes(engine, day: str, share: float, seed: int) -> np.ndarray:
    """Outcomes for the first `share` of the day's cohort, drawn from the logged PD."""
    cohort = read_cohort(engine, day)
    k = int(round(share * len(cohort)))
    rng = np.random.default_rng(seed)
    y = (rng.random(k) < cohort["probability"].to_numpy()[:k]).astype(int)
    observed = DayWindow.of(day).end + dt.timedelta(days=1)
    rows = [
        OutcomeRow(app, int(v), observed, "file")
        for app, v in zip(cohort["application_id"][:k], y, strict=True)
    ]
    summary = record_outcomes(engine, rows)
    assert summary.inserted == k and summary.unknown_ids == 0
    return y


def _materialize(resources, instance, day):
    result = dg.materialize(
        [realized_performance], partition_key=day, resources=resources, instance=instance
    )
    assert result.success
    (event,) = result.asset_materializations_for_node("realized_performance")
    return event.metadata


def _load_value(resources, day) -> CohortPerformance:
    io = resources["daily_io_manager"].create_io_manager(None)
    context = dg.build_input_context(
        asset_key=dg.AssetKey("realized_performance"),
        partition_key=day,
        asset_partitions_def=realized_performance.partitions_def,
    )
    return io.load_input(context)[day]


def test_realized_performance_statuses_metrics_and_late_outcomes(
    db_url, model_dir, tmp_path, monkeypatch, capsys
):
    engine = _engine_with_ids(db_url, model_dir, tmp_path, monkeypatch)
    resources = resources_from_settings(Settings.from_env())
    instance = dg.DagsterInstance.ephemeral()
    assert dg.materialize([reference_profile], resources=resources, instance=instance).success

    y1 = _send_outcomes(engine, DAYS[0], 1.0, seed=1)  # every outcome known
    _send_outcomes(engine, DAYS[1], 0.5, seed=2)  # half of them so far
    # DAYS[2]: none yet; 2026-11-05: no predictions at all.

    meta = {day: _materialize(resources, instance, day) for day in (*DAYS, "2026-11-05")}
    assert {d: m["status"].value for d, m in meta.items()} == {
        DAYS[0]: "mature",
        DAYS[1]: "partial",
        DAYS[2]: "immature",
        "2026-11-05": "no_predictions",
    }
    # Metrics equal scikit-learn's on the same rows.
    cohort = read_cohort(engine, DAYS[0])
    p = cohort["probability"].to_numpy()
    np.testing.assert_array_equal(cohort["outcome"].to_numpy(), y1)
    value = _load_value(resources, DAYS[0])
    assert value.status == "mature" and value.metrics.n == value.metrics.n_labeled == 300
    assert value.metrics.auc == pytest.approx(roc_auc_score(y1, p), abs=1e-12)
    assert value.metrics.brier == pytest.approx(brier_score_loss(y1, p), abs=1e-12)
    assert value.metrics.observed_default_rate == pytest.approx(y1.mean())
    refused = (cohort["decision"] == "REFUSED").to_numpy()
    fn, fp = int(((y1 == 1) & ~refused).sum()), int(((y1 == 0) & refused).sum())
    _, _, artifacts = model_dir
    m = artifacts.metrics
    assert value.metrics.cost_per_application == pytest.approx(
        (m["cost_fn"] * fn + m["cost_fp"] * fp) / 300
    )
    assert value.metrics.validation_cost_per_application == pytest.approx(m["cost_per_application"])
    # Shown in the UI: rounded numbers, the calibration table on the development deciles, the
    # reliability figure.
    first = meta[DAYS[0]]
    assert first["auc"].value == round(value.metrics.auc, 2)
    assert first["labeled_share"].value == 1.0
    assert isinstance(first["calibration"], dg.TableMetadataValue)
    assert len(first["calibration"].records) == len(value.metrics.calibration) >= 2
    assert value.figure is not None and value.figure.is_file()
    assert "reliability_figure" in first
    half = _load_value(resources, DAYS[1])
    assert half.metrics.n_labeled == 150 and half.metrics.labeled_share == 0.5
    assert meta[DAYS[1]]["n_labeled"].value == 150
    empty = _load_value(resources, DAYS[2])
    assert empty.metrics.n == 300 and empty.metrics.n_labeled == 0
    assert np.isnan(empty.metrics.auc) and "auc" not in meta[DAYS[2]]  # no fake number
    assert meta[DAYS[2]]["message"].value.startswith("no outcomes yet")

    # `credit-drift status` prints the same numbers, as of now.
    from credit_drift.console import print_realized

    print_realized(Settings.from_env(), engine, [*DAYS, "2026-11-05"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("realized performance")
    by_day = {line.split()[0]: line.split() for line in lines[3:]}
    assert by_day[DAYS[0]][1:3] == ["mature", "100%"]
    assert (
        by_day[DAYS[0]][3] == f"{y1.mean():.3f}"
        and by_day[DAYS[0]][5] == f"{value.metrics.auc:.3f}"
    )
    assert by_day[DAYS[1]][1:3] == ["partial", "50%"]
    assert by_day[DAYS[2]][1:4] == ["immature", "0%", "-"]
    assert by_day["2026-11-05"][1:3] == ["no_predictions", "-"]

    # Late outcomes: the sensor requests exactly the days they belong to, once.
    sensor = defs.resolve_sensor_def("late_outcomes_sensor")

    def tick(cursor):
        with dg.build_sensor_context(
            instance=instance, cursor=cursor, resources=resources
        ) as context:
            result = sensor(context)
            return result, context.cursor

    result, cursor = tick(None)
    assert sorted(r.partition_key for r in result) == [DAYS[0], DAYS[1]]
    result, cursor = tick(cursor)
    assert isinstance(result, dg.SkipReason)
    y3 = _send_outcomes(engine, DAYS[2], 1.0, seed=3)
    result, cursor = tick(cursor)
    assert [r.partition_key for r in result] == [DAYS[2]]
    assert _materialize(resources, instance, DAYS[2])["status"].value == "mature"
    late = _load_value(resources, DAYS[2])
    assert late.metrics.n_defaults == int(y3.sum())
    # An outcome corrected later (explicit update) is late too.
    app = read_cohort(engine, DAYS[1])["application_id"].iloc[0]
    record_outcomes(engine, [OutcomeRow(app, 1, dt.datetime(2026, 11, 20, tzinfo=dt.UTC), "api")])
    result, cursor = tick(cursor)
    assert [r.partition_key for r in result] == [DAYS[1]]


def test_cohorts_still_maturing_are_measured_again_every_day():
    """At the day-closing tick, every day within the horizon (plus the 7-day lookback) is
    requested; nothing between ticks."""
    from credit_drift.defs.partitions import OUTCOME_HORIZON_DAYS

    instance = dg.DagsterInstance.ephemeral()
    cursor = None
    key = dg.AssetKey("realized_performance")

    def tick(when):
        nonlocal cursor
        result = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=cursor, evaluation_time=when
        )
        cursor = result.cursor
        return result.get_requested_partitions(key)

    day = dt.datetime(2027, 3, 1, tzinfo=dt.UTC)
    assert tick(day + dt.timedelta(minutes=10)) == set()
    requested = tick(day + dt.timedelta(minutes=40))
    expected = OUTCOME_HORIZON_DAYS + 7
    assert len(requested) == expected
    assert max(requested) == "2027-02-28"
    assert tick(day + dt.timedelta(hours=2)) == set()


def test_cohort_performance_round_trips_through_its_parts():
    from credit_drift.stats.performance import realized_performance as measure

    metrics = measure([1, 0, np.nan, 0], [0.6, 0.1, 0.2, 0.3], threshold=0.5)
    value = CohortPerformance(
        DayWindow.of("2026-11-01"),
        dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
        30.0,
        "partial",
        "m",
        metrics,
    )
    back = CohortPerformance.from_parts(value.to_parts())
    for name, want in value.summary().items():
        got = back.summary()[name]
        if isinstance(want, float) and np.isnan(want):
            assert np.isnan(got), name
        else:
            assert got == want, name
    assert back.metrics.calibration.equals(value.metrics.calibration)
    assert back.as_of == value.as_of and back.metrics.undefined_reason is None
