"""The Evidently 0.7 data-drift HTML report of one window, and the inputs it needs.

Owns: which columns go into the report (`select_report_columns`), rebuilding reference columns
from the stored per-feature summaries (`reference_frame_from_summaries`, so the report never
re-reads the training file), and running + writing the report (`build_evidently_report`).

Evidently is imported inside the functions: `import evidently` takes about 4 s, and Dagster must
load the definitions fast.

Evidently facts this module relies on (checked against evidently 0.7.23):
- `Report.run(current_data, reference_data)`: the first argument is the CURRENT data (the
  reference notebook had them swapped). We always pass keywords.
- Per-column test: for a numeric column with more than 1,000 *reference* rows, the normed
  Wasserstein distance (W / std(reference), drift if >= 0.1); numeric columns with few distinct
  values and categorical columns use Jensen-Shannon (>= 0.1); with 1,000 reference rows or fewer,
  KS (numeric) / chi-square (categorical) at p < 0.05. The window size does not change the test.
- `snapshot.dict()["metrics"]`: first `DriftedColumnsCount` with `value = {"count", "share"}`,
  then one `ValueDrift` per column with `config = {"column", "method", "threshold"}` and
  `value` = the drift score. Per-column verdicts exist only as tests: with
  `Report(..., include_tests=True)`, `snapshot.dict()["tests"]` holds one "Value Drift for column
  X" test per column (`status` FAIL = drifted) plus the preset's "share of drifted columns <
  drift_share" test.
- A column that is entirely missing on either side makes `run` raise ValueError; such columns are
  left out of the report and listed in `EvidentlyReportResult.skipped_columns`.
"""

import os
import tempfile
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from credit_drift.errors import CreditDriftError
from credit_drift.features import category_text

# Evidently's own default share of drifted columns at or above which it declares dataset drift.
# Kept as Evidently's default on purpose: the project's OK/WARNING/ALERT status comes from
# credit_drift.stats, not from Evidently.
EVIDENTLY_DRIFT_SHARE = 0.5

# Evidently's run time grows linearly with the number of columns (about 0.3 s per column at a
# 50,000-row reference), so the report shows a capped selection by default.
DEFAULT_MAX_COLUMNS = 30

# Share of the column budget reserved for the model's most important features, whether or not
# they drifted, so the report always shows the features that matter most to the score.
IMPORTANT_SHARE = 1 / 3

# The tail every complete Evidently HTML file ends with; checked before the file is published.
_HTML_END = b"</html>"

_VALUE_DRIFT = "evidently:metric_v2:ValueDrift"
_DRIFTED_COUNT = "evidently:metric_v2:DriftedColumnsCount"


class EvidentlyReportError(CreditDriftError, ValueError):
    """The report cannot be built from these inputs; the message says which input is wrong."""


@dataclass(frozen=True)
class EvidentlyColumnDrift:
    """Evidently's verdict on one column: `method` and `threshold` are what Evidently chose,
    `score` its drift score (a distance, or a p-value for KS / chi-square), `drifted` the
    outcome of its per-column test (None if Evidently produced no test for the column)."""

    column: str
    method: str
    threshold: float
    score: float
    drifted: bool | None


@dataclass(frozen=True)
class EvidentlyReportResult:
    """A written report. `drift_share` = n_drifted_columns / n_columns as Evidently computes it
    over the report's columns only (a selection, so not comparable to the pipeline's share
    over all features); `dataset_drift` = drift_share >= the preset's drift_share."""

    path: Path
    n_columns: int
    n_drifted_columns: int
    drift_share: float
    dataset_drift: bool
    seconds: float
    html_bytes: int = 0
    columns: tuple[EvidentlyColumnDrift, ...] = ()
    skipped_columns: tuple[str, ...] = ()

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]


# -- column selection -----------------------------------------------------------------------
def select_report_columns(
    results: pd.DataFrame,
    importance: Mapping[str, float],
    *,
    max_columns: int = DEFAULT_MAX_COLUMNS,
    include_all: bool = False,
) -> list[str]:
    """The features to put in the Evidently report.

    `results` is the window's per-feature drift table (columns `feature`, `statistic`,
    `drifted`; one row per analyzed feature). Rule:

    - `include_all`: every feature of `results`, in its order (`max_columns` is ignored).
    - otherwise, at most `max_columns` features:
      1. the `ceil(max_columns * IMPORTANT_SHARE)` most important features (by `importance`,
         ties by name), drifted or not, so the report always shows what matters to the model;
      2. then the drifted features, largest statistic first (NaN statistics last), until the
         budget is used.
      The list is ordered drifted features first (largest statistic first), then the remaining
      important features (most important first): the report opens on what moved.

    Features of `importance` absent from `results` are ignored (they were not analyzed);
    features absent from `importance` count as importance 0.
    """
    needed = {"feature", "statistic", "drifted"}
    missing = sorted(needed - set(results.columns))
    if missing:
        raise ValueError(f"drift results lack columns {missing} (have {list(results.columns)})")
    if not include_all and max_columns < 1:
        raise ValueError(f"max_columns must be >= 1, got {max_columns}")
    features = [str(f) for f in results["feature"]]
    if include_all:
        return features

    statistic = pd.to_numeric(results["statistic"], errors="coerce").to_numpy(np.float64)
    drifted_flags = results["drifted"].fillna(False).astype(bool).to_numpy()
    stat_of = dict(zip(features, statistic, strict=True))

    def imp(name: str) -> float:
        value = float(importance.get(name, 0.0))
        return 0.0 if np.isnan(value) else value

    by_importance = sorted(features, key=lambda f: (-imp(f), f))
    n_important = min(max_columns, int(np.ceil(max_columns * IMPORTANT_SHARE)))
    important = by_importance[:n_important]

    def stat_key(name: str) -> tuple[bool, float, str]:
        s = stat_of[name]
        return (bool(np.isnan(s)), -s if not np.isnan(s) else 0.0, name)

    drifted = sorted((f for f, d in zip(features, drifted_flags, strict=True) if d), key=stat_key)
    room = max_columns - len(important)
    chosen = set(important) | set([f for f in drifted if f not in important][:room])
    drifted_first = [f for f in drifted if f in chosen]
    rest = [f for f in important if f not in set(drifted_first)]
    return drifted_first + rest


# -- reference rebuilt from summaries -------------------------------------------------------
def reference_frame_from_summaries(
    columns: Mapping[str, tuple[np.ndarray, np.ndarray, int]],
    *,
    max_rows: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Reference columns rebuilt from per-feature summaries `{name: (values, counts, nan_count)}`
    (distinct values, how many rows hold each, how many rows are missing), as stored by the
    reference profile.

    Numeric columns (values of a numeric dtype) come back as float64 with NaN for missing;
    categorical columns (any other dtype) as object with None for missing. Every column must
    describe the same number of rows.

    Without `max_rows` (or when it is >= that number) each column holds exactly the training
    values: `np.repeat(values, counts)` plus `nan_count` missing values. With a smaller
    `max_rows`, each column is a systematic sample of its expanded column: the rows at the
    midpoints `(k + 0.5) * n / max_rows` of `max_rows` equal strata. Every distinct value (and
    the missing block) then gets its share of rows to within one row, so every quantile and the
    missing share are kept to within 1 / max_rows; the result is deterministic.

    Rows are not real applications: each column is shuffled by its own seeded permutation, so
    per-column distributions are exact but the joint structure is not kept. That is all a
    per-column drift report needs; cross-column views (correlations) of this frame mean nothing.
    """
    if max_rows is not None and max_rows < 1:
        raise ValueError(f"max_rows must be >= 1 or None, got {max_rows}")
    parsed: dict[str, tuple[np.ndarray, np.ndarray, int]] = {}
    for name, summary in columns.items():
        try:
            values, counts, nan_count = summary
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"summary of column {name!r} must be (values, counts, nan_count)"
            ) from exc
        values = np.asarray(values)
        counts = np.asarray(counts)
        if values.ndim != 1 or counts.shape != values.shape:
            raise ValueError(
                f"column {name!r}: values {values.shape} and counts {counts.shape} must be "
                "1-D of the same length"
            )
        if counts.dtype.kind not in "iu" and not np.array_equal(counts, np.floor(counts)):
            raise ValueError(f"column {name!r}: counts must be whole numbers")
        counts = counts.astype(np.int64)
        if (counts < 0).any() or int(nan_count) < 0:
            raise ValueError(f"column {name!r}: counts and nan_count must be >= 0")
        parsed[str(name)] = (values, counts, int(nan_count))

    totals = {name: int(c.sum()) + k for name, (_, c, k) in parsed.items()}
    if len(set(totals.values())) > 1:
        first = next(iter(totals))
        odd = [n for n, t in totals.items() if t != totals[first]][:5]
        raise ValueError(
            f"summaries describe different row counts: {first!r} has {totals[first]}, "
            + ", ".join(f"{n!r} has {totals[n]}" for n in odd)
        )
    n = next(iter(totals.values()), 0)
    m = n if max_rows is None else min(n, max_rows)
    rng = np.random.default_rng(seed)
    positions = ((np.arange(m) + 0.5) * (n / m)).astype(np.int64) if 0 < m < n else None

    out: dict[str, pd.Series] = {}
    index = pd.RangeIndex(m)
    for name, (values, counts, nan_count) in parsed.items():
        numeric = values.dtype.kind in "iufb"
        vals = values.astype(np.float64) if numeric else values.astype(object)
        missing_value: Any = np.nan if numeric else None
        if positions is None:
            col = np.concatenate(
                [np.repeat(vals, counts), np.full(nan_count, missing_value, dtype=vals.dtype)]
            )
        else:
            # Index of the distinct value holding each sampled position; past the last value's
            # cumulative count lie the missing rows.
            idx = np.searchsorted(np.cumsum(counts), positions, side="right")
            col = np.full(m, missing_value, dtype=vals.dtype)
            present = idx < len(vals)
            col[present] = vals[idx[present]]
        # An explicit dtype: pandas 3 would otherwise turn an object column of strings into its
        # string dtype, with NaN instead of None for the missing rows.
        out[name] = pd.Series(rng.permutation(col), index=index, dtype=vals.dtype, copy=False)
    return pd.DataFrame(out, index=index)


# -- the report -----------------------------------------------------------------------------
def build_evidently_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    path: Path | str,
    *,
    categorical_columns: Sequence[str] | None = None,
    drift_share: float = EVIDENTLY_DRIFT_SHARE,
) -> EvidentlyReportResult:
    """Run Evidently's `DataDriftPreset` with `current` (the production window) as CURRENT data
    and `reference` (training) as REFERENCE data, and write its HTML to `path` atomically (a
    temporary file in the same directory, checked complete, then renamed over `path`), so
    `path` never holds a half-written report and a failed build leaves any previous report as it
    was.

    The report covers `reference`'s columns (`current` must have them all; extra columns of
    `current` are ignored). Column types are passed to Evidently explicitly, never inferred:
    `categorical_columns` (default: the reference columns whose dtype is not numeric) are
    categorical, every other column numerical (cast to float64; Evidently would otherwise type an
    integer column with <= 10 distinct values as categorical). Columns with no value at all on
    one side are left out (Evidently raises on them) and listed in `skipped_columns`.
    """
    path = Path(path)
    if len(current) == 0:
        raise EvidentlyReportError("current window is empty: no rows to compare to the reference")
    if len(reference) == 0:
        raise EvidentlyReportError("reference frame is empty")
    if reference.shape[1] == 0:
        raise EvidentlyReportError("reference frame has no columns")
    names = [str(c) for c in reference.columns]
    if len(set(names)) != len(names):
        raise EvidentlyReportError("reference frame has duplicate column names")
    absent = [c for c in reference.columns if c not in current.columns]
    if absent:
        raise EvidentlyReportError(
            f"current window lacks {len(absent)} reference column(s): {absent[:10]}"
        )
    if categorical_columns is None:
        categorical = {
            c
            for c in reference.columns
            if not pd.api.types.is_numeric_dtype(reference[c])
            or pd.api.types.is_bool_dtype(reference[c])
        }
    else:
        categorical = set(categorical_columns)
        unknown = sorted(categorical - set(reference.columns))
        if unknown:
            raise EvidentlyReportError(f"categorical columns not in the reference: {unknown}")

    skipped = tuple(
        c for c in reference.columns if reference[c].isna().all() or current[c].isna().all()
    )
    kept = [c for c in reference.columns if c not in set(skipped)]
    if not kept:
        raise EvidentlyReportError(
            f"no column has values in both the reference and the window (all {len(skipped)} "
            "are entirely missing on one side)"
        )
    ref = _typed(reference, kept, categorical)
    cur = _typed(current, kept, categorical)

    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(
        numerical_columns=[c for c in kept if c not in categorical],
        categorical_columns=[c for c in kept if c in categorical],
    )
    started = time.perf_counter()
    with warnings.catch_warnings():
        # Constant columns make Evidently divide 0 by 0 inside its plots; the score is still
        # right (0), so the warning is only noise in the run log.
        warnings.filterwarnings(
            "ignore", message="invalid value encountered", category=RuntimeWarning
        )
        snapshot = Report([DataDriftPreset(drift_share=drift_share)], include_tests=True).run(
            current_data=Dataset.from_pandas(cur, data_definition=definition),
            reference_data=Dataset.from_pandas(ref, data_definition=definition),
        )
    n_drifted, share, column_results = parse_snapshot(snapshot.dict())
    html_bytes = _write_html_atomically(snapshot, path)
    return EvidentlyReportResult(
        path=path,
        n_columns=len(kept),
        n_drifted_columns=n_drifted,
        drift_share=share,
        dataset_drift=bool(share >= drift_share),
        seconds=time.perf_counter() - started,
        html_bytes=html_bytes,
        columns=column_results,
        skipped_columns=tuple(str(c) for c in skipped),
    )


def parse_snapshot(
    snapshot_dict: Mapping[str, Any],
) -> tuple[int, float, tuple[EvidentlyColumnDrift, ...]]:
    """(drifted-column count, drifted share, per-column results) from `snapshot.dict()` of a
    `DataDriftPreset` report (structure in the module docstring). Raises EvidentlyReportError
    when the structure is not the one this module was written against."""
    metrics = snapshot_dict.get("metrics")
    if not isinstance(metrics, list):
        raise EvidentlyReportError("unexpected Evidently snapshot: no 'metrics' list")
    counted = [m for m in metrics if m.get("config", {}).get("type") == _DRIFTED_COUNT]
    if len(counted) != 1 or not isinstance(counted[0].get("value"), Mapping):
        raise EvidentlyReportError(
            "unexpected Evidently snapshot: expected one DriftedColumnsCount metric with a "
            "{count, share} value"
        )
    value = counted[0]["value"]
    n_drifted, share = int(round(float(value["count"]))), float(value["share"])

    verdicts: dict[str, bool] = {}
    for test in snapshot_dict.get("tests") or []:
        params = (test.get("metric_config") or {}).get("params") or {}
        if params.get("type") == _VALUE_DRIFT and "column" in params:
            status = test.get("status")
            status = str(getattr(status, "value", status)).upper()
            verdicts[str(params["column"])] = status == "FAIL"

    columns = []
    for m in metrics:
        config = m.get("config", {})
        if config.get("type") != _VALUE_DRIFT:
            continue
        name = str(config["column"])
        columns.append(
            EvidentlyColumnDrift(
                column=name,
                method=str(config.get("method")),
                threshold=float(config.get("threshold", np.nan)),
                score=float(m.get("value", np.nan)),
                drifted=verdicts.get(name),
            )
        )
    return n_drifted, share, tuple(columns)


def _typed(frame: pd.DataFrame, columns: list[str], categorical: set[str]) -> pd.DataFrame:
    # Categories compared as text on both sides: a category stored as 1 on one side and "1" on
    # the other is the same category (features.py keeps integral categories integral as text).
    out = {}
    for c in columns:
        col = frame[c]
        if c in categorical:
            out[c] = col.map(category_text, na_action="ignore").astype(object)
            out[c] = out[c].where(out[c].notna(), None)
        else:
            try:
                out[c] = pd.to_numeric(col, errors="raise").astype(np.float64)
            except (TypeError, ValueError) as exc:
                raise EvidentlyReportError(
                    f"column {c!r} is numerical but holds non-numeric values"
                ) from exc
    return pd.DataFrame(out, index=frame.index)


def _write_html_atomically(snapshot: Any, path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        snapshot.save_html(str(tmp))
        size = tmp.stat().st_size
        with tmp.open("rb") as f:
            f.seek(max(0, size - 256))
            tail = f.read().rstrip()
        if not tail.endswith(_HTML_END):
            raise EvidentlyReportError(
                f"Evidently wrote an incomplete HTML report ({size} bytes, no closing </html>)"
            )
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a report is meant to be read by others
        os.replace(tmp, path)
        return size
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
