"""Drift inside segments for one day (`stats.segments`): the day's window split by the
configured segment columns, each segment tested against the training rows of the same segment
(stored beside the reference profile), with the policy's correction across segments x features;
the per-segment table goes to the asset's metadata and to `reports/<day>/segments.html`."""

import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pandas as pd

from credit_drift.pipeline.config import PipelineConfig
from credit_drift.pipeline.parts import Parts
from credit_drift.pipeline.reference import LoadedReference
from credit_drift.pipeline.window import ProductionWindow
from credit_drift.stats.segments import SCORE_BAND, SegmentDrift, evaluate_segments


@dataclass(frozen=True, eq=False)
class SegmentDriftResult:
    """status: the worst tested segment's status (NO_DATA when none could be tested, or no
    segment is configured); table: one row per segment; report: the HTML page (None when no
    segment is configured). Stored by the daily IO manager, so the day's drift report shows the
    segment table beside the aggregate."""

    KIND: ClassVar[str] = "SegmentDriftResult"

    status: str
    table: pd.DataFrame
    n_tests: int
    flagged: tuple[str, ...]
    too_small: tuple[str, ...]
    report: Path | None
    seconds: float

    @property
    def configured(self) -> bool:
        return self.report is not None

    @classmethod
    def not_configured(cls) -> "SegmentDriftResult":
        return cls("NO_DATA", pd.DataFrame(), 0, (), (), None, 0.0)

    def to_parts(self) -> Parts:
        fields = {
            "status": self.status,
            "n_tests": self.n_tests,
            "flagged": list(self.flagged),
            "too_small": list(self.too_small),
            "report": None if self.report is None else str(self.report),
            "seconds": self.seconds,
        }
        return Parts(self.KIND, {"table": self.table}, fields)

    @classmethod
    def from_parts(cls, parts: Parts) -> "SegmentDriftResult":
        f = parts.fields
        return cls(
            status=f["status"],
            table=parts.frames["table"],
            n_tests=int(f["n_tests"]),
            flagged=tuple(f["flagged"]),
            too_small=tuple(f["too_small"]),
            report=None if f["report"] is None else Path(f["report"]),
            seconds=float(f["seconds"]),
        )


def compute_segment_drift(
    reference: LoadedReference, window: ProductionWindow, config: PipelineConfig
) -> SegmentDriftResult:
    """The day's segments judged under the configured policy (`not_configured()` when no
    segment column is configured)."""
    from credit_drift.reports.segments import write_segment_report

    spec = config.segments
    if not spec.columns:
        return SegmentDriftResult.not_configured()
    t0 = time.perf_counter()
    refs = reference.segment_references(spec)
    probability = window.meta["probability"].to_numpy(float) if SCORE_BAND in spec.columns else None
    drift: SegmentDrift = evaluate_segments(refs, window.features, probability, config.policy, spec)
    seconds = time.perf_counter() - t0
    path = write_segment_report(
        drift.table,
        config.day_dir(window.day.key) / "segments.html",
        day=window.day.key,
        status=drift.status,
        n_tests=drift.n_tests,
        policy_name=config.policy.name,
        min_rows=spec.min_rows,
    )
    return SegmentDriftResult(
        status=drift.status,
        table=drift.table,
        n_tests=drift.n_tests,
        flagged=tuple(drift.flagged),
        too_small=tuple(drift.too_small),
        report=path,
        seconds=seconds,
    )
