"""A small, fully known monitoring state written through the project's own storage functions:
three days of predictions and API requests, a reference profile, per-feature drift results, drift
reports (OK, WARNING, ALERT) and one alert. Shared by the dashboard-query, Grafana-SQL and
dashboard-page tests, which compare what they read with the numbers kept here."""

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from credit_drift.features import FeatureSchema, FeatureSpec
from credit_drift.stats.reference import fit_reference
from credit_drift.storage import db
from credit_drift.storage.alert_outbox import AlertIntent, record_alert
from credit_drift.storage.api_logs import ApiLogRow, insert_api_logs
from credit_drift.storage.drift_results import (
    DriftReportRow,
    replace_feature_drift,
    upsert_drift_report,
)
from credit_drift.storage.predictions import PredictionRow, insert_predictions
from credit_drift.storage.reference_profiles import ReferenceFeatureRecord, save_reference
from credit_drift.storage.windows import window_bounds_for_day

SCHEMA = FeatureSchema(
    (
        FeatureSpec("AMT_CREDIT"),
        FeatureSpec("DAYS_BIRTH"),
        FeatureSpec("EXT_SOURCE_1"),
        FeatureSpec("OCCUPATION_TYPE", "categorical", ("Laborers", "Managers")),
    )
)
DAYS = [dt.date(2026, 11, 1), dt.date(2026, 11, 2), dt.date(2026, 11, 3)]
STATUSES = ["OK", "WARNING", "ALERT"]
DRIFT_PCT = [0.0, 25.0, 75.0]
ALERT_DAY = DAYS[2]
# Not in importance order, so that ranking by importance is visible.
DRIFTED = {
    DAYS[0]: set(),
    DAYS[1]: {"OCCUPATION_TYPE"},
    DAYS[2]: {"AMT_CREDIT", "DAYS_BIRTH", "OCCUPATION_TYPE"},
}
THRESHOLD = 0.4
IMPORTANCE = {"AMT_CREDIT": 30.0, "DAYS_BIRTH": 10.0, "EXT_SOURCE_1": 50.0, "OCCUPATION_TYPE": 5.0}


@dataclass(frozen=True)
class Seeded:
    url: str
    predictions: pd.DataFrame  # day, probability, decision, inference_time_ms, AMT_CREDIT, ...
    api_logs: pd.DataFrame  # day, status_code, latency_ms


def _profile_rows():
    rng = np.random.default_rng(0)
    n = 500
    frame = pd.DataFrame(
        {
            "AMT_CREDIT": rng.lognormal(12, 0.5, n),
            "DAYS_BIRTH": -rng.integers(7000, 25000, n).astype(float),
            "EXT_SOURCE_1": np.where(rng.random(n) < 0.2, np.nan, rng.random(n)),
            "OCCUPATION_TYPE": rng.choice(["Laborers", "Managers"], n),
        }
    )
    return fit_reference(frame, SCHEMA, IMPORTANCE, scores=rng.beta(2, 5, n))


def seed(url: str, *, n_per_day: tuple[int, ...] = (40, 60, 80)) -> Seeded:
    """Migrate `url` and write the state; returns the rows written, for expected values."""
    db.upgrade(url)
    engine = db.make_engine(url)
    profile = _profile_rows()
    header, rows, blobs = profile.to_records()
    save_reference(
        engine,
        schema=SCHEMA,
        profile_version=header["profile_version"],
        model_version="model-1",
        n_rows=header["n_rows"],
        features=[ReferenceFeatureRecord(**r) for r in rows],
        samples=blobs,
    )
    rng = np.random.default_rng(1)
    pred_records, log_rows = [], []
    for d, (day, n) in enumerate(zip(DAYS, n_per_day, strict=True)):
        start, _ = window_bounds_for_day(day)
        rows_ = []
        for i in range(n):
            when = start + dt.timedelta(seconds=int(rng.integers(0, 86_399)))
            amount = float(rng.lognormal(12 + 0.3 * d, 0.5))
            ext = np.nan if i % 7 == 0 else float(rng.random())
            occupation = ["Laborers", "Managers", "Astronaut"][i % 3] if d == 2 else "Laborers"
            proba = float(rng.beta(2, 5 - d))
            if i == 0:
                proba = 1.0  # the closed upper edge of the last histogram bin
            latency = float(rng.gamma(2.0, 1.5))
            decision = "REFUSED" if proba >= THRESHOLD else "APPROVED"
            matrix, raw = SCHEMA.pack_frame(
                pd.DataFrame(
                    [
                        {
                            "AMT_CREDIT": amount,
                            "DAYS_BIRTH": -12000.0 - i,
                            "EXT_SOURCE_1": ext,
                            "OCCUPATION_TYPE": occupation,
                        }
                    ]
                )
            )
            rows_.append(
                PredictionRow(
                    created_at=when,
                    request_id=f"{day}-{i}",
                    features=matrix[0],
                    categorical=raw[0],
                    probability=proba,
                    decision=decision,
                    threshold=THRESHOLD,
                    model_version="model-1",
                    inference_time_ms=latency,
                )
            )
            pred_records.append(
                {
                    "day": day,
                    "probability": proba,
                    "decision": decision,
                    "inference_time_ms": latency,
                    "AMT_CREDIT": amount,
                    "EXT_SOURCE_1": ext,
                    "OCCUPATION_TYPE": occupation,
                }
            )
            status = 200 if i % 10 else (422 if i % 20 else 503)
            log_rows.append(
                ApiLogRow(
                    created_at=when,
                    request_id=f"{day}-{i}",
                    method="POST",
                    endpoint="/predict",
                    status_code=status,
                    latency_ms=latency + 1.0,
                    n_items=1,
                )
            )
        insert_predictions(engine, SCHEMA, rows_)
    insert_api_logs(engine, log_rows)

    for day, status, pct, n in zip(DAYS, STATUSES, DRIFT_PCT, n_per_day, strict=True):
        start, end = window_bounds_for_day(day)
        n_drifted = len(DRIFTED[day])
        assert 100 * n_drifted / 4 == pct
        upsert_drift_report(
            engine,
            DriftReportRow(
                report_date=day,
                window_start=start,
                window_end=end,
                n_predictions=n,
                n_features_analyzed=4,
                n_features_drifted=n_drifted,
                drift_percentage=pct,
                weighted_drift_percentage=pct,
                status=status,
                policy="default",
                multivariate_score=0.5 + pct / 200,
                model_version="model-1",
                profile_version=header["profile_version"],
            ),
        )
        results = [
            dict(
                feature=name,
                kind=SCHEMA.spec(name).kind,
                test="ks" if SCHEMA.spec(name).kind == "numeric" else "chi2",
                drifted=name in DRIFTED[day],
                statistic=0.05 + 0.1 * j + pct / 200,
                p_value=0.5 / (1 + j + pct),
                p_adjusted=0.6 / (1 + j + pct),
                effect_size=0.05 + 0.1 * j + pct / 200,
                effect_metric="ks_statistic",
                reason="ks" if name in DRIFTED[day] else "",
                psi=0.01 * (j + 1) * (1 + pct),
                ref_nan_share=0.2 if name == "EXT_SOURCE_1" else 0.0,
                cur_nan_share=0.14 if name == "EXT_SOURCE_1" else 0.0,
                unseen_categories=("Astronaut",)
                if name == "OCCUPATION_TYPE" and day == ALERT_DAY
                else None,
                unseen_share=1 / 3 if name == "OCCUPATION_TYPE" and day == ALERT_DAY else 0.0,
                importance=IMPORTANCE[name],
                n_current=n,
            )
            for j, name in enumerate(
                ["EXT_SOURCE_1", "AMT_CREDIT", "DAYS_BIRTH", "OCCUPATION_TYPE"]
            )
        ]
        replace_feature_drift(engine, day, pd.DataFrame(results))
    record_alert(
        engine,
        AlertIntent(
            ALERT_DAY,
            "ALERT",
            DRIFT_PCT[2],
            ["EXT_SOURCE_1", "AMT_CREDIT", "DAYS_BIRTH"],
            deliver=False,
        ),
    )
    preds = pd.DataFrame(pred_records)
    logs = pd.DataFrame(
        {
            "day": [r.created_at.date() for r in log_rows],
            "status_code": [r.status_code for r in log_rows],
            "latency_ms": [r.latency_ms for r in log_rows],
        }
    )
    return Seeded(url=url, predictions=preds, api_logs=logs)
