"""Evidence across days: the per-feature CUSUM of the daily KS statistics (pure), and the
`drift_evidence` asset reading the last days' stored feature_drift values through the IO
manager (with the score attribution on the same days' drift_report)."""

import dagster as dg
import numpy as np
import pytest

from credit_drift.stats.evidence import (
    NOISE_ALLOWANCE,
    DayStatistics,
    EvidenceSettings,
    cusum_evidence,
)

N, M = 1_000.0, 50_000.0
NOISE = NOISE_ALLOWANCE * np.sqrt(1 / N + 1 / M)


def _days(rows: list[list[float]], n: float = N) -> list[DayStatistics]:
    return [
        DayStatistics(f"2026-11-{i + 1:02d}", np.array(r, dtype=float), np.full(len(r), n))
        for i, r in enumerate(rows)
    ]


def test_clean_days_accumulate_nothing():
    rng = np.random.default_rng(0)
    # A clean D is about 0.87 * sqrt(1/n + 1/m) on average: below the noise allowance.
    rows = [list(rng.uniform(0, NOISE, 20)) for _ in range(30)]
    out = cusum_evidence(
        [f"f{i}" for i in range(20)], np.full(20, M), _days(rows), EvidenceSettings()
    )
    assert out.status == "OK" and out.n_flagged == 0
    assert (out.table["cusum"] == 0).all()
    assert len(out.days) == 7  # only the span is read


def test_a_drift_growing_every_day_is_flagged_once_the_excess_adds_up():
    s = EvidenceSettings(days=7, allowance=0.02, threshold=0.1)
    # Feature a: D = noise + 0.02 + 0.03 * day -> excess 0.03, 0.06, 0.09 ... -> crosses 0.1 on
    # day 3 (0.18 >= 0.1) but not day 2 (0.09). Feature b: noise level, never.
    rows = [[NOISE + 0.02 + 0.03 * d, NOISE * 0.9] for d in range(1, 6)]
    names, m = ["a", "b"], np.full(2, M)
    on = [cusum_evidence(names, m, _days(rows[:k]), s) for k in range(1, 6)]
    assert [r.n_flagged for r in on] == [0, 0, 1, 1, 1]
    assert on[2].flagged_features == ["a"]
    assert on[2].table.set_index("feature").loc["a", "cusum"] == pytest.approx(0.18)
    assert on[2].table.set_index("feature").loc["a", "days_above"] == 3
    # 1 of 2 features: 50% > the ALERT share.
    assert on[2].status == "ALERT"


def test_the_noise_allowance_scales_with_the_window_size():
    s = EvidenceSettings(days=3, allowance=0.0, threshold=0.05)
    # D = 0.03 every day: pure noise at 1,000 rows (allowance ~0.032), a real 0.02+ excess per
    # day at 100,000 rows (allowance ~0.005).
    small = cusum_evidence(["a"], np.array([M]), _days([[0.03]] * 3, n=1_000), s)
    large = cusum_evidence(["a"], np.array([M]), _days([[0.03]] * 3, n=100_000), s)
    assert small.n_flagged == 0 and large.n_flagged == 1


def test_a_drift_that_stopped_ages_out_and_untested_days_add_nothing():
    s = EvidenceSettings(days=3, allowance=0.0, threshold=0.1)
    hot, cold = [NOISE + 0.2], [np.nan]
    assert cusum_evidence(["a"], np.array([M]), _days([hot, cold, cold]), s).n_flagged == 1
    aged = cusum_evidence(["a"], np.array([M]), _days([hot, cold, cold, cold]), s)
    assert aged.n_flagged == 0 and aged.status == "NO_DATA" and aged.days == ()
    assert np.isnan(aged.flagged_share)


def test_settings_are_checked():
    with pytest.raises(ValueError, match="days"):
        EvidenceSettings(days=0)
    with pytest.raises(ValueError, match="threshold"):
        EvidenceSettings(threshold=0)
    with pytest.raises(ValueError, match="features"):
        cusum_evidence(["a", "b"], np.full(2, M), _days([[0.1]]), EvidenceSettings())


# -- the asset ------------------------------------------------------------------------------
@pytest.fixture
def gradual_days(db_url, model_dir, tmp_path, monkeypatch):
    from credit_drift.defs.resources import resources_from_settings
    from credit_drift.settings import Settings
    from credit_drift_tests.conftest import replay_batches

    root, paths, _ = model_dir
    monkeypatch.setenv("CREDIT_DRIFT_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("CREDIT_DRIFT_ARTIFACTS_DIR", str(root / "artifacts"))
    monkeypatch.setenv("CREDIT_DRIFT_TRAINING_DATA", str(paths.train))
    batches = [{"kind": "gradual", "intensity": i} for i in (0.1, 0.2, 0.3)]
    replay_batches(db_url, model_dir, batches, batch_size=600)
    return resources_from_settings(Settings.from_env(), evidently_max_columns=4)


@pytest.mark.slow  # about 50 s per database on 2 shared cores
def test_drift_evidence_reads_the_stored_days_and_drift_report_says_why_the_score_moved(
    gradual_days,
):
    from credit_drift.defs.assets import (
        drift_evidence,
        drift_report,
        feature_drift,
        production_window,
        reference_profile,
        segment_drift,
    )

    resources = gradual_days
    instance = dg.DagsterInstance.ephemeral()
    assert dg.materialize([reference_profile], resources=resources, instance=instance).success
    days = ["2026-11-01", "2026-11-02", "2026-11-03"]
    upstream = [production_window, feature_drift, segment_drift, drift_report]
    for day in days:
        assert dg.materialize(
            upstream, partition_key=day, resources=resources, instance=instance
        ).success

    def evidence(day):
        result = dg.materialize(
            [drift_evidence, *upstream],
            selection=[drift_evidence],
            partition_key=day,
            resources=resources,
            instance=instance,
        )
        assert result.success
        (mat,) = result.get_asset_materialization_events()
        meta = mat.materialization.metadata
        return meta, result.get_asset_check_evaluations()

    meta, checks = evidence("2026-11-03")
    assert meta["days"].value == days
    assert meta["n_features_tracked"].value > 0
    assert meta["n_features_flagged"].value > 0  # three days leaning the same way
    assert {c.check_name for c in checks} == {"evidence_across_days"}
    assert meta["top_accumulated_features"].value.records[0].data["cusum"] > 0

    # A day whose predecessors were never materialized reads what exists, and says so.
    meta, _ = evidence("2026-11-09")
    assert meta["days"].value == ["2026-11-03"]

    report = instance.get_latest_materialization_event(
        dg.AssetKey("drift_report")
    ).asset_materialization.metadata
    assert "score_attribution" in report and "score_attribution_chart_path" in report
    rows = report["score_attribution"].value.records
    assert len(rows) == 15
    assert abs(rows[0].data["contribution_change"]) >= abs(rows[-1].data["contribution_change"])
