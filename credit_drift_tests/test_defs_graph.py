"""The Dagster definitions load from the defs folder, and the graph is what the docs say: asset
keys, partitions, dependencies, IO managers, pools, backfill policies, automation conditions,
checks, jobs, sensors and resources (a snapshot)."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from credit_drift.definitions import defs
from credit_drift.defs.partitions import daily_partitions

DAILY = {
    "production_window",
    "feature_drift",
    "evidently_report",
    "drift_report",
    "operational_metrics",
    "stability_report",
    "drift_evidence",
    "realized_performance",
    "estimated_performance",
    "segment_drift",
}


def _specs():
    return {spec.key.to_user_string(): spec for spec in defs.resolve_all_asset_specs()}


def test_asset_keys():
    assert set(_specs()) == DAILY | {"predictions", "outcomes", "reference_profile"}


def test_daily_assets_share_one_daily_utc_partitioning():
    specs = _specs()
    for key in DAILY:
        assert specs[key].partitions_def == daily_partitions, key
    assert specs["reference_profile"].partitions_def is None
    assert daily_partitions.timezone == "UTC"
    window = daily_partitions.time_window_for_partition_key("2026-11-02")
    assert window.start.isoformat() == "2026-11-02T00:00:00+00:00"
    assert window.end.isoformat() == "2026-11-03T00:00:00+00:00"


def test_dependencies():
    specs = _specs()

    def deps(key):
        return {d.asset_key.to_user_string() for d in specs[key].deps}

    assert deps("production_window") == {"predictions"}
    assert deps("feature_drift") == {"production_window", "reference_profile"}
    assert deps("evidently_report") == {"production_window", "feature_drift", "reference_profile"}
    # The day's segment table is shown on its drift report.
    assert deps("drift_report") == {
        "production_window",
        "feature_drift",
        "segment_drift",
        "reference_profile",
    }
    assert deps("operational_metrics") == {"production_window", "reference_profile"}
    assert deps("stability_report") == {"production_window", "feature_drift", "reference_profile"}
    assert deps("drift_evidence") == {"feature_drift", "reference_profile"}
    # Reads its cohort from the database, not the day's 419-feature window.
    assert deps("realized_performance") == {"predictions", "outcomes", "reference_profile"}
    # Label-free: the day's logged probabilities and the model's hold-out, no outcomes.
    assert deps("estimated_performance") == {"production_window"}
    assert deps("segment_drift") == {"production_window", "reference_profile"}


def test_drift_evidence_reads_the_last_days_of_feature_drift():
    """Its feature_drift input spans CREDIT_DRIFT_EVIDENCE_DAYS days ending on its own day."""
    from credit_drift.defs.partitions import EVIDENCE_DAYS

    assets_def = defs.resolve_assets_def("drift_evidence")
    mapping = assets_def.get_partition_mapping(dg.AssetKey("feature_drift"))
    assert isinstance(mapping, dg.TimeWindowPartitionMapping)
    assert (mapping.start_offset, mapping.end_offset) == (-(EVIDENCE_DAYS - 1), 0)
    upstream = mapping.get_upstream_mapped_partitions_result_for_partitions(
        daily_partitions.subset_with_partition_keys(["2026-11-10"]),
        daily_partitions,
        daily_partitions,
    ).partitions_subset.get_partition_keys()
    assert len(upstream) == EVIDENCE_DAYS and upstream[-1] == "2026-11-10"


def test_snapshot_of_what_runs_where():
    """Each daily asset: its IO manager, pool, backfill policy and automation condition."""
    from credit_drift.defs.automation import (
        DOWNSTREAM_OF_THE_DAY,
        WHEN_THE_DAY_CLOSES,
        WITH_THE_DAYS_THAT_EXIST,
        while_cohorts_mature,
    )
    from credit_drift.defs.partitions import OUTCOME_HORIZON_DAYS

    def describe(key):
        assets_def = defs.resolve_assets_def(key)
        spec = _specs()[key]
        carries = key in (
            "production_window",
            "feature_drift",
            "realized_performance",
            "segment_drift",
        )
        return (
            assets_def.get_io_manager_key_for_asset_key(assets_def.key) if carries else "-",
            assets_def.op.pool,
            str(assets_def.backfill_policy),
            spec.automation_condition,
        )

    multi = "BackfillPolicy.multi_run(max_partitions_per_run=7)"
    # The assets whose values later steps take go through the daily IO manager; the others
    # return no value (their products are database rows and report files).
    daily_io, none, pool = "daily_io_manager", "-", "credit_drift_database"
    assert {key: describe(key) for key in DAILY | {"reference_profile"}} == {
        "production_window": (daily_io, pool, multi, WHEN_THE_DAY_CLOSES),
        "feature_drift": (daily_io, pool, multi, DOWNSTREAM_OF_THE_DAY),
        "evidently_report": (none, None, multi, DOWNSTREAM_OF_THE_DAY),
        "drift_report": (none, pool, multi, DOWNSTREAM_OF_THE_DAY),
        "operational_metrics": (none, None, multi, DOWNSTREAM_OF_THE_DAY),
        "stability_report": (none, None, multi, DOWNSTREAM_OF_THE_DAY),
        "drift_evidence": (none, None, multi, WITH_THE_DAYS_THAT_EXIST),
        "realized_performance": (
            daily_io,
            pool,
            multi,
            while_cohorts_mature(OUTCOME_HORIZON_DAYS),
        ),
        "estimated_performance": (none, None, multi, DOWNSTREAM_OF_THE_DAY),
        "segment_drift": (daily_io, None, multi, DOWNSTREAM_OF_THE_DAY),
        "reference_profile": (none, pool, "None", None),
    }


def test_checks():
    graph = defs.resolve_asset_graph()
    checks = {(c.asset_key.to_user_string(), c.name) for c in graph.asset_check_keys}
    assert checks == {
        ("production_window", "enough_rows"),
        ("production_window", "features_match_model"),
        ("drift_report", "drifted_share"),
        ("drift_report", "important_features_stable"),
        ("drift_report", "joint_distribution_stable"),
        ("drift_evidence", "evidence_across_days"),
        ("estimated_performance", "estimated_performance_within_bounds"),
        ("segment_drift", "segments_stable"),
    } | {(key, "freshness_check") for key in DAILY}
    # The data checks are scoped to the day they check.
    for asset, name in checks - {(key, "freshness_check") for key in DAILY}:
        spec = graph.get_check_spec(dg.AssetCheckKey(dg.AssetKey(asset), name))
        assert spec.partitions_def == daily_partitions, (asset, name)


def test_every_asset_has_a_description():
    for key, spec in _specs().items():
        assert spec.description, key


def test_jobs_sensors_resources_resolve():
    assert defs.resolve_job_def("daily_drift_job").partitions_def == daily_partitions
    defs.resolve_job_def("drift_alert_job")
    defs.resolve_job_def("reference_profile_job")
    assert defs.resolve_job_def("realized_performance_job").partitions_def == daily_partitions
    late = defs.resolve_sensor_def("late_outcomes_sensor")
    assert late.job_name == "realized_performance_job"
    assert defs.resolve_sensor_def("drift_alert_sensor").job_name == "drift_alert_job"
    sensors = {s.name: s for s in defs.sensors}
    assert set(sensors) == {
        "drift_alert_sensor",
        "late_outcomes_sensor",
        "credit_drift_automation_sensor",
        "credit_drift_freshness_sensor",
    }
    for sensor in sensors.values():  # on with the daemon, no toggling in the UI needed
        assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    # A daily deadline: evaluated every 10 minutes, not at Dagster's default 30 s, which launched
    # a check run about every 45 s beside a backfill on the stack.
    assert sensors["credit_drift_freshness_sensor"].minimum_interval_seconds == 600
    assert not defs.schedules  # the automation conditions replaced the daily schedule
    assert set(defs.resources) == {"database", "reference", "project", "daily_io_manager"}


def _dagster_env(tmp_path):
    # A fresh DAGSTER_HOME with default (SQLite) storage: without one, Dagster uses a temporary
    # instance deleted on exit.
    home = tmp_path / "dagster_home"
    home.mkdir()
    return {**os.environ, "DAGSTER_HOME": str(home)}


def test_dagster_definitions_validate_cli(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "dagster",
            "definitions",
            "validate",
            "-m",
            "credit_drift.definitions",
        ],
        capture_output=True,
        text=True,
        env=_dagster_env(tmp_path),
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_dg_check_defs(tmp_path):
    dg_cli = Path(sys.executable).with_name("dg")
    out = subprocess.run(
        [str(dg_cli), "check", "defs"],
        capture_output=True,
        text=True,
        env=_dagster_env(tmp_path),
        cwd=Path(__file__).resolve().parents[1],
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_no_import_time_side_effects(tmp_path):
    # Importing the definitions must not open a database, load a model or write a file.
    code = "import os, credit_drift.definitions; print(sorted(os.listdir('.')))"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_production_instance_configuration_loads(postgres_url, tmp_path, monkeypatch):
    """deploy/dagster.yaml on a real PostgreSQL: storage, run queue, pool limit and
    run monitoring as the README describes them."""
    import shutil

    production = Path(__file__).resolve().parents[1] / "deploy" / "dagster.yaml"
    shutil.copy(production, tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_PG_URL", postgres_url)
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        config = instance.get_concurrency_config()
        assert config.run_queue_config.max_concurrent_runs == 2
        assert config.pool_config.default_pool_limit == 2
        assert instance.run_monitoring_enabled
