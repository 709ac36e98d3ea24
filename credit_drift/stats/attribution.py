"""Why the score moved: the change in the model's mean score between a reference sample and a
window, split over the features with the model's own per-row contributions (LightGBM's
`pred_contrib=True`, i.e. TreeSHAP).

The split is done on the RAW MARGIN (log-odds of default), not on the probability: a tree
model's contributions add up exactly to each row's raw margin, so the mean contribution of each
feature in the window minus its mean in the reference sums exactly (to float rounding) to the
change in mean log-odds. The probability is a non-linear function of the margin, so no split of
the change in mean probability over features is exact; it is reported beside the attribution,
not attributed.

Pure numpy/pandas: the contributions are computed by the caller (`ModelArtifacts.contributions`).
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Columns of `ScoreAttribution.table`, in order.
ATTRIBUTION_COLUMNS = (
    "feature",
    "contribution_change",
    "standard_error",
    "reference_contribution",
    "window_contribution",
    "share_of_change",
)


@dataclass(frozen=True, eq=False)
class ScoreAttribution:
    """table: one row per feature, ranked by |contribution_change| (largest first):
    contribution_change = mean window contribution - mean reference contribution, in log-odds,
    with its standard error (the two samples' sampling noise);
    share_of_change = contribution_change / the sum of |contribution_change| over features
    (signed; the shares' absolute values add up to 1, so a feature's weight in the movement
    reads the same whether the total moved or cancelled out).
    mean_margin_*: mean raw score (log-odds); mean_probability_*: mean of the logistic of each
    row's margin; bias_change: change of the model's constant term (0 up to rounding, kept so
    that `table.contribution_change.sum() + bias_change == mean_margin_change` holds exactly).
    """

    table: pd.DataFrame
    n_reference: int
    n_window: int
    mean_margin_reference: float
    mean_margin_window: float
    mean_probability_reference: float
    mean_probability_window: float
    bias_change: float
    #: Standard error of `mean_margin_change` (sampling noise of the two means).
    mean_margin_change_se: float = float("nan")

    @property
    def mean_margin_change(self) -> float:
        return self.mean_margin_window - self.mean_margin_reference

    @property
    def mean_probability_change(self) -> float:
        return self.mean_probability_window - self.mean_probability_reference

    def top(self, n: int = 15) -> pd.DataFrame:
        """The `n` features that moved the mean score most, largest first."""
        return self.table.head(n).reset_index(drop=True)

    def summary(self) -> dict[str, float | int | list[dict]]:
        """A JSON-ready digest (the report's `details`): totals and the top 20 features."""
        top = self.top(20)
        return {
            "n_reference": self.n_reference,
            "n_window": self.n_window,
            "mean_log_odds_reference": self.mean_margin_reference,
            "mean_log_odds_window": self.mean_margin_window,
            "mean_log_odds_change": self.mean_margin_change,
            "mean_log_odds_change_se": self.mean_margin_change_se,
            "mean_probability_reference": self.mean_probability_reference,
            "mean_probability_window": self.mean_probability_window,
            "mean_probability_change": self.mean_probability_change,
            "top_features": [
                {k: (v if isinstance(v, str) else float(v)) for k, v in row.items()}
                for row in top.to_dict(orient="records")
            ],
        }


def _logistic(margin: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * margin))  # = 1 / (1 + exp(-m)), without overflow


def attribute_mean_change(
    reference_contributions: np.ndarray,
    window_contributions: np.ndarray,
    features: Sequence[str],
) -> ScoreAttribution:
    """Split the change in mean raw score between two samples over `features`.

    Both arrays are `pred_contrib` output of one binary model: shape (n, len(features) + 1),
    the last column the model's expected value (constant), each row summing to that row's raw
    margin. Raises ValueError on an empty sample or mismatched shapes (there is nothing honest
    to return for them)."""
    ref = np.asarray(reference_contributions, dtype=np.float64)
    cur = np.asarray(window_contributions, dtype=np.float64)
    p = len(features)
    for name, arr in (("reference", ref), ("window", cur)):
        if arr.ndim != 2 or arr.shape[1] != p + 1:
            raise ValueError(
                f"{name} contributions have shape {arr.shape}; expected (n, {p + 1}) for "
                f"{p} features plus the expected value"
            )
        if arr.shape[0] == 0:
            raise ValueError(f"the {name} sample is empty: no mean score to compare")
    ref_mean = ref.mean(axis=0)
    cur_mean = cur.mean(axis=0)
    change = cur_mean[:p] - ref_mean[:p]
    total_abs = float(np.abs(change).sum())
    share = change / total_abs if total_abs > 0 else np.zeros(p)
    table = pd.DataFrame(
        {
            "feature": list(features),
            "contribution_change": change,
            "standard_error": _se(ref[:, :p], cur[:, :p]),
            "reference_contribution": ref_mean[:p],
            "window_contribution": cur_mean[:p],
            "share_of_change": share,
        },
        columns=list(ATTRIBUTION_COLUMNS),
    )
    order = np.argsort(-np.abs(change), kind="stable")
    table = table.iloc[order].reset_index(drop=True)
    ref_margin = ref.sum(axis=1)
    cur_margin = cur.sum(axis=1)
    return ScoreAttribution(
        table=table,
        n_reference=int(ref.shape[0]),
        n_window=int(cur.shape[0]),
        mean_margin_reference=float(ref_margin.mean()),
        mean_margin_window=float(cur_margin.mean()),
        mean_probability_reference=float(_logistic(ref_margin).mean()),
        mean_probability_window=float(_logistic(cur_margin).mean()),
        bias_change=float(cur_mean[p] - ref_mean[p]),
        mean_margin_change_se=float(_se(ref_margin[:, None], cur_margin[:, None])[0]),
    )


def _se(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Standard error of mean(cur) - mean(ref), column by column (0 for a single row)."""

    def var_of_mean(x: np.ndarray) -> np.ndarray:
        n = x.shape[0]
        return x.var(axis=0, ddof=1) / n if n > 1 else np.zeros(x.shape[1])

    return np.sqrt(var_of_mean(ref) + var_of_mean(cur))
