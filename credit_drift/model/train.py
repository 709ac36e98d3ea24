"""Training: fit the LightGBM classifier, measure it on a held-out split, choose the threshold.

`train_model` holds out a stratified `test_size` share of the rows (seeded), fits an
`LGBMClassifier` on the rest with the `TrainConfig` parameters (class imbalance handled by
`class_weight="balanced"`, deterministic, so the same data and seed give the same model.txt),
computes the held-out AUC, and chooses the decision threshold that minimizes the business cost
`cost_fn * missed defaults + cost_fp * refused good clients` on that held-out split
(`choose_threshold`). The model is not refitted on all rows: the reported AUC and cost are
those of the model that is shipped.
"""

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import lightgbm as lgb
import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from credit_drift.data.loader import TrainingData
from credit_drift.errors import CreditDriftError
from credit_drift.model.artifacts import (
    HoldOut,
    ModelArtifacts,
    ThresholdReport,
    lightgbm_feature_names,
    model_matrix,
)

__all__ = ["TrainConfig", "TrainingError", "ThresholdReport", "choose_threshold", "train_model"]

THRESHOLD_GRID = (
    "every distinct held-out probability, plus the next float above the largest (refuse "
    "nobody); rule REFUSED if probability >= threshold; ties go to the highest threshold"
)


class TrainingError(CreditDriftError, ValueError):
    """Training cannot run with these inputs; the message says which one and why."""


@dataclass(frozen=True)
class TrainConfig:
    """LightGBM parameters. Defaults: 400 trees at learning rate 0.05 (enough to converge on
    ~50k rows without early stopping, which would spend the held-out split), 31 leaves, half
    the features per tree (hundreds of correlated aggregates), row bagging 0.8, at least 100
    rows per leaf and L2 5.0 (defaults are ~8% of rows: small leaves overfit them), balanced
    class weights, 2 threads (the project's machines have 2 cores)."""

    n_estimators: int = 400
    learning_rate: float = 0.05
    num_leaves: int = 31
    colsample_bytree: float = 0.5
    subsample: float = 0.8
    subsample_freq: int = 1
    min_child_samples: int = 100
    reg_lambda: float = 5.0
    class_weight: str | None = "balanced"
    n_jobs: int = 2

    def classifier(self, seed: int) -> lgb.LGBMClassifier:
        return lgb.LGBMClassifier(
            **asdict(self),
            random_state=seed,
            deterministic=True,
            force_col_wise=True,
            verbose=-1,
        )


def choose_threshold(
    y_true: np.ndarray, proba: np.ndarray, cost_fn: float, cost_fp: float
) -> ThresholdReport:
    """The threshold minimizing `cost_fn * FN + cost_fp * FP` over `THRESHOLD_GRID`.

    Equal to a brute-force scan of those candidates (vectorized: sort once, cumulative counts)."""
    _check_costs(cost_fn, cost_fp)
    y = np.asarray(y_true).astype(bool)
    p = np.asarray(proba, dtype=np.float64)
    if y.shape != p.shape or y.ndim != 1 or len(y) == 0:
        raise ValueError(f"y_true {y.shape} and proba {p.shape} must be equal, non-empty 1-D")
    if not np.isfinite(p).all():
        raise ValueError("proba has non-finite values")
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    # Refusing every row with p >= ps[i] refuses the whole tie group of ps[i]: take its last row.
    last_of_group = np.r_[ps[1:] != ps[:-1], True]
    candidates = np.r_[np.nextafter(ps[0], np.inf), ps[last_of_group]]
    tp = np.r_[0, np.cumsum(ys)[last_of_group]]
    fp = np.r_[0, np.cumsum(~ys)[last_of_group]]
    positives, negatives = int(y.sum()), int((~y).sum())
    fn = positives - tp
    cost = cost_fn * fn + cost_fp * fp
    best = int(np.argmin(cost))  # candidates descend: the first minimum is the highest threshold
    return ThresholdReport(
        threshold=float(candidates[best]),
        cost=float(cost[best]),
        cost_fn=float(cost_fn),
        cost_fp=float(cost_fp),
        n_fn=int(fn[best]),
        n_fp=int(fp[best]),
        grid=THRESHOLD_GRID,
        n_tp=int(tp[best]),
        n_tn=int(negatives - fp[best]),
        n_candidates=len(candidates),
    )


def train_model(
    data: TrainingData,
    cost_fn: float = 10.0,
    cost_fp: float = 1.0,
    seed: int = 42,
    test_size: float = 0.2,
    config: TrainConfig = TrainConfig(),
    progress: Callable[[int, int], None] | None = None,
) -> ModelArtifacts:
    """Fit, evaluate on the held-out split and choose the threshold (see the module docstring).

    progress: called after each boosting round with (rounds done, rounds in all)."""
    _check_costs(cost_fn, cost_fp)
    if not 0 < test_size < 1:
        raise TrainingError(f"test_size must be between 0 and 1, got {test_size}")
    y = data.y.to_numpy().astype(np.int64)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    # Both splits need both classes for the fit, the AUC and the threshold to mean anything.
    if min(n_pos, n_neg) * min(test_size, 1 - test_size) < 2:
        raise TrainingError(
            f"too few rows to hold out a stratified {test_size:.0%} test split: "
            f"{n_pos} default(s) and {n_neg} non-default(s)"
        )
    schema = data.schema
    idx_train, idx_test = train_test_split(
        np.arange(len(y)), test_size=test_size, stratify=y, random_state=seed
    )
    # LightGBM sees pandas Categoricals with the training categories (native categorical splits)
    # under sanitized names; scoring later uses the equivalent code matrix (`model_matrix`).
    frame = schema.model_frame(data.X)
    frame.columns = lightgbm_feature_names(schema)
    started = time.perf_counter()
    classifier = config.classifier(seed)
    callbacks = []
    if progress is not None:
        callbacks.append(lambda env: progress(env.iteration + 1, env.end_iteration))
    classifier.fit(frame.iloc[idx_train], y[idx_train], callbacks=callbacks)
    training_seconds = time.perf_counter() - started
    booster = classifier.booster_

    proba = np.asarray(booster.predict(model_matrix(schema, data.X.iloc[idx_test])))
    y_test = y[idx_test]
    report = choose_threshold(y_test, proba, cost_fn, cost_fp)
    refused = proba >= report.threshold
    gain = booster.feature_importance(importance_type="gain").astype(np.float64)
    total = gain.sum()
    shares = gain / total if total > 0 else np.zeros_like(gain)
    metrics = {
        "auc": float(roc_auc_score(y_test, proba)),
        "threshold": report.threshold,
        "cost": report.cost,
        "cost_per_application": report.cost / len(y_test),
        "cost_fn": float(cost_fn),
        "cost_fp": float(cost_fp),
        "refusal_rate": float(refused.mean()),
        "default_recall": report.n_tp / max(report.n_tp + report.n_fn, 1),
        "refused_precision": report.n_tp / max(int(refused.sum()), 1),
        "n_train": float(len(idx_train)),
        "n_test": float(len(idx_test)),
        "n_features": float(len(schema)),
        "n_categorical": float(len(schema.categorical_names)),
        "default_rate": float(y.mean()),
        "test_default_rate": float(y_test.mean()),
        "n_estimators": float(config.n_estimators),
        "seed": float(seed),
        "training_seconds": training_seconds,
    }
    importance = dict(zip(schema.names, shares.tolist(), strict=True))
    return ModelArtifacts.create(
        booster, schema, report, metrics, importance, holdout=HoldOut(proba, y_test)
    )


def _check_costs(cost_fn: float, cost_fp: float) -> None:
    for name, value in (("cost_fn", cost_fn), ("cost_fp", cost_fp)):
        try:
            ok = math.isfinite(float(value)) and float(value) > 0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise TrainingError(f"{name} must be a positive number, got {value!r}")
