"""Two-sample Kolmogorov-Smirnov tests of many features at once, equal to scipy's.

Pure numpy/scipy. `ks_2samp_many` returns, for every feature, the statistic and p-value of
`scipy.stats.ks_2samp(ref_without_nan, cur_without_nan, alternative='two-sided', method='auto')`
(scipy 1.17): the statistic comes from one scan of each window column (`numeric.py`), the
p-values from `ks_pvalues`, which follows scipy's own branches:

* both samples at most 10,000 values: scipy's exact method (`_attempt_exact_2kssamp`, called
  as is), which also rounds the statistic to a multiple of 1/lcm(n, m); when it fails (overflow,
  or a probability outside [0, 1]) scipy falls back to the asymptotic branch with the rounded
  statistic, and so do we (without scipy's RuntimeWarning);
* otherwise `kstwo.sf(D, round(n*m/(n+m)))`.

`kstwo.sf` has two slow branches at large N (N = 33,333 for 100,000 window rows against a
50,000-row reference), and `_kstwo_sf` batches both while giving the same value, bit for bit:
* N*D^2 < 2.2 with N*D^1.5 <= 1.4 (tiny D, p close to 1: features that did not move): Durbin's
  matrix method (`_kolmogn_DMTW`), whose last step is a pure-Python loop of N iterations
  (~10 ms per feature at N = 33,333). `_dmtw_sf_batched` runs scipy's matrix part per feature
  (a line-for-line replica) and that loop once for all features, one numpy operation per step,
  with the same float64 -> long double switch at the same step as scipy's scalar code.
* 2.2 <= N*D^2 < 370 (roughly 1e-321 < p < 0.025: features that moved): `2 * smirnov(N, D)`, a
  C routine summing about N terms (~40 ms at N = 33,333). `_smirnov_batched` calls the same
  `scipy.special.smirnov` ufunc on the same (int N, float D), in arrays large enough that numpy
  releases the GIL, split across threads. This cost is scipy's own and remains: a drifted
  100,000-row window with many moderately drifted features spends most of its p-value time here.
Every other element goes through `kstwo.sf` unchanged. The branch selection mirrors scipy's
`_kolmogn`; `_fast_path_agrees` compares both fast paths with `kstwo.sf` on both sides of every
branch limit once per process and, should a scipy upgrade move them, switches them off (every
p-value then goes through `kstwo.sf`). Identical (N, D) pairs are evaluated once.

Not testable (no non-NaN value on either side): statistic NaN and p-value NaN; the drift policy
treats such features as not tested.
"""

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import scipy.special
from scipy.stats import kstwo

# scipy's scaling constants of the DMTW loop (a long double 2**128 and 2**-128), taken from the
# module that uses them so that the replica below multiplies by the very same values.
from scipy.stats._ksstats import _E128, _EM128, _EP128

# scipy's exact two-sample routine, used as is so that exact p-values are scipy's by
# construction (scipy is pinned below 1.18 in pyproject; the tests compare with ks_2samp).
from scipy.stats._stats_py import _attempt_exact_2kssamp

from credit_drift.stats.numeric import DEFAULT_WORKERS, columns_of, scan_numeric
from credit_drift.stats.reference import NumericReference

#: scipy's `ks_2samp(method='auto')` is exact when both samples have at most this many values.
MAX_AUTO_N = 10_000
# numpy releases the GIL inside a ufunc loop only above this many elements
# (NPY_BEGIN_THREADS_THRESHOLDED), so the smirnov batches are padded up to it.
_GIL_RELEASE_MIN = 501
# Branch limits of scipy.stats._ksstats._kolmogn for the survival function (scipy 1.4-1.17).
_SMIRNOV_MIN_N = 141
_SMIRNOV_LOW, _SMIRNOV_HIGH = 2.2, 370.0
_DMTW_MAX_N, _DMTW_LIMIT = 100_000, 1.4
_DMTW_RESCALE_EVERY = 256


class KSResult(NamedTuple):
    statistic: np.ndarray
    pvalue: np.ndarray


def ks_2samp_many(
    ref: Sequence[NumericReference] | Sequence[np.ndarray],
    current: np.ndarray | Sequence[np.ndarray],
    *,
    workers: int = DEFAULT_WORKERS,
) -> KSResult:
    """KS statistic and p-value of every feature, equal to scipy's `ks_2samp` per feature.

    `ref`: per feature a `NumericReference` or a raw 1-D array (NaN allowed; it is summarized).
    `current`: the window as an (n_rows, n_features) float array, or a sequence of 1-D columns.
    NaN values are dropped on both sides, as if each column were passed to scipy without them.
    """
    refs = [r if isinstance(r, NumericReference) else NumericReference.from_values(r) for r in ref]
    columns = columns_of(current) if isinstance(current, np.ndarray) else list(current)
    scan = scan_numeric(refs, columns, workers=workers)
    return ks_pvalues(scan.statistic, scan.n_ref, scan.n_cur, workers=workers)


def ks_pvalues(
    statistic: np.ndarray,
    n_ref: np.ndarray,
    n_cur: np.ndarray,
    *,
    workers: int = DEFAULT_WORKERS,
) -> KSResult:
    """scipy's two-sided `method='auto'` p-values for statistics D of samples of sizes n, m.

    Returns the statistic as scipy reports it (rounded to a multiple of 1/lcm(n, m) where the
    exact method ran) and the p-value; NaN where D is NaN or a sample is empty.
    """
    d = np.array(statistic, dtype=np.float64)
    n1 = np.asarray(n_ref, dtype=np.int64)
    n2 = np.asarray(n_cur, dtype=np.int64)
    if not d.shape == n1.shape == n2.shape:
        raise ValueError(f"shapes differ: D {d.shape}, n_ref {n1.shape}, n_cur {n2.shape}")
    p = np.full(d.shape, np.nan)
    ok = ~np.isnan(d) & (n1 > 0) & (n2 > 0)
    d[~ok] = np.nan

    asymp = ok & (np.maximum(n1, n2) > MAX_AUTO_N)
    exact = np.flatnonzero(ok & ~asymp)
    if exact.size:
        keys = {}
        for j in exact:
            a, b = int(n1[j]), int(n2[j])
            g = math.gcd(a, b)
            lcm = (a // g) * b
            keys.setdefault((a, b, int(np.round(d[j] * lcm))), []).append(j)
        jobs = list(keys.items())

        def run(job):
            (a, b, _), js = job
            return _attempt_exact_2kssamp(a, b, math.gcd(a, b), d[js[0]], "two-sided")

        results = _map(run, jobs, workers)
        for ((_, _, _), js), (success, d_rounded, prob) in zip(jobs, results, strict=True):
            d[js] = d_rounded
            if success:
                p[js] = prob
            else:
                asymp[js] = True

    idx = np.flatnonzero(asymp)
    if idx.size:
        m = np.maximum(n1[idx], n2[idx]).astype(np.float64)
        n = np.minimum(n1[idx], n2[idx]).astype(np.float64)
        en = m * n / (m + n)
        p[idx] = _kstwo_sf(d[idx], np.round(en), workers=workers)
    return KSResult(d, np.clip(p, 0, 1))


def _kstwo_sf(x: np.ndarray, n: np.ndarray, *, workers: int = DEFAULT_WORKERS) -> np.ndarray:
    """`scipy.stats.kstwo.sf(x, n)` element-wise, with its two slow branches batched."""
    x = np.asarray(x, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    # Identical (N, D) pairs are common (same window size, tied discrete features): do each once.
    pairs, inverse = np.unique(np.stack([n, x]), axis=1, return_inverse=True)
    un, ux = pairs[0], pairs[1]
    out = np.empty(un.shape)
    if _fast_path_agrees():
        band, dmtw = _smirnov_band(ux, un), _dmtw_band(ux, un)
    else:
        band = dmtw = np.zeros(un.shape, dtype=bool)
    rest = ~(band | dmtw)
    if rest.any():
        out[rest] = kstwo.sf(ux[rest], un[rest])
    if band.any():
        out[band] = _smirnov_batched(un[band].astype(np.int64), ux[band], workers)
    if dmtw.any():
        out[dmtw] = _dmtw_sf_batched(un[dmtw].astype(np.int64), ux[dmtw])
    return out[inverse.ravel()]


def _large_n_branch(x: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Elements on the n > 140 path of scipy's `_kolmogn(n, x, cdf=False)` inside the support
    `kstwo.sf` tests (rv_continuous), and their N*D^2."""
    with np.errstate(invalid="ignore", divide="ignore"):
        valid = (n >= 1) & (n == np.round(n)) & (0.5 / n < x) & (x < 1.0)
        t = n * x
        return (valid & ~(t <= 1.0) & ~(t >= n - 1) & ~(x >= 0.5) & (n >= _SMIRNOV_MIN_N)), t * x


def _smirnov_band(x: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Elements for which `kstwo.sf` returns `_clip_prob(2 * smirnov(n, x))`."""
    on_path, nxsquared = _large_n_branch(x, n)
    return on_path & (nxsquared >= _SMIRNOV_LOW) & (nxsquared < _SMIRNOV_HIGH)


def _dmtw_band(x: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Elements for which `kstwo.sf` runs `_kolmogn_DMTW` (the Durbin matrix method, whose
    final n-step Python loop is what costs ~10 ms at n = 33,333)."""
    on_path, nxsquared = _large_n_branch(x, n)
    cand = np.flatnonzero(on_path & (nxsquared < _SMIRNOV_LOW) & (n <= _DMTW_MAX_N))
    out = np.zeros(x.shape, dtype=bool)
    for j in cand:
        # scipy tests n * x**1.5 with x a 0-d array (its nditer hands one over): evaluate it
        # the same way, so the branch is the same even at the last bit.
        out[j] = bool(int(n[j]) * np.array(x[j]) ** 1.5 <= _DMTW_LIMIT)
    return out


def _smirnov_batched(n: np.ndarray, x: np.ndarray, workers: int) -> np.ndarray:
    # Sum of about n terms each: balance the threads by cost, pad each batch past numpy's
    # GIL-release threshold with x = 1 (a single-term sum), compute, unpad.
    order = np.argsort(-n, kind="stable")
    batches = [order[i :: max(1, workers)] for i in range(max(1, workers))]
    batches = [b for b in batches if b.size]

    def run(sel: np.ndarray) -> np.ndarray:
        k = max(sel.size, _GIL_RELEASE_MIN)
        nn = np.full(k, n[sel[0]], dtype=np.int64)
        xx = np.ones(k)
        nn[: sel.size], xx[: sel.size] = n[sel], x[sel]
        return np.clip(2 * scipy.special.smirnov(nn, xx)[: sel.size], 0.0, 1.0)

    out = np.empty(n.shape)
    for sel, values in zip(batches, _map(run, batches, workers), strict=True):
        out[sel] = values
    return out


def _dmtw_start(n: int, d: np.ndarray) -> tuple[np.floating, int]:
    """`scipy.stats._ksstats._kolmogn_DMTW(n, d)` (scipy 1.17, BSD-3-Clause) up to the start
    of its final loop, line for line and type for type (n a Python int, d a 0-d array, as scipy
    passes them): returns p = Hpwr[k-1, k-1] and the scaling exponent so far."""
    nd = n * d
    k = int(np.ceil(nd))
    h = k - nd
    m = 2 * k - 1
    H = np.zeros([m, m])
    intm = np.arange(1, m + 1)
    v = 1.0 - h**intm
    w = np.empty(m)
    fac = 1.0
    for j in intm:
        w[j - 1] = fac
        fac /= j
        v[j - 1] *= fac
    tt = max(2 * h - 1.0, 0) ** m - 2 * h**m
    v[-1] = (1.0 + tt) * fac
    for i in range(1, m):
        H[i - 1 :, i] = w[: m - i + 1]
    H[:, 0] = v
    H[-1, :] = np.flip(v, axis=0)
    Hpwr = np.eye(np.shape(H)[0])
    nn = n
    expnt = 0
    Hexpnt = 0
    while nn > 0:
        if nn % 2:
            Hpwr = np.matmul(Hpwr, H)
            expnt += Hexpnt
        H = np.matmul(H, H)
        Hexpnt *= 2
        if np.abs(H[k - 1, k - 1]) > _EP128:
            H /= _EP128
            Hexpnt += _E128
        nn = nn // 2
    return Hpwr[k - 1, k - 1], expnt


def _dmtw_sf_batched(n: np.ndarray, x: np.ndarray) -> np.ndarray:
    """kstwo.sf on the DMTW branch for many (n, x) at once, equal to scipy's element by element.

    scipy ends DMTW with `for i in 1..n: p = i * p / n`, multiplying p by 2**128 whenever it
    falls below 2**-128. That first rescale multiplies a float64 by scipy's long double constant,
    so from then on p is a long double and the loop continues in extended precision. Here all
    elements advance together, one numpy operation per step for all of them, with the same
    dtype switch at the same step for each element. Later rescales only keep the long double
    away from underflow: multiplying by a power of two is exact, and the exponent is given
    back by ldexp at the end, so doing them in batches gives the same value.
    """
    order = np.argsort(n, kind="stable")
    n_s = n[order]
    size = n_s.size
    p64 = np.empty(size)
    expnt = np.zeros(size, dtype=np.int64)
    for j in range(size):
        start, e = _dmtw_start(int(n_s[j]), np.array(x[order[j]]))
        p64[j], expnt[j] = start, e
    n_f = n_s.astype(np.float64)
    n_ld = n_s.astype(np.longdouble)
    pld = np.zeros(size, dtype=np.longdouble)
    promoted = np.zeros(size, dtype=bool)
    still_double = np.arange(size)  # elements whose p is still a float64
    lo = 0  # elements before lo have finished their n steps
    for i in range(1, int(n_s[-1]) + 1):
        while n_s[lo] < i:
            lo += 1
        # promoted elements: one step in long double, in place: (i * p) / n as scipy groups it
        active = pld[lo:]
        np.multiply(active, i, out=active)
        np.divide(active, n_ld[lo:], out=active)
        if still_double.size:
            still_double = still_double[n_s[still_double] >= i]
            step = i * p64[still_double] / n_f[still_double]
            p64[still_double] = step
            low = np.abs(step) < _EM128
            if low.any():
                crossing = still_double[low]
                pld[crossing] = p64[crossing] * _EP128  # float64 * long double -> long double
                expnt[crossing] -= _E128
                promoted[crossing] = True
                still_double = still_double[~low]
        if i % _DMTW_RESCALE_EVERY == 0:
            _rescale(pld, expnt, promoted)
    _rescale(pld, expnt, promoted)

    out = np.empty(size)
    # p = ldexp(p, expnt); cdf = clip(p, 0, 1); sf = clip(1 - cdf, 0, 1), each in p's own type,
    # then stored into kstwo's float64 output.
    for mask, values in ((promoted, pld), (~promoted, p64)):
        if mask.any():
            p = np.ldexp(values[mask], expnt[mask])
            cdf = np.clip(p, 0.0, 1.0)
            out[mask] = np.clip(1.0 - cdf, 0.0, 1.0).astype(np.float64)
    result = np.empty(size)
    result[order] = out
    return result


def _rescale(pld: np.ndarray, expnt: np.ndarray, promoted: np.ndarray) -> None:
    # Between two calls each step multiplies by at least 1/n >= 2**-17, so values stay far
    # above the long double's smallest normal (2**-16382); scale back above 2**-128.
    while True:
        low = promoted & (np.abs(pld) < _EM128)
        if not low.any():
            return
        pld[low] *= _EP128
        expnt[low] -= _E128


@lru_cache(maxsize=1)
def _fast_path_agrees() -> bool:
    """Do the mirrored branches give `kstwo.sf`'s values here? Probed on both sides of every
    limit they rely on (n = 140/141, N*D^2 = 2.2 and 370, D = 0.5, t = 1 and n - 1,
    n*D**1.5 = 1.4); a mismatch (a scipy upgrade) turns the fast paths off and every p-value
    goes through `kstwo.sf` itself. Costs a few tens of milliseconds, once per process."""
    probes_n, probes_x = [], []
    for n in (140.0, 141.0, 500.0, 1000.0):
        for q in (0.3, 2.19, 2.2, 2.21, 10.0, 369.0, 370.0, 371.0):
            probes_n.append(n)
            probes_x.append(math.sqrt(q / n))
        edge = (_DMTW_LIMIT / n) ** (2 / 3)
        probes_n += [n] * 8
        probes_x += [
            0.4999,
            0.5,
            (n - 1.0001) / n,
            1.0001 / n,
            3.0 / n,
            edge * 0.999,
            edge,
            edge * 1.001,
        ]
    n_arr, x_arr = np.array(probes_n), np.array(probes_x)
    band, dmtw = _smirnov_band(x_arr, n_arr), _dmtw_band(x_arr, n_arr)
    fast = np.array(kstwo.sf(x_arr, n_arr), dtype=np.float64)
    fast[band] = _smirnov_batched(n_arr[band].astype(np.int64), x_arr[band], 1)
    fast[dmtw] = _dmtw_sf_batched(n_arr[dmtw].astype(np.int64), x_arr[dmtw])
    reference = np.array([kstwo.sf(xi, ni) for xi, ni in zip(x_arr, n_arr, strict=True)])
    return bool(band.any() and dmtw.any() and np.array_equal(fast, reference))


def _map(fn, items: list, workers: int) -> list:
    if workers <= 1 or len(items) <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(fn, items))
