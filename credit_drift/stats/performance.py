"""Realized performance of a scored cohort once its outcomes are known: discrimination,
calibration and the business cost at the decision threshold.

Pure numpy/scipy/pandas: arrays in, a frozen `RealizedPerformance` out. `y` holds the observed
outcome of each scored application (1 = default, 0 = repaid, NaN = not observed yet); only the
labeled rows enter the metrics, and the labeled share says how much of the cohort that is.

What is computed, on the labeled rows:

- the observed default rate against the mean predicted PD, with an exact binomial test
  (`scipy.stats.binomtest`, two-sided) of "defaults ~ Binomial(n, mean PD)". With PDs that differ
  from row to row the count is Poisson-binomial, whose variance is below the binomial's: the
  test is slightly conservative, never falsely alarming;
- AUC (the Mann-Whitney identity, ties counting one half: `sklearn.metrics.roc_auc_score`),
  Gini = 2 AUC - 1, the KS statistic max |TPR - FPR| over thresholds (=
  `scipy.stats.ks_2samp` of the scores of defaults against non-defaults), the Brier score;
  with one class only they are undefined and reported as NaN with the reason, not as a crash;
- calibration by score band on fixed edges (the deciles of the development sample's scores in
  the pipeline), each band with its observed rate, its mean PD, the Jeffreys interval of the
  observed rate and the exact binomial test of the band's count against its mean PD;
- the business cost at the threshold, `cost_fn * FN + cost_fp * FP` (a default that was approved,
  a repaid loan that was refused), per labeled application, beside the cost per application
  measured on the validation split at training (`metrics.json`).
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats as sps

from credit_drift.errors import CreditDriftError
from credit_drift.stats.multivariate import roc_auc

#: Two-sided level of the intervals and tests (a 95% Jeffreys interval).
DEFAULT_ALPHA = 0.05
#: Bands of the calibration table when no edges are given: deciles of the cohort's own scores.
DEFAULT_BANDS = 10

CALIBRATION_COLUMNS = (
    "band",
    "low",
    "high",
    "n",
    "n_defaults",
    "observed_rate",
    "mean_pd",
    "jeffreys_low",
    "jeffreys_high",
    "p_value",
    "calibrated",
)


class PerformanceInputError(CreditDriftError, ValueError):
    """The arrays given to the performance metrics are not usable; the message says which."""


@dataclass(frozen=True)
class RealizedPerformance:
    """Metrics of one cohort. Every metric is NaN when it is undefined (no labeled row, or one
    class only: `undefined_reason` says which); counts are exact."""

    n: int
    n_labeled: int
    n_defaults: int
    observed_default_rate: float
    mean_pd: float
    binomial_p_value: float
    auc: float
    gini: float
    ks_statistic: float
    brier: float
    cost: float
    cost_per_application: float
    validation_cost_per_application: float
    n_false_negatives: int
    n_false_positives: int
    calibration: pd.DataFrame = field(repr=False)
    undefined_reason: str | None = None

    @property
    def labeled_share(self) -> float:
        return self.n_labeled / self.n if self.n else float("nan")

    @property
    def n_bands_miscalibrated(self) -> int:
        """Bands whose mean PD lies outside the Jeffreys interval of their observed rate."""
        cal = self.calibration
        return int((cal["calibrated"] == False).sum())  # noqa: E712 (pandas object column)

    def numbers(self) -> dict[str, float]:
        """The scalar metrics by name (for metadata and tables)."""
        return {
            "n": float(self.n),
            "n_labeled": float(self.n_labeled),
            "labeled_share": self.labeled_share,
            "n_defaults": float(self.n_defaults),
            "observed_default_rate": self.observed_default_rate,
            "mean_pd": self.mean_pd,
            "binomial_p_value": self.binomial_p_value,
            "auc": self.auc,
            "gini": self.gini,
            "ks_statistic": self.ks_statistic,
            "brier": self.brier,
            "cost_per_application": self.cost_per_application,
            "validation_cost_per_application": self.validation_cost_per_application,
        }


def jeffreys_interval(k: int, n: int, alpha: float = DEFAULT_ALPHA) -> tuple[float, float]:
    """Jeffreys interval of a binomial rate: Beta(k + 1/2, n - k + 1/2) quantiles, with the
    usual convention that the lower bound is 0 when k = 0 and the upper 1 when k = n."""
    if n <= 0:
        return float("nan"), float("nan")
    low = 0.0 if k == 0 else float(sps.beta.ppf(alpha / 2, k + 0.5, n - k + 0.5))
    high = 1.0 if k == n else float(sps.beta.ppf(1 - alpha / 2, k + 0.5, n - k + 0.5))
    return low, high


def binomial_p_value(k: int, n: int, p: float) -> float:
    """Two-sided exact binomial test of k defaults in n against the rate p (NaN when n = 0)."""
    if n <= 0 or not np.isfinite(p):
        return float("nan")
    return float(sps.binomtest(int(k), int(n), float(min(max(p, 0.0), 1.0))).pvalue)


def ks_statistic(y: np.ndarray, p: np.ndarray) -> float:
    """max |TPR - FPR| over every threshold: the largest gap between the score ECDFs of the
    defaults and of the non-defaults (NaN with one class)."""
    pos, neg = p[y == 1], p[y == 0]
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    grid = np.unique(p)
    tpr = np.searchsorted(np.sort(pos), grid, side="right") / pos.size
    fpr = np.searchsorted(np.sort(neg), grid, side="right") / neg.size
    return float(np.max(np.abs(tpr - fpr)))


def calibration_table(
    y: np.ndarray,
    p: np.ndarray,
    edges: np.ndarray,
    alpha: float = DEFAULT_ALPHA,
) -> pd.DataFrame:
    """One row per band (-inf, e1], (e1, e2], ..., (ek, inf) of labeled rows: `CALIBRATION_COLUMNS`.
    `calibrated` is whether the band's mean PD lies inside the Jeffreys interval of its observed
    rate (None for an empty band)."""
    edges = np.asarray(edges, dtype=np.float64)
    band = np.searchsorted(edges, p, side="left")  # (e_{i-1}, e_i] -> i
    bounds = np.concatenate(([-np.inf], edges, [np.inf]))
    rows = []
    for i in range(len(edges) + 1):
        mask = band == i
        n = int(mask.sum())
        k = int(y[mask].sum()) if n else 0
        mean_pd = float(p[mask].mean()) if n else float("nan")
        low, high = jeffreys_interval(k, n, alpha)
        rows.append(
            {
                "band": i + 1,
                "low": float(max(bounds[i], 0.0)),
                "high": float(min(bounds[i + 1], 1.0)),
                "n": n,
                "n_defaults": k,
                "observed_rate": k / n if n else float("nan"),
                "mean_pd": mean_pd,
                "jeffreys_low": low,
                "jeffreys_high": high,
                "p_value": binomial_p_value(k, n, mean_pd),
                "calibrated": bool(low <= mean_pd <= high) if n else None,
            }
        )
    return pd.DataFrame(rows, columns=list(CALIBRATION_COLUMNS))


def _as_arrays(y, p, decision) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    y = np.asarray(y, dtype=np.float64).ravel()
    p = np.asarray(p, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise PerformanceInputError(
            f"outcomes and probabilities differ in length ({y.size} and {p.size})"
        )
    bad = ~np.isnan(y) & (y != 0) & (y != 1)
    if bad.any():
        raise PerformanceInputError(
            f"outcome must be 0, 1 or missing (NaN); row {int(np.argmax(bad))} is "
            f"{y[np.argmax(bad)]!r}"
        )
    bad = ~np.isfinite(p) | (p < 0) | (p > 1)
    if bad.any():
        raise PerformanceInputError(
            f"probability must be in [0, 1]; row {int(np.argmax(bad))} is {p[np.argmax(bad)]!r}"
        )
    if decision is None:
        return y, p, None
    d = np.asarray(decision, dtype=np.float64).ravel()
    if d.shape != y.shape:
        raise PerformanceInputError(
            f"decisions and outcomes differ in length ({d.size} and {y.size})"
        )
    bad = (d != 0) & (d != 1)
    if bad.any():
        raise PerformanceInputError(
            f"decision must be 1 (refused) or 0 (approved); row {int(np.argmax(bad))} is "
            f"{d[np.argmax(bad)]!r}"
        )
    return y, p, d


def realized_performance(
    y,
    p,
    decision=None,
    *,
    threshold: float | None = None,
    band_edges: np.ndarray | None = None,
    cost_fn: float = 10.0,
    cost_fp: float = 1.0,
    validation_cost_per_application: float = float("nan"),
    alpha: float = DEFAULT_ALPHA,
) -> RealizedPerformance:
    """The cohort's metrics (see the module docstring).

    y: 1 default, 0 repaid, NaN not observed; p: the predicted PD; decision: 1 refused, 0
    approved (what was decided at scoring time), or None to derive it as p >= threshold;
    band_edges: interior edges of the calibration bands (default: deciles of the labeled
    scores)."""
    y, p, d = _as_arrays(y, p, decision)
    if d is None:
        if threshold is None:
            raise PerformanceInputError("give the decisions or the threshold they were taken at")
        d = (p >= float(threshold)).astype(np.float64)
    labeled = ~np.isnan(y)
    yl, pl, dl = y[labeled].astype(np.int64), p[labeled], d[labeled]
    n_labeled, k = int(labeled.sum()), int(yl.sum())
    nan = float("nan")
    if band_edges is None:
        band_edges = (
            np.unique(np.quantile(pl, np.linspace(0, 1, DEFAULT_BANDS + 1)[1:-1]))
            if n_labeled
            else np.empty(0)
        )
    reason = None
    if n_labeled == 0:
        reason = "no outcome observed yet"
    elif k in (0, n_labeled):
        reason = f"one class only ({'every' if k else 'no'} labeled application defaulted)"
    auc = roc_auc(yl, pl) if reason is None else nan
    fn = int(((yl == 1) & (dl == 0)).sum())
    fp = int(((yl == 0) & (dl == 1)).sum())
    cost = cost_fn * fn + cost_fp * fp
    return RealizedPerformance(
        n=int(y.size),
        n_labeled=n_labeled,
        n_defaults=k,
        observed_default_rate=k / n_labeled if n_labeled else nan,
        mean_pd=float(pl.mean()) if n_labeled else nan,
        binomial_p_value=binomial_p_value(k, n_labeled, float(pl.mean()) if n_labeled else nan),
        auc=auc,
        gini=2 * auc - 1,
        ks_statistic=ks_statistic(yl, pl) if reason is None else nan,
        brier=float(np.mean((pl - yl) ** 2)) if n_labeled else nan,
        cost=float(cost) if n_labeled else nan,
        cost_per_application=cost / n_labeled if n_labeled else nan,
        validation_cost_per_application=float(validation_cost_per_application),
        n_false_negatives=fn,
        n_false_positives=fp,
        calibration=calibration_table(yl, pl, np.asarray(band_edges, dtype=np.float64), alpha),
        undefined_reason=reason,
    )
