"""ProductionWindow: one day of the prediction log, as every later step of that day reads it."""

import time
from dataclasses import dataclass

import pandas as pd
from sqlalchemy.engine import Engine

from credit_drift.features import FeatureSchema
from credit_drift.pipeline.parts import Parts
from credit_drift.storage.windows import DayWindow


@dataclass(frozen=True, eq=False)
class ProductionWindow:
    """The predictions logged in [day.start, day.end).

    features: one column per model feature in model order (numeric float64 with NaN for
        missing, categorical raw strings); meta: one row per prediction (created_at,
        request_id, probability, decision, threshold, model version, latency...), same order;
    missing_features / extra_features: model features some rows were logged without, and
        logged features the model no longer has (an older client), empty when all match;
    read_seconds: how long the read took.
    """

    KIND = "ProductionWindow"

    day: DayWindow
    features: pd.DataFrame
    meta: pd.DataFrame
    missing_features: tuple[str, ...] = ()
    extra_features: tuple[str, ...] = ()
    read_seconds: float = 0.0

    @property
    def n_rows(self) -> int:
        return len(self.meta)

    def to_parts(self) -> Parts:
        return Parts(
            self.KIND,
            {"features": self.features, "meta": self.meta},
            {
                "day": self.day.key,
                "missing_features": list(self.missing_features),
                "extra_features": list(self.extra_features),
                "read_seconds": self.read_seconds,
            },
        )

    @classmethod
    def from_parts(cls, parts: Parts) -> "ProductionWindow":
        f = parts.fields
        return cls(
            day=DayWindow.of(f["day"]),
            features=parts.frames["features"],
            meta=parts.frames["meta"],
            missing_features=tuple(f["missing_features"]),
            extra_features=tuple(f["extra_features"]),
            read_seconds=float(f["read_seconds"]),
        )


def read_production_window(
    engine: Engine, schema: FeatureSchema, day: DayWindow
) -> ProductionWindow:
    """The day's predictions, aligned to the model's feature list (packed-vector read)."""
    from credit_drift.storage.predictions import read_predictions

    t0 = time.perf_counter()
    logged = read_predictions(engine, schema, day.start, day.end)
    return ProductionWindow(
        day=day,
        features=logged.features,
        meta=logged.meta,
        missing_features=tuple(logged.missing_features),
        extra_features=tuple(logged.extra_features),
        read_seconds=time.perf_counter() - t0,
    )
