"""Dagster metadata from the pipeline's values: typed numbers the UI plots across partitions,
tables, inlined figures. Numbers shown to people are rounded; the database keeps them exact."""

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd

#: Decimals kept in the UI for percentages and other floats (53.94, not 53.93794749403341).
DISPLAY_DECIMALS = 2
#: p-values and other small numbers keep their significant digits instead.
SIGNIFICANT_DIGITS = 4


def plain(value: Any) -> Any:
    """A JSON/Dagster-friendly scalar: numpy types unwrapped, NaN as None, lists as text."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (list, tuple, np.ndarray)):
        return ", ".join(str(v) for v in value)
    return value


def rounded(value: float) -> float:
    """`DISPLAY_DECIMALS` decimals, or `SIGNIFICANT_DIGITS` significant digits below 0.01 (a
    p-value of 3e-7 stays 3e-7, not 0.0)."""
    if value == 0 or not math.isfinite(value):
        return value
    if abs(value) >= 10**-DISPLAY_DECIMALS:
        return round(value, DISPLAY_DECIMALS)
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")


def floats(**values: float | None) -> dict[str, dg.MetadataValue]:
    """Float metadata for the values that exist, rounded for display: an empty day has no drift
    percentage, and the UI should show nothing rather than a fake 0."""
    return {
        name: dg.MetadataValue.float(rounded(float(value)))
        for name, value in values.items()
        if value is not None and not (isinstance(value, float) and math.isnan(value))
    }


def table(frame: pd.DataFrame) -> dg.TableMetadataValue:
    """A DataFrame as Dagster table metadata, floats rounded for display."""
    columns = []
    for name, dtype in frame.dtypes.items():
        if pd.api.types.is_bool_dtype(dtype):
            kind = "bool"
        elif pd.api.types.is_float_dtype(dtype):
            kind = "float"
        elif pd.api.types.is_integer_dtype(dtype):
            kind = "int"
        else:
            kind = "string"
        columns.append(dg.TableColumn(str(name), kind))

    def cell(value: Any) -> Any:
        value = plain(value)
        return rounded(value) if isinstance(value, float) else value

    records = [
        dg.TableRecord({k: cell(v) for k, v in row.items()})
        for row in frame.to_dict(orient="records")
    ]
    return dg.MetadataValue.table(records, schema=dg.TableSchema(columns=columns))


def figures(paths: Mapping[str, Path]) -> dict[str, dg.MetadataValue]:
    """Each figure inlined in the UI (markdown) plus its path."""
    from credit_drift.reports.plots import figure_markdown

    out: dict[str, dg.MetadataValue] = {}
    for name, path in paths.items():
        out[name] = dg.MetadataValue.md(figure_markdown(path))
        out[f"{name}_path"] = dg.MetadataValue.path(str(path))
    return out


def by_day(values: Mapping[str, Any]) -> dg.MetadataValue:
    """A {day: value} mapping as JSON metadata (a check's result over a multi-day run)."""
    return dg.MetadataValue.json({day: _json_value(v) for day, v in values.items()})


def _json_value(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    value = plain(value)
    return rounded(value) if isinstance(value, float) else value


def per_day(name: str, values: Mapping[str, Any]) -> dict[str, dg.MetadataValue]:
    """Check metadata `name` for the run's days: the value itself when the run has one day (a
    float, a list, a text), a {day: value} JSON when it has several. A missing single value
    (None, NaN) is left out."""
    if len(values) != 1:
        return {name: by_day(values)}
    (value,) = values.values()
    if isinstance(value, (list, tuple)):
        return {name: dg.MetadataValue.json([plain(v) for v in value])}
    if isinstance(value, str):
        return {name: dg.MetadataValue.text(value)}
    return floats(**{name: value})
