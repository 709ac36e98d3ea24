"""Drift of a categorical feature: a chi-square test of the window's category counts against the
reference frequencies, effect sizes (Jensen-Shannon distance, PSI), and categories the
reference never saw, which are counted apart and reported by name.

Pure numpy/scipy/pandas. Categories are compared as text (the form storage keeps them in).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon
from scipy.stats import chisquare

from credit_drift.stats.effect import psi_from_counts
from credit_drift.stats.reference import CategoricalReference, category_text

#: At most this many unseen category names are kept per feature (the count is always exact).
MAX_UNSEEN_NAMES = 20


@dataclass(frozen=True)
class CategoricalComparison:
    """statistic/p_value: chi-square over the reference's categories, on the window rows whose
    category the reference has (NaN when there are none, or the reference has one category).
    jensen_shannon: Jensen-Shannon distance (natural log, as Evidently) of those two frequency
    vectors; psi: PSI of the same. unseen: names of categories absent from the reference, most
    frequent first; unseen_share: their rows over the window's non-missing rows."""

    statistic: float
    p_value: float
    dof: int
    jensen_shannon: float
    psi: float
    n_current: int  # non-missing window values
    nan_count: int
    unseen: tuple[str, ...]
    unseen_count: int
    unseen_share: float


def compare_categorical(
    ref: CategoricalReference, values: pd.Series | Sequence[Any]
) -> CategoricalComparison:
    text = category_text(values)
    missing = text.isna().to_numpy()
    present = text[~missing]
    n_cur = int(present.size)
    counts = present.value_counts(sort=False)
    known = counts.index.isin(ref.categories)
    unseen_counts = counts[~known].sort_values(ascending=False, kind="stable")
    unseen_count = int(unseen_counts.sum())
    observed = counts.reindex(list(ref.categories), fill_value=0).to_numpy(np.float64)
    n_seen = observed.sum()

    stat = p = js = psi = float("nan")
    dof = max(len(ref.categories) - 1, 0)
    if n_seen > 0 and ref.n > 0:
        expected = ref.frequencies * n_seen
        if dof > 0:
            result = chisquare(observed, expected)
            stat, p = float(result.statistic), float(result.pvalue)
        js = float(jensenshannon(ref.frequencies, observed / n_seen))
        if np.isnan(js):  # equal vectors: a rounding-negative divergence under the sqrt
            js = 0.0
        psi = psi_from_counts(ref.counts, observed)
    return CategoricalComparison(
        statistic=stat,
        p_value=p,
        dof=dof,
        jensen_shannon=js,
        psi=psi,
        n_current=n_cur,
        nan_count=int(missing.sum()),
        unseen=tuple(str(c) for c in unseen_counts.index[:MAX_UNSEEN_NAMES]),
        unseen_count=unseen_count,
        unseen_share=unseen_count / n_cur if n_cur else float("nan"),
    )
