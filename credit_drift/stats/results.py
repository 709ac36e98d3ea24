"""The one declared shape of a per-feature drift result.

Every place that holds per-feature results derives from `FEATURE_RESULT_COLUMNS`: the frame the
policy returns (`policy.WindowDrift.results`), the `feature_drift_results` table
(`storage/schema.py`), its reads and writes, the Dagster tables and the reports. Only the frozen
initial migration spells the columns out again, as migrations must.
"""

from dataclasses import dataclass
from typing import Literal

import pandas as pd

ColumnType = Literal["text", "float", "int", "bool", "text_list"]


@dataclass(frozen=True)
class ResultColumn:
    """One column of a per-feature result. `length` bounds a text column in the database;
    `comment` is the database column's comment, where it has one."""

    name: str
    type: ColumnType
    doc: str
    nullable: bool = True
    length: int | None = None
    comment: str | None = None


FEATURE_RESULT_COLUMNS: tuple[ResultColumn, ...] = (
    ResultColumn("feature", "text", "model feature name", nullable=False, length=256),
    ResultColumn("kind", "text", "numeric or categorical", nullable=False, length=16),
    ResultColumn("test", "text", "ks (numeric) or chi2 (categorical)", nullable=False, length=32),
    ResultColumn("statistic", "float", "KS D, or the chi-square statistic"),
    ResultColumn("p_value", "float", "the test's p-value, as scipy computes it"),
    ResultColumn("p_adjusted", "float", "p-value after the policy's correction (BH or none)"),
    ResultColumn("effect_size", "float", "the policy's effect metric for this feature"),
    ResultColumn("effect_metric", "text", "which metric effect_size is", length=32),
    ResultColumn("drifted", "bool", "the policy's verdict", nullable=False),
    ResultColumn(
        "reason",
        "text",
        "why it drifted (distribution, nan_share, unseen_categories), comma-separated",
        length=32,
        comment="why it drifted, '' if not",
    ),
    ResultColumn("psi", "float", "population stability index over reference deciles"),
    ResultColumn("wasserstein_norm", "float", "Wasserstein-1 / reference standard deviation"),
    ResultColumn("ref_nan_share", "float", "share of missing values in the reference"),
    ResultColumn("cur_nan_share", "float", "share of missing values in the window"),
    ResultColumn("unseen_categories", "text_list", "categories the reference never had"),
    ResultColumn("unseen_share", "float", "share of the window's rows in unseen categories"),
    ResultColumn("importance", "float", "the model's gain importance of the feature"),
    ResultColumn("n_current", "int", "non-missing window values tested"),
)

#: The column names, in the declared order.
FEATURE_RESULT_NAMES: tuple[str, ...] = tuple(c.name for c in FEATURE_RESULT_COLUMNS)

#: The columns shown when a few drifted features are listed (reports, UI tables, alerts).
SUMMARY_NAMES: tuple[str, ...] = (
    "feature",
    "test",
    "statistic",
    "p_value",
    "p_adjusted",
    "effect_size",
    "drifted",
    "reason",
    "importance",
)


def names_of(kind: ColumnType) -> tuple[str, ...]:
    """The names of the columns of one type (e.g. every float column), in declared order."""
    return tuple(c.name for c in FEATURE_RESULT_COLUMNS if c.type == kind)


def top_drifted(results: pd.DataFrame, n: int) -> pd.DataFrame:
    """The n most drifted features (`SUMMARY_NAMES` columns that are present): drifted first,
    then by statistic, largest first."""
    if results.empty:
        return pd.DataFrame(columns=list(SUMMARY_NAMES))
    columns = [c for c in SUMMARY_NAMES if c in results.columns]
    ordered = results.sort_values(
        ["drifted", "statistic"], ascending=[False, False], na_position="last"
    )
    return ordered.loc[:, columns].head(n).reset_index(drop=True)
