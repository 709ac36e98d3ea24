"""The drift decision policy (issue 6): one configurable rule, in one place, that every asset
applies the same way, and `evaluate_window`, which applies it to one window.

Pure numpy/scipy/pandas. Per feature the policy combines
* a distribution test (KS for numeric features, chi-square for categorical ones), its p-values
  optionally corrected for the number of features tested (Benjamini-Hochberg across the window);
* a floor on an effect size, so that a harmless shift in a huge window is not an alarm;
* the change in the share of missing values, and categories the reference never saw, as drift
  signals of their own.
The window's status comes from the drifted share of the analyzed features (optionally weighted
by the model's feature importance; both shares are always reported).

Presets: `notebook` is the reference notebook's rule (KS p < 0.05 per feature, nothing else);
`default` is BH at q = 0.05 AND an effect floor, plus the NaN-share and unseen-category signals.
"""

from dataclasses import dataclass, fields, replace
from typing import Literal

import numpy as np
import pandas as pd
from scipy.stats import binom, false_discovery_control

from credit_drift.errors import CreditDriftError
from credit_drift.stats.categorical import compare_categorical
from credit_drift.stats.effect import PSI_BINS, psi_of_scan, wasserstein_norm
from credit_drift.stats.ks import ks_pvalues
from credit_drift.stats.numeric import DEFAULT_WORKERS, scan_numeric
from credit_drift.stats.reference import ReferenceProfile

EffectMetric = Literal["ks_statistic", "wasserstein_norm", "psi"]
Correction = Literal["none", "bh"]
Status = Literal["OK", "WARNING", "ALERT", "NO_DATA"]

# -- documented defaults ----------------------------------------------------------------------
#: Significance level of a test, or the false discovery rate q under Benjamini-Hochberg.
DEFAULT_TEST_ALPHA = 0.05
#: Default effect floor on the KS statistic D (the largest gap between the two CDFs). 0.1 is the
#: line the reference notebook draws as "moderate" on its KS chart. A p-value alone flags a
#: 0.5% shift in a 100,000-row window; D >= 0.1 means at least 10% of the probability mass sits
#: on the other side of some threshold. A starting value: the stats benchmark sets it from
#: measurements of clean and drifted windows.
DEFAULT_MIN_KS_STATISTIC = 0.1
#: Default effect floor for categorical features: Jensen-Shannon distance (natural log) of the
#: category frequencies; 0.1 is Evidently's threshold for the same distance.
DEFAULT_MIN_JENSEN_SHANNON = 0.1
#: Absolute change in a feature's share of missing values that counts as drift (5 percentage
#: points) when it is also significant (binomial test, corrected like the distribution tests).
DEFAULT_NAN_SHARE_DELTA = 0.05
#: Share of a categorical feature's non-missing window rows with categories never seen in the
#: reference that counts as drift (1%).
DEFAULT_UNSEEN_SHARE = 0.01
#: Window status thresholds on the drifted share (the notebook's 10% and 30%).
DEFAULT_WARNING_SHARE = 0.10
DEFAULT_ALERT_SHARE = 0.30

#: Columns of `WindowDrift.results`, in order.
RESULT_COLUMNS = (
    "feature",
    "kind",
    "test",
    "statistic",
    "p_value",
    "p_adjusted",
    "effect_size",
    "effect_metric",
    "psi",
    "wasserstein_norm",
    "drifted",
    "reason",
    "ref_nan_share",
    "cur_nan_share",
    "unseen_categories",
    "unseen_share",
    "importance",
    "n_current",
)


class PolicyError(CreditDriftError, ValueError):
    """A drift policy is misconfigured or unknown; the message names the field or the name."""


class DriftInputError(CreditDriftError, ValueError):
    """A window cannot be compared with the reference; the message names the column."""


@dataclass(frozen=True)
class DriftPolicy:
    """How a window's per-feature results become drifted / not drifted, and the window status.

    name: shown in reports and stored with each drift report.
    test_alpha: a feature's distribution test rejects when its (adjusted) p-value < test_alpha.
    correction: 'bh' adjusts the p-values of the window's features with Benjamini-Hochberg
        (false discovery rate test_alpha across all features tested); 'none' uses them as is.
    effect_metric: the numeric effect size the floor applies to: 'ks_statistic' (KS D),
        'wasserstein_norm' (Wasserstein-1 / reference std) or 'psi' (reference-decile bins).
    min_effect: numeric features drift only when effect_metric >= min_effect (0 = no floor).
    categorical_min_effect: the same floor on the Jensen-Shannon distance of categorical ones.
    nan_share_delta: |window NaN share - reference NaN share| >= this AND a significant
        binomial test (same alpha and correction) is drift with reason 'nan_share'; None: off.
    unseen_share: a categorical feature whose window rows with never-seen categories reach this
        share of its non-missing rows drifts with reason 'unseen_categories'; None: off.
    warning_share / alert_share: status thresholds on the drifted share (see `status_for`).
    weight_by_importance: the status follows the importance-weighted share instead of the
        plain one (both are always reported).
    """

    name: str
    test_alpha: float = DEFAULT_TEST_ALPHA
    correction: Correction = "bh"
    effect_metric: EffectMetric = "ks_statistic"
    min_effect: float = DEFAULT_MIN_KS_STATISTIC
    categorical_min_effect: float = DEFAULT_MIN_JENSEN_SHANNON
    nan_share_delta: float | None = DEFAULT_NAN_SHARE_DELTA
    unseen_share: float | None = DEFAULT_UNSEEN_SHARE
    warning_share: float = DEFAULT_WARNING_SHARE
    alert_share: float = DEFAULT_ALERT_SHARE
    weight_by_importance: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.test_alpha < 1:
            raise PolicyError(f"policy {self.name!r}: test_alpha={self.test_alpha} not in (0, 1)")
        if self.correction not in ("none", "bh"):
            raise PolicyError(
                f"policy {self.name!r}: correction={self.correction!r} must be 'none' or 'bh'"
            )
        if self.effect_metric not in ("ks_statistic", "wasserstein_norm", "psi"):
            raise PolicyError(
                f"policy {self.name!r}: effect_metric={self.effect_metric!r} must be "
                "'ks_statistic', 'wasserstein_norm' or 'psi'"
            )
        for f in ("min_effect", "categorical_min_effect"):
            if getattr(self, f) < 0:
                raise PolicyError(f"policy {self.name!r}: {f}={getattr(self, f)} must be >= 0")
        for f in ("nan_share_delta", "unseen_share"):
            value = getattr(self, f)
            if value is not None and not 0 < value <= 1:
                raise PolicyError(f"policy {self.name!r}: {f}={value} must be in (0, 1] or None")
        if not 0 <= self.warning_share <= self.alert_share <= 1:
            raise PolicyError(
                f"policy {self.name!r}: need 0 <= warning_share <= alert_share <= 1, got "
                f"{self.warning_share} and {self.alert_share}"
            )

    @classmethod
    def notebook(cls, **overrides) -> "DriftPolicy":
        """The reference notebook's rule: a feature drifts when its KS (or chi-square) p-value
        is below 0.05; no correction, no effect floor, no NaN-share or unseen signal."""
        base = cls(
            name="notebook",
            correction="none",
            min_effect=0.0,
            categorical_min_effect=0.0,
            nan_share_delta=None,
            unseen_share=None,
        )
        return replace(base, **overrides)

    @classmethod
    def default(cls, **overrides) -> "DriftPolicy":
        """Benjamini-Hochberg at q = 0.05 across the window's features AND KS D >= 0.1
        (categorical: Jensen-Shannon >= 0.1), plus the NaN-share and unseen-category signals."""
        return replace(cls(name="default"), **overrides)

    def to_dict(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


_PRESETS = {"notebook": DriftPolicy.notebook, "default": DriftPolicy.default}


def get_policy(name: str, **overrides) -> DriftPolicy:
    """A named preset ('default' or 'notebook'), with fields overridden by keyword (for
    example the status thresholds from `Settings`)."""
    try:
        preset = _PRESETS[name]
    except KeyError:
        raise PolicyError(f"unknown drift policy {name!r}; known: {sorted(_PRESETS)}") from None
    unknown = set(overrides) - {f.name for f in fields(DriftPolicy)}
    if unknown:
        raise PolicyError(f"unknown drift policy fields: {sorted(unknown)}")
    return preset(**overrides)


def status_for(share: float, warning_share: float, alert_share: float) -> Status:
    """share < warning -> OK; warning <= share <= alert -> WARNING; > alert -> ALERT;
    NaN (nothing analyzed) -> NO_DATA."""
    if share is None or np.isnan(share):
        return "NO_DATA"
    if share < warning_share:
        return "OK"
    if share <= alert_share:
        return "WARNING"
    return "ALERT"


def benjamini_hochberg(pvalues: np.ndarray | list[float]) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values; NaN entries stay NaN and are not counted as tests.

    Equal to `scipy.stats.false_discovery_control(p, method='bh')` on the non-NaN entries."""
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = false_discovery_control(p[ok], method="bh")
    return out


@dataclass(frozen=True, eq=False)
class WindowDrift:
    """One window compared with the reference under one policy.

    results: one row per schema feature (columns `RESULT_COLUMNS`), including features that
    could not be tested (statistic/p-value NaN, drifted False). drift_share and
    weighted_drift_share are NaN, and status NO_DATA, when nothing could be analyzed (an empty
    window): never a fake 0%.
    """

    results: pd.DataFrame
    n_rows: int
    n_analyzed: int
    n_drifted: int
    drift_share: float
    weighted_drift_share: float
    status: Status
    policy: DriftPolicy
    profile_version: str

    @property
    def drifted_features(self) -> list[str]:
        return self.results.loc[self.results["drifted"], "feature"].tolist()


def evaluate_window(
    profile: ReferenceProfile,
    frame: pd.DataFrame,
    policy: DriftPolicy,
    *,
    workers: int = DEFAULT_WORKERS,
) -> WindowDrift:
    """Compare a window (a frame holding every schema column: numeric columns as numbers with
    NaN for missing, categorical ones as raw values) with the reference, under `policy`."""
    schema = profile.schema
    missing = [n for n in schema.names if n not in frame.columns]
    if missing:
        raise DriftInputError(f"window lacks feature columns {missing[:10]}")
    n_rows = len(frame)
    names = schema.names
    p = len(names)
    kind = np.array([schema.spec(n).kind for n in names], dtype=object)
    test = np.where(kind == "numeric", "ks", "chi2").astype(object)
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

    # -- the decision -----------------------------------------------------------------------
    numeric = kind == "numeric"
    effect_metric = np.where(numeric, policy.effect_metric, "jensen_shannon").astype(object)
    numeric_effect = {"ks_statistic": ks_d, "wasserstein_norm": w_norm, "psi": psi}[
        policy.effect_metric
    ]
    effect = np.where(numeric, numeric_effect, js)
    floor = np.where(numeric, policy.min_effect, policy.categorical_min_effect)

    testable = ~np.isnan(p_value)
    p_adjusted = benjamini_hochberg(p_value) if policy.correction == "bh" else p_value.copy()
    by_distribution = testable & (p_adjusted < policy.test_alpha) & (effect >= floor)

    cur_nan_share = cur_nan / n_rows if n_rows else np.full(p, np.nan)
    by_nan = np.zeros(p, dtype=bool)
    nan_evaluable = np.zeros(p, dtype=bool)
    if policy.nan_share_delta is not None and n_rows:
        nan_evaluable[:] = True
        nan_p = _nan_share_pvalues(cur_nan, n_rows, ref_nan_share)
        if policy.correction == "bh":
            nan_p = benjamini_hochberg(nan_p)
        big = np.abs(cur_nan_share - ref_nan_share) >= policy.nan_share_delta
        by_nan = big & (nan_p < policy.test_alpha)

    by_unseen = np.zeros(p, dtype=bool)
    unseen_evaluable = np.zeros(p, dtype=bool)
    if policy.unseen_share is not None:
        unseen_evaluable = ~numeric & (n_current > 0)
        by_unseen = unseen_evaluable & (np.nan_to_num(unseen_share) >= policy.unseen_share)

    drifted = by_distribution | by_nan | by_unseen
    reason = [
        ",".join(
            r
            for r, on in (
                ("distribution", by_distribution[j]),
                ("nan_share", by_nan[j]),
                ("unseen_categories", by_unseen[j]),
            )
            if on
        )
        for j in range(p)
    ]
    analyzed = testable | nan_evaluable | unseen_evaluable
    importance = np.array([profile.importance[n] for n in names])

    results = pd.DataFrame(
        {
            "feature": names,
            "kind": kind,
            "test": test,
            "statistic": statistic,
            "p_value": p_value,
            "p_adjusted": p_adjusted,
            "effect_size": effect,
            "effect_metric": effect_metric,
            "psi": psi,
            "wasserstein_norm": w_norm,
            "drifted": drifted,
            "reason": reason,
            "ref_nan_share": ref_nan_share,
            "cur_nan_share": cur_nan_share,
            "unseen_categories": unseen_names,
            "unseen_share": unseen_share,
            "importance": importance,
            "n_current": n_current,
        },
        columns=list(RESULT_COLUMNS),
    )

    n_analyzed = int(analyzed.sum())
    n_drifted = int((drifted & analyzed).sum())
    share = n_drifted / n_analyzed if n_analyzed else float("nan")
    weight_total = importance[analyzed].sum()
    weighted = (
        float(importance[drifted & analyzed].sum() / weight_total)
        if n_analyzed and weight_total > 0
        else float("nan")
    )
    status_share = weighted if policy.weight_by_importance else share
    return WindowDrift(
        results=results,
        n_rows=n_rows,
        n_analyzed=n_analyzed,
        n_drifted=n_drifted,
        drift_share=share,
        weighted_drift_share=weighted,
        status=status_for(status_share, policy.warning_share, policy.alert_share),
        policy=policy,
        profile_version=profile.profile_version,
    )


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
