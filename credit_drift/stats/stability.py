"""The stability report a credit validation team files: the score's PSI and each characteristic's
CSI on the development sample's fixed bins, read against the usual 0.10 / 0.25 bands and against
what sampling noise alone gives at the sizes compared.

Pure numpy/scipy/pandas. The bins are the reference profile's (the development sample's deciles
for a numeric characteristic, its categories for a categorical one), so they are fixed for a
profile version and every day is measured on the same ones; the PSI values themselves come from
the drift statistics (`stats.compare`), never recomputed here.

Why a noise reference: sampling noise alone gives a PSI of about (B - 1)(1/n + 1/m) with B
bins, n development rows and m window rows (the large-sample mean; PSI is a symmetrised
Kullback-Leibler divergence whose first-order term is Pearson's statistic), i.e. 0.009 for 10
bins and 1,000 rows a day but 0.09 at 100 rows, and more when a small window leaves a bin empty
(PSI floors an empty share at 1e-4, so one empty decile adds about 0.1 * ln(1000) = 0.69). A PSI
above 0.10 on a small day can be noise, and 0.05 on a large one a real, if modest, shift: the
band says how large, and whether it is there is decided by the characteristic's own exact
two-sample test from the drift statistics (KS, or chi-square for a categorical one), adjusted for
the number of characteristics tested as the drift policy adjusts it. The score's PSI is read
with the score's own KS test.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from credit_drift.stats.effect import PSI_BINS
from credit_drift.stats.reference import NumericReference, ReferenceProfile

#: The industry's PSI/CSI bands: below 0.10 stable, 0.10-0.25 a moderate shift to investigate,
#: 0.25 and above a significant shift.
PSI_MODERATE = 0.10
PSI_SIGNIFICANT = 0.25
#: A PSI whose noise p-value is below this is told apart from sampling noise.
NOISE_LEVEL = 0.05

CSI_COLUMNS = (
    "feature",
    "kind",
    "csi",
    "band",
    "n_bins",
    "n_reference",
    "n_current",
    "expected_if_stable",
    "test_p_adjusted",
    "beyond_noise",
    "interpretation",
    "importance",
)


def psi_band(psi: float) -> str:
    """stable (< 0.10), moderate (0.10-0.25), significant (>= 0.25); n/a for NaN."""
    if psi is None or not np.isfinite(psi):
        return "n/a"
    if psi >= PSI_SIGNIFICANT:
        return "significant"
    if psi >= PSI_MODERATE:
        return "moderate"
    return "stable"


def expected_psi_if_stable(n_bins: int, n_reference: int, n_current: int) -> float:
    """The PSI sampling noise alone gives on average at large sizes: (B - 1)(1/n + 1/m)."""
    if n_bins < 2 or n_reference <= 0 or n_current <= 0:
        return float("nan")
    return (n_bins - 1) * (1.0 / n_reference + 1.0 / n_current)


def interpret(psi: float, p_value: float, n_current: int) -> str:
    """One phrase a validator can file: the band, and whether the characteristic's own test
    (`p_value`, adjusted for the number of tests where there are several) tells the shift apart
    from sampling noise at the day's size."""
    band = psi_band(psi)
    if band == "n/a":
        return "not measured (no values)"
    beyond = bool(np.isfinite(p_value) and p_value < NOISE_LEVEL)
    if band == "stable":
        return "stable; a small real shift" if beyond else "stable"
    if beyond:
        return f"{band} shift"
    return f"{band} by the band, but within sampling noise at {n_current} rows"


def reference_bins(reference: ReferenceProfile, feature: str) -> tuple[int, int]:
    """(number of fixed bins, development rows) of one characteristic, as its PSI used them."""
    ref = reference.features[feature]
    if isinstance(ref, NumericReference):
        return len(ref.quantile_edges(PSI_BINS)) + 1, int(ref.n)
    return len(ref.categories), int(ref.counts.sum())


def csi_table(reference: ReferenceProfile, results: pd.DataFrame) -> pd.DataFrame:
    """One row per characteristic (columns `CSI_COLUMNS`), largest CSI first, from a day's
    per-feature drift results (their `psi`, `p_adjusted`, `kind`, `n_current` and `importance`
    columns)."""
    rows = []
    for record in results.itertuples(index=False):
        feature = record.feature
        if feature not in reference.features:
            continue
        n_bins, n_ref = reference_bins(reference, feature)
        n_cur = 0 if pd.isna(record.n_current) else int(record.n_current)
        psi = float("nan") if pd.isna(record.psi) else float(record.psi)
        p = float("nan") if pd.isna(record.p_adjusted) else float(record.p_adjusted)
        rows.append(
            {
                "feature": feature,
                "kind": record.kind,
                "csi": psi,
                "band": psi_band(psi),
                "n_bins": n_bins,
                "n_reference": n_ref,
                "n_current": n_cur,
                "expected_if_stable": expected_psi_if_stable(n_bins, n_ref, n_cur),
                "test_p_adjusted": p,
                "beyond_noise": bool(np.isfinite(p) and p < NOISE_LEVEL),
                "interpretation": interpret(psi, p, n_cur),
                "importance": float(record.importance),
            }
        )
    table = pd.DataFrame(rows, columns=list(CSI_COLUMNS))
    return table.sort_values("csi", ascending=False, na_position="last", kind="stable").reset_index(
        drop=True
    )


@dataclass(frozen=True)
class ScoreStability:
    """The score's PSI on the development scores' deciles, and the decision mix against the
    one the development scores give at the same threshold."""

    n_current: int
    psi: float
    band: str
    n_bins: int
    expected_if_stable: float
    ks_p_value: float
    interpretation: str
    approval_rate: float
    development_approval_rate: float
    n_approved: int
    n_refused: int


def score_stability(
    training_scores: NumericReference,
    scores: np.ndarray,
    decisions: np.ndarray,
    threshold: float,
    psi: float,
    ks_p_value: float,
) -> ScoreStability:
    """`psi`, `ks_p_value`: the window scores' PSI and KS p-value against `training_scores`
    (from the score-drift statistics); `threshold`: a score at or above it is refused, as the
    API decides."""
    scores = np.asarray(scores, dtype=np.float64)
    scores = scores[~np.isnan(scores)]
    decisions = np.asarray(decisions, dtype=object)
    n_bins = len(training_scores.quantile_edges(PSI_BINS)) + 1
    n_ref, n_cur = int(training_scores.n), int(scores.size)
    n_approved = int((decisions == "APPROVED").sum())
    n_refused = int((decisions == "REFUSED").sum())
    decided = n_approved + n_refused
    below = training_scores.counts[training_scores.values < threshold].sum()
    return ScoreStability(
        n_current=n_cur,
        psi=float(psi),
        band=psi_band(psi),
        n_bins=n_bins,
        expected_if_stable=expected_psi_if_stable(n_bins, n_ref, n_cur),
        ks_p_value=float(ks_p_value),
        interpretation=interpret(psi, ks_p_value, n_cur),
        approval_rate=n_approved / decided if decided else float("nan"),
        development_approval_rate=float(below / n_ref) if n_ref else float("nan"),
        n_approved=n_approved,
        n_refused=n_refused,
    )
