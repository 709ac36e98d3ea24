"""The drift decision policy: one configurable rule, in one place, that turns a window's
measurements (`compare.compare_window`) into per-feature verdicts and the window's status.

Pure numpy/scipy/pandas. Per feature the policy combines
* a distribution test (KS for numeric features, chi-square for categorical ones), its p-values
  optionally corrected for the number of features tested (Benjamini-Hochberg across the window);
* a floor on an effect size, so that a harmless shift in a huge window is not an alarm;
* the change in the share of missing values, and categories the reference never saw, as drift
  signals of their own.
The window's status comes from the drifted share of the analyzed features (optionally weighted
by the model's feature importance; both shares are always reported). Every threshold of the
project's drift decisions lives here: the statuses, the importance-weighted check, the domain
classifier's AUC floor, and which statuses alert.

Presets: `notebook` is the reference notebook's rule (KS p < 0.05 per feature, nothing else);
`default` is BH at q = 0.05 AND an effect floor, plus the NaN-share and unseen-category signals.
"""

import math
from dataclasses import dataclass, fields, replace
from typing import Literal

import numpy as np
import pandas as pd
from scipy.stats import false_discovery_control

from credit_drift.errors import CreditDriftError
from credit_drift.stats.compare import DriftInputError, WindowComparison, compare_window
from credit_drift.stats.multivariate import MultivariateResult
from credit_drift.stats.numeric import DEFAULT_WORKERS
from credit_drift.stats.presets import POLICY_PRESETS
from credit_drift.stats.reference import ReferenceProfile
from credit_drift.stats.results import FEATURE_RESULT_NAMES

__all__ = [
    "DriftInputError",
    "DriftPolicy",
    "JointDrift",
    "PolicyError",
    "WindowDrift",
    "benjamini_hochberg",
    "decide",
    "decide_joint",
    "evaluate_window",
    "get_policy",
    "should_alert",
    "status_for",
]

EffectMetric = Literal["ks_statistic", "wasserstein_norm", "psi"]
Correction = Literal["none", "bh"]
Status = Literal["OK", "WARNING", "ALERT", "NO_DATA"]

# -- documented defaults ----------------------------------------------------------------------
#: Significance level of a test, or the false discovery rate q under Benjamini-Hochberg.
DEFAULT_TEST_ALPHA = 0.05
#: Default effect floor on the KS statistic D (the largest gap between the two CDFs). 0.1 is the
#: line the reference notebook draws as "moderate" on its KS chart. A p-value alone flags a
#: 0.5% shift in a 100,000-row window; D >= 0.1 means at least 10% of the probability mass sits
#: on the other side of some threshold. Chosen from the detection benchmark's measurements of
#: clean and drifted windows (benchmarks/bench_detection.py, README "Drift decisions").
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
#: The domain classifier's AUC floor: 0.55 is the separation a 0.18-standard-deviation mean
#: shift of one normal feature gives (AUC = Phi(d / sqrt(2))), a "small effect"; below it a large
#: window would flag shifts too small to matter, as a raw p-value does.
DEFAULT_MULTIVARIATE_MIN_AUC = 0.55
#: And the AUC must clear chance by this many null standard errors, sqrt((n+m+1) / (12 n m)) (the
#: Mann-Whitney null variance); this is what rules at small windows (30 rows: about 0.66).
DEFAULT_MULTIVARIATE_NULL_Z = 3.0

#: Window statuses in increasing severity; NO_DATA (an empty window) is below them all.
STATUS_ORDER = {"NO_DATA": -1, "OK": 0, "WARNING": 1, "ALERT": 2}


class PolicyError(CreditDriftError, ValueError):
    """A drift policy is misconfigured or unknown; the message names the field or the name."""


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
    important_share: the importance-weighted drifted share at or above which the window's most
        important features are said to have moved (a check of its own, whatever the status);
        None: the WARNING share.
    multivariate_min_auc / multivariate_null_z: the domain classifier's AUC threshold (see
        `decide_joint`).
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
    important_share: float | None = None
    multivariate_min_auc: float = DEFAULT_MULTIVARIATE_MIN_AUC
    multivariate_null_z: float = DEFAULT_MULTIVARIATE_NULL_Z

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

        if self.important_share is not None and not 0 < self.important_share <= 1:
            raise PolicyError(
                f"policy {self.name!r}: important_share={self.important_share} must be in (0, 1]"
            )
        if not 0.5 <= self.multivariate_min_auc <= 1:
            raise PolicyError(
                f"policy {self.name!r}: multivariate_min_auc={self.multivariate_min_auc} must be "
                "in [0.5, 1]"
            )

    @property
    def important_features_share(self) -> float:
        """The importance-weighted share at which the most important features count as moved."""
        return self.warning_share if self.important_share is None else self.important_share

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


if set(_PRESETS) != set(POLICY_PRESETS):  # the light list settings validates against
    raise ImportError(f"policy presets {sorted(_PRESETS)} differ from {POLICY_PRESETS}")


def should_alert(status: str | None, lowest: str) -> bool:
    """Whether a window of this status alerts when `lowest` (ALERT or WARNING) is the lowest
    status that does. Unknown statuses (and NO_DATA) never alert."""
    if status not in STATUS_ORDER or status == "NO_DATA":
        return False
    return STATUS_ORDER[status] >= STATUS_ORDER[lowest]


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

    results: one row per schema feature (columns `results.FEATURE_RESULT_NAMES`), including
    features that could not be tested (statistic/p-value NaN, drifted False). drift_share and
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

    @property
    def important_features_moved(self) -> bool:
        """The importance-weighted drifted share reached the policy's `important_features_share`
        (NaN, nothing analyzed: False)."""
        w = self.weighted_drift_share
        return bool(not math.isnan(w) and w >= self.policy.important_features_share)


def decide(
    comparison: WindowComparison,
    policy: DriftPolicy,
    *,
    p_adjusted: np.ndarray | None = None,
    nan_p_adjusted: np.ndarray | None = None,
) -> WindowDrift:
    """Turn a window's measurements into per-feature verdicts and the window's status.

    p_adjusted / nan_p_adjusted: the distribution tests' and the NaN-share tests' p-values
    already corrected over a larger family than this window's features (the segments x
    features of a day, `stats.segments`); None: the policy's correction over this window."""
    f = comparison.features
    n_rows = comparison.n_rows
    p = len(f)
    numeric = (f["kind"] == "numeric").to_numpy()
    p_value = f["p_value"].to_numpy(np.float64)
    # The comparison has a column named after each numeric effect metric a policy may choose.
    numeric_effect = f[policy.effect_metric].to_numpy(np.float64)
    effect = np.where(numeric, numeric_effect, f["jensen_shannon"].to_numpy(np.float64))
    effect_metric = np.where(numeric, policy.effect_metric, "jensen_shannon").astype(object)
    floor = np.where(numeric, policy.min_effect, policy.categorical_min_effect)

    testable = ~np.isnan(p_value)
    if p_adjusted is None:
        p_adjusted = benjamini_hochberg(p_value) if policy.correction == "bh" else p_value.copy()
    by_distribution = testable & (p_adjusted < policy.test_alpha) & (effect >= floor)

    by_nan = np.zeros(p, dtype=bool)
    nan_evaluable = np.zeros(p, dtype=bool)
    if policy.nan_share_delta is not None and n_rows:
        nan_evaluable[:] = True
        nan_p = f["nan_share_p_value"].to_numpy(np.float64)
        if nan_p_adjusted is not None:
            nan_p = nan_p_adjusted
        elif policy.correction == "bh":
            nan_p = benjamini_hochberg(nan_p)
        delta = np.abs(f["cur_nan_share"].to_numpy() - f["ref_nan_share"].to_numpy())
        by_nan = (delta >= policy.nan_share_delta) & (nan_p < policy.test_alpha)

    by_unseen = np.zeros(p, dtype=bool)
    unseen_evaluable = np.zeros(p, dtype=bool)
    if policy.unseen_share is not None:
        unseen_evaluable = ~numeric & (f["n_current"].to_numpy() > 0)
        unseen = np.nan_to_num(f["unseen_share"].to_numpy(np.float64))
        by_unseen = unseen_evaluable & (unseen >= policy.unseen_share)

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
    importance = f["importance"].to_numpy(np.float64)
    decided = {
        "p_adjusted": p_adjusted,
        "effect_size": effect,
        "effect_metric": effect_metric,
        "drifted": drifted,
        "reason": reason,
    }
    results = pd.DataFrame(
        {name: decided[name] if name in decided else f[name] for name in FEATURE_RESULT_NAMES},
        columns=list(FEATURE_RESULT_NAMES),
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
        profile_version=comparison.profile_version,
    )


def evaluate_window(
    profile: ReferenceProfile,
    frame: pd.DataFrame,
    policy: DriftPolicy,
    *,
    workers: int = DEFAULT_WORKERS,
) -> WindowDrift:
    """`compare_window` then `decide`: a window (every schema column; numeric columns as numbers
    with NaN for missing, categorical ones as raw values) judged under `policy`."""
    return decide(compare_window(profile, frame, workers=workers), policy)


@dataclass(frozen=True)
class JointDrift:
    """The policy's verdict on the domain classifier: drifted when auc > threshold, where
    threshold = max(multivariate_min_auc, 0.5 + multivariate_null_z x the AUC's null standard
    error for the two sample sizes). Not run (auc NaN): drifted False."""

    auc: float
    threshold: float
    drifted: bool


def decide_joint(result: MultivariateResult, policy: DriftPolicy) -> JointDrift:
    """Whether the domain classifier told the window from the reference, under `policy`."""
    if result.n_ref == 0 or result.n_cur == 0:
        threshold = float("nan")
    else:
        se = math.sqrt((result.n_ref + result.n_cur + 1) / (12 * result.n_ref * result.n_cur))
        threshold = max(policy.multivariate_min_auc, 0.5 + policy.multivariate_null_z * se)
    drifted = bool(not math.isnan(result.auc) and result.auc > threshold)
    return JointDrift(result.auc, threshold, drifted)
