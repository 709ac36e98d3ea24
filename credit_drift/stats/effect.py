"""Effect sizes of numeric drift: PSI over reference-quantile bins and the normed Wasserstein
distance, both read off the sorted reference summaries (see `numeric.scan_numeric`).

Pure numpy. A significance test answers "did anything move?"; these answer "how far?", which is
what the drift policy's effect-size floor is about.
"""

from collections.abc import Sequence

import numpy as np

from credit_drift.stats.numeric import DEFAULT_WORKERS, columns_of, scan_numeric
from credit_drift.stats.reference import NumericReference

#: PSI bins: the reference's deciles (ties collapse bins, so a 0/1 column gets two).
PSI_BINS = 10
#: Bin shares of exactly 0 are replaced by this before the logarithm (Evidently does the same
#: with the same value); it caps what one empty bin can add to PSI at about 0.1 * ln(1000).
PSI_EPSILON = 1e-4
#: Floor on the reference standard deviation in the normed Wasserstein distance, as in
#: Evidently's `wasserstein_distance_norm`, so a constant reference column does not divide by 0.
WASSERSTEIN_STD_FLOOR = 1e-3


def psi_from_counts(
    ref_counts: np.ndarray, cur_counts: np.ndarray, epsilon: float = PSI_EPSILON
) -> float:
    """Population stability index sum((c - r) * ln(c / r)) over bin shares r (reference) and
    c (window); shares of 0 become `epsilon`. NaN when either side is empty."""
    ref_counts = np.asarray(ref_counts, dtype=np.float64)
    cur_counts = np.asarray(cur_counts, dtype=np.float64)
    if ref_counts.shape != cur_counts.shape:
        raise ValueError(f"bin counts differ in shape: {ref_counts.shape} vs {cur_counts.shape}")
    n_ref, n_cur = ref_counts.sum(), cur_counts.sum()
    if n_ref == 0 or n_cur == 0:
        return float("nan")
    return float(_psi_terms(ref_counts / n_ref, cur_counts / n_cur, epsilon).sum())


def _psi_terms(r: np.ndarray, c: np.ndarray, epsilon: float) -> np.ndarray:
    """PSI's terms (c - r) * ln(c / r) of bin shares r (reference) and c (window), shares of 0
    counted as `epsilon`."""
    r = np.where(r == 0, epsilon, r)
    c = np.where(c == 0, epsilon, c)
    return (c - r) * np.log(c / r)


def wasserstein_norm(wasserstein1: np.ndarray | float, ref_std: np.ndarray | float) -> np.ndarray:
    """Wasserstein-1 divided by the reference standard deviation (floored), like Evidently."""
    return np.asarray(wasserstein1, dtype=np.float64) / np.maximum(
        np.asarray(ref_std, dtype=np.float64), WASSERSTEIN_STD_FLOOR
    )


def psi_many(
    refs: Sequence[NumericReference],
    current: np.ndarray | Sequence[np.ndarray],
    *,
    n_bins: int = PSI_BINS,
    workers: int = DEFAULT_WORKERS,
) -> np.ndarray:
    """PSI of every feature over its reference's `n_bins` quantile bins (NaN values dropped)."""
    columns = columns_of(current) if isinstance(current, np.ndarray) else list(current)
    scan = scan_numeric(refs, columns, psi_bins=n_bins, workers=workers)
    return psi_of_scan(scan.ref_bins, scan.cur_bins)


def wasserstein_norm_many(
    refs: Sequence[NumericReference],
    current: np.ndarray | Sequence[np.ndarray],
    *,
    workers: int = DEFAULT_WORKERS,
) -> np.ndarray:
    """Normed Wasserstein distance of every feature (NaN values dropped; NaN if a side is empty).

    Equals `scipy.stats.wasserstein_distance(ref, cur) / max(np.std(ref), 0.001)` up to float
    rounding (about 1e-12 relative)."""
    columns = columns_of(current) if isinstance(current, np.ndarray) else list(current)
    scan = scan_numeric(refs, columns, wasserstein=True, workers=workers)
    return wasserstein_norm(scan.wasserstein1, [r.std for r in refs])


def psi_of_scan(
    ref_bins: Sequence[np.ndarray] | None, cur_bins: Sequence[np.ndarray] | None
) -> np.ndarray:
    if ref_bins is None or cur_bins is None:
        raise ValueError("the scan was run without psi_bins")
    if len(ref_bins) != len(cur_bins):
        raise ValueError(
            f"{len(ref_bins)} reference bin counts for {len(cur_bins)} window bin counts"
        )
    lengths = np.array([len(r) for r in ref_bins], dtype=np.int64)
    if not np.array_equal(lengths, [len(c) for c in cur_bins]):
        raise ValueError("reference and window bin counts differ in length")
    if not lengths.sum():
        return np.full(len(ref_bins), np.nan)
    # psi_from_counts's terms for every feature at once (the bins of all features end to end; a
    # feature's sum adds its few terms in order, where np.sum may pair them: the last bit)
    p = len(ref_bins)
    feature = np.repeat(np.arange(p), lengths)
    ref = np.concatenate(ref_bins).astype(np.float64)
    cur = np.concatenate(cur_bins).astype(np.float64)
    n_ref = np.bincount(feature, ref, minlength=p)
    n_cur = np.bincount(feature, cur, minlength=p)
    empty = (n_ref == 0) | (n_cur == 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = _psi_terms(ref / n_ref[feature], cur / n_cur[feature], PSI_EPSILON)
    out = np.bincount(feature, terms, minlength=p)
    out[empty] = np.nan
    return out
