"""Realized performance metrics against scikit-learn and scipy on the same arrays."""

import warnings

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.metrics import brier_score_loss, roc_auc_score, roc_curve

from credit_drift.errors import CreditDriftError
from credit_drift.stats.performance import (
    CALIBRATION_COLUMNS,
    PerformanceInputError,
    calibration_table,
    jeffreys_interval,
    ks_statistic,
    realized_performance,
)


def _cohort(n: int, seed: int, *, ties: bool = False):
    rng = np.random.default_rng(seed)
    p = rng.beta(1.2, 10.0, n)
    if ties:
        p = np.round(p, 2)  # many equal scores
    y = (rng.random(n) < p).astype(np.float64)
    return y, p


@pytest.mark.parametrize("ties", [False, True])
def test_metrics_equal_sklearn_and_scipy(ties):
    y, p = _cohort(3000, 7, ties=ties)
    threshold = 0.15
    perf = realized_performance(
        y, p, threshold=threshold, cost_fn=10.0, cost_fp=1.0, validation_cost_per_application=0.5
    )
    assert perf.n == perf.n_labeled == 3000
    assert perf.n_defaults == int(y.sum())
    assert perf.auc == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert perf.gini == pytest.approx(2 * roc_auc_score(y, p) - 1, abs=1e-12)
    assert perf.brier == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    assert perf.ks_statistic == pytest.approx(
        sps.ks_2samp(p[y == 1], p[y == 0]).statistic, abs=1e-12
    )
    fpr, tpr, _ = roc_curve(y, p)
    assert perf.ks_statistic == pytest.approx(np.max(np.abs(tpr - fpr)), abs=1e-12)
    assert perf.observed_default_rate == pytest.approx(y.mean())
    assert perf.mean_pd == pytest.approx(p.mean())
    expected_p = sps.binomtest(int(y.sum()), len(y), p.mean()).pvalue
    assert perf.binomial_p_value == pytest.approx(expected_p, rel=1e-12)
    refused = p >= threshold
    fn = int(((y == 1) & ~refused).sum())
    fp = int(((y == 0) & refused).sum())
    assert (perf.n_false_negatives, perf.n_false_positives) == (fn, fp)
    assert perf.cost_per_application == pytest.approx((10 * fn + fp) / len(y))
    assert perf.validation_cost_per_application == 0.5
    assert perf.undefined_reason is None


def test_unlabeled_rows_are_left_out_and_counted():
    y, p = _cohort(1000, 3)
    partial = y.copy()
    partial[::3] = np.nan
    labeled = ~np.isnan(partial)
    perf = realized_performance(partial, p, threshold=0.2)
    assert perf.n == 1000 and perf.n_labeled == int(labeled.sum())
    assert perf.labeled_share == pytest.approx(labeled.mean())
    assert perf.auc == pytest.approx(roc_auc_score(y[labeled], p[labeled]), abs=1e-12)
    assert perf.brier == pytest.approx(brier_score_loss(y[labeled], p[labeled]), abs=1e-12)


def test_decisions_as_given_are_used_for_the_cost():
    y = np.array([1, 1, 0, 0, 1], dtype=float)
    p = np.array([0.9, 0.1, 0.8, 0.2, 0.5])
    # Decided at scoring time with another threshold than p >= 0.5 would give.
    decision = np.array([1, 0, 0, 1, 0])
    perf = realized_performance(y, p, decision, cost_fn=5.0, cost_fp=2.0)
    # FN: rows 1 and 4 (defaults approved); FP: row 3 (repaid, refused).
    assert (perf.n_false_negatives, perf.n_false_positives) == (2, 1)
    assert perf.cost == 5.0 * 2 + 2.0 * 1
    assert perf.cost_per_application == pytest.approx(12.0 / 5)


@pytest.mark.parametrize("label", [0.0, 1.0])
def test_one_class_is_undefined_not_a_crash(label):
    p = np.linspace(0.01, 0.5, 50)
    y = np.full(50, label)
    # scikit-learn raises (older) or warns and returns NaN (1.6+): undefined either way.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            reference = roc_auc_score(y, p)
        except ValueError:
            reference = float("nan")
    assert np.isnan(reference)
    perf = realized_performance(y, p, threshold=0.3)
    assert np.isnan(perf.auc) and np.isnan(perf.gini) and np.isnan(perf.ks_statistic)
    assert "one class only" in perf.undefined_reason
    assert perf.brier == pytest.approx(brier_score_loss(y, p, labels=[0, 1]))
    assert perf.observed_default_rate == label


def test_empty_and_unlabeled_cohorts():
    empty = realized_performance([], [], threshold=0.3)
    assert empty.n == 0 and empty.n_labeled == 0 and np.isnan(empty.labeled_share)
    assert np.isnan(empty.auc) and np.isnan(empty.brier) and np.isnan(empty.cost_per_application)
    assert empty.undefined_reason == "no outcome observed yet"
    unlabeled = realized_performance(np.full(20, np.nan), np.full(20, 0.1), threshold=0.3)
    assert unlabeled.n == 20 and unlabeled.n_labeled == 0 and unlabeled.labeled_share == 0
    assert np.isnan(unlabeled.observed_default_rate) and np.isnan(unlabeled.binomial_p_value)
    assert list(unlabeled.calibration.columns) == list(CALIBRATION_COLUMNS)


def test_calibration_bands_match_a_direct_count():
    y, p = _cohort(4000, 11)
    edges = np.array([0.05, 0.1, 0.2])
    table = calibration_table(y, p, edges)
    assert len(table) == 4 and int(table["n"].sum()) == 4000
    masks = [p <= 0.05, (p > 0.05) & (p <= 0.1), (p > 0.1) & (p <= 0.2), p > 0.2]
    for row, mask in zip(table.itertuples(), masks, strict=True):
        k, n = int(y[mask].sum()), int(mask.sum())
        assert (row.n, row.n_defaults) == (n, k)
        assert row.mean_pd == pytest.approx(p[mask].mean())
        assert row.p_value == pytest.approx(sps.binomtest(k, n, p[mask].mean()).pvalue)
        low, high = sps.beta.ppf([0.025, 0.975], k + 0.5, n - k + 0.5)
        assert (row.jeffreys_low, row.jeffreys_high) == pytest.approx((low, high))
        assert row.calibrated == (low <= p[mask].mean() <= high)
    # Drawn from their own PD: at most one band in four out of its 95% interval (seeded).
    assert int((table["calibrated"] == False).sum()) <= 1  # noqa: E712


def test_a_miscalibrated_model_is_flagged_by_band():
    rng = np.random.default_rng(5)
    p = rng.uniform(0.02, 0.3, 5000)
    y = (rng.random(5000) < np.minimum(2.5 * p, 1)).astype(float)  # defaults 2.5x the PD
    perf = realized_performance(y, p, threshold=0.2, band_edges=np.array([0.1, 0.2]))
    assert perf.n_bands_miscalibrated == 3
    assert perf.binomial_p_value < 1e-6
    assert perf.observed_default_rate > 2 * perf.mean_pd


def test_jeffreys_edges():
    assert jeffreys_interval(0, 10)[0] == 0.0
    assert jeffreys_interval(10, 10)[1] == 1.0
    assert all(np.isnan(jeffreys_interval(0, 0)))


def test_ks_statistic_one_class_is_nan():
    assert np.isnan(ks_statistic(np.zeros(3), np.array([0.1, 0.2, 0.3])))


@pytest.mark.parametrize(
    ("y", "p", "decision", "match"),
    [
        ([0, 2], [0.1, 0.2], None, "outcome must be 0, 1 or missing"),
        ([0, 1], [0.1, 1.2], None, "probability must be in"),
        ([0, 1], [0.1], None, "differ in length"),
        ([0, 1], [0.1, 0.2], [0, 3], "decision must be 1"),
        ([0, 1], [0.1, 0.2], [0], "decisions and outcomes differ"),
    ],
)
def test_bad_input_names_what_is_wrong(y, p, decision, match):
    with pytest.raises(PerformanceInputError, match=match) as info:
        realized_performance(y, p, decision, threshold=0.5)
    assert isinstance(info.value, CreditDriftError)


def test_no_decisions_and_no_threshold_is_an_error():
    with pytest.raises(PerformanceInputError, match="threshold"):
        realized_performance([0, 1], [0.1, 0.2])
