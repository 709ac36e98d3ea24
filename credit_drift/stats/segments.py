"""Drift inside segments: the day's per-feature tests repeated within each segment of the
traffic (a product, a channel, a score band), each against the training reference restricted to
the same segment, with the multiple-testing correction applied across segments x features.

Pure numpy/pandas. A segment column is a model feature with few distinct values (a categorical
feature, a flag or one-hot column) or `score_band`: the model's probability cut at fixed edges.
The reference side of every segment is an exact `ReferenceProfile` fitted on the training rows
of that segment (`fit_segment_references`, once, when the reference profile is built), stored
beside the profile as one blob (`SegmentReferences.to_blob`). A segment with fewer rows than the
minimum on either side is reported TOO_SMALL, a window value the training set never had
NO_REFERENCE: never OK.
"""

import json
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from credit_drift.errors import CreditDriftError
from credit_drift.features import FeatureSchema
from credit_drift.stats.compare import compare_window
from credit_drift.stats.numeric import DEFAULT_WORKERS
from credit_drift.stats.policy import (
    STATUS_ORDER,
    DriftPolicy,
    benjamini_hochberg,
    decide,
)
from credit_drift.stats.reference import ReferenceProfile, category_text, fit_reference

#: The segment column derived from the model's probability rather than logged as a feature.
SCORE_BAND = "score_band"
#: Default score band edges: [0, 0.05), [0.05, 0.1), [0.1, 0.2), [0.2, 1].
DEFAULT_SCORE_BAND_EDGES = (0.05, 0.10, 0.20)
#: Fewest rows on each side (window and reference) for a segment to be tested: below it a KS
#: test at the corrected level only sees very large shifts, and the segment is TOO_SMALL.
DEFAULT_SEGMENT_MIN_ROWS = 100
#: A segment column has at most this many distinct training values (more is not a segment).
MAX_SEGMENT_VALUES = 20
#: The label of a segment column's missing values.
MISSING = "(missing)"
#: Statuses of a segment that was not tested.
TOO_SMALL, NO_REFERENCE = "TOO_SMALL", "NO_REFERENCE"
#: Bumped when the blob layout changes.
SEGMENTS_FORMAT = 1

#: Columns of `SegmentDrift.table`, in order.
SEGMENT_TABLE_COLUMNS = (
    "segment",
    "column",
    "value",
    "status",
    "n_rows",
    "n_reference",
    "window_share",
    "n_analyzed",
    "n_drifted",
    "drift_percentage",
    "top_drifted",
)


class SegmentError(CreditDriftError, ValueError):
    """A segment column cannot be used; the message names it and what would do."""


@dataclass(frozen=True)
class SegmentSpec:
    """Which columns segment the traffic, the score band edges, and the fewest rows per side."""

    columns: tuple[str, ...] = ()
    score_band_edges: tuple[float, ...] = DEFAULT_SCORE_BAND_EDGES
    min_rows: int = DEFAULT_SEGMENT_MIN_ROWS

    def __post_init__(self) -> None:
        columns = tuple(str(c).strip() for c in self.columns)
        if any(not c for c in columns):
            raise SegmentError(f"segment columns {list(self.columns)} include an empty name")
        if len(set(columns)) != len(columns):
            raise SegmentError(f"segment columns {list(columns)} name a column twice")
        object.__setattr__(self, "columns", columns)
        edges = tuple(float(e) for e in self.score_band_edges)
        if not edges or any(not 0 < e < 1 for e in edges) or any(np.diff(edges) <= 0):
            raise SegmentError(
                f"score band edges {list(edges)} must be strictly increasing numbers in (0, 1)"
            )
        object.__setattr__(self, "score_band_edges", edges)
        if isinstance(self.min_rows, bool) or int(self.min_rows) < 1:
            raise SegmentError(f"segment min_rows {self.min_rows!r} must be a positive integer")
        object.__setattr__(self, "min_rows", int(self.min_rows))


def band_labels(probability: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """The score band of each probability: '[0, e1)', '[e1, e2)', ..., '[ek, 1]' (NaN: MISSING)."""
    p = np.asarray(probability, dtype=np.float64)
    bounds = [0.0, *edges, 1.0]
    names = [
        f"[{bounds[i]:g}, {bounds[i + 1]:g}" + ("]" if i == len(edges) else ")")
        for i in range(len(edges) + 1)
    ]
    idx = np.searchsorted(np.asarray(edges, dtype=np.float64), p, side="right")
    out = np.asarray(names, dtype=object)[np.minimum(idx, len(edges))]
    out[np.isnan(p)] = MISSING
    return out


def check_segment_columns(schema: FeatureSchema, columns: Sequence[str]) -> None:
    """SegmentError naming every configured column that is neither a model feature nor
    `score_band`."""
    unknown = [c for c in columns if c != SCORE_BAND and c not in schema.names]
    if unknown:
        raise SegmentError(
            f"segment column(s) {unknown} are not model features; a segment column is "
            f"{SCORE_BAND!r} or a feature with at most {MAX_SEGMENT_VALUES} values (e.g. a "
            "categorical feature or a flag); set CREDIT_DRIFT_SEGMENTS accordingly"
        )


def segment_labels(
    frame: pd.DataFrame,
    column: str,
    schema: FeatureSchema,
    probability: np.ndarray | None,
    edges: Sequence[float],
) -> np.ndarray:
    """Each row's value of segment column `column` as text (1, 1.0 and '1' are one value;
    missing is MISSING)."""
    check_segment_columns(schema, [column])
    if column == SCORE_BAND:
        if probability is None:
            raise SegmentError(f"segment column {SCORE_BAND!r} needs the model's probabilities")
        return band_labels(probability, edges)
    text = category_text(frame[column].reset_index(drop=True))
    return text.fillna(MISSING).to_numpy(dtype=object)


@dataclass(frozen=True, eq=False)
class SegmentReferences:
    """The training reference of every segment: {(column, value): profile}, with the spec's
    columns and score band edges they were fitted for."""

    columns: tuple[str, ...]
    score_band_edges: tuple[float, ...]
    profiles: Mapping[tuple[str, str], ReferenceProfile]

    @property
    def schema(self) -> FeatureSchema:
        if not self.profiles:
            raise SegmentError("no segment references were fitted (no segment columns)")
        return next(iter(self.profiles.values())).schema

    def values(self, column: str) -> list[str]:
        return [v for c, v in self.profiles if c == column]

    def check_covers(self, spec: SegmentSpec) -> None:
        """SegmentError unless these references were fitted for `spec`'s columns and edges."""
        absent = [c for c in spec.columns if c not in self.columns]
        bands_differ = SCORE_BAND in spec.columns and tuple(self.score_band_edges) != tuple(
            spec.score_band_edges
        )
        if absent or bands_differ:
            what = f"columns {absent}" if absent else "score band edges"
            raise SegmentError(
                f"the stored reference has no segments for {what} (it has columns "
                f"{list(self.columns)}, score band edges {list(self.score_band_edges)}): "
                "re-materialize reference_profile with the current CREDIT_DRIFT_SEGMENTS / "
                "CREDIT_DRIFT_SCORE_BANDS"
            )

    # -- storage --------------------------------------------------------------------------
    def to_blob(self) -> bytes:
        """One blob: an 8-byte length, a JSON index, then every summary's bytes."""
        chunks: list[bytes] = []
        offset = 0

        def put(data: bytes) -> list[int]:
            nonlocal offset
            chunks.append(bytes(data))
            offset += len(data)
            return [offset - len(data), len(data)]

        segments = []
        for (column, value), profile in self.profiles.items():
            header, rows, blobs = profile.to_records()
            segments.append(
                {
                    "column": column,
                    "value": value,
                    "header": header,
                    "rows": [{**r, "summary": put(r["summary"])} for r in rows],
                    "blobs": {name: put(data) for name, data in blobs.items()},
                }
            )
        index = json.dumps(
            {
                "format": SEGMENTS_FORMAT,
                "columns": list(self.columns),
                "score_band_edges": list(self.score_band_edges),
                "segments": segments,
            }
        ).encode()
        return struct.pack("<Q", len(index)) + index + b"".join(chunks)

    @classmethod
    def from_blob(cls, blob: bytes) -> "SegmentReferences":
        """Inverse of `to_blob`; every segment's profile is checked against its content hash."""
        blob = bytes(blob)
        if len(blob) < 8:
            raise SegmentError("stored segment references are truncated")
        (size,) = struct.unpack("<Q", blob[:8])
        index = json.loads(blob[8 : 8 + size])
        if index.get("format") != SEGMENTS_FORMAT:
            raise SegmentError(
                f"stored segment references have format {index.get('format')!r}, this code "
                f"reads {SEGMENTS_FORMAT}: re-materialize reference_profile"
            )
        data = memoryview(blob)[8 + size :]

        def take(where: list[int]) -> bytes:
            return bytes(data[where[0] : where[0] + where[1]])

        profiles = {}
        for seg in index["segments"]:
            rows = [{**r, "summary": take(r["summary"])} for r in seg["rows"]]
            blobs = {name: take(where) for name, where in seg["blobs"].items()}
            profiles[(seg["column"], seg["value"])] = ReferenceProfile.from_records(
                seg["header"], rows, blobs
            )
        return cls(tuple(index["columns"]), tuple(index["score_band_edges"]), profiles)


def fit_segment_references(
    frame: pd.DataFrame,
    schema: FeatureSchema,
    importance: Mapping[str, float],
    spec: SegmentSpec,
    scores: np.ndarray | None = None,
) -> SegmentReferences:
    """Fit an exact reference profile on the training rows of every segment of `spec`'s
    columns (`scores`: the model's training probabilities, needed for `score_band`)."""
    check_segment_columns(schema, spec.columns)
    profiles: dict[tuple[str, str], ReferenceProfile] = {}
    for column in spec.columns:
        labels = segment_labels(frame, column, schema, scores, spec.score_band_edges)
        values = sorted(set(labels))
        if len(values) > MAX_SEGMENT_VALUES:
            raise SegmentError(
                f"segment column {column!r} has {len(values)} distinct training values; a "
                f"segment column has at most {MAX_SEGMENT_VALUES} (a categorical feature, a "
                f"flag, or {SCORE_BAND!r})"
            )
        for value in values:
            rows = np.flatnonzero(labels == value)
            profiles[(column, value)] = fit_reference(
                frame.iloc[rows], schema, importance, sample_rows=0
            )
    return SegmentReferences(spec.columns, spec.score_band_edges, profiles)


@dataclass(frozen=True, eq=False)
class SegmentDrift:
    """A window's segments judged under one policy, the correction across segments x features.

    table: one row per segment (columns `SEGMENT_TABLE_COLUMNS`), tested or not; status: the
    worst status of the tested segments (NO_DATA when none could be tested); per_segment:
    the per-feature results of each tested segment."""

    table: pd.DataFrame
    status: str
    n_tests: int
    per_segment: Mapping[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def flagged(self) -> list[str]:
        """Segments at WARNING or ALERT."""
        return self.table.loc[self.table["status"].isin(["WARNING", "ALERT"]), "segment"].tolist()

    @property
    def too_small(self) -> list[str]:
        return self.table.loc[self.table["status"] == TOO_SMALL, "segment"].tolist()


def evaluate_segments(
    references: SegmentReferences,
    frame: pd.DataFrame,
    probability: np.ndarray | None,
    policy: DriftPolicy,
    spec: SegmentSpec,
    *,
    workers: int = DEFAULT_WORKERS,
) -> SegmentDrift:
    """Test every segment of `spec`'s columns in the window against its training segment; the
    policy's correction (Benjamini-Hochberg under `default`) is applied once over the p-values
    of every tested segment and feature, then each segment gets the policy's verdicts and
    status from its own drifted share."""
    references.check_covers(spec)
    n = len(frame)
    if probability is not None and len(probability) != n:
        raise SegmentError(f"{len(probability)} probabilities for a window of {n} rows")
    rows, tested = [], []
    for column in spec.columns:
        labels = (
            segment_labels(frame, column, references.schema, probability, spec.score_band_edges)
            if n
            else np.empty(0, dtype=object)
        )
        known = references.values(column)
        for value in sorted(set(known) | set(labels)):
            ref = references.profiles.get((column, value))
            in_segment = np.flatnonzero(labels == value)
            row = {
                "segment": f"{column}={value}",
                "column": column,
                "value": value,
                "n_rows": int(in_segment.size),
                "n_reference": 0 if ref is None else int(ref.n_rows),
                "window_share": in_segment.size / n if n else float("nan"),
            }
            if ref is None:
                row["status"] = NO_REFERENCE
            elif in_segment.size < spec.min_rows or ref.n_rows < spec.min_rows:
                row["status"] = TOO_SMALL
            else:
                comparison = compare_window(ref, frame.iloc[in_segment], workers=workers)
                tested.append((len(rows), comparison))
            rows.append(row)

    p_adjusted, nan_adjusted = _corrected(tested, policy)
    per_segment = {}
    for (i, comparison), p_adj, nan_adj in zip(tested, p_adjusted, nan_adjusted, strict=True):
        drift = decide(comparison, policy, p_adjusted=p_adj, nan_p_adjusted=nan_adj)
        top = (
            drift.results.loc[drift.results["drifted"]]
            .sort_values("effect_size", ascending=False)["feature"]
            .head(5)
            .tolist()
        )
        rows[i].update(
            status=drift.status,
            n_analyzed=drift.n_analyzed,
            n_drifted=drift.n_drifted,
            drift_percentage=100.0 * drift.drift_share,
            top_drifted=", ".join(top),
        )
        per_segment[rows[i]["segment"]] = drift.results
    table = pd.DataFrame(rows, columns=list(SEGMENT_TABLE_COLUMNS))
    table["top_drifted"] = table["top_drifted"].fillna("")
    for name in ("n_analyzed", "n_drifted"):
        table[name] = table[name].fillna(0).astype(np.int64)
    table["drift_percentage"] = table["drift_percentage"].astype(np.float64)
    status = worst_status([rows[i]["status"] for i, _ in tested])
    n_tests = int(sum(np.isfinite(c.features["p_value"]).sum() for _, c in tested))
    return SegmentDrift(table, status, n_tests, per_segment)


def _corrected(tested, policy: DriftPolicy) -> tuple[list, list]:
    """The tested segments' p-values (distribution, NaN share) corrected as one family."""
    if policy.correction != "bh" or not tested:
        return [None] * len(tested), [None] * len(tested)
    sizes = [len(c.features) for _, c in tested]
    cuts = np.cumsum(sizes)[:-1]
    p = np.concatenate([c.features["p_value"].to_numpy(np.float64) for _, c in tested])
    nan_p = np.concatenate(
        [c.features["nan_share_p_value"].to_numpy(np.float64) for _, c in tested]
    )
    return np.split(benjamini_hochberg(p), cuts), np.split(benjamini_hochberg(nan_p), cuts)


def worst_status(statuses: Sequence[str]) -> str:
    """The most severe of OK / WARNING / ALERT in `statuses` (NO_DATA when there is none)."""
    known = [s for s in statuses if s in STATUS_ORDER]
    return max(known, key=STATUS_ORDER.__getitem__) if known else "NO_DATA"
