"""The compiled `kstwo_sf` equals `scipy.stats.kstwo.sf` (the oracle) to 1e-12 relative on a grid
of (n, x) that crosses every branch limit of scipy's `_kolmogn(n, x, cdf=False)`, including both
tails, and bit for bit on the branches it reproduces operation for operation."""

import math

import numpy as np
import pytest
from scipy.stats import kstwo

from credit_drift.stats.kstwo import kstwo_sf

RTOL = 1e-12
# Below the smallest normal double, neither side keeps 53 significant bits.
SUBNORMAL_ATOL = 1e-320


def scipy_branch(n: int, x: float) -> str:
    """Which method scipy 1.17's kstwo.sf(x, n) uses (its selection, restated)."""
    if x <= 0.5 / n:
        return "support-low"
    if x >= 1.0:
        return "support-high"
    t = n * x
    if t <= 1.0:
        return "ruben-gambino-low"
    if t >= n - 1:
        return "ruben-gambino-high"
    if x >= 0.5:
        return "smirnov"
    nxsq = t * x
    if n <= 140:
        if nxsq <= 0.754693:
            return "dmtw"
        if nxsq <= 4:
            return "pomeranz"
        return "smirnov"
    if nxsq >= 370.0:
        return "zero"
    if nxsq >= 2.2:
        return "smirnov"
    if n <= 100_000 and n * np.array(x) ** 1.5 <= 1.4:
        return "dmtw"
    return "pelz-good"


#: Branches computed with the same floating-point operations as scipy. Not Pelz-Good: same
#: operations, but scipy's exp/cos come from numpy's SIMD kernels, whose last bit depends on the
#: CPU (bit-identical on an Intel Xeon, up to 1.4e-14 relative apart on an AMD EPYC); it is
#: held to the 1e-12 tolerance like the other branches.
BIT_IDENTICAL = {
    "support-low",
    "support-high",
    "ruben-gambino-high",
    "zero",
}


#: Values of n*x^2 on scipy's limits (0.754693, 2.2, 4, 18, 370), on ours (3: Pomeranz compiled
#: below, scipy's above) and between them.
NXSQUARED = (0.01, 0.035, 0.04, 0.045, 0.3, 0.754693, 1.0, 2.2, 3.0, 4.0, 10.0, 18.0, 100.0)
NXSQUARED += (345.0,)
NXSQUARED += (369.0, 370.0)


def grid(ns):
    xs, nn = [], []
    for n in ns:
        # both sides of every limit on n*x^2 (DMTW/Pomeranz/Smirnov for n <= 140; Smirnov band
        # and zero for n > 140), both tails (p < 1e-300; p > 1 - 1e-12 at n*x^2 ~ 0.04) and
        # values in between
        for q in NXSQUARED:
            for f in (1 - 1e-9, 1.0, 1 + 1e-9):
                xs.append(math.sqrt(q * f / n))
                nn.append(n)
        dmtw_edge = (1.4 / n) ** (2 / 3)
        for x in (
            0.0,
            0.5 / n,  # lower end of the support
            0.5 / n * (1 + 1e-12),  # p > 1 - 1e-12
            0.5 / n * (1 + 1e-6),
            0.7 / n,
            1.0 / n,  # n*x = 1: Ruben-Gambino's limit
            1.0 / n * (1 + 1e-12),
            1.5 / n,
            dmtw_edge * (1 - 1e-9),
            dmtw_edge * (1 + 1e-9),
            0.25,
            0.5 * (1 - 1e-12),
            0.5,  # x = 0.5: Smirnov for every n
            0.75,
            (n - 1) / n * (1 - 1e-12),  # n*x = n - 1
            (n - 1) / n,
            0.999,
            1.0,
            1.5,
            math.nan,
        ):
            xs.append(x)
            nn.append(n)
    return np.array(xs), np.array(nn, dtype=np.float64)


def check(x, n):
    ours = kstwo_sf(x, n, workers=2)
    theirs = np.array([kstwo.sf(a, b) for a, b in zip(x, n, strict=True)])
    both_nan = np.isnan(ours) & np.isnan(theirs)
    close = np.abs(ours - theirs) <= np.maximum(RTOL * np.abs(theirs), SUBNORMAL_ATOL)
    bad = np.flatnonzero(~(close | both_nan))
    assert bad.size == 0, [(n[j], x[j], ours[j], theirs[j]) for j in bad[:10]]
    branches = np.array(
        [scipy_branch(int(b), a) if not np.isnan(a) else "nan" for a, b in zip(x, n, strict=True)]
    )
    exact = np.isin(branches, list(BIT_IDENTICAL))
    np.testing.assert_array_equal(ours[exact], theirs[exact])
    return ours, theirs, branches


SMALL_N = [1, 2, 3, 4, 7, 10, 50, 139, 140]
LARGE_N = [141, 142, 980, 8_333, 33_333]


def test_small_n_grid_equals_scipy():
    x, n = grid(SMALL_N)
    _, theirs, branches = check(x, n)
    for b in ("support-low", "ruben-gambino-low", "ruben-gambino-high", "dmtw", "pomeranz"):
        assert (branches == b).sum() >= 3, b
    assert (branches == "smirnov").sum() >= 10
    assert ((theirs > 1 - 1e-12) & (theirs < 1)).any()


def test_large_n_grid_equals_scipy():
    x, n = grid(LARGE_N)
    _, theirs, branches = check(x, n)
    for b in ("ruben-gambino-low", "ruben-gambino-high", "dmtw", "pelz-good", "zero"):
        assert (branches == b).sum() >= 3, b
    assert (branches == "smirnov").sum() >= 40
    assert ((theirs > 0) & (theirs < 1e-300)).any()  # the far tail, still above zero
    assert ((theirs > 1 - 1e-12) & (theirs < 1)).any()


def test_dmtw_across_its_range_equals_scipy_to_a_few_ulp():
    """Durbin's matrix method, densely over its whole range at small and large n: the compiled
    matrix power and the double-double rest of n!/n^n (where scipy goes on in long double) stay
    within a few ulp of scipy, far inside the 1e-12 tolerance."""
    xs, ns = [], []
    for n in (2, 5, 50, 140, 141, 980, 8_333, 33_333, 99_999):
        limit = (1.4 / n) ** (2 / 3) if n > 140 else math.sqrt(0.754693 / n)
        x = np.linspace(0.5 / n * (1 + 1e-6), limit * (1 - 1e-9), 60)
        xs.append(x)
        ns.append(np.full(x.size, float(n)))
    x, n = np.concatenate(xs), np.concatenate(ns)
    ours, theirs, branches = check(x, n)
    dmtw = branches == "dmtw"
    assert dmtw.sum() >= 400
    rel = np.abs(ours[dmtw] - theirs[dmtw]) / theirs[dmtw]
    assert rel.max() <= 4 * np.finfo(float).eps, rel.max()


@pytest.mark.slow
def test_largest_n_grid_equals_scipy():
    """n at DMTW's upper limit (100,000) and past it, and past scipy's exact Smirnov limit."""
    x, n = grid([99_999, 100_000, 100_001, 1_000_001])
    check(x, n)


def test_random_statistics_at_window_sizes_equal_scipy():
    """D spread over the range a drift monitor sees, at the effective N of 1k/10k/100k-row
    windows against a 50,000-row reference."""
    rng = np.random.default_rng(13)
    xs, ns = [], []
    for n in (980, 8_333, 33_333):
        d = np.concatenate([rng.uniform(0, 3 / math.sqrt(n), 30), rng.uniform(0, 0.3, 10)])
        xs.append(d)
        ns.append(np.full(d.size, float(n)))
    x, n = np.concatenate(xs), np.concatenate(ns)
    ours, _, _ = check(x, n)
    # each element is computed alone: the split over threads changes nothing
    np.testing.assert_array_equal(kstwo_sf(x, n, workers=1), ours)
    np.testing.assert_array_equal(kstwo_sf(x, n, workers=3), ours)


def test_smirnov_sum_within_a_few_ulp_of_scipy():
    """The exact Smirnov sum at random (n, x) across its large-n range (n from 1,000 to 100,000,
    n*x^2 from 2.2 to 370): far inside the 1e-12 tolerance. Each block's first term is computed
    with libm's pow; raised to an integer power by repeated squaring (what numba does for an
    integer exponent up to 65,536), the sums were up to 4e-13 off (1.7e-13 on these points,
    5.7e-15 now)."""
    rng = np.random.default_rng(15)
    n = np.round(np.exp(rng.uniform(math.log(1_000), math.log(100_000), 120)))
    x = np.sqrt(np.exp(rng.uniform(math.log(2.2), math.log(370), n.size)) / n)
    ours, theirs, branches = check(x, n)
    assert (branches == "smirnov").all()
    rel = np.abs(ours - theirs) / theirs
    assert rel.max() <= 5e-14, (rel.max(), n[rel.argmax()], x[rel.argmax()])


def test_random_statistics_at_small_n_equal_scipy():
    """Windows of ~100 rows against a large reference: DMTW, Pomeranz and Smirnov at n <= 140."""
    rng = np.random.default_rng(14)
    n = np.repeat([20.0, 99.0, 140.0], 40)
    x = np.sqrt(rng.uniform(0.3, 6.0, n.size) / n)
    _, _, branches = check(x, n)
    assert (branches == "pomeranz").sum() >= 30


def test_invalid_n_and_shapes():
    out = kstwo_sf(np.array([0.1, 0.1, 0.1]), np.array([0.0, 2.5, math.nan]))
    assert np.isnan(out).all()
    with pytest.raises(ValueError, match="1-D arrays of one shape"):
        kstwo_sf(np.array([0.1, 0.2]), np.array([10.0]))
