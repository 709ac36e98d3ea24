"""Evidence across days: a per-feature CUSUM of the daily KS statistics over the last few days,
for the slow drift that no single day shows.

Each day's per-feature rule asks for a KS statistic D >= 0.1 (a shift that matters) before a
feature drifts. A drift that grows a little every day crosses that line late, although every
day already leans the same way. The CUSUM adds, day after day, how far each feature's D stands
above what a clean window of that size shows, and flags the feature once the sum passes a
threshold:

    x_t = D_t - allowance - noise * sqrt(1/n_t + 1/m)        (n_t window rows, m reference rows)
    S_t = max(0, S_{t-1} + x_t),   S before the first day of the span = 0
    feature flagged  <=>  S_t >= threshold on the last day

`sqrt(1/n + 1/m)` is the scale of D between two samples of the same distribution (a clean D
times `sqrt(nm/(n+m))` follows the Kolmogorov distribution, mean 0.87), so a clean day adds
nothing at any window size, and `allowance` is the size of shift per day that is never
accumulated. The status follows the share of flagged features with the policy's WARNING / ALERT
shares, as the daily status does. The span is a fixed number of days (recomputed from the
stored days, no state carried between runs), so a drift that stopped ages out of it.

Only features tested with KS take part (numeric ones): a categorical feature's chi-square
statistic is on another scale. Days without a statistic for a feature (an empty day) add
nothing. Pure numpy.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from credit_drift.stats.policy import status_for

#: Noise allowance in units of the clean KS scale sqrt(1/n + 1/m): just above the Kolmogorov
#: distribution's mean (0.87), so that clean days hover around 0 and the max(0, .) absorbs them.
NOISE_ALLOWANCE = 1.0


@dataclass(frozen=True)
class EvidenceSettings:
    """days: span of the CUSUM, the day judged included; allowance: D per day never
    accumulated; threshold: accumulated D excess that flags a feature; warning_share /
    alert_share: the status thresholds (those of the drift policy)."""

    days: int = 7
    allowance: float = 0.005
    threshold: float = 0.05
    warning_share: float = 0.10
    alert_share: float = 0.30

    def __post_init__(self) -> None:
        if self.days < 1:
            raise ValueError(f"evidence days must be >= 1, got {self.days}")
        if self.allowance < 0 or self.threshold <= 0:
            raise ValueError(
                f"evidence allowance must be >= 0 and threshold > 0, got {self.allowance}, "
                f"{self.threshold}"
            )
        if not 0 <= self.warning_share <= self.alert_share <= 1:
            raise ValueError("evidence shares must satisfy 0 <= warning <= alert <= 1")


@dataclass(frozen=True)
class DayStatistics:
    """One day's KS statistics: `statistic[i]` and `n_current[i]` for feature i (NaN / 0 when
    the feature was not tested that day)."""

    day: str
    statistic: np.ndarray
    n_current: np.ndarray


@dataclass(frozen=True, eq=False)
class EvidenceResult:
    """status: OK / WARNING / ALERT from the share of flagged features, NO_DATA when no day of
    the span had a tested feature. table: one row per tracked feature (feature, cusum, flagged,
    days_above: days whose increment was positive, last_statistic), largest cusum first.
    days: the days that had statistics, oldest first."""

    status: str
    flagged_share: float
    n_tracked: int
    n_flagged: int
    days: tuple[str, ...]
    table: pd.DataFrame

    @property
    def flagged_features(self) -> list[str]:
        return self.table.loc[self.table["flagged"], "feature"].tolist()


def cusum_evidence(
    features: Sequence[str],
    n_reference: np.ndarray,
    days: Sequence[DayStatistics],
    settings: EvidenceSettings,
) -> EvidenceResult:
    """The CUSUM of `days` (oldest first; only the last `settings.days` are used) for
    `features`, whose reference sizes (non-missing rows) are `n_reference`."""
    names = list(features)
    p = len(names)
    m = np.asarray(n_reference, dtype=np.float64)
    if m.shape != (p,):
        raise ValueError(f"n_reference has shape {m.shape} for {p} features")
    span = list(days)[-settings.days :]
    s = np.zeros(p)
    above = np.zeros(p, dtype=np.int64)
    last = np.full(p, np.nan)
    used: list[str] = []
    for day in span:
        d = np.asarray(day.statistic, dtype=np.float64)
        n = np.asarray(day.n_current, dtype=np.float64)
        if d.shape != (p,) or n.shape != (p,):
            raise ValueError(f"day {day.day}: statistics for {d.shape} features, expected {p}")
        tested = np.isfinite(d) & (n > 0) & (m > 0)
        if not tested.any():
            continue
        used.append(day.day)
        with np.errstate(divide="ignore", invalid="ignore"):
            noise = NOISE_ALLOWANCE * np.sqrt(1.0 / n + 1.0 / m)
        x = np.where(tested, d - settings.allowance - noise, 0.0)
        s = np.maximum(0.0, s + x)
        above += x > 0
        last = np.where(tested, d, last)
    tracked = m > 0
    flagged = tracked & (s >= settings.threshold)
    n_tracked, n_flagged = int(tracked.sum()), int(flagged.sum())
    share = n_flagged / n_tracked if used and n_tracked else float("nan")
    status = status_for(share, settings.warning_share, settings.alert_share)
    table = pd.DataFrame(
        {
            "feature": names,
            "cusum": s,
            "flagged": flagged,
            "days_above": above,
            "last_statistic": last,
        }
    )[tracked]
    table = table.sort_values("cusum", ascending=False, kind="stable").reset_index(drop=True)
    return EvidenceResult(status, share, n_tracked, n_flagged, tuple(used), table)
