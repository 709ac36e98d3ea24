"""Multivariate drift: a domain classifier trained to tell the reference's joint sample from a
window, scored by its cross-validated ROC AUC. It catches a change in the joint distribution that
no single feature shows (a correlation that breaks while every marginal stays put).

Pure numpy/pandas plus LightGBM (already the project's model library). Seeded: the same profile,
window and seed give the same AUC.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from credit_drift.stats.compare import DriftInputError
from credit_drift.stats.reference import ReferenceProfile

#: Rows used from each side (both are sampled down, seeded, when larger).
DEFAULT_MAX_ROWS = 5_000
#: Features used: the most important numeric ones. Drift in features the model ignores does not
#: move its predictions, and 30 of 419 keep a 3-fold fit to about a second on 2 cores.
DEFAULT_TOP_K = 30
DEFAULT_FOLDS = 3
#: Fewer rows than this per class and per fold, and the detector does not run (AUC NaN).
MIN_ROWS_PER_FOLD = 10
#: LightGBM threads. One, although the machines have 2 cores: when the other core is busy (a
#: second Dagster run, a backfill), LightGBM's OpenMP threads spin-wait and a 2-thread fit took
#: 2.5-9.5 s instead of 0.7 s (measured on the 5,000-row case). With `deterministic` and
#: row-wise histograms the AUC does not depend on the thread count.
DEFAULT_NUM_THREADS = 1
#: A small, fast booster: the question is "is there any signal", not the best possible model.
_LGB_PARAMS = {
    "objective": "binary",
    "learning_rate": 0.1,
    "num_leaves": 15,
    "min_data_in_leaf": 20,
    "feature_fraction": 0.9,
    "is_unbalance": True,
    "deterministic": True,
    "force_row_wise": True,
    "verbose": -1,
}
_LGB_ROUNDS = 100


@dataclass(frozen=True)
class MultivariateResult:
    """auc: mean out-of-fold ROC AUC over the folds (0.5 = indistinguishable; NaN = not run);
    auc_std: their standard deviation; n_ref / n_cur: the rows used from each side. Whether
    that AUC is drift is the policy's call (`policy.decide_joint`)."""

    auc: float
    auc_std: float
    n_ref: int
    n_cur: int
    features: tuple[str, ...]
    fold_aucs: tuple[float, ...]


def domain_classifier_drift(
    profile: ReferenceProfile,
    frame: pd.DataFrame,
    *,
    top_k: int = DEFAULT_TOP_K,
    max_rows: int = DEFAULT_MAX_ROWS,
    folds: int = DEFAULT_FOLDS,
    seed: int = 0,
    num_threads: int = DEFAULT_NUM_THREADS,
) -> MultivariateResult:
    """Cross-validated AUC of a LightGBM classifier separating reference rows from window rows,
    on the `top_k` most important numeric features (schema order breaks importance ties)."""
    import lightgbm as lgb  # local: importing LightGBM costs time the other statistics don't need

    features = top_features(profile, top_k)
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise DriftInputError(f"window lacks feature columns {missing[:10]}")
    rng = np.random.default_rng(seed)
    cols = [profile.sample_columns.index(f) for f in features]
    ref = _subsample(profile.sample[:, cols], max_rows, rng)
    cur_all = (
        np.column_stack(
            [pd.to_numeric(frame[f], errors="raise").to_numpy(np.float64) for f in features]
        )
        if len(frame)
        else np.empty((0, len(features)))
    )
    cur = _subsample(cur_all, max_rows, rng)
    n_ref, n_cur = len(ref), len(cur)
    if min(n_ref, n_cur) < folds * MIN_ROWS_PER_FOLD or not features:
        return MultivariateResult(float("nan"), float("nan"), n_ref, n_cur, tuple(features), ())

    x = np.vstack([ref, cur])
    y = np.concatenate([np.zeros(n_ref), np.ones(n_cur)])
    fold_of = _stratified_folds(y, folds, rng)
    aucs = []
    for k in range(folds):
        train, test = fold_of != k, fold_of == k
        params = dict(_LGB_PARAMS, seed=seed + k, num_threads=num_threads)
        booster = lgb.train(params, lgb.Dataset(x[train], y[train]), num_boost_round=_LGB_ROUNDS)
        aucs.append(roc_auc(y[test], booster.predict(x[test])))
    auc = float(np.mean(aucs))
    return MultivariateResult(
        auc=auc,
        auc_std=float(np.std(aucs)),
        n_ref=n_ref,
        n_cur=n_cur,
        features=tuple(features),
        fold_aucs=tuple(float(a) for a in aucs),
    )


def top_features(profile: ReferenceProfile, top_k: int) -> list[str]:
    """The `top_k` numeric features of the joint sample by importance (all of them when every
    importance is 0, in schema order, up to top_k)."""
    columns = list(profile.sample_columns)
    order = sorted(range(len(columns)), key=lambda j: (-profile.importance.get(columns[j], 0.0), j))
    return [columns[j] for j in order[: max(top_k, 0)]]


def roc_auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney) identity; ties count one half."""
    y_true = np.asarray(y_true)
    pos = y_true == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _subsample(x: np.ndarray, max_rows: int, rng: np.random.Generator) -> np.ndarray:
    if len(x) <= max_rows:
        return x
    return x[np.sort(rng.choice(len(x), size=max_rows, replace=False))]


def _stratified_folds(y: np.ndarray, folds: int, rng: np.random.Generator) -> np.ndarray:
    fold_of = np.empty(len(y), dtype=np.int64)
    for label in (0, 1):
        idx = np.flatnonzero(y == label)
        fold_of[rng.permutation(idx)] = np.arange(idx.size) % folds
    return fold_of
