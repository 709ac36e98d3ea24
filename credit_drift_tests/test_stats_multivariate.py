"""The domain-classifier detector fires on a broken correlation that no marginal shows, and not
on a clean sample; the score-drift check equals scipy's KS on the scores."""

import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from credit_drift.features import FeatureSchema
from credit_drift.stats.multivariate import domain_classifier_drift, roc_auc, top_features
from credit_drift.stats.policy import DriftPolicy, decide_joint, evaluate_window
from credit_drift.stats.reference import fit_reference
from credit_drift.stats.score_drift import score_drift
from credit_drift_tests.synthetic import PAIR_CORRELATION, mixed_frame, mixed_importance


@pytest.fixture(scope="module")
def profile():
    # 60 features keep the fixture quick; f000/f001 are the correlated, most important pair.
    frame = mixed_frame(20_000, seed=1, n_features=60)
    schema = FeatureSchema.numeric(list(frame.columns))
    return fit_reference(frame, schema, mixed_importance(60))


def broken_pair(n_rows: int, seed: int) -> pd.DataFrame:
    window = mixed_frame(n_rows, seed=seed, n_features=60)
    window["f001"] = np.random.default_rng(seed).permutation(window["f001"].to_numpy())
    return window


@pytest.mark.parametrize("n_rows", [1_000, 5_000])
def test_fires_on_a_broken_correlation_that_no_marginal_shows(profile, n_rows):
    window = broken_pair(n_rows, seed=2)
    assert abs(np.corrcoef(window["f000"], window["f001"])[0, 1]) < 0.1 < PAIR_CORRELATION
    univariate = evaluate_window(profile, window, DriftPolicy.default())
    assert univariate.n_drifted == 0  # every marginal is unchanged
    result = domain_classifier_drift(profile, window, seed=0)
    joint = decide_joint(result, DriftPolicy.default())
    assert joint.drifted
    assert result.auc > joint.threshold >= 0.55
    assert {"f000", "f001"} <= set(result.features)
    assert len(result.fold_aucs) == 3 and result.auc_std >= 0


@pytest.mark.parametrize("n_rows", [1_000, 5_000])
def test_quiet_on_a_clean_sample(profile, n_rows):
    result = domain_classifier_drift(profile, mixed_frame(n_rows, seed=3, n_features=60), seed=0)
    joint = decide_joint(result, DriftPolicy.default())
    assert not joint.drifted
    assert result.auc < joint.threshold
    assert result.n_ref == 5_000 and result.n_cur == n_rows


def test_seeded_and_size_aware(profile):
    window = broken_pair(1_000, seed=4)
    a = domain_classifier_drift(profile, window, seed=5)
    b = domain_classifier_drift(profile, window, seed=5)
    assert a == b
    policy = DriftPolicy.default()
    small = domain_classifier_drift(profile, window.head(100), seed=0)
    # Fewer rows, a larger chance AUC, a higher bar.
    assert decide_joint(small, policy).threshold > decide_joint(a, policy).threshold
    too_small = domain_classifier_drift(profile, window.head(20), seed=0)
    assert math.isnan(too_small.auc) and not decide_joint(too_small, policy).drifted


def test_the_auc_floor_is_the_policys():
    from credit_drift.stats.multivariate import MultivariateResult

    result = MultivariateResult(0.6, 0.01, 5_000, 5_000, ("f000",), (0.6,))
    assert decide_joint(result, DriftPolicy.default()).drifted
    assert not decide_joint(result, DriftPolicy.default(multivariate_min_auc=0.65)).drifted
    # Small samples: the null standard error sets the bar above the floor.
    small = MultivariateResult(0.6, 0.01, 30, 30, ("f000",), (0.6,))
    assert decide_joint(small, DriftPolicy.default()).threshold > 0.6


def test_top_features_by_importance(profile):
    top = top_features(profile, 5)
    assert top[:2] == ["f000", "f001"]
    weights = [profile.importance[f] for f in top]
    assert weights == sorted(weights, reverse=True)


def test_roc_auc_known_answers():
    assert roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert roc_auc(np.array([0, 0, 1, 1]), np.array([0.9, 0.8, 0.2, 0.1])) == 0.0
    assert roc_auc(np.array([0, 1]), np.array([0.5, 0.5])) == 0.5
    # one of four positive-negative pairs is misordered
    assert roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.5, 0.9])) == 0.75


def test_score_drift_equals_scipy():
    rng = np.random.default_rng(7)
    scores = rng.beta(2, 8, 20_000)
    frame = pd.DataFrame({"x": rng.normal(size=20_000)})
    profile = fit_reference(frame, FeatureSchema.numeric(["x"]), {}, scores=scores)
    for window in (rng.beta(2, 8, 3_000), rng.beta(3, 6, 3_000), rng.beta(2, 8, 30)):
        out = score_drift(profile, window)
        expected = scipy.stats.ks_2samp(scores, window)
        assert out.ks_statistic == expected.statistic and out.p_value == expected.pvalue
        assert out.n_current == window.size
        assert out.mean_current == pytest.approx(window.mean())
        assert out.mean_reference == pytest.approx(scores.mean())
    assert (
        score_drift(profile, rng.beta(2, 8, 3_000)).psi
        < 0.05
        < score_drift(profile, rng.beta(4, 4, 3_000)).psi
    )
    empty = score_drift(profile, np.array([]))
    assert math.isnan(empty.ks_statistic) and empty.n_current == 0
    no_scores = fit_reference(frame, FeatureSchema.numeric(["x"]), {})
    with pytest.raises(ValueError, match="without training scores"):
        score_drift(no_scores, scores)
