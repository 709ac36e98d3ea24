"""Drift of the model's score distribution: a window's predicted probabilities against the
training scores kept in the reference profile (KS as scipy computes it, and PSI).

Pure numpy/scipy.
"""

from dataclasses import dataclass

import numpy as np

from credit_drift.stats.effect import PSI_BINS, psi_of_scan
from credit_drift.stats.ks import ks_pvalues
from credit_drift.stats.numeric import scan_numeric
from credit_drift.stats.reference import NumericReference, ReferenceProfile


@dataclass(frozen=True)
class ScoreDrift:
    """ks_statistic / p_value: `scipy.stats.ks_2samp(training_scores, window_scores)`;
    psi: over the training scores' deciles. NaN when the window has no scores."""

    ks_statistic: float
    p_value: float
    psi: float
    n_current: int
    mean_reference: float
    mean_current: float


def score_drift(reference: ReferenceProfile | NumericReference, scores: np.ndarray) -> ScoreDrift:
    """Compare window scores (NaN dropped) with the profile's training scores."""
    ref = reference.training_scores if isinstance(reference, ReferenceProfile) else reference
    if ref is None:
        raise ValueError("the reference profile was fitted without training scores")
    scores = np.asarray(scores, dtype=np.float64).ravel()
    scan = scan_numeric([ref], [scores], psi_bins=PSI_BINS, workers=1)
    ks = ks_pvalues(scan.statistic, scan.n_ref, scan.n_cur, workers=1)
    valid = scores[~np.isnan(scores)]
    mean_ref = float((ref.values * ref.counts).sum() / ref.n) if ref.n else float("nan")
    return ScoreDrift(
        ks_statistic=float(ks.statistic[0]),
        p_value=float(ks.pvalue[0]),
        psi=float(psi_of_scan(scan.ref_bins, scan.cur_bins)[0]),
        n_current=int(valid.size),
        mean_reference=mean_ref,
        mean_current=float(valid.mean()) if valid.size else float("nan"),
    )
