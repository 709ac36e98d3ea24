"""FeatureDriftResult: every model feature of a day tested against the reference and judged by
the policy; the per-feature rows are also stored in `feature_drift_results` for people, the
dashboard and ad-hoc SQL."""

import math
import time
from dataclasses import dataclass

import pandas as pd
from sqlalchemy.engine import Engine

from credit_drift.pipeline.parts import Parts
from credit_drift.pipeline.reference import LoadedReference
from credit_drift.pipeline.window import ProductionWindow
from credit_drift.stats.policy import DriftPolicy, evaluate_window
from credit_drift.storage.windows import DayWindow

_SUMMARY_FIELDS = (
    "status",
    "policy_name",
    "n_rows",
    "n_analyzed",
    "n_drifted",
    "drift_share",
    "weighted_drift_share",
    "important_features_moved",
    "seconds",
)


@dataclass(frozen=True, eq=False)
class FeatureDriftResult:
    """One day judged under one policy. results: one row per model feature (the declared
    per-feature columns, `stats.results`); drift_share / weighted_drift_share: NaN, and status
    NO_DATA, when nothing could be analyzed (an empty day), never a fake 0."""

    KIND = "FeatureDriftResult"

    day: DayWindow
    results: pd.DataFrame
    status: str
    policy_name: str
    n_rows: int
    n_analyzed: int
    n_drifted: int
    drift_share: float
    weighted_drift_share: float
    important_features_moved: bool
    seconds: float

    @property
    def drift_percentage(self) -> float | None:
        return None if self.status == "NO_DATA" else _percent(self.drift_share)

    @property
    def weighted_drift_percentage(self) -> float | None:
        return None if self.status == "NO_DATA" else _percent(self.weighted_drift_share)

    @property
    def drifted_features(self) -> set[str]:
        return set(self.results.loc[self.results["drifted"].astype(bool), "feature"])

    def to_parts(self) -> Parts:
        fields = {name: getattr(self, name) for name in _SUMMARY_FIELDS}
        for name in ("drift_share", "weighted_drift_share"):
            fields[name] = None if math.isnan(fields[name]) else float(fields[name])
        return Parts(self.KIND, {"results": self.results}, {"day": self.day.key, **fields})

    @classmethod
    def from_parts(cls, parts: Parts) -> "FeatureDriftResult":
        f = dict(parts.fields)
        for name in ("drift_share", "weighted_drift_share"):
            f[name] = float("nan") if f[name] is None else float(f[name])
        results = parts.frames["results"].copy()
        # Parquet gives list columns back as arrays; the results hold lists.
        results["unseen_categories"] = [list(v) for v in results["unseen_categories"]]
        return cls(day=DayWindow.of(f.pop("day")), results=results, **f)


def _percent(share: float) -> float | None:
    return None if math.isnan(share) else 100.0 * float(share)


def compute_feature_drift(
    engine: Engine, reference: LoadedReference, window: ProductionWindow, policy: DriftPolicy
) -> FeatureDriftResult:
    """Test every model feature of the day against the reference under `policy`, and replace
    the day's rows in `feature_drift_results`."""
    from credit_drift.storage.drift_results import replace_feature_drift

    t0 = time.perf_counter()
    drift = evaluate_window(reference.profile, window.features, policy)
    seconds = time.perf_counter() - t0
    replace_feature_drift(engine, window.day.date, drift.results)
    return FeatureDriftResult(
        day=window.day,
        results=drift.results,
        status=drift.status,
        policy_name=policy.name,
        n_rows=drift.n_rows,
        n_analyzed=drift.n_analyzed,
        n_drifted=drift.n_drifted,
        drift_share=float(drift.drift_share),
        weighted_drift_share=float(drift.weighted_drift_share),
        important_features_moved=drift.important_features_moved,
        seconds=seconds,
    )


def important_drifted(reference: LoadedReference, drift: FeatureDriftResult, top: int = 10):
    """The drifted features among the model's `top` most important, most important first."""
    drifted = drift.drifted_features
    return tuple(n for n in reference.by_importance()[:top] if n in drifted)
