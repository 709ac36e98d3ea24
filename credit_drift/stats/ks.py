"""Two-sample Kolmogorov-Smirnov tests of many features at once, equal to scipy's.

numpy, scipy and numba. `ks_2samp_many` returns, for every feature, the statistic and p-value of
`scipy.stats.ks_2samp(ref_without_nan, cur_without_nan, alternative='two-sided', method='auto')`
(scipy 1.17): the statistic comes from one scan of each window column (`numeric.py`), the
p-values from `ks_pvalues`, which follows scipy's own branches:

* both samples at most 10,000 values: scipy's exact method (`_attempt_exact_2kssamp`, called
  as is), which also rounds the statistic to a multiple of 1/lcm(n, m); when it fails (overflow,
  or a probability outside [0, 1]) scipy falls back to the asymptotic branch with the rounded
  statistic, and so do we (without scipy's RuntimeWarning);
* otherwise `kstwo.sf(D, round(n*m/(n+m)))`.

`kstwo.sf` is evaluated for all features at once in compiled code (`kstwo.py`): scipy runs it
one element at a time in Python, and its exact branches (a Smirnov sum of about N terms, Durbin's
matrix method) cost 10-100 ms per feature at N = 33,333 (100,000 window rows against a 50,000-row
reference). The compiled version follows scipy's branch selection and equals it to 1e-12
relative (bit for bit on most branches; see `kstwo.py`). Identical (N, D) pairs are evaluated
once.

Not testable (no non-NaN value on either side): statistic NaN and p-value NaN; the drift policy
treats such features as not tested.
"""

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np

# scipy's exact two-sample routine, used as is so that exact p-values are scipy's by
# construction (scipy is pinned below 1.18 in pyproject; the tests compare with ks_2samp).
from scipy.stats._stats_py import _attempt_exact_2kssamp

from credit_drift.stats.kstwo import kstwo_sf
from credit_drift.stats.numeric import DEFAULT_WORKERS, columns_of, scan_numeric
from credit_drift.stats.reference import NumericReference

#: scipy's `ks_2samp(method='auto')` is exact when both samples have at most this many values.
MAX_AUTO_N = 10_000


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
    """`scipy.stats.kstwo.sf(x, n)` element-wise (compiled, `kstwo.py`)."""
    x = np.asarray(x, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    # Identical (N, D) pairs are common (same window size, tied discrete features): do each once.
    pairs, inverse = np.unique(np.stack([n, x]), axis=1, return_inverse=True)
    out = kstwo_sf(pairs[1], pairs[0], workers=workers)
    return out[inverse.ravel()]


def _map(fn, items: list, workers: int) -> list:
    if workers <= 1 or len(items) <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(fn, items))
