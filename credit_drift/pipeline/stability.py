"""The stability report: a day's score PSI, approval rate and per-characteristic CSI on the
development sample's fixed bins (`stats.stability`), and the same over a period, read back from
the database for the export a validation team files (`reports.stability`).

A day's CSI values are the `psi` of that day's stored drift results: a day must have been
materialized (feature_drift) before its CSI can be reported; the period report says which days
were not, rather than showing them as stable.
"""

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from credit_drift.pipeline.reference import LoadedReference
from credit_drift.stats.stability import (
    CSI_COLUMNS,
    ScoreStability,
    csi_table,
    score_stability,
)
from credit_drift.storage.windows import DayWindow

#: The per-day columns of a period's table (`StabilityDay.summary`).
DAILY_COLUMNS = (
    "day",
    "n_predictions",
    "score_psi",
    "score_band",
    "score_expected_if_stable",
    "score_ks_p_value",
    "score_interpretation",
    "approval_rate",
    "development_approval_rate",
    "n_approved",
    "n_refused",
    "n_characteristics",
    "n_csi_moderate",
    "n_csi_significant",
    "n_csi_within_noise",
    "max_shifted_csi",
    "max_shifted_csi_feature",
    "drift_results",
)


@dataclass(frozen=True)
class StabilityDay:
    """score: None when the day has no predictions or the profile has no training scores;
    csi: `CSI_COLUMNS`, empty when the day's drift results were not computed (has_results)."""

    day: DayWindow
    n_predictions: int
    score: ScoreStability | None
    csi: pd.DataFrame
    has_results: bool

    def summary(self) -> dict:
        """One row of the period's daily table (`DAILY_COLUMNS`)."""
        s, csi = self.score, self.csi
        finite = csi.dropna(subset=["csi"])
        moved = finite[finite["band"] != "stable"]
        shifted = moved[moved["beyond_noise"].astype(bool)]
        top = shifted.iloc[0] if len(shifted) else None
        return {
            "day": self.day.key,
            "n_predictions": self.n_predictions,
            "score_psi": s.psi if s else np.nan,
            "score_band": s.band if s else "n/a",
            "score_expected_if_stable": s.expected_if_stable if s else np.nan,
            "score_ks_p_value": s.ks_p_value if s else np.nan,
            "score_interpretation": s.interpretation if s else "no predictions",
            "approval_rate": s.approval_rate if s else np.nan,
            "development_approval_rate": s.development_approval_rate if s else np.nan,
            "n_approved": s.n_approved if s else 0,
            "n_refused": s.n_refused if s else 0,
            "n_characteristics": len(finite),
            "n_csi_moderate": int((shifted["band"] == "moderate").sum()),
            "n_csi_significant": int((shifted["band"] == "significant").sum()),
            "n_csi_within_noise": len(moved) - len(shifted),
            "max_shifted_csi": float(top.csi) if top is not None else np.nan,
            "max_shifted_csi_feature": str(top.feature) if top is not None else "",
            "drift_results": "computed" if self.has_results else "not materialized",
        }


def stability_of_day(
    reference: LoadedReference, day: DayWindow, decisions: pd.DataFrame, results: pd.DataFrame
) -> StabilityDay:
    """decisions: the day's `probability`, `decision`, `threshold` (logging order; the last
    threshold is the one in force at the end of the day); results: the day's per-feature drift
    results (empty when they were not computed)."""
    from credit_drift.stats.score_drift import score_drift

    score = None
    training = reference.profile.training_scores
    if len(decisions) and training is not None:
        proba = decisions["probability"].to_numpy(np.float64)
        drift = score_drift(reference.profile, proba)
        score = score_stability(
            training,
            proba,
            decisions["decision"].to_numpy(object),
            threshold=float(decisions["threshold"].iloc[-1]),
            psi=drift.psi,
            ks_p_value=drift.p_value,
        )
    has_results = len(results) > 0
    csi = (
        csi_table(reference.profile, results)
        if has_results
        else pd.DataFrame(columns=list(CSI_COLUMNS))
    )
    return StabilityDay(day, len(decisions), score, csi, has_results)


def stability_period(
    engine: Engine, reference: LoadedReference, first: dt.date, last: dt.date
) -> list[StabilityDay]:
    """Every day of [first, last] from the database: the logged decisions and the stored drift
    results."""
    from credit_drift.storage.drift_results import read_feature_drift
    from credit_drift.storage.predictions import read_decisions

    days = []
    day = first
    while day <= last:
        window = DayWindow(day)
        decisions = read_decisions(engine, window.start, window.end)
        days.append(stability_of_day(reference, window, decisions, read_feature_drift(engine, day)))
        day += dt.timedelta(days=1)
    return days


def period_tables(days: list[StabilityDay]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(daily table `DAILY_COLUMNS`, CSI long table: `day` + `CSI_COLUMNS`) of a period."""
    daily = pd.DataFrame([d.summary() for d in days], columns=list(DAILY_COLUMNS))
    frames = [d.csi.assign(day=d.day.key) for d in days if len(d.csi)]
    columns = ["day", *CSI_COLUMNS]
    csi = pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)
    return daily, csi
