"""Effect sizes: PSI over reference-quantile bins and the normed Wasserstein distance, read off
the sorted summaries, against hand-computed values and scipy."""

import math

import numpy as np
import pytest
import scipy.stats

from credit_drift.stats.effect import (
    PSI_EPSILON,
    WASSERSTEIN_STD_FLOOR,
    psi_from_counts,
    psi_many,
    psi_of_scan,
    wasserstein_norm_many,
)
from credit_drift.stats.numeric import scan_numeric
from credit_drift.stats.reference import NumericReference


def test_psi_known_answer():
    # shares 0.5/0.3/0.2 -> 0.4/0.4/0.2
    expected = (0.4 - 0.5) * math.log(0.4 / 0.5) + (0.4 - 0.3) * math.log(0.4 / 0.3)
    assert psi_from_counts([50, 30, 20], [40, 40, 20]) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(0.0510826, abs=1e-7)
    assert psi_from_counts([5, 5], [50, 50]) == 0.0


def test_psi_empty_bin_uses_epsilon():
    expected = (0.5 - 1.0) * math.log(0.5 / 1.0) + (0.5 - PSI_EPSILON) * math.log(0.5 / PSI_EPSILON)
    assert psi_from_counts([100, 0], [50, 50]) == pytest.approx(expected, rel=1e-12)
    assert math.isnan(psi_from_counts([100, 0], [0, 0]))


def manual_psi(ref, cur, n_bins=10):
    """Independent PSI: inverted-CDF quantile edges of the raw reference, bins (e_i, e_i+1]."""
    ref, cur = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
    s = np.sort(ref)
    edges = []
    for i in range(1, n_bins):
        k = math.ceil(i * s.size / n_bins - 1e-12)  # smallest value with ECDF >= i/n_bins
        edges.append(s[max(k, 1) - 1])
    edges = np.unique(edges)
    edges = edges[edges < s[-1]]
    r = np.bincount(np.searchsorted(edges, ref, side="left"), minlength=edges.size + 1)
    c = np.bincount(np.searchsorted(edges, cur, side="left"), minlength=edges.size + 1)
    return psi_from_counts(r, c)


@pytest.mark.parametrize("n_cur", [1, 7, 1_000, 30_000])
def test_psi_many_matches_an_independent_binning(n_cur):
    rng = np.random.default_rng(n_cur)
    ref_cols = [
        rng.normal(size=5_000),
        rng.integers(0, 4, 5_000).astype(float),
        (rng.random(5_000) < 0.2).astype(float),
        np.where(rng.random(5_000) < 0.3, np.nan, rng.lognormal(size=5_000)),
    ]
    cur_cols = [
        rng.normal(0.3, 1, n_cur),
        rng.integers(0, 6, n_cur).astype(float),
        (rng.random(n_cur) < 0.4).astype(float),
        np.where(rng.random(n_cur) < 0.3, np.nan, rng.lognormal(size=n_cur)),
    ]
    refs = [NumericReference.from_values(c) for c in ref_cols]
    ours = psi_many(refs, cur_cols)
    expected = [manual_psi(r, c) for r, c in zip(ref_cols, cur_cols, strict=True)]
    np.testing.assert_allclose(ours, expected, rtol=1e-12, equal_nan=True)


@pytest.mark.parametrize(
    ("n_ref", "n_cur"), [(1, 1), (3, 5), (2_000, 1), (2_000, 40), (5_000, 5_000), (3_000, 60_000)]
)
def test_normed_wasserstein_equals_scipy_over_std(n_ref, n_cur):
    rng = np.random.default_rng(n_ref + n_cur)

    def columns(n, shift):
        return [
            rng.normal(shift, 1, n),
            rng.integers(0, 5, n).astype(float) + shift,
            np.round(rng.lognormal(5 + shift, 1, n), 1),
            (rng.random(n) < 0.3 + shift / 4).astype(float),
        ]

    ref_cols, cur_cols = columns(n_ref, 0.0), columns(n_cur, 0.2)
    refs = [NumericReference.from_values(c) for c in ref_cols]
    ours = wasserstein_norm_many(refs, cur_cols)
    expected = [
        scipy.stats.wasserstein_distance(a, b) / max(np.std(a), WASSERSTEIN_STD_FLOOR)
        for a, b in zip(ref_cols, cur_cols, strict=True)
    ]
    np.testing.assert_allclose(ours, expected, rtol=1e-9, atol=1e-12)


def test_normed_wasserstein_floors_a_constant_reference_and_skips_nan():
    ref = NumericReference.from_values(np.array([2.0, 2.0, np.nan]))
    out = wasserstein_norm_many([ref, ref], [np.array([3.0, np.nan]), np.array([np.nan])])
    assert out[0] == pytest.approx(1.0 / WASSERSTEIN_STD_FLOOR)
    assert np.isnan(out[1])


def test_scan_split_at_the_windows_middle_value_equals_scipy():
    """The scan walks the window's lower and upper halves side by side, split at its middle
    value: runs of that value reaching the window's start or end, a reference wholly below or
    above it, or sharing it, give scipy's KS statistic bit for bit and its Wasserstein-1."""
    rng = np.random.default_rng(31)
    cases = [
        (rng.normal(0, 1, 300), np.full(200, 0.5)),  # one run: the lower half is empty
        (rng.normal(0, 1, 300), np.concatenate([np.full(150, -1.0), np.full(60, 2.0)])),
        (rng.uniform(-5, -4, 100), rng.normal(0, 1, 300)),  # reference below the window
        (rng.uniform(4, 5, 100), rng.normal(0, 1, 300)),  # above it
        (np.arange(10.0), rng.integers(0, 10, 301).astype(float)),  # ties on both sides
        (rng.normal(0, 1, 5), rng.normal(0, 1, 64)),  # the smallest split window
        (np.array([7.0]), np.concatenate([rng.normal(0, 1, 100), np.full(100, 7.0)])),
    ]
    for ref, cur in cases:
        scan = scan_numeric([NumericReference.from_values(ref)], [cur], wasserstein=True)
        # the statistic before scipy's exact method rounds it to a multiple of 1/lcm(n, m)
        assert scan.statistic[0] == scipy.stats.ks_2samp(ref, cur, method="asymp").statistic
        np.testing.assert_allclose(
            scan.wasserstein1[0], scipy.stats.wasserstein_distance(ref, cur), rtol=1e-12
        )


def _scipy_gaps(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """scipy's `cddiffs` of ks_2samp: the float gap F_ref - F_cur at every sample point."""
    a, b = np.sort(ref), np.sort(cur)
    points = np.concatenate([a, b])
    return (
        np.searchsorted(a, points, side="right") / a.size
        - np.searchsorted(b, points, side="right") / b.size
    )


def test_scan_keeps_the_largest_float_among_points_tied_on_the_exact_gap():
    """The scan ranks points by the gap's exact numerator and divides only near the extremes;
    where several points have the same exact gap their float gaps (scipy's) can differ in the
    last bit, and the statistic must still be scipy's to the bit."""
    rng = np.random.default_rng(5)
    sizes = [3, 6, 7, 12, 30, 49, 60, 90]  # common factors: many points share an exact gap
    tied_floats = 0
    for _ in range(3_000):
        n1, n2 = rng.choice(sizes, 2)
        ref = rng.integers(0, 8, n1).astype(float)
        cur = rng.integers(0, 8, n2).astype(float)
        scan = scan_numeric([NumericReference.from_values(ref)], [cur])
        assert scan.statistic[0] == scipy.stats.ks_2samp(ref, cur, method="asymp").statistic
        gaps = _scipy_gaps(ref, cur)
        keys = np.round(gaps * n1 * n2).astype(np.int64)
        for extreme in (keys.max(), keys.min()):
            tied_floats += np.unique(gaps[keys == extreme]).size > 1
    assert tied_floats > 0  # the case the test is for did occur


def test_scan_past_2_to_the_49_compares_the_float_gaps_of_nearby_exact_gaps():
    """From n1 * n2 = 2^49 on, a smaller exact gap can round to a larger float gap: the scan
    must compare as floats the points within the rounding margin of the extreme. Here (a summary
    of 10^13 reference values: the scan only needs its counts) the point at 0 has the largest
    exact gap, c0 / n1, and the point at 2 one unit of 1 / (n1 n2) less, yet the larger float."""
    n2 = 10_007
    c1 = 10**9
    n1 = c1 * n2 + 1  # so that c1 * n2 - n1 = -1
    c0 = 5_003_500_000_004
    ref = NumericReference(np.array([0.0, 2.0, 10.0]), np.array([c0, c1, n1 - c0 - c1]), 0)
    cur = np.concatenate([[1.0], np.full(n2 - 1, 5.0)])
    at_0 = c0 / n1 - 0 / n2
    at_2 = (c0 + c1) / n1 - 1 / n2
    assert (c0 * n2) - ((c0 + c1) * n2 - n1) == 1 and at_2 > at_0  # the case, as described
    scan = scan_numeric([ref], [cur])
    assert scan.statistic[0] == at_2


def test_wasserstein_is_exact_where_scipys_float_gaps_cancel():
    """The integral is summed from the exact gaps (numerator / (n1 n2)): on two values whose
    ECDFs differ by 1e-5 (0.5 - 0.49999), scipy's rounded gaps lose 12 digits of it; ours is
    the exact 1e-5."""
    ref = np.repeat([0.0, 1.0], [25_000, 25_000])
    cur = np.repeat([0.0, 1.0], [49_999, 50_001])
    scan = scan_numeric([NumericReference.from_values(ref)], [cur], wasserstein=True)
    assert scan.wasserstein1[0] == 1e-5
    np.testing.assert_allclose(scipy.stats.wasserstein_distance(ref, cur), 1e-5, rtol=1e-10)


def test_psi_of_many_features_at_once_equals_psi_from_counts_per_feature():
    rng = np.random.default_rng(17)
    ref_bins, cur_bins = [], []
    for j in range(300):
        k = int(rng.integers(0, 11))  # 0: a feature that was not testable
        ref_bins.append(rng.integers(0, 50, k) * (j % 7 != 3))  # some all-zero sides
        cur_bins.append(rng.integers(0, 50, k) * (j % 11 != 5))
    ours = psi_of_scan(ref_bins, cur_bins)
    expected = [psi_from_counts(r, c) for r, c in zip(ref_bins, cur_bins, strict=True)]
    np.testing.assert_allclose(ours, expected, rtol=1e-14, atol=0, equal_nan=True)
    assert np.isnan(ours).sum() > 10 and (~np.isnan(ours)).sum() > 100
    with pytest.raises(ValueError, match="differ in length"):
        psi_of_scan([np.ones(3)], [np.ones(2)])
