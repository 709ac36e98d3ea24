"""realized_performance[day]: how the cohort scored on a day actually behaved, once its outcomes
are known (`stats.performance` on `storage.outcomes.read_cohort`).

A cohort matures over time: its outcomes arrive days or months after the decision. Its status
says how far it is, as of the moment it is computed:

- `no_predictions`: nothing was scored that day;
- `immature`: no outcome observed yet and the horizon (CREDIT_DRIFT_OUTCOME_HORIZON_DAYS after
  the day) not reached: "no outcomes yet", no metric;
- `partial`: some outcomes observed, the horizon not reached: the metrics are those of the
  labeled share, which may not be representative (the first outcomes to arrive can be the
  early defaults);
- `mature`: every scored application has its outcome, or the horizon has passed (the labeled
  share then says how many never got one).

The calibration bands are the deciles of the development sample's scores (the reference
profile's training scores), the same for every day, so days compare band for band; the business
cost uses the model's own costs and its validation cost per application (`metrics.json`).
"""

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from credit_drift.pipeline.parts import Parts
from credit_drift.stats.performance import RealizedPerformance, realized_performance
from credit_drift.storage.windows import DayWindow

STATUSES = ("no_predictions", "immature", "partial", "mature")
#: Calibration bands: deciles of the development sample's scores.
N_BANDS = 10
REFUSED = "REFUSED"

_NUMBERS = (
    "n",
    "n_labeled",
    "n_defaults",
    "observed_default_rate",
    "mean_pd",
    "binomial_p_value",
    "auc",
    "gini",
    "ks_statistic",
    "brier",
    "cost",
    "cost_per_application",
    "validation_cost_per_application",
    "n_false_negatives",
    "n_false_positives",
)


@dataclass(frozen=True, eq=False)
class CohortPerformance:
    """The realized performance of one day's cohort as of `as_of` (see the module docstring).
    The IO-managed value of `realized_performance`: the calibration table as Parquet, the rest
    as JSON."""

    KIND: ClassVar[str] = "CohortPerformance"

    day: DayWindow
    as_of: dt.datetime
    horizon_days: float
    status: str
    message: str
    metrics: RealizedPerformance
    figure: Path | None = None

    @property
    def matures_at(self) -> dt.datetime:
        return self.day.end + dt.timedelta(days=self.horizon_days)

    def summary(self) -> dict[str, Any]:
        """The day's numbers by name (NaN where undefined), with its status."""
        m = self.metrics
        return {
            "day": self.day.key,
            "status": self.status,
            "message": self.message,
            "labeled_share": m.labeled_share,
            "n_bands_miscalibrated": m.n_bands_miscalibrated,
            **{name: getattr(m, name) for name in _NUMBERS},
        }

    def to_parts(self) -> Parts:
        m = self.metrics
        numbers = {
            name: (None if isinstance(v, float) and math.isnan(v) else v)
            for name in _NUMBERS
            for v in [getattr(m, name)]
        }
        fields = {
            "day": self.day.key,
            "as_of": self.as_of.isoformat(),
            "horizon_days": self.horizon_days,
            "status": self.status,
            "message": self.message,
            "undefined_reason": m.undefined_reason,
            "figure": str(self.figure) if self.figure else None,
            "metrics": numbers,
        }
        return Parts(self.KIND, {"calibration": m.calibration}, fields)

    @classmethod
    def from_parts(cls, parts: Parts) -> "CohortPerformance":
        f = parts.fields
        numbers = {k: (float("nan") if v is None else v) for k, v in f["metrics"].items()}
        metrics = RealizedPerformance(
            **numbers,
            calibration=parts.frames["calibration"],
            undefined_reason=f["undefined_reason"],
        )
        return cls(
            day=DayWindow.of(f["day"]),
            as_of=dt.datetime.fromisoformat(f["as_of"]),
            horizon_days=float(f["horizon_days"]),
            status=f["status"],
            message=f["message"],
            metrics=metrics,
            figure=Path(f["figure"]) if f["figure"] else None,
        )


def cohort_status(
    n: int, n_labeled: int, day: DayWindow, as_of: dt.datetime, horizon_days: float
) -> tuple[str, str]:
    """(status, a sentence saying why) of a cohort of n predictions, n_labeled with outcomes."""
    matures_at = day.end + dt.timedelta(days=horizon_days)
    if n == 0:
        return "no_predictions", "no predictions were logged on this day"
    if n_labeled == n:
        return "mature", f"every one of the {n:,} predictions has its outcome"
    if as_of >= matures_at:
        if n_labeled == 0:
            return "mature", (
                f"no outcome received for any of the {n:,} predictions by the end of the "
                f"{horizon_days:g}-day horizon"
            )
        return "mature", (
            f"horizon of {horizon_days:g} days reached: {n_labeled:,} of {n:,} predictions "
            f"({n_labeled / n:.1%}) have an outcome; the others never got one"
        )
    if n_labeled == 0:
        return "immature", (
            f"no outcomes yet: the {n:,} predictions mature on {matures_at:%Y-%m-%d} "
            f"({horizon_days:g}-day horizon)"
        )
    return "partial", (
        f"{n_labeled:,} of {n:,} outcomes observed ({n_labeled / n:.1%}); the cohort matures on "
        f"{matures_at:%Y-%m-%d}: metrics on the labeled share only"
    )


def band_edges(training_scores) -> np.ndarray | None:
    """The development sample's score deciles (None without training scores: then the metrics
    fall back to the cohort's own deciles)."""
    if training_scores is None:
        return None
    return training_scores.quantile_edges(N_BANDS)


def performance_of_cohort(
    cohort: pd.DataFrame,
    day: DayWindow,
    *,
    as_of: dt.datetime,
    horizon_days: float,
    edges: np.ndarray | None,
    model_metrics: dict[str, float],
) -> tuple[str, str, RealizedPerformance]:
    """(status, message, metrics) of a cohort frame (`storage.outcomes.COHORT_COLUMNS`)."""
    decision = (cohort["decision"].astype(str).str.upper() == REFUSED).to_numpy(np.int64)
    metrics = realized_performance(
        cohort["outcome"].to_numpy(np.float64),
        cohort["probability"].to_numpy(np.float64),
        decision,
        band_edges=edges,
        cost_fn=float(model_metrics.get("cost_fn", 10.0)),
        cost_fp=float(model_metrics.get("cost_fp", 1.0)),
        validation_cost_per_application=float(
            model_metrics.get("cost_per_application", float("nan"))
        ),
    )
    status, message = cohort_status(metrics.n, metrics.n_labeled, day, as_of, horizon_days)
    return status, message, metrics


def compute_realized_performance(
    engine: Engine,
    day: DayWindow,
    *,
    as_of: dt.datetime,
    horizon_days: float,
    training_scores,
    model_metrics: dict[str, float],
    figure_dir: Path | None = None,
) -> CohortPerformance:
    """The day's cohort read from the database (no feature vector) and measured as of
    `as_of`; the reliability figure written to `figure_dir` when given."""
    from credit_drift.reports.plots import plot_reliability
    from credit_drift.storage.outcomes import read_cohort

    cohort = read_cohort(engine, day, as_of=as_of)
    status, message, metrics = performance_of_cohort(
        cohort,
        day,
        as_of=as_of,
        horizon_days=horizon_days,
        edges=band_edges(training_scores),
        model_metrics=model_metrics,
    )
    figure = None
    if figure_dir is not None:
        figure = plot_reliability(
            metrics.calibration,
            figure_dir / "reliability.png",
            f"{day.key}, {status}, {metrics.n_labeled:,} outcomes",
        )
    return CohortPerformance(day, as_of, horizon_days, status, message, metrics, figure)
