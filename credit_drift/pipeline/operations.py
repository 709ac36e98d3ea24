"""Operational metrics of a day: volume, latency, refusal rate, the score's distribution and its
drift against the training scores (a shift in decisions is what the business feels first)."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from credit_drift.pipeline.config import PipelineConfig
from credit_drift.pipeline.reference import LoadedReference
from credit_drift.pipeline.window import ProductionWindow


@dataclass(frozen=True)
class OperationalOutcome:
    n_predictions: int
    numbers: dict[str, float | None]
    figure: Path | None


def compute_operational_metrics(
    reference: LoadedReference, window: ProductionWindow, config: PipelineConfig
) -> OperationalOutcome:
    from credit_drift.reports.plots import plot_operational
    from credit_drift.stats.score_drift import score_drift

    meta = window.meta
    n = len(meta)
    threshold = float(meta["threshold"].iloc[-1]) if n else None
    figure = plot_operational(meta, threshold, config.day_dir(window.day.key) / "operational.png")
    if n == 0:
        return OperationalOutcome(0, {}, figure)
    latency = meta["inference_time_ms"].astype(float)
    proba = meta["probability"].astype(float).to_numpy()
    numbers: dict[str, float | None] = {
        "latency_mean_ms": float(latency.mean()),
        "latency_p50_ms": float(latency.quantile(0.5)),
        "latency_p95_ms": float(latency.quantile(0.95)),
        "mean_probability": float(proba.mean()),
        "refusal_rate": float((meta["decision"] == "REFUSED").mean()),
        "probability_p10": float(np.quantile(proba, 0.1)),
        "probability_p50": float(np.quantile(proba, 0.5)),
        "probability_p90": float(np.quantile(proba, 0.9)),
    }
    if reference.profile.training_scores is not None:
        drift = score_drift(reference.profile, proba)
        numbers.update(
            score_ks_statistic=drift.ks_statistic,
            score_ks_pvalue=drift.p_value,
            score_psi=drift.psi,
        )
    return OperationalOutcome(n, numbers, figure)
