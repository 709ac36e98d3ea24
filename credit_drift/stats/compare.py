"""Every statistic of one window against the reference profile, and no decision.

`compare_window` measures; `policy.decide` turns the measurements into verdicts and a status. Per
feature: the distribution test (KS for numeric features, chi-square for categorical ones) with
its p-value, the effect sizes any policy may put a floor on (KS D, PSI, normed Wasserstein,
Jensen-Shannon), the missing-value shares with the p-value of their change, and the categories
the reference never saw.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import binom

from credit_drift.errors import CreditDriftError
from credit_drift.stats.categorical import compare_categorical
from credit_drift.stats.effect import PSI_BINS, psi_of_scan, wasserstein_norm
from credit_drift.stats.ks import ks_pvalues
from credit_drift.stats.numeric import DEFAULT_WORKERS, scan_numeric
from credit_drift.stats.reference import ReferenceProfile

#: Columns of `WindowComparison.features`, in order.
COMPARISON_COLUMNS = (
    "feature",
    "kind",
    "test",
    "statistic",
    "p_value",
    "ks_statistic",
    "psi",
    "wasserstein_norm",
    "jensen_shannon",
    "ref_nan_share",
    "cur_nan_share",
    "nan_share_p_value",
    "unseen_categories",
    "unseen_share",
    "importance",
    "n_current",
)


class DriftInputError(CreditDriftError, ValueError):
    """A window cannot be compared with the reference; the message names the column."""


@dataclass(frozen=True, eq=False)
class WindowComparison:
    """One window measured against the reference.

    features: one row per schema feature (columns `COMPARISON_COLUMNS`); a feature with no
    value on one side has NaN statistic and p-value. nan_share_p_value is the two-sided binomial
    p-value of the window's missing count under the reference's missing share (NaN for an
    empty window).
    """

    features: pd.DataFrame
    n_rows: int
    profile_version: str


def compare_window(
    profile: ReferenceProfile, frame: pd.DataFrame, *, workers: int = DEFAULT_WORKERS
) -> WindowComparison:
    """Measure a window (a frame holding every schema column: numeric columns as numbers with
    NaN for missing, categorical ones as raw values) against the reference."""
    schema = profile.schema
    missing = [n for n in schema.names if n not in frame.columns]
    if missing:
        raise DriftInputError(f"window lacks feature columns {missing[:10]}")
    n_rows = len(frame)
    names = schema.names
    p = len(names)
    kind = np.array([schema.spec(n).kind for n in names], dtype=object)
    statistic = np.full(p, np.nan)
    p_value = np.full(p, np.nan)
    ks_d = np.full(p, np.nan)
    psi = np.full(p, np.nan)
    w_norm = np.full(p, np.nan)
    js = np.full(p, np.nan)
    n_current = np.zeros(p, dtype=np.int64)
    cur_nan = np.zeros(p, dtype=np.int64)
    unseen_names: list[list[str]] = [[] for _ in range(p)]
    unseen_share = np.full(p, np.nan)
    ref_nan_share = np.array(
        [profile.features[n].nan_count / max(profile.features[n].n_rows, 1) for n in names]
    )

    num_idx = [j for j in range(p) if kind[j] == "numeric"]
    if num_idx:
        refs = [profile.numeric(names[j]) for j in num_idx]
        columns = [_numeric_column(frame, names[j]) for j in num_idx]
        scan = scan_numeric(refs, columns, psi_bins=PSI_BINS, wasserstein=True, workers=workers)
        ks = ks_pvalues(scan.statistic, scan.n_ref, scan.n_cur, workers=workers)
        idx = np.array(num_idx)
        statistic[idx], p_value[idx], ks_d[idx] = ks.statistic, ks.pvalue, ks.statistic
        psi[idx] = psi_of_scan(scan.ref_bins, scan.cur_bins)
        w_norm[idx] = wasserstein_norm(scan.wasserstein1, [r.std for r in refs])
        n_current[idx], cur_nan[idx] = scan.n_cur, scan.nan_count

    for j in range(p):
        if kind[j] != "categorical":
            continue
        c = compare_categorical(profile.categorical(names[j]), frame[names[j]])
        statistic[j], p_value[j], js[j], psi[j] = c.statistic, c.p_value, c.jensen_shannon, c.psi
        n_current[j], cur_nan[j] = c.n_current, c.nan_count
        unseen_names[j] = list(c.unseen)
        unseen_share[j] = c.unseen_share

    if n_rows:
        cur_nan_share = cur_nan / n_rows
        nan_p = _nan_share_pvalues(cur_nan, n_rows, ref_nan_share)
    else:
        cur_nan_share = np.full(p, np.nan)
        nan_p = np.full(p, np.nan)
    features = pd.DataFrame(
        {
            "feature": names,
            "kind": kind,
            "test": np.where(kind == "numeric", "ks", "chi2").astype(object),
            "statistic": statistic,
            "p_value": p_value,
            "ks_statistic": ks_d,
            "psi": psi,
            "wasserstein_norm": w_norm,
            "jensen_shannon": js,
            "ref_nan_share": ref_nan_share,
            "cur_nan_share": cur_nan_share,
            "nan_share_p_value": nan_p,
            "unseen_categories": unseen_names,
            "unseen_share": unseen_share,
            "importance": np.array([profile.importance[n] for n in names]),
            "n_current": n_current,
        },
        columns=list(COMPARISON_COLUMNS),
    )
    return WindowComparison(features, n_rows, profile.profile_version)


def _numeric_column(frame: pd.DataFrame, name: str) -> np.ndarray:
    col = frame[name]
    if col.dtype == np.float64:
        return col.to_numpy()  # no copy: the scan only reads it
    try:
        return pd.to_numeric(col, errors="raise").to_numpy(np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise DriftInputError(f"window column {name!r} is not numeric: {exc}") from exc


def _nan_share_pvalues(nan_count: np.ndarray, n_rows: int, ref_share: np.ndarray) -> np.ndarray:
    """Two-sided binomial p-values (twice the smaller tail, capped at 1) of seeing `nan_count`
    missing values in `n_rows` when the reference's missing share is the truth. A share of 0 (or
    1) in the reference makes any missing (or present) value in the window decisive."""
    k = np.asarray(nan_count, dtype=np.float64)
    lower = binom.cdf(k, n_rows, ref_share)
    upper = binom.sf(k - 1, n_rows, ref_share)
    return np.minimum(1.0, 2 * np.minimum(lower, upper))
