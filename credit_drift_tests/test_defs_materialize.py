"""The drift assets materialized with Dagster on real logged predictions, on SQLite and
PostgreSQL: statuses, idempotent reports, NO_DATA, checks, and the alert sensor's exactly-once."""

import dagster as dg
import pytest
import sqlalchemy as sa

from credit_drift.data.loader import load_pool
from credit_drift.definitions import defs
from credit_drift.defs.assets import (
    drift_report,
    evidently_report,
    feature_drift,
    operational_metrics,
    production_window,
    reference_profile,
)
from credit_drift.defs.resources import CreditDriftResource
from credit_drift.simulator.replay import replay
from credit_drift.simulator.scenario import Scenario
from credit_drift.storage.db import make_engine, upgrade
from credit_drift.storage.reports import read_alerts, read_drift_reports

WINDOWED = [production_window, feature_drift, evidently_report, drift_report, operational_metrics]


def _replay_days(db_url, model_dir, tmp_path, monkeypatch, second_day: dict):
    """Point the project at a fresh state directory and `db_url`, then log 600 clean
    predictions on 2026-11-01 and 600 of `second_day`'s drift on 2026-11-02. Returns the pool."""
    root, paths, artifacts = model_dir
    monkeypatch.setenv("CREDIT_DRIFT_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("CREDIT_DRIFT_ARTIFACTS_DIR", str(root / "artifacts"))
    monkeypatch.setenv("CREDIT_DRIFT_TRAINING_DATA", str(paths.train))
    upgrade(db_url)
    pool = load_pool(paths.pool, artifacts.schema)
    scenario = Scenario.from_dict({"name": "t", "batches": [{"kind": "clean"}, second_day]})
    replay(
        database_url=db_url,
        artifacts=artifacts,
        pool=pool,
        scenario=scenario,
        batch_size=600,
        start_date="2026-11-01",
        progress=False,
    )
    return pool


@pytest.fixture
def project(db_url, model_dir, tmp_path, monkeypatch):
    _replay_days(db_url, model_dir, tmp_path, monkeypatch, {"kind": "sudden", "intensity": 0.7})
    resource = CreditDriftResource(evidently_max_columns=8)
    return resource, make_engine(db_url)


def _materialize(resource, instance, day):
    return dg.materialize(
        WINDOWED, partition_key=day, resources={"project": resource}, instance=instance
    )


def test_partitions_statuses_idempotence_no_data_and_alerts(project):
    resource, engine = project
    instance = dg.DagsterInstance.ephemeral()
    assert dg.materialize(
        [reference_profile], resources={"project": resource}, instance=instance
    ).success

    clean = _materialize(resource, instance, "2026-11-01")
    sudden = _materialize(resource, instance, "2026-11-02")
    empty = _materialize(resource, instance, "2026-11-05")
    assert clean.success and sudden.success and empty.success
    # Re-materializing a window replaces its report and results, never duplicates them.
    assert _materialize(resource, instance, "2026-11-02").success

    reports = read_drift_reports(engine)
    reports.index = reports["report_date"].astype(str).str[:10]
    assert list(reports.index) == ["2026-11-01", "2026-11-02", "2026-11-05"]
    assert reports.loc["2026-11-01", "status"] == "OK"
    assert reports.loc["2026-11-02", "status"] == "ALERT"
    assert reports.loc["2026-11-02", "drift_percentage"] > 30
    assert reports.loc["2026-11-05", "status"] == "NO_DATA"
    assert reports.loc["2026-11-05", "n_predictions"] == 0
    assert reports["drift_percentage"].isna().loc["2026-11-05"]  # no fake 0%
    with engine.connect() as conn:
        n_rows = conn.execute(
            sa.text("select count(*) from feature_drift_results where report_date = :d"),
            {"d": reports.loc["2026-11-02", "report_date"]},
        ).scalar()
    assert n_rows == 419

    checks = {
        (e.check_name, e.passed, e.severity)
        for e in sudden.get_asset_check_evaluations()
        if e.check_name == "drifted_share"
    }
    assert checks == {("drifted_share", False, dg.AssetCheckSeverity.ERROR)}
    drift_meta = sudden.asset_materializations_for_node("feature_drift")[0].metadata
    assert drift_meta["policy"].value == "default"
    meta = sudden.asset_materializations_for_node("drift_report")[0].metadata
    assert isinstance(meta["drift_percentage"], dg.FloatMetadataValue)
    assert isinstance(meta["top_drifted_features"], dg.TableMetadataValue)

    # The sensor alerts once per ALERT window, and never again on later ticks.
    sensor = defs.resolve_sensor_def("drift_alert_sensor")
    cursor = None
    requested = []
    for _ in range(2):
        with dg.build_sensor_context(
            instance=instance, cursor=cursor, resources={"project": resource}
        ) as context:
            result = sensor(context)
            cursor = context.cursor
        if isinstance(result, list):
            requested += [r.run_key for r in result]
    assert requested == ["drift-alert-2026-11-02"]
    # A replayed cursor (daemon restart) alerts nothing twice: the alert row is unique per window.
    with dg.build_sensor_context(
        instance=instance, cursor=None, resources={"project": resource}
    ) as context:
        again = sensor(context)
    assert not isinstance(again, list)
    alerts = read_alerts(engine)
    assert alerts["report_date"].astype(str).str[:10].tolist() == ["2026-11-02"]


def test_schedule_targets_the_previous_day():
    import datetime as dt

    schedule = defs.resolve_schedule_def("daily_drift_schedule")
    context = dg.build_schedule_context(
        scheduled_execution_time=dt.datetime(2026, 11, 5, 0, 30, tzinfo=dt.UTC)
    )
    requests = list(schedule.evaluate_tick(context).run_requests)
    assert [r.partition_key for r in requests] == ["2026-11-04"]


# -- a window where only some features moved, an older logged schema, and the CLI ------------
SHIFTED = {"EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3"}  # what feature_shift rewrites


@pytest.fixture
def shifted_project(db_url, model_dir, tmp_path, monkeypatch):
    """Day 1 clean, day 2 the external-score provider changes its formula (EXT_SOURCE_* only),
    day 3 logged by an older client whose feature list lacks one model feature and has one
    the model no longer uses."""
    from credit_drift.features import FeatureSchema, FeatureSpec
    from credit_drift.storage.predictions import bulk_insert_predictions

    pool = _replay_days(
        db_url, model_dir, tmp_path, monkeypatch, {"kind": "feature_shift", "intensity": 1.0}
    )
    schema = model_dir[2].schema
    dropped = schema.numeric_names[-1]
    old = FeatureSchema(
        tuple(f for f in schema.features if f.name != dropped)
        + (FeatureSpec("LEGACY_BUREAU_SCORE", "numeric"),)
    )
    frame = pool.head(50).copy()
    frame["LEGACY_BUREAU_SCORE"] = 0.5
    matrix, cats = old.pack_frame(frame)
    import datetime as dt

    engine = make_engine(db_url)
    bulk_insert_predictions(
        engine,
        old,
        created_at=[dt.datetime(2026, 11, 3, 12, tzinfo=dt.UTC)] * len(frame),
        matrix=matrix,
        categorical=cats,
        probability=0.1,
        decision="APPROVED",
        threshold=0.5,
        model_version="old-client",
    )
    return CreditDriftResource(evidently_max_columns=8), engine, dropped


def test_only_the_shifted_features_are_flagged_and_an_old_schema_is_named(shifted_project):
    from credit_drift.storage.reports import read_feature_drift

    resource, engine, dropped = shifted_project
    instance = dg.DagsterInstance.ephemeral()
    assert dg.materialize(
        [reference_profile], resources={"project": resource}, instance=instance
    ).success
    results = {day: _materialize(resource, instance, day) for day in ("2026-11-01", "2026-11-02")}
    assert all(r.success for r in results.values())

    import datetime as dt

    clean = read_feature_drift(engine, dt.date(2026, 11, 1))
    shifted = read_feature_drift(engine, dt.date(2026, 11, 2))
    assert len(clean) == len(shifted) == 419
    assert clean["drifted"].sum() == 0
    flagged = set(shifted.loc[shifted["drifted"], "feature"])
    assert flagged == SHIFTED, flagged
    # The unshifted features are tested too (a p-value each), they just do not pass the policy.
    others = shifted[~shifted["feature"].isin(SHIFTED)]
    assert others["p_value"].notna().sum() > 400

    # Day 3 was logged by an older client: the check fails and names both differences.
    old_day = dg.materialize(
        [production_window],
        partition_key="2026-11-03",
        resources={"project": resource},
        instance=instance,
    )
    assert old_day.success  # a failed ERROR check is reported, the window is still stored
    (check,) = [
        e for e in old_day.get_asset_check_evaluations() if e.check_name == "features_match_model"
    ]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert check.metadata["missing_features"].value == [dropped]
    assert check.metadata["extra_features"].value == ["LEGACY_BUREAU_SCORE"]
    ok_day = {e.check_name: e for e in results["2026-11-01"].get_asset_check_evaluations()}
    assert {name: e.passed for name, e in ok_day.items()} == {
        "enough_rows": True,
        "features_match_model": True,
        "drifted_share": True,
        "important_features_stable": True,
        "joint_distribution_stable": True,
    }
    # Three features of 419 is an OK share, but they are the model's strongest: the importance
    # check says so, with their names.
    shift_day = {e.check_name: e for e in results["2026-11-02"].get_asset_check_evaluations()}
    assert shift_day["drifted_share"].passed
    important = shift_day["important_features_stable"]
    assert not important.passed and important.severity == dg.AssetCheckSeverity.WARN
    # (EXT_SOURCE_1, mostly missing, is not in this small test model's top 10.)
    named = set(important.metadata["drifted_among_top_10"].value)
    assert {"EXT_SOURCE_2", "EXT_SOURCE_3"} <= named <= SHIFTED
    assert important.metadata["weighted_drift_percentage"].value >= 10


def test_dagster_cli_materializes_a_partition_on_a_fresh_dagster_home(project, tmp_path):
    """`dagster asset materialize -m ... --select ... --partition ...`, as the README says, in a
    fresh DAGSTER_HOME and outside the repository (whose dagster.yaml is the production one)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    _, engine = project
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    dagster = [str(Path(sys.executable).with_name("dagster")), "asset", "materialize"]
    module = ["-m", "credit_drift.definitions"]
    windowed = "production_window,feature_drift,evidently_report,drift_report,operational_metrics"
    for extra in (
        ["--select", "reference_profile"],
        ["--select", windowed, "--partition", "2026-11-02"],
    ):
        done = subprocess.run(
            [*dagster, *module, *extra],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-3000:]
    reports = read_drift_reports(engine)
    assert reports["report_date"].astype(str).str[:10].tolist() == ["2026-11-02"]
    assert reports["status"].tolist() == ["ALERT"]
    # The runs are in the fresh instance, so the UI on that DAGSTER_HOME shows them.
    with dg.DagsterInstance.from_config(str(home)) as instance:
        records = instance.fetch_materializations(dg.AssetKey("drift_report"), limit=10).records
        assert [r.asset_materialization.partition for r in records] == ["2026-11-02"]


def test_policy_comes_from_the_environment_unless_the_resource_sets_it(monkeypatch):
    monkeypatch.setenv("CREDIT_DRIFT_POLICY", "notebook")
    assert CreditDriftResource().settings().policy == "notebook"
    assert CreditDriftResource(policy="default").settings().policy == "default"
    monkeypatch.delenv("CREDIT_DRIFT_POLICY")
    assert CreditDriftResource().settings().policy == "default"
