"""The IO manager that carries each day's values between the daily assets: a round trip of both
stored value types on a local folder, a `file://` URL and an fsspec in-memory filesystem; one
value per day of a multi-day run; versioned writes (a reader never sees half a value); private
local files."""

import datetime as dt
import math
import os
import stat
import uuid

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from upath import UPath

from credit_drift.defs.io_manager import (
    MANIFEST,
    STALE_TEMPORARY,
    DailyValueIOManagerFactory,
    from_parts,
    read_parts,
    write_parts,
)
from credit_drift.pipeline.feature_drift import FeatureDriftResult
from credit_drift.pipeline.window import ProductionWindow
from credit_drift.stats.results import FEATURE_RESULT_NAMES
from credit_drift.storage.windows import DayWindow

DAY = DayWindow.of("2026-11-02")


def _window(n: int = 5) -> ProductionWindow:
    rng = np.random.default_rng(0)
    features = pd.DataFrame(
        {
            "AMT_CREDIT": rng.normal(size=n),
            "EXT_SOURCE_1": np.where(rng.random(n) < 0.3, np.nan, rng.random(n)),
            "NAME_CONTRACT_TYPE": ["Cash loans", None, "Revolving loans", "New", "Cash loans"][:n],
        }
    )
    meta = pd.DataFrame(
        {
            "created_at": pd.date_range("2026-11-02", periods=n, freq="h", tz="UTC"),
            "request_id": [f"r{i}" for i in range(n)],
            "probability": rng.random(n),
            "decision": ["APPROVED"] * n,
        }
    )
    return ProductionWindow(DAY, features, meta, ("A",), ("B", "C"), 0.25)


def _drift() -> FeatureDriftResult:
    results = pd.DataFrame({name: [None, None] for name in FEATURE_RESULT_NAMES})
    results["feature"] = ["a", "b"]
    results["kind"] = ["numeric", "categorical"]
    results["test"] = ["ks", "chi2"]
    results["statistic"] = [0.2, 3.5]
    results["p_value"] = [1e-9, np.nan]
    results["drifted"] = [True, False]
    results["unseen_categories"] = [[], ["zz", "yy"]]
    results["n_current"] = [10, 10]
    return FeatureDriftResult(
        DAY, results, "ALERT", "default", 10, 2, 1, 0.5, float("nan"), True, 0.01
    )


def _bases(tmp_path):
    return {
        "folder": str(tmp_path / "io"),
        "file_url": (tmp_path / "io_url").as_uri(),
        "memory": f"memory://credit-drift-tests/{uuid.uuid4().hex}",
    }


@pytest.fixture(params=["folder", "file_url", "memory"])
def base(request, tmp_path) -> UPath:
    return UPath(_bases(tmp_path)[request.param])


def test_a_production_window_round_trips(base):
    window = _window()
    folder = base / "production_window" / DAY.key
    write_parts(window.to_parts(), folder)
    back = from_parts(read_parts(folder))
    assert isinstance(back, ProductionWindow)
    pd.testing.assert_frame_equal(back.features, window.features)
    pd.testing.assert_frame_equal(back.meta, window.meta)
    assert (back.day, back.missing_features, back.extra_features, back.read_seconds) == (
        DAY,
        ("A",),
        ("B", "C"),
        0.25,
    )


def test_a_feature_drift_result_round_trips(base):
    drift = _drift()
    folder = base / "feature_drift" / DAY.key
    write_parts(drift.to_parts(), folder)
    back = from_parts(read_parts(folder))
    assert isinstance(back, FeatureDriftResult)
    pd.testing.assert_frame_equal(back.results, drift.results)
    assert back.results["unseen_categories"].tolist() == [[], ["zz", "yy"]]
    assert (back.status, back.n_drifted, back.drift_share) == ("ALERT", 1, 0.5)
    assert math.isnan(back.weighted_drift_share)  # NaN survives JSON as null and back
    assert back.important_features_moved is True and back.day == DAY


def test_versions_the_last_write_wins_and_old_versions_go(base, monkeypatch):
    folder = base / "production_window" / DAY.key
    first = write_parts(_window(5).to_parts(), folder)
    second = write_parts(_window(3).to_parts(), folder)
    assert second > first
    assert len(from_parts(read_parts(folder)).meta) == 3
    # A write leaves the current version and the previous one (a reader may still be on it).
    names = {p.name for p in folder.iterdir()}
    assert {first, second, MANIFEST} <= names
    # Versions older than the grace period, beyond those two, are removed by the next write.
    import credit_drift.defs.io_manager as io

    monkeypatch.setattr(io, "STALE_TEMPORARY", dt.timedelta(seconds=-1))
    third = write_parts(_window(4).to_parts(), folder)
    versions = sorted(p.name for p in folder.iterdir() if p.name.startswith("v"))
    assert versions == [second, third]


def test_a_value_never_written_whole_is_not_read(base):
    folder = base / "production_window" / "2026-11-03"
    # A writer that died after its Parquet files but before the manifest: nothing to read.
    (folder / "v20261103T000000000000-dead").mkdir(parents=True, exist_ok=True)
    with pytest.raises(FileNotFoundError, match="materialize that asset's partition first"):
        read_parts(folder)


def test_local_files_are_private_and_abandoned_temporaries_are_cleaned(tmp_path):
    folder = UPath(tmp_path / "io" / "production_window" / DAY.key)
    stale = folder / f".{MANIFEST}.abandoned.tmp"
    folder.mkdir(parents=True)
    stale.write_bytes(b"")
    old = (dt.datetime.now(dt.UTC) - STALE_TEMPORARY - dt.timedelta(minutes=1)).timestamp()
    os.utime(stale.path, (old, old))
    version = write_parts(_window().to_parts(), folder)
    assert not stale.exists()
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    for path in [folder, folder / version]:
        assert stat.S_IMODE(os.stat(path.path).st_mode) == 0o700, path
    for path in [folder / MANIFEST, folder / version / "features.parquet"]:
        assert stat.S_IMODE(os.stat(path.path).st_mode) == 0o600, path


# -- through Dagster: one value per day of the run -------------------------------------------
PARTITIONS = dg.DailyPartitionsDefinition(start_date="2026-11-01", timezone="UTC")
RANGE = {
    "dagster/asset_partition_range_start": "2026-11-01",
    "dagster/asset_partition_range_end": "2026-11-03",
}


@dg.asset(
    partitions_def=PARTITIONS,
    io_manager_key="daily_io_manager",
    backfill_policy=dg.BackfillPolicy.multi_run(7),
)
def windows(context: dg.AssetExecutionContext):
    out = {}
    for i, key in enumerate(context.partition_keys):
        w = _window(i + 2)
        out[key] = ProductionWindow(DayWindow.of(key), w.features, w.meta)
    return dg.MaterializeResult(value=out)


@dg.asset(partitions_def=PARTITIONS, backfill_policy=dg.BackfillPolicy.multi_run(7))
def sizes(
    context: dg.AssetExecutionContext, windows: dict[str, ProductionWindow]
) -> dg.MaterializeResult:
    assert sorted(windows) == context.partition_keys
    for key, w in windows.items():
        assert w.day.key == key
        context.add_asset_metadata({"n": len(w.meta)}, partition_key=key)
    return dg.MaterializeResult()


@pytest.mark.parametrize("kind", ["folder", "memory"])
def test_a_multi_day_run_stores_and_hands_over_one_value_per_day(kind, tmp_path):
    base = _bases(tmp_path)[kind]
    instance = dg.DagsterInstance.ephemeral()
    job = dg.define_asset_job("both", selection=[windows, sizes], partitions_def=PARTITIONS)
    defs = dg.Definitions(
        assets=[windows, sizes],
        jobs=[job],
        resources={"daily_io_manager": DailyValueIOManagerFactory(base=base)},
    )
    assert defs.resolve_job_def("both").execute_in_process(instance=instance, tags=RANGE).success
    for i, key in enumerate(["2026-11-01", "2026-11-02", "2026-11-03"]):
        stored = from_parts(read_parts(UPath(base) / "windows" / key))
        assert len(stored.meta) == i + 2
        (record,) = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("sizes"), asset_partitions=[key]),
            limit=1,
        ).records
        assert record.asset_materialization.metadata["n"].value == i + 2
    # A later single-day run of the downstream asset reads that day only.
    single = dg.materialize(
        [windows, sizes],
        selection=[sizes],
        partition_key="2026-11-02",
        instance=instance,
        resources={"daily_io_manager": DailyValueIOManagerFactory(base=base)},
    )
    assert single.success


def test_a_value_for_another_day_than_the_run_is_refused(tmp_path):
    @dg.asset(partitions_def=PARTITIONS, io_manager_key="daily_io_manager")
    def wrong(context: dg.AssetExecutionContext):
        return dg.MaterializeResult(value={"2026-11-09": _window()})

    with pytest.raises(Exception, match=r"returned days \['2026-11-09'\] for a run of"):
        dg.materialize(
            [wrong],
            partition_key="2026-11-02",
            resources={"daily_io_manager": DailyValueIOManagerFactory(base=str(tmp_path))},
        )
