"""ks_2samp_many equals scipy.stats.ks_2samp(method='auto') per feature on every branch scipy
takes: the statistic bit for bit, the p-value to 1e-12 relative (bit for bit where it comes from
scipy's exact method; see test_stats_kstwo.py for the asymptotic one)."""

import warnings

import numpy as np
import pytest
import scipy.stats

from credit_drift.stats import ks as ks_module
from credit_drift.stats.ks import MAX_AUTO_N, ks_2samp_many, ks_pvalues
from credit_drift.stats.reference import NumericReference


def scipy_ks(ref_cols, cur):
    stats, pvalues = [], []
    for j, col in enumerate(ref_cols):
        a = col[~np.isnan(col)]
        b = cur[:, j][~np.isnan(cur[:, j])]
        if a.size == 0 or b.size == 0:
            stats.append(np.nan)
            pvalues.append(np.nan)
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # scipy's exact->asymp fallback
            r = scipy.stats.ks_2samp(a, b, alternative="two-sided", method="auto")
        stats.append(r.statistic)
        pvalues.append(r.pvalue)
    return np.array(stats), np.array(pvalues)


def assert_pvalues_equal(ours, theirs):
    """Equal to 1e-12 relative (1e-320 absolute where scipy's value is subnormal), NaN alike."""
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    ok = ~np.isnan(theirs)
    diff = np.abs(ours[ok] - theirs[ok])
    assert (diff <= np.maximum(1e-12 * np.abs(theirs[ok]), 1e-320)).all(), diff.max()


def assert_same_as_scipy(ref_cols, cur, **kwargs):
    ours = ks_2samp_many(ref_cols, cur, **kwargs)
    theirs = scipy_ks(ref_cols, cur)
    np.testing.assert_array_equal(ours.statistic, theirs[0])
    assert_pvalues_equal(ours.pvalue, theirs[1])
    return ours


def mixed_columns(rng, n, shift=0.0):
    """Columns covering the shapes that matter: continuous, shifted, integer ties, 0/1, rounded
    values, a constant, NaNs, a column that is all NaN."""
    cols = [
        rng.normal(shift, 1, n),
        rng.normal(0.5 + shift, 2, n),
        rng.integers(0, 5, n).astype(float),
        (rng.random(n) < 0.3 + shift / 5).astype(float),
        np.round(rng.normal(shift, 1, n), 1),
        np.full(n, 7.0),
        rng.lognormal(3 + shift, 1, n),
        np.where(rng.random(n) < 0.5, np.nan, rng.normal(shift, 1, n)),
        rng.integers(-50, 50, n).astype(float) + np.round(shift * 10),  # counted, not sorted
        rng.integers(0, 3, n) * 1e7,  # integers too far apart to count: sorted
        np.full(n, np.nan),
    ]
    return cols


@pytest.mark.parametrize(
    ("n_ref", "n_cur"),
    [
        (400, 1),
        (400, 2),
        (400, 5),
        (1, 300),
        (3, 3),
        (200, 200),
        (5_000, 1_000),
        (10_000, 10_000),  # both at scipy's exact limit
        (10_000, 10_001),  # just past it: asymptotic
        (12_000, 500),
        (30_000, 20_000),
    ],
)
@pytest.mark.parametrize("shift", [0.0, 0.3])
def test_equals_scipy_on_mixed_columns(n_ref, n_cur, shift):
    rng = np.random.default_rng(n_ref * 7 + n_cur)
    ref_cols = mixed_columns(rng, n_ref)
    cur = np.column_stack(mixed_columns(rng, n_cur, shift))
    ours = assert_same_as_scipy(ref_cols, cur)
    # the all-NaN column is not testable on either side
    assert np.isnan(ours.statistic[-1]) and np.isnan(ours.pvalue[-1])


def test_accepts_summaries_and_column_sequences():
    rng = np.random.default_rng(1)
    ref_cols = mixed_columns(rng, 2_000)
    cur_cols = mixed_columns(rng, 700, 0.1)
    refs = [NumericReference.from_values(c) for c in ref_cols]
    a = ks_2samp_many(refs, cur_cols, workers=1)
    b = ks_2samp_many(ref_cols, np.column_stack(cur_cols), workers=2)
    np.testing.assert_array_equal(a.statistic, b.statistic)
    np.testing.assert_array_equal(a.pvalue, b.pvalue)


def test_identical_distributions_and_identical_samples():
    rng = np.random.default_rng(2)
    ref = rng.normal(size=5_000)
    same = assert_same_as_scipy([ref], ref[:, None])
    assert same.statistic[0] == 0.0 and same.pvalue[0] == 1.0
    assert_same_as_scipy([ref], rng.normal(size=(4_000, 1)))


def test_constant_columns():
    equal = assert_same_as_scipy([np.full(100, 3.0)], np.full((50, 1), 3.0))
    assert equal.statistic[0] == 0.0 and equal.pvalue[0] == 1.0
    apart = assert_same_as_scipy([np.full(100, 3.0)], np.full((50, 1), 4.0))
    assert apart.statistic[0] == 1.0


def test_disjoint_and_interleaved_supports():
    rng = np.random.default_rng(3)
    ref = rng.normal(size=3_000)
    for cur in (ref.max() + 1 + rng.random(40), ref.min() - 1 - rng.random(40)):
        out = assert_same_as_scipy([ref], cur[:, None])
        assert out.statistic[0] == 1.0
    # window values exactly on reference values and between them
    cur = np.concatenate([ref[:100], (ref[:100] + ref[100:200]) / 2])
    assert_same_as_scipy([ref], cur[:, None])


def test_infinities_signed_zeros_and_ties_across_both_sides():
    """The scan steps past a point shared by both samples on both sides at once: +-inf, 0.0 and
    -0.0 (equal), and long runs of one value in each."""
    rng = np.random.default_rng(5)
    values = np.array([-np.inf, -1.0, -0.0, 0.0, 0.5, 1.0, np.inf])
    ref_cols = [rng.choice(values, 3_000), rng.choice(values[1:-1], 2_000), values.copy()]
    cur = np.column_stack(
        [rng.choice(values, 700), rng.choice(values, 700), rng.choice(values[2:], 700)]
    )
    assert_same_as_scipy(ref_cols, cur)
    # every window value above (or below) every reference value, inf included
    assert_same_as_scipy([np.array([-np.inf, 0.0, 1.0])], np.array([[2.0], [np.inf], [np.inf]]))
    assert_same_as_scipy([np.array([0.0, 1.0, np.inf])], np.array([[-np.inf], [-1.0], [-0.0]]))


def test_long_runs_of_ties_equal_scipy():
    """Values repeated from once to the whole window, at its start, middle and end, with NaN
    after them: the merge skips a run of ties by galloping, and must land on its end."""
    rng = np.random.default_rng(21)
    runs = [1, 2, 3, 4, 5, 7, 8, 9, 31, 32, 33, 1000, 4097]
    cur_values = np.repeat(np.arange(len(runs), dtype=float), runs)
    window = [
        cur_values,
        np.concatenate([cur_values, np.full(50, np.nan)]),
        np.full(5000, 3.0),
        np.concatenate([np.full(4999, 3.0), [np.nan]]),
        np.concatenate([[-1.0], np.full(3000, 2.0), [np.inf]]),
    ]
    refs = [
        rng.integers(0, len(runs), 700).astype(float),
        np.concatenate([rng.integers(0, len(runs), 700) + 0.5, [np.nan]]),
        rng.integers(2, 5, 300).astype(float),
        np.full(10, 3.0),
        rng.integers(0, 4, 500).astype(float),
    ]
    for ref, cur in zip(refs, window, strict=True):
        assert_same_as_scipy([ref], cur[:, None])


def test_large_windows_equal_scipy():
    rng = np.random.default_rng(4)
    ref_cols = mixed_columns(rng, 50_000)
    cur = np.column_stack(mixed_columns(rng, 100_000, 0.02))
    assert_same_as_scipy(ref_cols, cur)


def test_large_window_equals_scipy_on_a_few_columns():
    rng = np.random.default_rng(5)
    ref_cols = [rng.normal(size=50_000), rng.integers(0, 3, 50_000).astype(float)]
    cur = np.column_stack([rng.normal(0.004, 1, 100_000), rng.integers(0, 3, 100_000)])
    assert_same_as_scipy(ref_cols, cur)


def test_not_testable_when_a_side_is_empty():
    out = ks_2samp_many([np.array([np.nan, np.nan]), np.array([1.0, 2.0])], np.full((3, 2), np.nan))
    assert np.isnan(out.statistic).all() and np.isnan(out.pvalue).all()
    empty = ks_2samp_many([np.array([1.0, 2.0])], np.empty((0, 1)))
    assert np.isnan(empty.statistic[0]) and np.isnan(empty.pvalue[0])


def test_exact_method_failure_falls_back_like_scipy(monkeypatch):
    """scipy switches to the asymptotic p-value, with the rounded statistic, when its exact
    routine fails; two-sided failures are rare, so force one in both implementations."""
    from scipy.stats import _stats_py

    real = _stats_py._attempt_exact_2kssamp

    def failing(n1, n2, g, d, alternative):
        _, d_rounded, _ = real(n1, n2, g, d, alternative)
        return False, d_rounded, np.nan

    monkeypatch.setattr(_stats_py, "_attempt_exact_2kssamp", failing)
    monkeypatch.setattr(ks_module, "_attempt_exact_2kssamp", failing)
    rng = np.random.default_rng(6)
    ref_cols = [rng.normal(size=3_001), rng.normal(size=977)]
    cur = np.column_stack([rng.normal(0.2, 1, 1_000), rng.normal(size=1_000)])
    assert_same_as_scipy(ref_cols, cur)


def test_pvalue_branches_switch_at_scipys_limit():
    d = np.array([0.05, 0.05, 0.05])
    n_ref = np.array([MAX_AUTO_N, MAX_AUTO_N, MAX_AUTO_N + 1])
    n_cur = np.array([500, MAX_AUTO_N, 500])
    out = ks_pvalues(d, n_ref, n_cur)
    # exact rounds D to a multiple of 1/lcm: 0.05 is one for (10000, 500)
    assert out.statistic[0] == 0.05
    assert 0 < out.pvalue[2] < 1
    with pytest.raises(ValueError, match="shapes differ"):
        ks_pvalues(d, n_ref[:2], n_cur)


def continuous_frame(rng, n_rows, n_cols, shift):
    """All-distinct continuous columns (normal, lognormal, Student t, uniform), a third of them
    with 1-30% NaN, each shifted by `shift` times a per-column factor in [0, 1]."""
    import pandas as pd

    factors = np.linspace(0.0, 1.0, n_cols)
    cols = {}
    for j in range(n_cols):
        kind = j % 4
        s = shift * factors[j]
        if kind == 0:
            v = rng.normal(s, 1.0, n_rows)
        elif kind == 1:
            v = rng.lognormal(1.0 + s, 0.7, n_rows)
        elif kind == 2:
            v = rng.standard_t(4, n_rows) + s
        else:
            v = rng.uniform(s, 1.0 + s, n_rows)
        if j % 3 == 0:
            v[rng.random(n_rows) < 0.01 + 0.29 * (j % 7) / 6] = np.nan
        cols[f"f{j}"] = v
    return pd.DataFrame(cols)


@pytest.mark.parametrize("shape", ["continuous", "generated"])
def test_feature_drift_equals_a_ks_2samp_loop(shape):
    """What the feature_drift asset computes (evaluate_window), statistic and p-value per
    feature, against scipy's ks_2samp per feature, on both data shapes of the benchmark."""
    from credit_drift.data.generator import FEATURE_NAMES, generate_applications
    from credit_drift.features import FeatureSchema
    from credit_drift.stats.policy import evaluate_window, get_policy
    from credit_drift.stats.reference import fit_reference

    if shape == "continuous":
        rng = np.random.default_rng(21)
        reference = continuous_frame(rng, 20_000, 60, 0.0)
        window = continuous_frame(rng, 12_000, 60, 0.05)
    else:
        names = list(FEATURE_NAMES)
        reference = generate_applications(20_000, 21)[names]
        window = generate_applications(12_000, 22)[names]
    schema = FeatureSchema.numeric(list(reference.columns))
    profile = fit_reference(reference, schema, {n: 1.0 for n in schema.names})
    results = evaluate_window(profile, window, get_policy("default")).results
    results = results.set_index("feature").loc[list(reference.columns)]
    stat, pval = scipy_ks(
        [reference[c].to_numpy() for c in reference.columns], window.to_numpy(np.float64)
    )
    np.testing.assert_array_equal(results["statistic"].to_numpy(np.float64), stat)
    assert_pvalues_equal(results["p_value"].to_numpy(np.float64), pval)
    if shape == "continuous":  # the asymptotic p-values cover the Smirnov band
        n_eff = round(20_000 * 12_000 / 32_000)
        assert ((n_eff * stat**2 >= 2.2) & (n_eff * stat**2 < 370)).sum() >= 10
