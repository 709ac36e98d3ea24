"""Evidence across days: the CUSUM of the daily KS statistics (`stats.evidence`) over the last
days' stored `FeatureDriftResult`s, which the `drift_evidence` asset receives through the IO
manager (nothing is re-read from the prediction log)."""

from collections.abc import Sequence

import numpy as np

from credit_drift.pipeline.feature_drift import FeatureDriftResult
from credit_drift.pipeline.reference import LoadedReference
from credit_drift.stats.evidence import (
    DayStatistics,
    EvidenceResult,
    EvidenceSettings,
    cusum_evidence,
)


def tracked_features(reference: LoadedReference) -> tuple[list[str], np.ndarray]:
    """The features the CUSUM follows (numeric ones, tested with KS) and their reference sizes."""
    profile = reference.profile
    names = list(profile.schema.numeric_names)
    return names, np.array([profile.numeric(n).n for n in names], dtype=np.float64)


def day_statistics(drift: FeatureDriftResult, names: Sequence[str]) -> DayStatistics:
    """The day's KS statistic and tested rows per feature of `names` (NaN / 0 when untested)."""
    results = drift.results.set_index("feature")
    ks = results["test"].astype(str).str.lower().str.startswith("ks")
    stat = results["statistic"].where(ks).reindex(names).to_numpy(np.float64)
    n_cur = results["n_current"].where(ks).reindex(names).fillna(0).to_numpy(np.float64)
    return DayStatistics(drift.day.key, stat, n_cur)


def compute_evidence(
    reference: LoadedReference,
    drifts: Sequence[FeatureDriftResult],
    settings: EvidenceSettings,
) -> EvidenceResult:
    """The evidence for the last of `drifts` (oldest first; days missing from the sequence,
    e.g. never materialized, simply do not count)."""
    names, n_ref = tracked_features(reference)
    days = sorted(drifts, key=lambda d: d.day.key)
    return cusum_evidence(names, n_ref, [day_statistics(d, names) for d in days], settings)
