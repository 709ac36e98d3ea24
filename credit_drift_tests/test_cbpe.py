"""The label-free performance estimate (stats/cbpe.py): exact expectations against a full
enumeration of the label draws, the AUC against scikit-learn and a Monte-Carlo reference, the
isotonic calibration against scikit-learn, the calibration check and the bands."""

import itertools

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score

from credit_drift.stats.cbpe import (
    BAND_METRICS,
    BAND_SAMPLES,
    BAND_STD,
    CbpeError,
    check_calibration,
    estimate_performance,
    expected_auc,
    expected_calibration_error,
    fit_cbpe,
    fit_isotonic,
)


def _realized(y, refused, cost_fn, cost_fp):
    tp = int((y & refused).sum())
    fp = int((~y & refused).sum())
    fn = int((y & ~refused).sum())
    tn = int((~y & ~refused).sum())
    return np.array([tp, fp, fn, tn, cost_fn * fn + cost_fp * fp, y.mean()])


def test_confusion_matrix_cost_and_default_rate_are_exact_expectations():
    """Every one of the 2^10 label vectors, weighted by its probability under q: the weighted
    mean of the realized counts, cost and default rate IS the estimate (to rounding)."""
    rng = np.random.default_rng(1)
    q = rng.uniform(0.01, 0.99, 10)
    scores = rng.uniform(size=10)
    refused = scores >= 0.5
    exact = np.zeros(6)
    for bits in itertools.product((0, 1), repeat=10):
        y = np.array(bits, dtype=bool)
        weight = np.prod(np.where(y, q, 1 - q))
        exact += weight * _realized(y, refused, 10.0, 1.0)
    est = estimate_performance(scores, q, refused, cost_fn=10.0, cost_fp=1.0)
    got = [est.expected_tp, est.expected_fp, est.expected_fn, est.expected_tn, est.cost]
    np.testing.assert_allclose(got + [est.default_rate], exact, rtol=1e-12)
    assert est.cost_per_application == pytest.approx(est.cost / 10)
    total = est.expected_tp + est.expected_fp + est.expected_fn + est.expected_tn
    assert total == pytest.approx(10)


def test_expected_auc_of_certain_labels_is_roc_auc_score_ties_included():
    rng = np.random.default_rng(2)
    scores = rng.integers(0, 20, 500).astype(float)  # many ties
    y = (rng.uniform(size=500) < 0.3).astype(float)
    assert expected_auc(scores, y) == pytest.approx(roc_auc_score(y, scores), abs=1e-12)


def test_expected_auc_converges_to_the_mean_realized_auc():
    """Monte Carlo: y ~ Bernoulli(q), 4,000 draws; the mean realized AUC sits within 4 standard
    errors (plus the ratio-of-expectations bias, small at 2,000 rows) of the estimate."""
    rng = np.random.default_rng(3)
    n = 2000
    scores = rng.normal(size=n)
    q = 1 / (1 + np.exp(-(scores * 1.2 - 2.0)))
    # Continuous scores, no ties: a draw's AUC is its Mann-Whitney U over n1 * n0, from the
    # ranks computed once (checked against roc_auc_score on the first draw).
    ranks = np.argsort(np.argsort(scores)) + 1.0
    y = rng.uniform(size=(4000, n)) < q
    n1 = y.sum(axis=1)
    aucs = ((y * ranks).sum(axis=1) - n1 * (n1 + 1) / 2) / (n1 * (n - n1))
    assert aucs[0] == pytest.approx(roc_auc_score(y[0], scores), abs=1e-12)
    se = aucs.std(ddof=1) / np.sqrt(len(aucs))
    assert abs(aucs.mean() - expected_auc(scores, q)) < 4 * se + 1e-3
    # and it is not trivially so: a wrong calibration moves it well outside
    assert abs(aucs.mean() - expected_auc(scores, np.clip(q * 3, 0, 1))) > 20 * se


def test_expected_auc_undefined_with_one_expected_class():
    assert np.isnan(expected_auc([0.1, 0.2], [0.0, 0.0]))
    assert np.isnan(expected_auc([0.1], [0.5]))


def test_isotonic_equals_scikit_learn():
    rng = np.random.default_rng(4)
    x = np.round(rng.uniform(size=3000), 3)  # ties
    y = (rng.uniform(size=3000) < x**2).astype(float)
    ours = fit_isotonic(x, y)
    theirs = IsotonicRegression(out_of_bounds="clip").fit(x, y)
    grid = np.r_[-0.5, np.linspace(0, 1, 997), 1.5]
    np.testing.assert_allclose(ours(grid), theirs.predict(grid), atol=1e-12)
    assert np.all(np.diff(ours(grid)) >= 0)


def test_calibration_check_sees_a_miscalibrated_model_and_a_calibrated_one():
    rng = np.random.default_rng(5)
    true = rng.beta(1, 9, 20000)
    y = (rng.uniform(size=20000) < true).astype(float)
    inflated = np.sqrt(true)  # what class_weight="balanced" does, roughly: PDs too high
    bad = check_calibration(inflated, y)
    assert bad.raw_ece > 0.1 and bad.calibrated_ece < 0.02 and not bad.raw_is_calibrated
    assert bad.mean_calibrated == pytest.approx(y.mean(), abs=0.01)
    good = check_calibration(true, y)
    assert good.raw_ece < 0.02
    assert expected_calibration_error(true, y) == good.raw_ece


def test_bands_from_day_sized_samples_of_the_hold_out():
    rng = np.random.default_rng(6)
    true = rng.beta(1, 9, 10000)
    y = (rng.uniform(size=10000) < true).astype(float)
    ref = fit_cbpe(true, y)
    bands = ref.bands(1000, threshold=0.2, cost_fn=10.0, cost_fp=1.0)
    assert set(bands) == {"auc", "default_rate", "cost_per_application"}
    b = bands["default_rate"]
    assert b.n_samples == BAND_SAMPLES and b.size == 1000 and b.lower < y.mean() < b.upper
    assert b.upper - b.mean == pytest.approx(BAND_STD * b.std)
    # The default rate's estimate is a mean of calibrated PDs: its standard deviation over days
    # of 1,000 is theirs / sqrt(1000), widened for the hold-out's own error (sqrt(1 + 0.1)).
    q = ref.calibrator(true)
    assert b.std == pytest.approx(q.std() / np.sqrt(1000) * np.sqrt(1.1), rel=0.15)
    assert b.mean == pytest.approx(q.mean(), abs=0.5 * b.std)
    # Seeded by the day size: the same size gets the same band.
    again = ref.bands(1000, threshold=0.2, cost_fn=10.0, cost_fp=1.0)
    assert again == bands
    chunk = true[:1000]
    day = ref.estimate(chunk, chunk >= 0.2, cost_fn=10.0, cost_fp=1.0)
    assert bands["auc"].contains(day.auc) and b.contains(day.default_rate)
    # a riskier population moves the estimated default rate out of the band
    risky = np.clip(true[:1000] * 2.5, 0, 1)
    moved = ref.estimate(risky, risky >= 0.2, cost_fn=10.0, cost_fp=1.0)
    assert not b.contains(moved.default_rate)
    assert ref.bands(6000, threshold=0.2, cost_fn=10.0, cost_fp=1.0) is None
    assert ref.bands(5000, threshold=0.2, cost_fn=10.0, cost_fp=1.0) is not None


def test_clean_days_rarely_leave_the_band():
    """Days drawn from the hold-out's own population stay inside the band but for the
    3-standard-deviation tails, on a 4,000-row hold-out and days of 1,000 rows (the demo's
    sizes, where 4 consecutive chunks of the hold-out gave too uncertain a band)."""
    rng = np.random.default_rng(15)

    def draw(n):
        p = rng.beta(1, 9, n)
        return p, (rng.uniform(size=n) < p).astype(float)

    ref = fit_cbpe(*draw(4000))
    bands = ref.bands(1000, threshold=0.2, cost_fn=10.0, cost_fp=1.0)
    outside = dict.fromkeys(BAND_METRICS, 0)
    n_days, warned = 300, 0
    for _ in range(n_days):
        s, _ = draw(1000)
        day = ref.estimate(s, s >= 0.2, cost_fn=10.0, cost_fp=1.0)
        missed = [m for m in BAND_METRICS if not bands[m].contains(day.metric(m))]
        warned += bool(missed)
        for m in missed:
            outside[m] += 1
    # 3 standard deviations: 0.27% per metric if the band's width is right; 3 metrics.
    assert warned <= 0.03 * n_days, outside
    with pytest.raises(CbpeError, match="day size"):
        ref.bands(0, threshold=0.2, cost_fn=10.0, cost_fp=1.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(scores=[0.1, np.nan], probabilities=[0.1, 0.2], refused=[True, False]), "scores"),
        (dict(scores=[0.1, 0.2], probabilities=[0.1, 1.2], refused=[True, False]), "[0, 1]"),
        (dict(scores=[0.1, 0.2], probabilities=[0.1, 0.2], refused=[1, 0]), "boolean"),
        (dict(scores=[0.1], probabilities=[0.1, 0.2], refused=[True, False]), "lengths"),
        (dict(scores=[], probabilities=[], refused=np.array([], bool)), "no rows"),
    ],
)
def test_bad_input_is_named(kwargs, message):
    with pytest.raises(CbpeError, match=message.replace("[", r"\[").replace("]", r"\]")):
        estimate_performance(**kwargs, cost_fn=10.0, cost_fp=1.0)


def test_hold_out_must_have_both_outcomes():
    with pytest.raises(CbpeError, match="both outcomes"):
        fit_cbpe([0.1, 0.2, 0.3, 0.4], [0, 0, 0, 0])
    with pytest.raises(CbpeError, match="0 or 1"):
        fit_cbpe([0.1, 0.2, 0.3, 0.4], [0, 0.5, 1, 0])


# -- the model's hold-out in the artifacts ---------------------------------------------------
def test_the_hold_out_is_kept_with_the_model_and_old_artifacts_still_load(model_dir, tmp_path):
    import dataclasses

    from credit_drift.model.artifacts import HOLDOUT_FILE, load_artifacts, save_artifacts
    from credit_drift.pipeline.estimated import EstimateUnavailableError, cbpe_reference

    _, _, artifacts = model_dir
    holdout = artifacts.holdout
    assert len(holdout.probability) == artifacts.metrics["n_test"]
    assert holdout.outcome.mean() == pytest.approx(artifacts.metrics["test_default_rate"])
    assert roc_auc_score(holdout.outcome, holdout.probability) == pytest.approx(
        artifacts.metrics["auc"]
    )
    loaded = load_artifacts(save_artifacts(artifacts, tmp_path / "a"))
    np.testing.assert_array_equal(loaded.holdout.probability, holdout.probability)
    np.testing.assert_array_equal(loaded.holdout.outcome, holdout.outcome)
    # Not part of the version; a model saved without one (trained before) loads without one,
    # and the estimate says what to do instead of failing somewhere deeper.
    (tmp_path / "a" / HOLDOUT_FILE).unlink()
    old = load_artifacts(tmp_path / "a")
    assert old.holdout is None and old.version == artifacts.version
    with pytest.raises(EstimateUnavailableError, match="retrain"):
        cbpe_reference(old)
    # A model saved without a hold-out over one saved with it leaves no stale file behind.
    save_artifacts(artifacts, tmp_path / "b")
    save_artifacts(dataclasses.replace(artifacts, holdout=None), tmp_path / "b")
    assert not (tmp_path / "b" / HOLDOUT_FILE).exists()
    (tmp_path / "a" / HOLDOUT_FILE).write_text('{"probability": [0.5], "outcome": [2]}')
    from credit_drift.model.artifacts import ArtifactsError

    with pytest.raises(ArtifactsError, match="holdout.json.*0 or 1"):
        load_artifacts(tmp_path / "a")


# -- the asset, on both databases ------------------------------------------------------------
def test_estimated_performance_asset(db_url, model_dir, tmp_path, monkeypatch, capsys):
    """A clean day and a day of sudden drift logged through replay, then production_window and
    estimated_performance materialized by Dagster: the metadata equals the estimate computed
    here from the logged probabilities; an empty day is NO_DATA; a bound above the estimate is
    an ALERT with a failed ERROR check."""
    import dagster as dg

    from credit_drift.defs.assets import estimated_performance, production_window
    from credit_drift.defs.resources import resources_from_settings
    from credit_drift.settings import Settings
    from credit_drift.storage.db import make_engine
    from credit_drift.storage.predictions import read_decisions
    from credit_drift.storage.windows import DayWindow
    from credit_drift_tests.conftest import replay_batches

    root, paths, artifacts = model_dir
    monkeypatch.setenv("CREDIT_DRIFT_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("CREDIT_DRIFT_ARTIFACTS_DIR", str(root / "artifacts"))
    monkeypatch.setenv("CREDIT_DRIFT_TRAINING_DATA", str(paths.train))
    replay_batches(
        db_url, model_dir, [{"kind": "clean"}, {"kind": "sudden", "intensity": 0.7}], batch_size=200
    )
    instance = dg.DagsterInstance.ephemeral()
    assets = [production_window, estimated_performance]

    def run(day, **project):
        resources = resources_from_settings(Settings.from_env(), **project)
        result = dg.materialize(assets, partition_key=day, resources=resources, instance=instance)
        assert result.success
        meta = result.asset_materializations_for_node("estimated_performance")[0].metadata
        (check,) = [
            e
            for e in result.get_asset_check_evaluations()
            if e.check_name == "estimated_performance_within_bounds"
        ]
        return meta, check

    meta, check = run("2026-11-01")
    day = DayWindow.of("2026-11-01")
    decisions = read_decisions(make_engine(db_url), day.start, day.end)
    ref = fit_cbpe(artifacts.holdout.probability, artifacts.holdout.outcome)
    scores = decisions["probability"].to_numpy(float)
    expected = ref.estimate(
        scores,
        (decisions["decision"] == "REFUSED").to_numpy(),
        cost_fn=artifacts.metrics["cost_fn"],
        cost_fp=artifacts.metrics["cost_fp"],
    )
    assert meta["n_predictions"].value == 200
    assert meta["estimated_auc"].value == pytest.approx(expected.auc, abs=0.005)
    assert meta["estimated_default_rate"].value == pytest.approx(expected.default_rate, abs=0.005)
    assert meta["auc_band_lower"].value < meta["auc_band_upper"].value
    assert meta["status"].value in ("OK", "WARNING")
    assert meta["raw_model_calibrated"].value is False  # balanced class weights inflate PDs
    assert meta["calibration_raw_ece"].value > meta["calibration_calibrated_ece"].value
    assert "estimated_performance_figure" in meta
    assert (check.passed, meta["status"].value == "OK") in ((True, True), (False, False))

    empty, check = run("2026-11-05")
    assert empty["status"].value == "NO_DATA" and "estimated_auc" not in empty and check.passed

    # `credit-drift status` prints the same estimate, read from the log without the features
    from credit_drift.console import print_estimated

    print_estimated(Settings.from_env(), make_engine(db_url), ["2026-11-01", "2026-11-05"])
    out = capsys.readouterr().out.splitlines()
    (line,) = [x for x in out if x.startswith("2026-11-01")]
    assert line.split()[1:4] == [
        meta["status"].value,
        f"{expected.auc:.3f}",
        f"{expected.default_rate:.3f}",
    ]
    (line,) = [x for x in out if x.startswith("2026-11-05")]
    assert line.split()[1:] == ["NO_DATA", "-", "-", "-"]

    alert, check = run("2026-11-02", min_estimated_auc=0.99)
    assert alert["status"].value == "ALERT"
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR


def test_predictions_of_another_model_version_are_counted_not_estimated(model_dir, tmp_path):
    import pandas as pd

    from credit_drift.pipeline.config import PipelineConfig
    from credit_drift.pipeline.estimated import cbpe_reference, estimate_day
    from credit_drift.pipeline.window import ProductionWindow
    from credit_drift.settings import Settings
    from credit_drift.storage.windows import DayWindow

    _, _, artifacts = model_dir
    config = PipelineConfig.from_settings(Settings.from_env({}, cwd=tmp_path))
    p = artifacts.holdout.probability[:300]
    meta = pd.DataFrame(
        {
            "probability": p,
            "decision": np.where(p >= artifacts.threshold, "REFUSED", "APPROVED"),
            "threshold": artifacts.threshold,
            "model_version": [artifacts.version] * 200 + ["0123456789ab"] * 100,
        }
    )

    def day(frame):
        window = ProductionWindow(DayWindow.of("2026-11-01"), pd.DataFrame(), frame)
        return estimate_day(artifacts, cbpe_reference(artifacts), window, config, plot=False)

    out = day(meta)
    assert (out.n_predictions, out.n_other_model) == (200, 100)
    expected = cbpe_reference(artifacts).estimate(
        p[:200], p[:200] >= artifacts.threshold, cost_fn=10.0, cost_fp=1.0
    )
    assert out.estimate == expected
    assert "100 prediction(s) by another model version" in out.summary
    only_other = day(meta.iloc[200:])
    assert only_other.status == "NO_DATA" and only_other.estimate is None
    assert only_other.summary.startswith("no predictions of this model version")
