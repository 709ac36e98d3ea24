"""Reading a training set (the synthetic one or the user's own CSV/Parquet) into a validated
`TrainingData`, and reading a pool of applications in a model's feature order.

Every failure is a `TrainingDataError` whose message names the file and the offending column and
says what to do. Columns: the target (binary 0/1, or two labels one of which is named as the
positive one, e.g. good/bad with `positive_label="bad"`), an optional id column (not a feature;
ignored when the file has no such column), the categorical columns (declared by name, or
`"auto"`: every column that is not numeric; `FeatureSpec(kind="categorical")` with their sorted
distinct non-missing values as strings) and every other column, which must be numeric (bools
allowed).
"""

import math
import numbers
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from credit_drift.errors import CreditDriftError
from credit_drift.features import FeatureSchema, FeatureSpec, category_text
from credit_drift.settings import CATEGORICAL_AUTO

CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
#: Distinct target values an error message shows.
_SHOW_VALUES = 10


class TrainingDataError(CreditDriftError, ValueError):
    """The training (or pool) file cannot be used; the message names the file and column."""


@dataclass(frozen=True)
class TrainingData:
    """Features `X` (schema order; numeric columns float64, categorical columns as read),
    target `y` (int 0/1), ids (None when the file has no id column) and the feature schema."""

    X: pd.DataFrame
    y: pd.Series
    ids: pd.Series | None
    schema: FeatureSchema
    source: Path | None = None

    def __post_init__(self) -> None:
        if len(self.X) != len(self.y):
            raise ValueError(f"X has {len(self.X)} rows but y has {len(self.y)}")
        if list(self.X.columns) != self.schema.names:
            raise ValueError("X columns must be the schema's features, in schema order")


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """A CSV or Parquet file (chosen by suffix) as a DataFrame, or a `TrainingDataError`."""
    path = Path(path)
    name = path.name.lower()
    if not path.exists():
        raise TrainingDataError(f"training data file {path} not found")
    if path.is_dir():
        raise TrainingDataError(f"{path} is a directory, expected a CSV or Parquet file")
    try:
        if name.endswith(CSV_SUFFIXES):
            frame = pd.read_csv(path)
        elif name.endswith(PARQUET_SUFFIXES):
            frame = pd.read_parquet(path)
        else:
            raise TrainingDataError(
                f"{path}: unsupported file type {path.suffix!r}; use one of "
                f"{', '.join(CSV_SUFFIXES + PARQUET_SUFFIXES)}"
            )
    except pd.errors.EmptyDataError as exc:
        raise TrainingDataError(f"{path} is empty (no header, no rows)") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        if isinstance(exc, TrainingDataError):
            raise
        raise TrainingDataError(f"{path} cannot be read: {exc}") from exc
    if len(frame) == 0:
        raise TrainingDataError(f"{path} has a header but no rows")
    duplicated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
    if duplicated:
        raise TrainingDataError(f"{path} has duplicated columns: {_names(duplicated)}")
    frame.columns = [str(c) for c in frame.columns]
    return frame


def load_training_data(
    path: str | os.PathLike,
    target_column: str,
    id_column: str | None,
    categorical_columns: Sequence[str] | str = (),
    positive_label: str | None = None,
) -> TrainingData:
    """Read and validate a training set (see the module docstring for the rules).

    categorical_columns: names, or "auto" (every non-numeric feature column).
    positive_label: when the target holds labels, the one that means default (its rows get
        y = 1, the other label's y = 0); None or "" for a 0/1 target."""
    path = Path(path)
    frame = read_table(path)
    columns = list(frame.columns)

    if target_column not in frame.columns:
        raise TrainingDataError(
            f"{path} has no target column {target_column!r} (columns: {_names(columns)}); "
            "set CREDIT_DRIFT_TARGET_COLUMN (or --target) to the name of your default column"
        )
    if positive_label:
        y = _labelled_target(frame[target_column], target_column, positive_label, path)
    else:
        y = _binary_target(frame[target_column], target_column, path)

    if isinstance(categorical_columns, str):
        if categorical_columns != CATEGORICAL_AUTO:
            raise ValueError(f"categorical_columns must be names or {CATEGORICAL_AUTO!r}")
        categorical = [
            c
            for c in columns
            if c not in (target_column, id_column) and _as_float(frame[c]) is None
        ]
    else:
        categorical = list(dict.fromkeys(categorical_columns))
    for name in categorical:
        if name == target_column or (id_column and name == id_column):
            raise TrainingDataError(
                f"column {name!r} is declared categorical but is the "
                f"{'target' if name == target_column else 'id'} column"
            )
    absent = [c for c in categorical if c not in frame.columns]
    if absent:
        raise TrainingDataError(
            f"{path} lacks the declared categorical column(s) {_names(absent)} "
            f"(columns: {_names(columns)}); fix CREDIT_DRIFT_CATEGORICAL_COLUMNS"
        )

    ids = frame[id_column].reset_index(drop=True) if id_column in frame.columns else None
    feature_names = [c for c in columns if c not in (target_column, id_column)]
    if not feature_names:
        raise TrainingDataError(
            f"{path} has no feature columns besides the target {target_column!r}"
            + (f" and the id {id_column!r}" if ids is not None else "")
        )

    specs: list[FeatureSpec] = []
    data: dict[str, pd.Series] = {}
    bad_types: list[str] = []
    for name in feature_names:
        col = frame[name]
        if name in categorical:
            text = col.map(lambda v: None if _missing(v) else category_text(v))
            categories = tuple(sorted(set(text.dropna())))
            if not categories:
                raise TrainingDataError(
                    f"{path}: declared categorical column {name!r} has only missing values"
                )
            specs.append(FeatureSpec(name, "categorical", categories))
            data[name] = col
            continue
        numeric = _as_float(col)
        if numeric is None:
            bad_types.append(name)
            continue
        infinite = np.isinf(numeric)
        if infinite.any():
            raise TrainingDataError(
                f"{path}: column {name!r} has {int(infinite.sum())} infinite value(s) "
                f"(first at row {int(np.argmax(infinite))}); replace them with a finite value "
                "or leave them empty (missing)"
            )
        specs.append(FeatureSpec(name))
        data[name] = pd.Series(numeric, name=name)
    if bad_types:
        examples = ", ".join(f"{n!r} = {_example_text(frame[n])}" for n in bad_types[:3])
        declared = [c for c in categorical if c in feature_names]
        raise TrainingDataError(
            f"{path}: {len(bad_types)} column(s) are not numeric (e.g. {examples}). To use them "
            "as categorical features, set CREDIT_DRIFT_CATEGORICAL_COLUMNS="
            f"{','.join(declared + bad_types)} (or --categorical with that list, or "
            "--categorical auto for every non-numeric column); or drop them from the file"
        )
    schema = FeatureSchema(tuple(specs))
    X = pd.DataFrame({n: data[n].reset_index(drop=True) for n in schema.names})
    return TrainingData(X=X, y=y, ids=ids, schema=schema, source=path)


def load_pool(path: str | os.PathLike, schema: FeatureSchema) -> pd.DataFrame:
    """Applications from a CSV/Parquet file as a DataFrame of the schema's features, in schema
    order (other columns, e.g. the id and the target, are dropped)."""
    path = Path(path)
    frame = read_table(path)
    missing = [n for n in schema.names if n not in frame.columns]
    if missing:
        raise TrainingDataError(
            f"{path} lacks {len(missing)} of the model's features: {_names(missing)}"
        )
    out = {}
    for spec in schema.features:
        col = frame[spec.name].reset_index(drop=True)
        if spec.kind == "numeric":
            numeric = _as_float(col)
            if numeric is None:
                raise TrainingDataError(
                    f"{path}: column {spec.name!r} is not numeric "
                    f"(e.g. {_example_text(col)}) but the model expects a number"
                )
            col = pd.Series(numeric, name=spec.name)
        out[spec.name] = col
    return pd.DataFrame(out)


def load_pool_ids(path: str | os.PathLike, id_column: str | None) -> np.ndarray | None:
    """The application ids of a pool file (its `id_column`, e.g. SK_ID_CURR), as text, row by
    row as `load_pool` reads them (object array, None where missing); None when the file has
    no such column. Only that column is read."""
    path = Path(path)
    if not id_column:
        return None
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        import pyarrow.parquet as pq

        if id_column not in pq.read_schema(path).names:
            return None
        col = pd.read_parquet(path, columns=[id_column])[id_column]
    else:
        header = pd.read_csv(path, nrows=0).columns
        if id_column not in header:
            return None
        col = pd.read_csv(path, usecols=[id_column])[id_column]
    return ids_as_text(col, f"{path}: id column {id_column!r}")


def ids_as_text(col: pd.Series, where: str) -> np.ndarray:
    """Ids as text (object array, None where missing): integers as decimal text, floats only
    when integral (a CSV integer column with a gap reads as float), strings as they are."""
    values = col.to_numpy(dtype=object)
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            out[i] = None
        elif isinstance(v, bool | np.bool_):
            raise TrainingDataError(f"{where}: row {i} holds the boolean {v}, not an id")
        elif isinstance(v, numbers.Integral):
            out[i] = str(int(v))
        elif isinstance(v, numbers.Real):
            if not float(v).is_integer():
                raise TrainingDataError(f"{where}: row {i} holds {v}, not an integer id")
            out[i] = str(int(v))
        else:
            out[i] = str(v)
    return out


# -- helpers -----------------------------------------------------------------------------------
def _binary_target(col: pd.Series, name: str, path: Path) -> pd.Series:
    missing = col.isna()
    if missing.any():
        raise TrainingDataError(
            f"{path}: target column {name!r} has {int(missing.sum())} missing value(s) "
            f"(first at row {int(np.argmax(missing.to_numpy()))}); every training row needs 0 or 1"
        )
    values = pd.unique(col)
    numeric = _as_float(col)
    ok = numeric is not None and np.isin(numeric, (0.0, 1.0)).all()
    if not ok:
        shown = sorted(map(repr, values[:10].tolist()))
        hint = ""
        if len(values) == 2:
            hint = (
                "; if one of these labels means default, name it with --positive-label "
                "(or CREDIT_DRIFT_POSITIVE_LABEL)"
            )
        raise TrainingDataError(
            f"{path}: target column {name!r} must be binary 0/1 (1 = default); it has "
            f"{len(values)} distinct value(s), e.g. {', '.join(shown)}{hint}"
        )
    y = pd.Series(numeric.astype(np.int64), name=name)
    if y.nunique() < 2:
        raise TrainingDataError(
            f"{path}: target column {name!r} has only the value {int(y.iloc[0])}; "
            "training needs both defaults (1) and repaid loans (0)"
        )
    return y


def _labelled_target(col: pd.Series, name: str, positive: str, path: Path) -> pd.Series:
    """y = 1 where the target's text is `positive`, 0 where it is the one other label."""
    missing = col.map(_missing).to_numpy(dtype=bool)
    if missing.any():
        raise TrainingDataError(
            f"{path}: target column {name!r} has {int(missing.sum())} missing value(s) "
            f"(first at row {int(np.argmax(missing))}); every training row needs a label"
        )
    text = col.map(category_text)
    labels = sorted(set(text))
    if positive not in labels:
        raise TrainingDataError(
            f"{path}: the positive label {positive!r} (CREDIT_DRIFT_POSITIVE_LABEL or "
            f"--positive-label) is not a value of the target column {name!r}, whose values "
            f"are {_names(labels[:_SHOW_VALUES])}{' ...' if len(labels) > _SHOW_VALUES else ''}"
        )
    if len(labels) != 2:
        raise TrainingDataError(
            f"{path}: target column {name!r} must hold exactly two labels (one meaning "
            f"default); it has {len(labels)}: {_names(labels[:_SHOW_VALUES])}"
            f"{' ...' if len(labels) > _SHOW_VALUES else ''}"
        )
    return pd.Series((text == positive).to_numpy(np.int64), name=name)


def _as_float(col: pd.Series) -> np.ndarray | None:
    """float64 values of a numeric or boolean column (missing -> NaN), or None if not numeric."""
    dtype = col.dtype
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_complex_dtype(dtype):
            return None
        return col.to_numpy(dtype=np.float64, na_value=np.nan)
    if pd.api.types.is_object_dtype(dtype) and col.map(_missing_or_bool).all():
        # A column of True/False with missing values is read as object.
        return col.map(lambda v: np.nan if _missing(v) else float(v)).to_numpy(np.float64)
    return None


def _missing_or_bool(value) -> bool:
    return _missing(value) or isinstance(value, bool | np.bool_)


def _missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))


def _example_text(col: pd.Series) -> str:
    for v in col:
        if not _missing(v):
            try:
                float(v)
            except (TypeError, ValueError):
                return repr(v)
    return repr(col.dropna().iloc[0]) if col.notna().any() else "only missing values"


def _names(names: Sequence[str]) -> str:
    # Every name: a message listing columns must be usable as it is (searched, pasted).
    return ", ".join(repr(n) for n in names)
