"""One pass over a window's numeric columns against their reference summaries.

Each window column is sorted once (numpy), then one linear merge of it with the reference's
sorted distinct values (a small compiled loop, `_merge_scan`) reads off everything the drift
statistics need: the two ECDFs at every point where either can jump (for the KS statistic,
bit-identical to scipy's: the same integer counts, the same float divisions and subtraction)
and the integral of their absolute difference (Wasserstein-1). Counts in the reference's
quantile bins (PSI) come from a binary search of the few bin edges into the sorted column.
`ks.py` turns the statistic into scipy's p-value and `effect.py` turns the rest into effect
sizes. Columns are spread over a small thread pool: numpy's sort and the compiled merge both
release the GIL.

The merge is compiled with numba (cached on disk after the first call in a new installation,
about a second); it replaces binary searches of one sorted sample into the other, which cost
more than the sort itself at 100,000 rows (see benchmarks/README.md).
"""

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

from credit_drift.stats.reference import NumericReference

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
        # Scratch reused across this thread's columns for the sorted copy of a column: fresh
        # arrays of this size per column cost page faults (the allocator returns them to the
        # OS in between), which add up at 100k rows.
        longest = max((np.size(columns[j]) for j in js), default=0)
        scratch = np.empty(longest)
        for j in js:
            out = _scan_one(refs[j], columns[j], psi_bins, wasserstein, scratch)
            n_ref[j], n_cur[j], nan_count[j], statistic[j], w1[j] = out[:5]
            if ref_bins is not None and cur_bins is not None:
                ref_bins[j], cur_bins[j] = out[5], out[6]

    in_threads(work, _chunks(p, workers))
    return NumericScan(n_ref, n_cur, nan_count, statistic, w1, ref_bins, cur_bins)


def columns_of(matrix: np.ndarray) -> list[np.ndarray]:
    """The columns of an (n_rows, n_features) float matrix, as views."""
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"window matrix must be 2-D (rows x features), got shape {matrix.shape}")
    return [matrix[:, j] for j in range(matrix.shape[1])]


def in_threads(fn: Callable[[Any], None], parts: Sequence[Any]) -> None:
    """`fn(part)` for every part, one thread per part (none for a single part); the first
    exception of any part is raised here."""
    if len(parts) <= 1:
        for part in parts:
            fn(part)
        return
    with ThreadPoolExecutor(max_workers=len(parts)) as pool:
        list(pool.map(fn, parts))


def _chunks(p: int, workers: int) -> list[range]:
    # Interleaved chunks balance the work when expensive columns cluster in one region.
    workers = max(1, min(workers, p))
    return [range(i, p, workers) for i in range(workers)] if p else []


def _scan_one(
    ref: NumericReference,
    col: np.ndarray,
    psi_bins: int,
    wasserstein: bool,
    scratch: np.ndarray | None = None,
) -> tuple:
    col = np.asarray(col, dtype=np.float64)
    if scratch is None or scratch.size < col.size:
        scratch = np.empty(col.size)
    empty = np.empty(0, np.int64)
    n1 = ref.n
    # Sorted once; NaN sorts last and searchsorted agrees.
    w = scratch[: col.size]
    np.copyto(w, col)
    w.sort()
    n2 = int(np.searchsorted(w, np.nan))
    nan = col.size - n2
    if n1 == 0 or n2 == 0:
        return n1, n2, nan, np.nan, np.nan, empty, empty
    if n1 * n2 >= 2**63:  # the merge's exact gap numerators are int64
        raise ValueError(f"samples of {n1} and {n2} values are too large to compare")
    max_d, min_d, w1 = _merge_scan(ref.values, ref.cum, w, n2, wasserstein)
    d = _combine(max_d, min_d)
    if not wasserstein:
        w1 = np.nan

    ref_b = cur_b = empty
    if psi_bins > 1:
        edges, ref_b = ref.quantile_bins(psi_bins)
        at_or_below = np.searchsorted(w[:n2], edges, side="right")
        cur_b = np.diff(np.concatenate(([0], at_or_below, [n2])))
    return n1, n2, nan, d, w1, ref_b, cur_b


#: Below this many window values the merge runs as one chain.
_TWO_CHAINS_MIN = 64


@njit(cache=True, nogil=True)
def _merge_scan(
    u: np.ndarray, cum_u: np.ndarray, w: np.ndarray, n2: int, wasserstein: bool
) -> tuple[float, float, float]:
    """Walk the distinct values x of both samples in increasing order: `u` (the reference's
    distinct values, cum_u[k] = #reference values < u[k], cum_u[-1] = n1) and the first `n2`
    values of the sorted window `w`. At each x the gap F_ref(x) - F_cur(x) is what
    `scipy.stats.ks_2samp` computes as its `cddiffs` (count_ref / n1 - count_cur / n2, in
    float64), and the largest and smallest of those floats, hence D, are returned bit for bit;
    scipy evaluates at every sample point and repeated points repeat a value. Both start at 0.0,
    the gap scipy always has at the largest point, where both ECDFs are 1.

    The walk does not divide at every point: it ranks the gaps by their exact integer numerator
    k = count_ref * n2 - count_cur * n1 (gap = k / (n1 n2), int64: n1 n2 < 2^63). Each float
    gap is within 3 * 2^-53 of its exact value, so a float gap can reach the float gap of a key
    k only from a key above k - `margin` = n1 n2 * 2^-49 (zero below 2^49: distinct keys then
    order their float gaps strictly). Only the points whose key is within `margin` of the
    largest (smallest) key so far compute their float gap, and the largest (smallest) of those
    is scipy's: points tied on k may differ in the last bit.

    The walk is split at the window's middle value into two halves walked side by side in one
    loop (each step of a merge waits on the previous one's loads, so two independent walks
    share the core's idle cycles); every gap is still computed from the global counts.

    With `wasserstein`, also the integral of |gap| between consecutive points, which is what
    `scipy.stats.wasserstein_distance` sums (a compensated sum of |k| times the step, divided by
    n1 n2 at the end: it differs from scipy's pairwise sum of rounded gaps only in the last
    bits). Returns (max gap, min gap, integral).
    """
    nu = u.size
    n1 = cum_u[nu]
    margin = np.int64(float(n1) * float(n2) * 2.0**-49)
    if n2 >= _TWO_CHAINS_MIN:
        x_s = w[n2 // 2]
        j_s = np.searchsorted(w[:n2], x_s)  # the first of x_s's run: all of it in the upper half
        i_s = np.searchsorted(u, x_s)
    else:
        i_s, j_s = nu, n2
    # max key, its float gap, min key, its float gap, integral, compensation, x, key
    k0 = np.int64(0)
    zero = (k0, 0.0, k0, 0.0, 0.0, 0.0, 0.0, k0)
    ia, ja, acc_a = 0, 0, zero
    ib, jb, acc_b = i_s, j_s, zero
    started_a = started_b = False
    # Both walks side by side while each has points of both samples left: `_walk`'s step for
    # each, written out interleaved (the two walks' loads before either's run check; calling
    # a step function twice here costs 0.74 instead of 0.49 ms a 100,000-row column).
    while ia < i_s and ja < j_s and ib < nu and jb < n2:
        ua = u[ia]
        wa = w[ja]
        ub = u[ib]
        wb = w[jb]
        xa = min(ua, wa)
        xb = min(ub, wb)
        ia += ua == xa  # reference values are distinct
        ja += wa == xa
        ib += ub == xb
        jb += wb == xb
        if ja < j_s and w[ja] == xa:
            ja = _run_end(w, ja, j_s, xa)
        if jb < n2 and w[jb] == xb:
            jb = _run_end(w, jb, n2, xb)
        acc_a = _gap_step(acc_a, xa, cum_u[ia], ja, n1, n2, margin, started_a, wasserstein)
        acc_b = _gap_step(acc_b, xb, cum_u[ib], jb, n1, n2, margin, started_b, wasserstein)
        started_a = started_b = True
    # the rest of each walk, alone
    acc_a = _walk(u, cum_u, w, ia, ja, i_s, j_s, n1, n2, margin, acc_a, started_a, wasserstein)
    started_a = started_a or ia < i_s or ja < j_s
    acc_b = _walk(u, cum_u, w, ib, jb, nu, n2, n1, n2, margin, acc_b, started_b, wasserstein)
    started_b = started_b or ib < nu or jb < n2
    max_d = max(acc_a[1], acc_b[1])
    min_d = min(acc_a[3], acc_b[3])
    total = acc_a[4]
    if wasserstein and started_a and started_b:
        # from the lower half's last point to the upper half's first
        # (the upper half holds the window's middle value: j_s < n2)
        first_b = min(u[i_s], w[j_s]) if i_s < nu else w[j_s]
        total += abs(acc_a[7]) * (first_b - acc_a[6])
    return max_d, min_d, (total + acc_b[4]) / (float(n1) * float(n2))


@njit(inline="always")
def _walk(u, cum_u, w, i, j, i_end, j_end, n1, n2, margin, acc, started, wasserstein):
    """The points of a walk over u[i:i_end] and w[j:j_end], and their gaps. While both samples
    have points left, the next point x is the smaller head, and each side steps past it without
    a branch on which one it was (a coin flip on continuous data, so a mispredicted branch); a
    run of x in the window is skipped whole. (Written out: the same steps as a function
    returning one point at a time, called in a loop, or as a function returning (i, j, x),
    walked a window past the reference's last value 1.5-3.5 times slower.)"""
    while i < i_end or j < j_end:
        if i < i_end and j < j_end:
            ui = u[i]
            wj = w[j]
            x = min(ui, wj)
            i += ui == x  # reference values are distinct
            j += wj == x
            if j < j_end and w[j] == x:
                j = _run_end(w, j, j_end, x)
        elif i < i_end:  # only the reference's points left in this walk
            x = u[i]
            i += 1
        else:  # only the window's
            x = w[j]
            j += 1
            if j < j_end and w[j] == x:
                j = _run_end(w, j, j_end, x)
        acc = _gap_step(acc, x, cum_u[i], j, n1, n2, margin, started, wasserstein)
        started = True
    return acc


@njit(cache=True, nogil=True)
def _run_end(w, j, n2, x):
    """The first index at or after `j` (where w[j] == x) whose value is not x, below `n2`:
    a galloping search, so a value repeated r times costs O(log r) steps instead of r (columns
    with few distinct values repeat each of them thousands of times in a large window)."""
    lo = j  # w[lo] == x
    step = 1
    hi = j + 1
    while hi < n2 and w[hi] == x:
        lo = hi
        step *= 2
        hi = lo + step
    if hi > n2:
        hi = n2
    # w[lo] == x, and hi == n2 or w[hi] != x: the end is in (lo, hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if w[mid] == x:
            lo = mid
        else:
            hi = mid
    return hi


@njit(inline="always")
def _gap_step(acc, x, count_ref, count_cur, n1, n2, margin, started, wasserstein):
    """One point of `_merge_scan`, where the ECDFs are count_ref / n1 and count_cur / n2: the
    extreme keys (the gap's exact numerator count_ref * n2 - count_cur * n1) and the extreme
    float gaps (scipy's) of the points near them, and the compensated integral of |key| since
    the previous point."""
    max_k, max_d, min_k, min_d, total, compensation, prev_x, prev_k = acc
    k = count_ref * n2 - count_cur * n1
    if k >= max_k - margin:
        max_d = max(max_d, count_ref / n1 - count_cur / n2)
        max_k = max(max_k, k)
    if k <= min_k + margin:
        min_d = min(min_d, count_ref / n1 - count_cur / n2)
        min_k = min(min_k, k)
    if wasserstein:
        if started:
            term = abs(prev_k) * (x - prev_x) - compensation
            t = total + term
            compensation = (t - total) - term
            total = t
        prev_x = x
        prev_k = k
    return max_k, max_d, min_k, min_d, total, compensation, prev_x, prev_k


def _combine(max_s: float, min_diff: float) -> float:
    """scipy's two-sided D: max(maxS, clip(-minS, 0, 1)), choosing minS only when larger.
    (min_diff is a finite gap: Python's min and max clip it as np.clip does, without numpy's
    call overhead on a scalar.)"""
    min_s = min(max(-min_diff, 0.0), 1.0)
    return float(min_s if min_s > max_s else max_s)
