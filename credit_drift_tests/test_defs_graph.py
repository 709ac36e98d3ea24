"""The Dagster definitions load, and the asset graph is what the docs say it is."""

import os
import subprocess
import sys
from pathlib import Path

from credit_drift.definitions import defs
from credit_drift.defs.partitions import daily_partitions

WINDOWED = {
    "production_window",
    "feature_drift",
    "evidently_report",
    "drift_report",
    "operational_metrics",
}


def _specs():
    return {spec.key.to_user_string(): spec for spec in defs.resolve_all_asset_specs()}


def test_asset_keys():
    assert set(_specs()) == WINDOWED | {"predictions", "reference_profile"}


def test_windowed_assets_share_one_daily_utc_partitioning():
    specs = _specs()
    for key in WINDOWED:
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
    assert deps("evidently_report") == {"feature_drift"}
    assert deps("drift_report") == {"feature_drift"}
    assert deps("operational_metrics") == {"production_window", "reference_profile"}


def test_checks():
    checks = {
        (c.asset_key.to_user_string(), c.name) for c in defs.resolve_asset_graph().asset_check_keys
    }
    assert checks == {
        ("production_window", "enough_rows"),
        ("production_window", "features_match_model"),
        ("drift_report", "drifted_share"),
        ("drift_report", "important_features_stable"),
        ("drift_report", "joint_distribution_stable"),
    }


def test_every_asset_has_a_description():
    for key, spec in _specs().items():
        assert spec.description, key


def test_jobs_schedule_sensor_resolve():
    assert defs.resolve_job_def("daily_drift_job").partitions_def == daily_partitions
    defs.resolve_job_def("drift_alert_job")
    assert defs.resolve_schedule_def("daily_drift_schedule").job_name == "daily_drift_job"
    assert defs.resolve_sensor_def("drift_alert_sensor").job_name == "drift_alert_job"


def _dagster_env(tmp_path):
    # A fresh DAGSTER_HOME with default (SQLite) storage. Without one, Dagster would pick up the
    # production dagster.yaml of the working directory, which needs DAGSTER_PG_URL.
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
