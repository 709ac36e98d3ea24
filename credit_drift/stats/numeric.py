"""One pass over a window's numeric columns against their reference summaries.

Pure numpy. Each window column is reduced once to its sorted distinct values and their counts
(one sort, or a bincount when it holds small integers), then one binary search of the smaller
set of distinct values into the larger places both in merged order, and everything the drift
statistics need is read off that: the two ECDFs at every point where either can jump (for the KS
statistic, bit-identical to scipy's), the integral of their absolute difference (Wasserstein-1)
and counts in the reference's quantile bins (PSI). `ks.py` turns the statistic into scipy's
p-value and `effect.py` turns the rest into effect sizes. Columns are spread over a small thread
pool: numpy releases the GIL in sort, searchsorted and the element-wise passes that dominate.
"""

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from credit_drift.stats.reference import NumericReference, ecdf_integral

#: Worker threads for per-column work (the project's machines have 2 cores).
DEFAULT_WORKERS = 2


@dataclass(frozen=True, eq=False)
class NumericScan:
    """Per-feature results of one scan (arrays aligned with the references passed in).

    statistic: the KS statistic exactly as `scipy.stats.ks_2samp` computes it before its exact
    method rounds it to a multiple of 1/lcm(n, m) (NaN when either side has no values).
    wasserstein1: Wasserstein-1 distance between the non-NaN values (NaN when not requested or
    not computable). ref_bins / cur_bins: counts in the reference's quantile bins (None when not
    requested; per feature an int64 array, empty when the feature is not testable).
    """

    n_ref: np.ndarray  # int64, non-NaN reference values
    n_cur: np.ndarray  # int64, non-NaN window values
    nan_count: np.ndarray  # int64, NaN window values
    statistic: np.ndarray  # float64
    wasserstein1: np.ndarray  # float64
    ref_bins: list[np.ndarray] | None
    cur_bins: list[np.ndarray] | None


def scan_numeric(
    refs: Sequence[NumericReference],
    columns: Sequence[np.ndarray],
    *,
    psi_bins: int = 0,
    wasserstein: bool = False,
    workers: int = DEFAULT_WORKERS,
) -> NumericScan:
    """Compare window `columns[j]` (1-D float arrays, NaN = missing) with `refs[j]`.

    `psi_bins` > 1 also counts both sides in the reference's `psi_bins` quantile bins;
    `wasserstein` also integrates |F_ref - F_cur|.
    """
    if len(refs) != len(columns):
        raise ValueError(f"{len(refs)} reference summaries for {len(columns)} window columns")
    p = len(refs)
    n_ref = np.zeros(p, dtype=np.int64)
    n_cur = np.zeros(p, dtype=np.int64)
    nan_count = np.zeros(p, dtype=np.int64)
    statistic = np.full(p, np.nan)
    w1 = np.full(p, np.nan)
    ref_bins: list[np.ndarray] | None = [np.empty(0, np.int64)] * p if psi_bins > 1 else None
    cur_bins: list[np.ndarray] | None = [np.empty(0, np.int64)] * p if psi_bins > 1 else None

    def work(js: range) -> None:
        # Scratch reused across this thread's columns: the sorted copy of a column and the
        # counts 0..n of a column without ties. Fresh arrays of this size per column cost page
        # faults (the allocator returns them to the OS in between), which add up at 100k rows.
        longest = max((np.size(columns[j]) for j in js), default=0)
        scratch = np.empty(longest), np.arange(longest + 1)
        for j in js:
            out = _scan_one(refs[j], columns[j], psi_bins, wasserstein, scratch)
            n_ref[j], n_cur[j], nan_count[j], statistic[j], w1[j] = out[:5]
            if ref_bins is not None and cur_bins is not None:
                ref_bins[j], cur_bins[j] = out[5], out[6]

    chunks = _chunks(p, workers)
    if len(chunks) <= 1:
        for js in chunks:
            work(js)
    else:
        with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
            # list() re-raises the first worker exception here.
            list(pool.map(work, chunks))
    return NumericScan(n_ref, n_cur, nan_count, statistic, w1, ref_bins, cur_bins)


def columns_of(matrix: np.ndarray) -> list[np.ndarray]:
    """The columns of an (n_rows, n_features) float matrix, as views."""
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"window matrix must be 2-D (rows x features), got shape {matrix.shape}")
    return [matrix[:, j] for j in range(matrix.shape[1])]


def _chunks(p: int, workers: int) -> list[range]:
    # Interleaved chunks balance the work when expensive columns cluster in one region.
    workers = max(1, min(workers, p))
    return [range(i, p, workers) for i in range(workers)] if p else []


def _scan_one(
    ref: NumericReference,
    col: np.ndarray,
    psi_bins: int,
    wasserstein: bool,
    scratch: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple:
    col = np.asarray(col, dtype=np.float64)
    if scratch is None or scratch[0].size < col.size:
        scratch = np.empty(col.size), np.arange(col.size + 1)
    empty = np.empty(0, np.int64)
    n1 = ref.n
    v, cum_v, nan = _window_distinct(col, scratch)
    n2 = col.size - nan
    if n1 == 0 or n2 == 0:
        return n1, n2, nan, np.nan, np.nan, empty, empty
    u, cum_u = ref.values, ref.cum

    # One binary search of the smaller set of distinct values into the larger places every point
    # of both in the merged order (a reference value before an equal window value).
    if v.size <= u.size:
        lo = np.searchsorted(u, v, side="left")  # distinct reference values < v[j]
        hi = lo + _equal_at(u, lo, v)  # ... <= v[j]
        d = _ks_from_window_points(cum_u, n1, lo, hi, cum_v, n2)
        pos_v = np.arange(v.size) + hi
        pos_u = None
    else:
        lo = np.searchsorted(v, u, side="left")  # distinct window values < u[k]
        hi = lo + _equal_at(v, lo, u)
        d = _ks_from_reference_points(cum_u, n1, cum_v[lo], cum_v[hi], n2)
        pos_u = np.arange(u.size) + lo
        pos_v = None

    w1 = np.nan
    if wasserstein:
        if v.size * _INTEGRAL_RATIO <= u.size:
            w1 = _abs_ecdf_gap_integral(v, cum_v, u, cum_u, ref.ecdf_integral, hi)
        elif u.size * _INTEGRAL_RATIO <= v.size:
            w1 = _abs_ecdf_gap_integral(u, cum_u, v, cum_v, ecdf_integral(v, cum_v), hi)
        else:
            w1 = _w1_merged(u, cum_u, n1, v, cum_v, n2, pos_u, pos_v)

    ref_b = cur_b = empty
    if psi_bins > 1:
        edges = ref.quantile_edges(psi_bins)
        ref_b = ref.bin_counts(edges)
        at_or_below = cum_v[np.searchsorted(v, edges, side="right")]
        cur_b = np.diff(np.concatenate(([0], at_or_below, [n2])))
    return n1, n2, nan, d, w1, ref_b, cur_b


#: When one side has this many times fewer distinct values than the other, Wasserstein-1 is
#: integrated over the smaller side's steps (O(small log large)) instead of over the merge.
_INTEGRAL_RATIO = 2


#: Integer-valued window columns spanning at most this many values (and no more than a few
#: times their length) are counted with bincount instead of sorted: flags, counts and day
#: numbers, a good part of a credit table.
_BINCOUNT_MAX_RANGE = 1 << 20
_BINCOUNT_RANGE_PER_ROW = 4


def _window_distinct(
    col: np.ndarray, scratch: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, int]:
    """Distinct non-NaN values of a window column (sorted), cum[j] = #values < v[j]
    (cum[-1] = #non-NaN), and the NaN count."""
    small = _integer_counts(col)
    if small is not None:
        return small
    # Sorted once; NaN sorts last and searchsorted agrees.
    w = scratch[0][: col.size]
    np.copyto(w, col)
    w.sort()
    n2 = int(np.searchsorted(w, np.nan))
    v, cum_v = _distinct(w[:n2], scratch[1])
    return v, cum_v, col.size - n2


def _integer_counts(col: np.ndarray) -> tuple[np.ndarray, np.ndarray, int] | None:
    """`_window_distinct` by counting, for columns of small-range integers (else None)."""
    head = col[:64]
    head = head[~np.isnan(head)]
    if col.size < 256 or np.any(head != np.floor(head)):
        return None  # a quick look first: continuous columns leave here
    nan_mask = np.isnan(col)
    nan = int(np.count_nonzero(nan_mask))
    valid = col[~nan_mask] if nan else col
    if valid.size == 0:
        return None
    low, high = float(valid.min()), float(valid.max())
    span = high - low
    if not (
        np.isfinite(span) and span <= min(_BINCOUNT_MAX_RANGE, _BINCOUNT_RANGE_PER_ROW * col.size)
    ):
        return None
    offsets = valid - low
    as_int = offsets.astype(np.int64)
    if np.any(as_int != offsets) or abs(low) > 2**52:
        return None  # not all integers (or too large to be exact as floats)
    counts = np.bincount(as_int)
    present = np.flatnonzero(counts)
    v = present + low  # exact: small integers
    cum_v = np.zeros(present.size + 1, dtype=np.int64)
    np.cumsum(counts[present], out=cum_v[1:])
    return v, cum_v, nan


def _distinct(w: np.ndarray, counting: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of a sorted array and cum[j] = #values < v[j] (cum[-1] = size);
    `counting` is 0, 1, 2, ... at least w.size + 1 long."""
    change = w[1:] != w[:-1]
    if change.all():  # continuous columns: nothing to compress
        return w, counting[: w.size + 1]
    starts = np.flatnonzero(np.concatenate(([True], change)))
    return w[starts], np.append(starts, w.size)


def _equal_at(big: np.ndarray, idx: np.ndarray, small: np.ndarray) -> np.ndarray:
    """1 where big[idx] == small (idx from a left searchsorted; big is distinct), else 0."""
    inside = idx < big.size
    return (inside & (big[np.minimum(idx, big.size - 1)] == small)).astype(np.int64)


# -- the KS statistic ---------------------------------------------------------------------
# scipy's two-sided D is max(maxS, clip(-minS, 0, 1)) over cddiffs = searchsorted(ref, x,
# 'right')/n1 - searchsorted(cur, x, 'right')/n2 evaluated at every point x of both samples.
# Both ECDFs are step functions, so between two consecutive points of one sample the difference
# only moves one way: its maximum over a run of reference points (no window point between them)
# is at the run's last point, its minimum over a run of window points at that run's last point.
# The functions below evaluate cddiffs only at those run ends, with the same integer counts,
# the same float divisions and the same subtraction as scipy, so every value they compare is a
# value scipy compares (or is dominated by one, or is the 0.0 that scipy always has at the
# largest point, where both ECDFs are 1); the maximum and minimum, hence D, are bit-identical.


def _ks_from_reference_points(
    cum: np.ndarray, n1: int, L: np.ndarray, R: np.ndarray, n2: int
) -> float:
    """D from the window's counts below (L) and at-or-below (R) each reference value u[k]:
    cddiffs at u[k] is cum[k+1]/n1 - R[k]/n2; just before u[k] (the last window point of the run
    ending there) it is cum[k]/n1 - L[k]/n2."""
    at = cum[1:] / n1 - R / n2
    before = cum[:-1] / n1 - L / n2
    return _combine(max(at.max(), 0.0), min(at.min(), before.min()))


def _ks_from_window_points(
    cum_u: np.ndarray, n1: int, lo: np.ndarray, hi: np.ndarray, cum_v: np.ndarray, n2: int
) -> float:
    """D from the reference's counts below (lo) and at-or-below (hi) each distinct window value
    v[j]: cddiffs at v[j] is cum_u[hi[j]]/n1 - cum_v[j+1]/n2; at the last reference point
    before v[j] (the end of the run of reference points there) it is cum_u[lo[j]]/n1 -
    cum_v[j]/n2 (when that run is empty this repeats the value at v[j-1], or is 0.0)."""
    at = cum_u[hi] / n1 - cum_v[1:] / n2
    before = cum_u[lo] / n1 - cum_v[:-1] / n2
    return _combine(max(at.max(), before.max(), 0.0), min(at.min(), before.min()))


def _combine(max_s: float, min_diff: float) -> float:
    min_s = np.clip(-min_diff, 0, 1)
    return float(min_s if min_s > max_s else max_s)


# -- Wasserstein-1 ------------------------------------------------------------------------
def _w1_merged(
    u: np.ndarray,
    cum_u: np.ndarray,
    n1: int,
    v: np.ndarray,
    cum_v: np.ndarray,
    n2: int,
    pos_u: np.ndarray | None,
    pos_v: np.ndarray | None,
) -> float:
    """Integral of |F_ref - F_cur| over the merged distinct points (what scipy's
    wasserstein_distance sums), from the merge positions the KS search already found.

    |F_ref - F_cur| is constant from each merged point to the next. At u[k] the window count is
    #window < u[k]: an equal window value comes next, so that step has zero width anyway."""
    m = u.size + v.size
    if pos_u is None:
        other = np.ones(m, dtype=bool)
        other[pos_v] = False
        pos_u = np.flatnonzero(other)
    else:
        other = np.zeros(m, dtype=bool)
        other[pos_u] = True
        pos_v = np.flatnonzero(~other)
    merged = np.empty(m)
    merged[pos_u] = u
    merged[pos_v] = v
    gap = np.empty(m)
    gap[pos_u] = cum_u[1:] / n1 - cum_v[pos_u - np.arange(u.size)] / n2
    gap[pos_v] = cum_u[pos_v - np.arange(v.size)] / n1 - cum_v[1:] / n2
    return float((np.abs(gap[:-1]) * np.diff(merged)).sum())


def _abs_ecdf_gap_integral(
    s: np.ndarray,
    cum_s: np.ndarray,
    z: np.ndarray,
    cum_z: np.ndarray,
    jz: np.ndarray,
    at_or_below: np.ndarray,
) -> float:
    """Integral over x of |F_s(x) - F_z(x)| in O(len(s) log len(z)), given the running integral
    jz of F_z at its own points (`reference.ecdf_integral`) and at_or_below[j] = #z <= s[j]
    (the KS search already found it).

    F_s is constant, c, on each [s[j], s[j+1]); there the integral of |F_z - c| splits at the
    first z where F_z reaches c (F_z is non-decreasing), and both halves come from the running
    integral J of F_z, which is linear between consecutive z.
    """
    ns, nz = int(cum_s[-1]), int(cum_z[-1])
    # J(s[j]) from the last z <= s[j] (none: J = 0); F_z there is cum_z[i+1]/nz.
    i = at_or_below - 1
    ic = np.maximum(i, 0)
    j_s = np.where(i < 0, 0.0, jz[ic] + cum_z[ic + 1] / nz * (s - z[ic]))
    total = float(j_s[0])  # below s[0], F_s = 0
    if s.size > 1:
        a, b = s[:-1], s[1:]
        c = cum_s[1:-1] / ns
        # First z with F_z >= c, in integers: cum_z[i+1] >= ceil(cum_s[j+1] * nz / ns).
        first = np.searchsorted(cum_z[1:], -((-cum_s[1:-1] * nz) // ns), side="left")
        fc = np.minimum(first, z.size - 1)
        cross = np.where(first < z.size, z[fc], np.inf)
        # The split point m is a, b or that z, where J is already known.
        m = np.clip(cross, a, b)
        j_m = np.where(m == a, j_s[:-1], np.where(m == b, j_s[1:], jz[fc]))
        below = c * (m - a) - (j_m - j_s[:-1])
        above = (j_s[1:] - j_m) - c * (b - m)
        total += float((below + above).sum())
    if s[-1] < z[-1]:  # above s[-1], F_s = 1
        total += float((z[-1] - s[-1]) - (jz[-1] - j_s[-1]))
    return total
