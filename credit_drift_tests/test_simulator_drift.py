"""The drift transforms: intensity 0 is the identity, intensity moves the targeted features
further, ratios stay consistent, the correlation break keeps marginals exactly, and the sudden
segment drifts enough features for the product's ALERT."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from credit_drift.data.generator import (
    DAYS_EMPLOYED_SENTINEL,
    FEATURE_FAMILIES,
    FEATURE_NAMES,
    RATIO_DEFINITIONS,
    generate_applications,
)
from credit_drift.simulator.drift import (
    DEFAULT_DRIFT_CONFIG,
    DRIFT_KINDS,
    ColumnStats,
    DriftError,
    apply_drift,
    matching_columns,
)


@pytest.fixture(scope="module")
def batch() -> pd.DataFrame:
    return generate_applications(2_000, seed=7)[list(FEATURE_NAMES)]


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.mark.parametrize("kind", DRIFT_KINDS)
def test_intensity_zero_leaves_the_batch_unchanged(batch, kind):
    out = apply_drift(batch, kind, 0.0, _rng())
    pd.testing.assert_frame_equal(out, batch)
    assert out is not batch


@pytest.mark.parametrize("kind", [k for k in DRIFT_KINDS if k != "clean"])
def test_drift_never_mutates_its_input(batch, kind):
    before = batch.copy()
    apply_drift(batch, kind, 0.7, _rng())
    pd.testing.assert_frame_equal(batch, before)


def test_bad_kind_and_intensity_are_named():
    frame = pd.DataFrame({"AMT_CREDIT": [1.0]})
    with pytest.raises(DriftError, match="unknown drift kind 'drought'"):
        apply_drift(frame, "drought", 0.1, _rng())
    with pytest.raises(DriftError, match=r"gradual: intensity 1.5 must be in \[0, 1\]"):
        apply_drift(frame, "gradual", 1.5, _rng())
    with pytest.raises(DriftError, match="clean batches have intensity 0"):
        apply_drift(frame, "clean", 0.2, _rng())


def _ks(a: pd.Series, b: pd.Series) -> float:
    """The two-sample KS statistic (as scipy's ks_2samp) of the non-missing values."""
    x, y = np.sort(a.dropna().to_numpy()), np.sort(b.dropna().to_numpy())
    if len(x) == 0 or len(y) == 0:
        return 0.0
    points = np.concatenate([x, y])
    gap = np.searchsorted(x, points, "right") / len(x) - np.searchsorted(y, points, "right") / len(
        y
    )
    return float(np.abs(gap).max())


def test_ks_helper_matches_scipy(batch):
    a, b = batch["AMT_CREDIT"], batch["AMT_CREDIT"].iloc[::3] * 1.1
    assert _ks(a, b) == pytest.approx(ks_2samp(a, b).statistic, abs=1e-12)


def test_gradual_inflates_amounts_and_ages_applicants_more_with_intensity(batch):
    factor = 1 + DEFAULT_DRIFT_CONFIG.inflation_per_intensity * 0.2
    out = apply_drift(batch, "gradual", 0.2, _rng())
    np.testing.assert_allclose(out["AMT_CREDIT"], batch["AMT_CREDIT"] * factor)
    np.testing.assert_allclose(out["PREV_AMT_CREDIT_MEAN"], batch["PREV_AMT_CREDIT_MEAN"] * factor)
    # Incomes and enquiry counts are not prices.
    pd.testing.assert_series_equal(out["AMT_INCOME_TOTAL"], batch["AMT_INCOME_TOTAL"])
    pd.testing.assert_series_equal(
        out["AMT_REQ_CREDIT_BUREAU_YEAR"], batch["AMT_REQ_CREDIT_BUREAU_YEAR"]
    )
    years = (batch["DAYS_BIRTH"] - out["DAYS_BIRTH"]) / 365.25
    np.testing.assert_allclose(years, DEFAULT_DRIFT_CONFIG.ageing_years_per_intensity * 0.2)

    distances = [
        (_ks(batch["AMT_CREDIT"], d["AMT_CREDIT"]), _ks(batch["DAYS_BIRTH"], d["DAYS_BIRTH"]))
        for d in (apply_drift(batch, "gradual", i, _rng()) for i in (0.1, 0.2, 0.3, 0.6))
    ]
    assert distances == sorted(distances)
    assert distances[0][0] > 0 and distances[-1][0] > distances[0][0]


def test_gradual_recomputes_ratio_features_consistently(batch):
    out = apply_drift(batch, "gradual", 0.3, _rng())
    for name, (num, den) in RATIO_DEFINITIONS.items():
        numerator = out[num].where(out[num] != DAYS_EMPLOYED_SENTINEL)
        expected = (numerator / out[den]).replace([np.inf, -np.inf], np.nan)
        np.testing.assert_allclose(out[name], expected, rtol=1e-12, err_msg=name)
    # Credit and annuity inflate together: their ratio does not move; income/credit does.
    np.testing.assert_allclose(out["PAYMENT_RATE"], batch["PAYMENT_RATE"], rtol=1e-12)
    assert (out["INCOME_CREDIT_PERC"] < batch["INCOME_CREDIT_PERC"]).sum() > 0.9 * len(batch)
    # Pensioners (the DAYS_EMPLOYED placeholder) still have no employment ratio.
    pensioners = batch["DAYS_EMPLOYED"] == DAYS_EMPLOYED_SENTINEL
    assert pensioners.any() and out.loc[pensioners, "DAYS_EMPLOYED_PERC"].isna().all()


def test_sudden_replaces_exactly_a_share_of_applicants_by_the_new_segment(batch):
    out = apply_drift(batch, "sudden", 0.5, _rng(3))
    bureau = FEATURE_FAMILIES["bureau"] + FEATURE_FAMILIES["bureau_active"]
    changed = (out["DAYS_BIRTH"] != batch["DAYS_BIRTH"]).to_numpy()
    assert changed.sum() == round(0.5 * len(batch))
    segment = out[changed]
    assert segment[list(bureau)].isna().all().all()
    ages = -segment["DAYS_BIRTH"] / 365.25
    assert ages.between(*DEFAULT_DRIFT_CONFIG.segment_age_years).all()
    assert (segment["OCCUPATION_TYPE_Low-skill Laborers"] == 1).all()
    occupation = [c for c in FEATURE_NAMES if c.startswith("OCCUPATION_TYPE_")]
    assert (segment[occupation].sum(axis=1) == 1).all()  # still exactly one category per row
    # The other half is untouched.
    pd.testing.assert_frame_equal(out[~changed], batch[~changed])


def test_sudden_moves_more_features_further_with_intensity(batch):
    def moved(intensity: float) -> tuple[int, float]:
        out = apply_drift(batch, "sudden", intensity, _rng(1))
        stats = [
            _ks(batch[c], out[c]) + abs(batch[c].isna().mean() - out[c].isna().mean())
            for c in FEATURE_NAMES
        ]
        return sum(s > 0.1 for s in stats), float(np.mean(stats))

    low, mid, high = moved(0.1), moved(0.5), moved(0.7)
    assert low[1] < mid[1] < high[1]
    assert low[0] <= mid[0] <= high[0]
    # Well over 30% of the 419 features move by more than 0.1 at intensity 0.5.
    assert mid[0] > 0.35 * len(FEATURE_NAMES)


def test_feature_shift_changes_only_external_scores_monotonically(batch):
    ext = matching_columns(list(batch.columns), DEFAULT_DRIFT_CONFIG.ext_source_columns)
    assert ext == ["EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3"]
    means = []
    for intensity in (0.25, 0.5, 1.0):
        out = apply_drift(batch, "feature_shift", intensity, _rng())
        others = [c for c in batch.columns if c not in ext]
        pd.testing.assert_frame_equal(out[others], batch[others])
        # Same ranks (a monotone recalibration), same missing values, lower scores.
        for c in ext:
            assert out[c].isna().equals(batch[c].isna())
            np.testing.assert_array_equal(
                out[c].rank(method="min").dropna(), batch[c].rank(method="min").dropna()
            )
        means.append(out[ext].mean().mean())
    assert means == sorted(means, reverse=True)
    assert means[0] < batch[ext].mean().mean()


@pytest.mark.parametrize("intensity", [0.5, 1.0])
def test_correlation_break_keeps_every_marginal_and_breaks_correlations(batch, intensity):
    out = apply_drift(batch, "correlation_break", intensity, _rng(5))
    for c in batch.columns:
        np.testing.assert_array_equal(
            np.sort(out[c].to_numpy()), np.sort(batch[c].to_numpy()), err_msg=c
        )
    before = batch["AMT_CREDIT"].corr(batch["AMT_GOODS_PRICE"])
    after = out["AMT_CREDIT"].corr(out["AMT_GOODS_PRICE"])
    assert before > 0.9
    assert after < before - 0.4 * intensity
    before_ext = batch["EXT_SOURCE_2"].corr(batch["EXT_SOURCE_3"])
    after_ext = out["EXT_SOURCE_2"].corr(out["EXT_SOURCE_3"])
    assert abs(after_ext) < abs(before_ext)


def test_columns_absent_from_a_users_frame_are_skipped():
    frame = pd.DataFrame({"AMT_CREDIT": [100.0, 200.0], "OTHER": ["a", "b"]})
    out = apply_drift(frame, "gradual", 0.5, _rng())
    assert out["AMT_CREDIT"].tolist() == [200.0, 400.0]
    assert out["OTHER"].tolist() == ["a", "b"]
    broken = apply_drift(frame, "correlation_break", 1.0, _rng())
    assert sorted(broken["OTHER"]) == ["a", "b"]


# -- generic kinds: any schema ------------------------------------------------------------------
@pytest.fixture(scope="module")
def own() -> pd.DataFrame:
    """A user's schema: numeric, integer, flag and text columns, some values missing."""
    rng = np.random.default_rng(4)
    n = 2_000
    income = rng.lognormal(10, 0.5, n)
    income[:50] = np.nan
    return pd.DataFrame(
        {
            "income": income,
            "age": rng.integers(20, 70, n),
            "flag": (rng.random(n) < 0.3).astype(np.int64),
            "segment": pd.Series(rng.choice(["retail", "sme", "premium"], n, p=[0.6, 0.3, 0.1])),
        }
    )


def test_shift_moves_numeric_columns_by_a_fraction_of_the_spread(own):
    stats = ColumnStats.of(own)
    out = apply_drift(own, "shift", 0.5, _rng(), stats=stats)
    for column in ("income", "age"):
        delta = (out[column] - own[column]).dropna()
        np.testing.assert_allclose(delta, 0.5 * np.nanstd(own[column].to_numpy(float)))
    assert out["income"].isna().sum() == 50  # missing stays missing
    # Flags and text are not numeric measurements to shift.
    assert out["flag"].equals(own["flag"]) and out["segment"].equals(own["segment"])
    assert _ks(out["age"], own["age"]) > 0.1


def test_scale_spreads_around_the_population_mean(own):
    stats = ColumnStats.of(own)
    out = apply_drift(own, "scale", 0.5, _rng(), stats=stats)
    ratio = np.nanstd(out["income"].to_numpy(float)) / np.nanstd(own["income"].to_numpy(float))
    assert ratio == pytest.approx(1.5)
    assert np.nanmean(out["income"].to_numpy(float)) == pytest.approx(stats.mean["income"])


def test_category_mix_raises_the_rarest_category(own):
    out = apply_drift(own, "category_mix", 0.3, _rng())
    before = own["segment"].value_counts(normalize=True)
    after = out["segment"].value_counts(normalize=True)
    assert after["premium"] == pytest.approx(
        before["premium"] + 0.3 * (1 - before["premium"]), abs=0.03
    )
    assert set(out["segment"]) == {"retail", "sme", "premium"}
    assert out["income"].equals(own["income"])


def test_missing_blanks_a_share_of_every_column(own):
    out = apply_drift(own, "missing", 0.25, _rng())
    for column in own.columns:
        added = out[column].isna().sum() - own[column].isna().sum()
        assert 0.2 * len(own) < added <= 0.25 * len(own), column


def test_generic_kinds_on_named_columns_only(own):
    out = apply_drift(own, "missing", 0.5, _rng(), columns=["segment"])
    assert out["segment"].isna().sum() == 1000
    assert out.drop(columns="segment").equals(own.drop(columns="segment"))
    with pytest.raises(DriftError, match="shift applies to numeric columns.*'segment'"):
        apply_drift(own, "shift", 0.5, _rng(), columns=["segment"])
    with pytest.raises(DriftError, match="no column.*'salary'"):
        apply_drift(own, "shift", 0.5, _rng(), columns=["salary"])
    with pytest.raises(DriftError, match="gradual: columns and column_share apply to"):
        apply_drift(own, "gradual", 0.5, _rng(), columns=["income"])


def test_home_credit_kinds_change_nothing_on_another_schema(own):
    for kind in ("gradual", "sudden", "feature_shift", "correlation_break"):
        assert apply_drift(own, kind, 0.7, _rng()).equals(own), kind
