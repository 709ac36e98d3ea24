"""Reading a file of observed outcomes (CSV or Parquet) into `OutcomeRow`s (what
`credit-drift outcomes load` records).

Columns: the application id (as sent with the predictions; integers become their decimal
text), the label (0/1 with 1 = default, or two labels one of which is named as the default one,
e.g. good/bad with `positive_label="bad"`) and, optionally, when the outcome was observed
(timestamps without a time zone are UTC; a date is its midnight UTC; default: now). Every
failure is an `OutcomeFileError` naming the file, the column, the row (0-based, header
excluded) and the value; no row is skipped.
"""

import datetime as dt
import os
from pathlib import Path

import numpy as np
import pandas as pd

from credit_drift.data.loader import TrainingDataError, ids_as_text, read_table
from credit_drift.errors import CreditDriftError
from credit_drift.features import category_text
from credit_drift.storage.outcomes import OutcomeRow

_SHOW = 40


class OutcomeFileError(CreditDriftError):
    """An outcome file that cannot be read as outcomes; the message names what is wrong."""


def _shown(value: object) -> str:
    text = repr(value.item() if isinstance(value, np.generic) else value)
    return text if len(text) <= _SHOW else text[: _SHOW - 3] + "..."


def _first_missing(col: pd.Series) -> int | None:
    missing = col.isna().to_numpy()
    return int(np.argmax(missing)) if missing.any() else None


def _labels(col: pd.Series, where: str, positive_label: str | None) -> np.ndarray:
    """0/1 per row (1 = default)."""
    row = _first_missing(col)
    if row is not None:
        raise OutcomeFileError(
            f"{where}: row {row} has no label; every row of an outcome file needs one"
        )
    if positive_label:
        text = col.map(category_text).to_numpy(dtype=object)
        others = [v for v in dict.fromkeys(text.tolist()) if v != positive_label]
        if len(others) > 1:
            bad = int(np.argmax(text == others[1]))
            raise OutcomeFileError(
                f"{where}: row {bad} holds {_shown(col.iloc[bad])}, a third label besides "
                f"{positive_label!r} (default) and {others[0]!r} (repaid)"
            )
        return (text == positive_label).astype(np.int64)
    values = col.to_numpy(dtype=object)
    for i, v in enumerate(values):
        ok = not isinstance(v, bool | np.bool_ | str) and isinstance(v, int | float | np.number)
        if not ok or float(v) not in (0.0, 1.0):
            hint = (
                "; if the labels are text, name the one meaning default with --positive-label"
                if isinstance(v, str)
                else ""
            )
            raise OutcomeFileError(
                f"{where}: row {i} holds {_shown(v)}; an outcome is 0 (repaid) or 1 (default){hint}"
            )
    return values.astype(np.float64).astype(np.int64)


def _observed(col: pd.Series, where: str) -> list[dt.datetime]:
    row = _first_missing(col)
    if row is not None:
        raise OutcomeFileError(f"{where}: row {row} has no observation time")
    if pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
        # Numbers would be read as nanoseconds since 1970: refuse them rather than guess.
        raise OutcomeFileError(
            f"{where}: row 0 holds {_shown(col.iloc[0])}, not a date or an ISO 8601 time"
        )
    parsed = pd.to_datetime(col, utc=True, errors="coerce", format="ISO8601")
    bad = parsed.isna().to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        raise OutcomeFileError(
            f"{where}: row {i} holds {_shown(col.iloc[i])}, not a date or an ISO 8601 time"
        )
    return list(parsed.dt.to_pydatetime())


def read_outcome_file(
    path: str | os.PathLike,
    *,
    id_column: str,
    label_column: str,
    observed_at_column: str | None = None,
    positive_label: str | None = None,
    now: dt.datetime | None = None,
    source: str = "file",
) -> list[OutcomeRow]:
    """One OutcomeRow per row of the file (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise OutcomeFileError(f"outcome file {path} not found")
    try:
        frame = read_table(path)
    except TrainingDataError as exc:
        raise OutcomeFileError(str(exc).replace("training data file", "outcome file")) from None
    wanted = [("--id-column", id_column), ("--label-column", label_column)]
    if observed_at_column:
        wanted.append(("--observed-at-column", observed_at_column))
    for option, name in wanted:
        if name not in frame.columns:
            columns = ", ".join(map(str, frame.columns[:20]))
            raise OutcomeFileError(
                f"{path}: no column {name!r} ({option}); the file has: {columns}"
                + (" ..." if len(frame.columns) > 20 else "")
            )
    ids_col = frame[id_column]
    row = _first_missing(ids_col)
    if row is not None:
        raise OutcomeFileError(f"{path}: id column {id_column!r}: row {row} has no id")
    try:
        ids = ids_as_text(ids_col, f"{path}: id column {id_column!r}")
    except TrainingDataError as exc:
        raise OutcomeFileError(str(exc)) from None
    labels = _labels(frame[label_column], f"{path}: label column {label_column!r}", positive_label)
    if observed_at_column:
        observed = _observed(
            frame[observed_at_column], f"{path}: observed-at column {observed_at_column!r}"
        )
    else:
        when = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
        observed = [when] * len(frame)
    return [
        OutcomeRow(str(app_id), int(y), at, source)
        for app_id, y, at in zip(ids, labels, observed, strict=True)
    ]
