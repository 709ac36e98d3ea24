"""The drift decision policy: presets, Benjamini-Hochberg, the effect floor, NaN-share and
unseen-category signals, importance weighting, status thresholds, and the behaviour on clean
and drifted windows of a 419-feature synthetic reference."""

import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from credit_drift.features import FeatureSchema, FeatureSpec
from credit_drift.stats.policy import (
    DEFAULT_MIN_KS_STATISTIC,
    DriftInputError,
    DriftPolicy,
    PolicyError,
    benjamini_hochberg,
    evaluate_window,
    get_policy,
    status_for,
)
from credit_drift.stats.reference import fit_reference
from credit_drift.stats.results import FEATURE_RESULT_NAMES
from credit_drift_tests.synthetic import mixed_frame, mixed_importance, mixed_schema


# -- pieces ---------------------------------------------------------------------------------
def test_benjamini_hochberg_hand_computed_table():
    # sorted: 0.005 (rank 1), 0.01 (2), 0.03 (3), 0.04 (4), 0.2 (5); m = 5 (NaN is no test)
    # p*m/rank: 0.025, 0.025, 0.05, 0.05, 0.2; running minimum from the top leaves them as is
    p = [0.01, 0.04, 0.03, 0.005, np.nan, 0.2]
    np.testing.assert_allclose(
        benjamini_hochberg(p), [0.025, 0.05, 0.05, 0.025, np.nan, 0.2], rtol=1e-12
    )
    # a later smaller value pulls earlier ones down: 0.02*3/2 = 0.03 > 0.025*3/3 = 0.025
    np.testing.assert_allclose(benjamini_hochberg([0.001, 0.02, 0.025]), [0.003, 0.025, 0.025])


def test_benjamini_hochberg_equals_scipy_and_ignores_nan():
    rng = np.random.default_rng(0)
    p = rng.random(419) ** 3
    np.testing.assert_array_equal(
        benjamini_hochberg(p), scipy.stats.false_discovery_control(p, method="bh")
    )
    p[[3, 50]] = np.nan
    out = benjamini_hochberg(p)
    assert np.isnan(out[[3, 50]]).all()
    ok = ~np.isnan(p)
    np.testing.assert_array_equal(out[ok], scipy.stats.false_discovery_control(p[ok]))
    assert np.isnan(benjamini_hochberg([np.nan])).all()


@pytest.mark.parametrize(
    ("share", "status"),
    [
        (0.0, "OK"),
        (0.0999, "OK"),
        (0.10, "WARNING"),
        (0.3, "WARNING"),
        (0.3001, "ALERT"),
        (1.0, "ALERT"),
        (float("nan"), "NO_DATA"),
    ],
)
def test_status_thresholds(share, status):
    assert status_for(share, 0.10, 0.30) == status


def test_presets_and_lookup():
    notebook = get_policy("notebook")
    assert (notebook.test_alpha, notebook.correction, notebook.min_effect) == (0.05, "none", 0.0)
    assert notebook.nan_share_delta is None and notebook.unseen_share is None
    default = get_policy("default")
    assert default.correction == "bh" and default.effect_metric == "ks_statistic"
    assert default.min_effect == DEFAULT_MIN_KS_STATISTIC == 0.1
    tuned = get_policy("default", warning_share=0.2, alert_share=0.4)
    assert (tuned.warning_share, tuned.alert_share, tuned.name) == (0.2, 0.4, "default")
    with pytest.raises(PolicyError, match="unknown drift policy 'strict'"):
        get_policy("strict")
    with pytest.raises(PolicyError, match="unknown drift policy fields"):
        get_policy("default", alpha=0.1)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"test_alpha": 0.0}, "test_alpha"),
        ({"correction": "bonferroni"}, "correction"),
        ({"effect_metric": "auc"}, "effect_metric"),
        ({"min_effect": -0.1}, "min_effect"),
        ({"nan_share_delta": 0.0}, "nan_share_delta"),
        ({"warning_share": 0.5, "alert_share": 0.3}, "warning_share <= alert_share"),
    ],
)
def test_policy_validation_names_the_field(overrides, message):
    with pytest.raises(PolicyError, match=message):
        DriftPolicy.default(**overrides)


# -- small hand-made windows ----------------------------------------------------------------
def one_feature_profile(ref_values, importance=1.0, name="x"):
    schema = FeatureSchema.numeric([name])
    return fit_reference(pd.DataFrame({name: ref_values}), schema, {name: importance})


def test_tiny_shift_in_a_huge_window_is_significant_but_not_drift():
    rng = np.random.default_rng(1)
    profile = one_feature_profile(rng.normal(size=50_000))
    window = pd.DataFrame({"x": rng.normal(0.05, 1, 100_000)})
    default = evaluate_window(profile, window, DriftPolicy.default())
    notebook = evaluate_window(profile, window, DriftPolicy.notebook())
    row = default.results.iloc[0]
    assert row["p_value"] < 1e-6 and row["p_adjusted"] < 1e-6
    assert row["statistic"] < DEFAULT_MIN_KS_STATISTIC
    assert row["effect_size"] == row["statistic"] and row["effect_metric"] == "ks_statistic"
    assert not row["drifted"] and row["reason"] == ""
    assert notebook.results.iloc[0]["drifted"]
    assert notebook.results.iloc[0]["reason"] == "distribution"
    assert (default.status, notebook.status) == ("OK", "ALERT")


def test_other_effect_metrics_can_carry_the_floor():
    rng = np.random.default_rng(2)
    profile = one_feature_profile(rng.normal(size=20_000))
    window = pd.DataFrame({"x": rng.normal(0.5, 1, 5_000)})
    for metric, floor in (("wasserstein_norm", 0.1), ("psi", 0.1)):
        result = evaluate_window(
            profile, window, DriftPolicy.default(effect_metric=metric, min_effect=floor)
        )
        row = result.results.iloc[0]
        assert row["effect_metric"] == metric
        assert row["effect_size"] == row[metric] > floor
        assert row["drifted"]


def importance_profile():
    rng = np.random.default_rng(3)
    names = ["a", "b", "c", "d"]
    frame = pd.DataFrame({n: rng.normal(size=5_000) for n in names})
    importance = {"a": 0.5, "b": 0.3, "c": 0.15, "d": 0.05}
    return fit_reference(frame, FeatureSchema.numeric(names), importance), rng


def test_importance_weighted_share_hand_computed():
    profile, rng = importance_profile()
    window = pd.DataFrame({n: rng.normal(size=2_000) for n in "abcd"})
    window["a"] += 3.0
    window["d"] += 3.0
    result = evaluate_window(profile, window, DriftPolicy.default())
    assert result.drifted_features == ["a", "d"]
    assert result.drift_share == pytest.approx(2 / 4)
    assert result.weighted_drift_share == pytest.approx((0.5 + 0.05) / 1.0)


def test_status_can_follow_the_weighted_share():
    profile, rng = importance_profile()
    window = pd.DataFrame({n: rng.normal(size=2_000) for n in "abcd"})
    window["d"] += 3.0  # only the least important feature drifts
    plain = evaluate_window(profile, window, DriftPolicy.default())
    weighted = evaluate_window(profile, window, DriftPolicy.default(weight_by_importance=True))
    assert plain.drift_share == 0.25 and weighted.weighted_drift_share == pytest.approx(0.05)
    assert (plain.status, weighted.status) == ("WARNING", "OK")


def test_nan_share_is_a_drift_signal_of_its_own():
    rng = np.random.default_rng(4)
    n_ref, n_cur = 20_000, 5_000
    ref = pd.DataFrame(
        {
            "more_missing": np.where(rng.random(n_ref) < 0.1, np.nan, rng.normal(size=n_ref)),
            "slightly_more": np.where(rng.random(n_ref) < 0.1, np.nan, rng.normal(size=n_ref)),
            "now_empty": rng.normal(size=n_ref),
            "steady": rng.normal(size=n_ref),
        }
    )
    profile = fit_reference(ref, FeatureSchema.numeric(list(ref.columns)), {})
    window = pd.DataFrame(
        {
            "more_missing": np.where(rng.random(n_cur) < 0.4, np.nan, rng.normal(size=n_cur)),
            "slightly_more": np.where(rng.random(n_cur) < 0.12, np.nan, rng.normal(size=n_cur)),
            "now_empty": np.full(n_cur, np.nan),
            "steady": rng.normal(size=n_cur),
        }
    )
    default = evaluate_window(profile, window, DriftPolicy.default()).results.set_index("feature")
    assert default.loc["more_missing", "reason"] == "nan_share"
    assert default.loc["more_missing", "cur_nan_share"] == pytest.approx(0.4, abs=0.03)
    assert default.loc["more_missing", "ref_nan_share"] == pytest.approx(0.1, abs=0.01)
    assert not default.loc["slightly_more", "drifted"]  # significant, but under 5 points
    assert default.loc["now_empty", "reason"] == "nan_share"
    assert math.isnan(default.loc["now_empty", "p_value"])  # no values left to test
    assert not default.loc["steady", "drifted"]
    notebook = evaluate_window(profile, window, DriftPolicy.notebook())
    assert not notebook.results["drifted"].any()
    assert notebook.n_analyzed == 3  # the empty column has nothing to test


def categorical_profile():
    rng = np.random.default_rng(5)
    n = 10_000
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "contract": rng.choice(["cash", "revolving"], size=n, p=[0.7, 0.3]),
        }
    )
    schema = FeatureSchema(
        (FeatureSpec("x"), FeatureSpec("contract", "categorical", ("cash", "revolving")))
    )
    return fit_reference(frame, schema, {"x": 0.5, "contract": 0.5}), rng


def test_unseen_categories_are_a_drift_signal_reported_by_name():
    profile, rng = categorical_profile()
    n = 2_000
    contract = rng.choice(["cash", "revolving"], size=n, p=[0.7, 0.3]).astype(object)
    contract[:100] = "crypto"  # 5% never seen in training
    window = pd.DataFrame({"x": rng.normal(size=n), "contract": contract})
    result = evaluate_window(profile, window, DriftPolicy.default())
    row = result.results.set_index("feature").loc["contract"]
    assert row["test"] == "chi2" and row["effect_metric"] == "jensen_shannon"
    assert row["unseen_categories"] == ["crypto"]
    assert row["unseen_share"] == pytest.approx(0.05)
    assert row["drifted"] and row["reason"] == "unseen_categories"
    assert result.results.set_index("feature").loc["x", "test"] == "ks"
    notebook = evaluate_window(profile, window, DriftPolicy.notebook())
    assert not notebook.results.set_index("feature").loc["contract", "drifted"]


def test_categorical_distribution_drift():
    profile, rng = categorical_profile()
    n = 2_000
    window = pd.DataFrame(
        {"x": rng.normal(size=n), "contract": rng.choice(["cash", "revolving"], n, p=[0.3, 0.7])}
    )
    row = evaluate_window(profile, window, DriftPolicy.default()).results.iloc[1]
    assert row["drifted"] and row["reason"] == "distribution"
    assert row["effect_size"] > 0.1


def test_empty_window_is_no_data_never_zero_percent():
    profile, _ = categorical_profile()
    empty = pd.DataFrame({"x": pd.Series([], dtype=float), "contract": pd.Series([], dtype=object)})
    for policy in (DriftPolicy.default(), DriftPolicy.notebook()):
        result = evaluate_window(profile, empty, policy)
        assert result.status == "NO_DATA"
        assert result.n_rows == 0 and result.n_analyzed == 0 and result.n_drifted == 0
        assert math.isnan(result.drift_share) and math.isnan(result.weighted_drift_share)
        assert list(result.results.columns) == list(FEATURE_RESULT_NAMES)
        assert len(result.results) == 2 and not result.results["drifted"].any()


def test_window_missing_a_column_is_refused():
    profile, _ = categorical_profile()
    with pytest.raises(DriftInputError, match="contract"):
        evaluate_window(profile, pd.DataFrame({"x": [1.0]}), DriftPolicy.default())
    with pytest.raises(DriftInputError, match="'x' is not numeric"):
        evaluate_window(
            profile, pd.DataFrame({"x": ["a"], "contract": ["cash"]}), DriftPolicy.default()
        )


# -- the 419-feature synthetic reference ----------------------------------------------------
@pytest.fixture(scope="module")
def wide_profile():
    frame = mixed_frame(50_000, seed=1)
    return fit_reference(frame, mixed_schema(), mixed_importance())


def test_clean_window_of_100k_rows_stays_ok_under_default(wide_profile):
    result = evaluate_window(wide_profile, mixed_frame(100_000, seed=2), DriftPolicy.default())
    assert len(result.results) == 419 and result.n_analyzed == 419
    assert result.status == "OK"
    assert result.drift_share < 0.02


@pytest.mark.parametrize("n_rows", [1_000, 10_000])
def test_clean_windows_stay_ok_and_shifted_ones_alert(wide_profile, n_rows):
    clean = evaluate_window(wide_profile, mixed_frame(n_rows, seed=3), DriftPolicy.default())
    assert clean.status == "OK"
    shifted = mixed_frame(n_rows, seed=4, shift=0.5)
    assert evaluate_window(wide_profile, shifted, DriftPolicy.default()).status == "ALERT"


def test_notebook_rule_flags_about_five_percent_by_chance():
    rng = np.random.default_rng(6)
    names = [f"c{j:03d}" for j in range(419)]
    ref = pd.DataFrame(rng.normal(size=(20_000, 419)), columns=names)
    profile = fit_reference(ref, FeatureSchema.numeric(names), {})
    window = pd.DataFrame(rng.normal(size=(3_000, 419)), columns=names)
    notebook = evaluate_window(profile, window, DriftPolicy.notebook())
    # Binomial(419, 0.05): mean 21, sd 4.5
    assert 8 <= notebook.n_drifted <= 38
    assert notebook.status == "OK"  # about 5% stays under the 10% warning line, by luck alone
    assert evaluate_window(profile, window, DriftPolicy.default()).n_drifted == 0


# -- measuring and deciding are separate ------------------------------------------------------
def test_compare_measures_and_decide_judges_without_measuring_again():
    from credit_drift.stats.compare import COMPARISON_COLUMNS, compare_window
    from credit_drift.stats.policy import decide

    schema = mixed_schema(40)
    profile = fit_reference(mixed_frame(5_000, seed=1, n_features=40), schema, mixed_importance(40))
    window = mixed_frame(2_000, seed=2, n_features=40)
    window["f003"] = window["f003"] + 1.0  # one clear shift
    comparison = compare_window(profile, window)
    assert list(comparison.features.columns) == list(COMPARISON_COLUMNS)
    assert "drifted" not in comparison.features  # no verdict in a measurement
    strict, lax = DriftPolicy.default(), DriftPolicy.notebook()
    pd.testing.assert_frame_equal(
        decide(comparison, strict).results, evaluate_window(profile, window, strict).results
    )
    assert decide(comparison, lax).n_drifted >= decide(comparison, strict).n_drifted >= 1
    # The same measurements under a floor no shift reaches: nothing drifts.
    assert (
        decide(comparison, DriftPolicy.default(min_effect=1.0, nan_share_delta=None)).n_drifted == 0
    )


def test_every_threshold_of_the_decision_is_a_policy_field():
    policy = DriftPolicy.default()
    assert policy.important_features_share == policy.warning_share == 0.10
    assert DriftPolicy.default(important_share=0.2).important_features_share == 0.2
    assert policy.multivariate_min_auc == 0.55 and policy.multivariate_null_z == 3.0
    with pytest.raises(PolicyError, match="important_share"):
        DriftPolicy.default(important_share=0.0)
    with pytest.raises(PolicyError, match="multivariate_min_auc"):
        DriftPolicy.default(multivariate_min_auc=0.4)


def test_the_settings_know_the_presets_the_policy_knows(monkeypatch):
    from credit_drift.settings import Settings, SettingsError
    from credit_drift.stats.presets import POLICY_PRESETS

    for name in POLICY_PRESETS:
        assert get_policy(name).name == name
    monkeypatch.setenv("CREDIT_DRIFT_POLICY", "notebok")
    with pytest.raises(SettingsError, match="'notebok' is not a drift policy; use one of default"):
        Settings.from_env()
