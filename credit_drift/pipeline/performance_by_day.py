"""Realized and label-free estimated performance of each day in a list, one row a day, read
from the database (the logged predictions and their outcomes, no feature vector): the numbers
`credit-drift status` prints and the dashboard's Performance page shows.

Each row is what `realized_performance[day]` (`pipeline.performance.performance_of_cohort` on
`storage.outcomes.read_cohort` as of `as_of`) and `estimated_performance[day]`
(`pipeline.estimated.estimate_logged`) compute for that day; NaN where a number does not exist
(no prediction, no outcome yet, one class only).
"""

import datetime as dt
from collections.abc import Sequence

import pandas as pd
from sqlalchemy.engine import Engine

#: Columns of `realized_by_day` (labeled_share: NaN on a day without predictions).
REALIZED_COLUMNS = (
    "day",
    "status",
    "n",
    "n_labeled",
    "labeled_share",
    "observed_default_rate",
    "mean_pd",
    "auc",
    "cost_per_application",
)
#: Columns of `estimated_by_day` (the estimated_* numbers: NaN on a NO_DATA day).
ESTIMATED_COLUMNS = (
    "day",
    "status",
    "n_predictions",
    "n_other_model",
    "estimated_auc",
    "estimated_default_rate",
    "estimated_cost_per_application",
)


def model_metrics(artifacts_dir) -> dict[str, float]:
    """The model's metrics.json (costs, validation cost per application), {} when the artifacts
    cannot be loaded: the realized metrics then use the default costs."""
    from credit_drift.model.artifacts import ArtifactsError, load_artifacts

    try:
        return load_artifacts(artifacts_dir).metrics
    except ArtifactsError:
        return {}


def realized_by_day(
    engine: Engine,
    days: Sequence[str],
    *,
    as_of: dt.datetime,
    horizon_days: float,
    model_metrics: dict[str, float],
) -> pd.DataFrame:
    """The realized performance of each day's cohort with the outcomes observed by `as_of`
    (REALIZED_COLUMNS, one row per day in the order given)."""
    from credit_drift.pipeline.performance import performance_of_cohort
    from credit_drift.storage.outcomes import read_cohort
    from credit_drift.storage.windows import DayWindow

    rows = []
    for key in days:
        day = DayWindow.of(key)
        status, _, p = performance_of_cohort(
            read_cohort(engine, day, as_of=as_of),
            day,
            as_of=as_of,
            horizon_days=horizon_days,
            edges=None,
            model_metrics=model_metrics,
        )
        rows.append(
            {
                "day": day.key,
                "status": status,
                "n": p.n,
                "n_labeled": p.n_labeled,
                "labeled_share": p.labeled_share,
                "observed_default_rate": p.observed_default_rate,
                "mean_pd": p.mean_pd,
                "auc": p.auc,
                "cost_per_application": p.cost_per_application,
            }
        )
    return _frame(rows, REALIZED_COLUMNS)


def estimated_by_day(
    engine: Engine, artifacts, reference, days: Sequence[str], config
) -> pd.DataFrame:
    """The label-free estimate of each day from its logged probabilities (ESTIMATED_COLUMNS,
    one row per day in the order given); `reference`: `pipeline.estimated.cbpe_reference`."""
    from credit_drift.pipeline.estimated import estimate_logged
    from credit_drift.storage.outcomes import read_cohort
    from credit_drift.storage.windows import DayWindow

    nan = float("nan")
    rows = []
    for key in days:
        day = DayWindow.of(key)
        e = estimate_logged(
            artifacts, reference, read_cohort(engine, day), day.key, config, plot=False
        )
        est = e.estimate
        rows.append(
            {
                "day": day.key,
                "status": e.status,
                "n_predictions": e.n_predictions,
                "n_other_model": e.n_other_model,
                "estimated_auc": nan if est is None else est.auc,
                "estimated_default_rate": nan if est is None else est.default_rate,
                "estimated_cost_per_application": nan if est is None else est.cost_per_application,
            }
        )
    return _frame(rows, ESTIMATED_COLUMNS)


_COUNTS = ("n", "n_labeled", "n_predictions", "n_other_model")


def _frame(rows: list[dict], columns: tuple[str, ...]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(columns))
    return frame.astype(
        {c: "int64" if c in _COUNTS else "float64" for c in columns if c not in ("day", "status")}
    )
