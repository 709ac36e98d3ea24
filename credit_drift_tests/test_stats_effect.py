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
