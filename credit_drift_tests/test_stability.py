"""The stability report: bands, the noise level a PSI is read against, the day's CSI table from
the drift results (on SQLite and PostgreSQL), the period read back from the database, and the
export a validation team files (CSV + a self-contained HTML page)."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from credit_drift.cli import main
from credit_drift.pipeline.config import PipelineConfig
from credit_drift.pipeline.feature_drift import compute_feature_drift
from credit_drift.pipeline.reference import build_reference_profile, load_reference_profile
from credit_drift.pipeline.stability import (
    DAILY_COLUMNS,
    period_tables,
    stability_of_day,
    stability_period,
)
from credit_drift.pipeline.window import read_production_window
from credit_drift.reports.stability import write_stability_export
from credit_drift.settings import Settings
from credit_drift.stats.effect import psi_many
from credit_drift.stats.reference import NumericReference
from credit_drift.stats.stability import (
    CSI_COLUMNS,
    expected_psi_if_stable,
    interpret,
    psi_band,
    score_stability,
)
from credit_drift.storage.db import make_engine
from credit_drift.storage.windows import DayWindow
from credit_drift_tests.conftest import replay_batches

CLEAN, SUDDEN = "2026-11-01", "2026-11-02"


def test_bands_at_their_boundaries():
    assert [psi_band(v) for v in (0.0, 0.0999, 0.10, 0.2499, 0.25, 3.0)] == [
        "stable",
        "stable",
        "moderate",
        "moderate",
        "significant",
        "significant",
    ]
    assert psi_band(float("nan")) == "n/a"


def test_the_noise_level_is_what_unshifted_samples_give():
    """(B - 1)(1/n + 1/m) is the mean PSI of samples drawn from one distribution (large sizes,
    continuous values: 10 deciles, no empty bin)."""
    rng = np.random.default_rng(7)
    n_ref, n_cur, repeats = 20_000, 2_000, 300
    reference = rng.normal(size=n_ref)
    values, counts = np.unique(reference, return_counts=True)
    ref = NumericReference(values, counts, 0)
    windows = rng.normal(size=(n_cur, repeats))
    psi = psi_many([ref] * repeats, windows, workers=1)
    expected = expected_psi_if_stable(10, n_ref, n_cur)
    assert expected == pytest.approx(9 * (1 / 20_000 + 1 / 2_000))
    assert psi.mean() == pytest.approx(expected, rel=0.1)
    assert np.isnan(expected_psi_if_stable(10, 0, 100))


def test_the_interpretation_separates_size_from_evidence():
    assert interpret(0.4, 1e-6, 1000) == "significant shift"
    assert (
        interpret(0.4, 0.3, 40) == "significant by the band, but within sampling noise at 40 rows"
    )
    assert interpret(0.02, 1e-9, 100_000) == "stable; a small real shift"
    assert interpret(0.02, 0.5, 1000) == "stable"
    assert interpret(float("nan"), float("nan"), 0) == "not measured (no values)"


def test_score_stability_counts_decisions_and_the_development_rate():
    training = NumericReference(np.array([0.1, 0.3, 0.5, 0.7]), np.array([4, 3, 2, 1]), 0)
    decisions = np.array(["APPROVED", "REFUSED", "APPROVED", "APPROVED"], dtype=object)
    s = score_stability(
        training,
        np.array([0.2, 0.6, np.nan, 0.1]),
        decisions,
        threshold=0.5,
        psi=0.3,
        ks_p_value=0.01,
    )
    assert (s.n_approved, s.n_refused, s.n_current) == (3, 1, 3)
    assert s.approval_rate == pytest.approx(0.75)
    # A development score at or above the threshold is refused: 0.1 and 0.3 are approved.
    assert s.development_approval_rate == pytest.approx(7 / 10)
    assert (s.band, s.interpretation) == ("significant", "significant shift")


@pytest.fixture
def materialized(db_url, model_dir, tmp_path):
    """A clean day and a sudden-drift day logged, the reference built, both days' drift results
    stored; a third day left without results."""
    root, paths, artifacts = model_dir
    replay_batches(
        db_url,
        model_dir,
        [{"kind": "clean"}, {"kind": "sudden", "intensity": 0.7}, {"kind": "clean"}],
        batch_size=400,
    )
    config = PipelineConfig.from_settings(
        Settings.from_env(
            {"CREDIT_DRIFT_HOME": str(tmp_path / "state")},
            artifacts_dir=root / "artifacts",
            training_data=paths.train,
        )
    )
    engine = make_engine(db_url)
    build_reference_profile(engine, config)
    reference = load_reference_profile(engine)
    drifts = {}
    for key in (CLEAN, SUDDEN):
        window = read_production_window(engine, artifacts.schema, DayWindow.of(key))
        drifts[key] = (window, compute_feature_drift(engine, reference, window, config.policy))
    return engine, reference, drifts


def test_a_days_csi_is_its_drift_results_psi_read_against_its_test(materialized):
    engine, reference, drifts = materialized
    for key, (window, drift) in drifts.items():
        day = stability_of_day(
            reference,
            DayWindow.of(key),
            window.meta[["probability", "decision", "threshold"]],
            drift.results,
        )
        assert list(day.csi.columns) == list(CSI_COLUMNS)
        by_feature = drift.results.set_index("feature")
        csi = day.csi.set_index("feature")
        pd.testing.assert_series_equal(
            csi["csi"], by_feature.loc[csi.index, "psi"], check_names=False
        )
        assert (csi["beyond_noise"] == (by_feature.loc[csi.index, "p_adjusted"] < 0.05)).all()
        assert day.csi["csi"].is_monotonic_decreasing
        assert day.score.n_approved + day.score.n_refused == window.n_rows
        summary = day.summary()
        if key == CLEAN:
            # No characteristic is called shifted on a clean day, whatever its band says.
            assert (summary["n_csi_moderate"], summary["n_csi_significant"]) == (0, 0)
            assert summary["max_shifted_csi_feature"] == ""
        else:
            assert summary["n_csi_significant"] > 10
            assert summary["score_band"] in ("moderate", "significant")


def test_an_empty_day_is_reported_as_such_not_as_stable(materialized):
    engine, reference, _ = materialized
    (day,) = stability_period(engine, reference, dt.date(2026, 11, 9), dt.date(2026, 11, 9))
    summary = day.summary()
    assert day.score is None and summary["n_predictions"] == 0
    assert summary["score_band"] == "n/a" and summary["drift_results"] == "not materialized"


def test_the_period_reads_back_what_the_days_computed_and_exports_it(materialized, tmp_path):
    engine, reference, drifts = materialized
    first, last = dt.date(2026, 11, 1), dt.date(2026, 11, 3)
    days = stability_period(engine, reference, first, last)
    daily, csi = period_tables(days)
    assert list(daily.columns) == list(DAILY_COLUMNS)
    assert daily["day"].tolist() == [CLEAN, SUDDEN, "2026-11-03"]
    assert daily["drift_results"].tolist() == ["computed", "computed", "not materialized"]
    assert daily["n_predictions"].tolist() == [400, 400, 400]
    for key, (window, drift) in drifts.items():
        direct = stability_of_day(
            reference,
            DayWindow.of(key),
            window.meta[["probability", "decision", "threshold"]],
            drift.results,
        ).summary()
        row = daily.set_index("day").loc[key]
        for column in ("score_psi", "approval_rate", "n_csi_significant", "max_shifted_csi"):
            assert row[column] == pytest.approx(direct[column], nan_ok=True)

    paths = write_stability_export(
        daily,
        csi,
        tmp_path / "out",
        first,
        last,
        profile_version=reference.profile_version,
        model_version=reference.model_version,
    )
    assert pd.read_csv(paths.daily_csv)["day"].tolist() == daily["day"].tolist()
    assert len(pd.read_csv(paths.csi_csv)) == len(csi) > 0
    page = paths.html.read_text()
    assert "data:image/png;base64," in page and "2026-11-03" in page  # the day to materialize
    assert "<script" not in page and 'src="http' not in page and "<link" not in page
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_the_cli_exports_a_period(materialized, tmp_path, monkeypatch, capsys, db_url):
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("CREDIT_DRIFT_HOME", str(tmp_path / "state"))
    out = tmp_path / "export"
    assert main(["stability", "--from", CLEAN, "--to", SUDDEN, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert CLEAN in printed and SUDDEN in printed and "stability_" in printed
    assert (out / f"stability_{CLEAN}_{SUDDEN}.html").exists()
    assert main(["stability", "--from", SUDDEN, "--to", CLEAN]) == 2
    assert "before --from" in capsys.readouterr().err
