"""Drift transforms: what a batch of applications looks like under each kind of drift.

Pure (numpy/pandas) and seeded: `apply_drift(frame, kind, intensity, rng)` returns a drifted
copy of `frame` (never mutating it). Intensity is always in [0, 1] and 0 returns the batch
unchanged, value for value.

Two families. The **generic kinds** work on any schema; they touch every column of the right
type, or the batch's `columns` (names), or a fixed random `column_share` of them (the same
columns for every batch of a scenario, so a drift can grow day after day on the same features):

- ``shift``: numeric columns move by ``intensity`` x their spread (the standard deviation of the
  population the traffic is drawn from, `ColumnStats`): 0.5 is half a standard deviation.
- ``scale``: numeric columns spread out around their mean by a factor ``1 + intensity``.
- ``category_mix``: text (categorical) and true/false columns: a share ``intensity`` of the
  rows takes the column's rarest value, so the mix of categories changes.
- ``missing``: a share ``intensity`` of each column's values goes missing.

Numeric columns with at most two distinct values (flags, one-hot columns) are not shifted or
scaled. The **Home-Credit kinds** reproduce the reference notebook's scenario on the synthetic
Home-Credit-like data; their columns are found by name patterns (`DriftConfig`), and on another
schema they may match nothing (`credit-drift simulate` warns when a batch changes nothing).
What intensity means, per kind:

- ``clean``: no drift (intensity must be 0).
- ``gradual``: inflation and ageing. Every money amount but incomes (credit, annuity, goods
  price, and the credit history's amounts) is multiplied by ``1 + inflation_per_intensity * i``
  (default 2.0: i = 0.1 is +20%, i = 0.3 is +60%); incomes are not (wages lag prices).
  Applicants are ``ageing_years_per_intensity * i`` years older (default 20: i = 0.1 is two
  years). Ratio features derived from these columns are recomputed from their parts. The
  magnitudes are strong on purpose: with the notebook's 50 applications a day, a +10% shift is
  invisible to any test; with them the drifted share rises with intensity and plateaus below
  the ALERT line (about 17% of the 419 features at 0.3 under the default policy, a WARNING;
  measured in benchmarks/README.md#detection).
- ``sudden``: a new customer segment. A share ``i`` of the batch (exactly ``round(i * n)``
  rows, chosen at random) is replaced by applicants of another segment: young (19-26), low
  income, small loans, no credit-bureau file (every bureau column and enquiry count NaN), no
  building information, a recent and thin credit history, single, no car or property, living
  in the capital, another occupation / organization / income type / education / contract type
  (one-hot columns), and lower, more often missing external scores. Many correlated features
  move at once: at i = 0.5 about 53-54% of the 419 features drift under the default policy
  (the product's ALERT line is 30%; measured in benchmarks/README.md#detection).
- ``feature_shift``: an external score provider changes its formula. Every ``EXT_SOURCE_*``
  column becomes ``x ** (1 + feature_shift_power_per_intensity * i)`` (same ranks, lower
  scores; i = 0.5 squares them with the default power).
- ``correlation_break``: within a share ``i`` of the rows, each column of
  `DriftConfig.correlation_break_columns` is permuted independently (its values are shuffled
  among those rows). Every column keeps exactly the same multiset of values (marginals are
  unchanged: sorted values are equal), but its relation to the other columns is broken; ratio
  features are deliberately *not* recomputed, since that would change their marginals.
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from credit_drift.errors import CreditDriftError

DriftKind = Literal[
    "clean",
    "shift",
    "scale",
    "category_mix",
    "missing",
    "gradual",
    "sudden",
    "feature_shift",
    "correlation_break",
]
#: Kinds that work on any schema (and accept `columns` / `column_share`).
GENERIC_KINDS: tuple[str, ...] = ("shift", "scale", "category_mix", "missing")
#: Kinds written for the Home-Credit columns of the synthetic data (the notebook's scenario).
HOME_CREDIT_KINDS: tuple[str, ...] = ("gradual", "sudden", "feature_shift", "correlation_break")
DRIFT_KINDS: tuple[str, ...] = ("clean", *GENERIC_KINDS, *HOME_CREDIT_KINDS)

DAYS_PER_YEAR = 365.25


class DriftError(CreditDriftError, ValueError):
    """A drift cannot be applied as asked; the message names the kind, intensity or column."""


@dataclass(frozen=True)
class RatioFeature:
    """A derived column ``name = numerator / denominator`` (recomputed when a part drifts)."""

    name: str
    numerator: str
    denominator: str


@dataclass(frozen=True)
class OneHotGroup:
    """One-hot columns sharing a prefix (one category each). The new segment gets the first
    `preferred` category present among them, else the group's rarest category in the batch."""

    prefix: str
    preferred: tuple[str, ...] = ()


@dataclass(frozen=True)
class DriftConfig:
    """Which columns each drift kind touches (regular expressions over column names) and how
    far intensity 1 moves them. Defaults follow the Home Credit column conventions."""

    # -- gradual: inflation and ageing --------------------------------------------------------
    #: Every money amount but incomes (wages lag prices) and AMT_REQ_* (enquiry counts): the
    #: application's credit, annuity and goods price, and the credit history's amounts.
    inflated_columns: tuple[str, ...] = (r"AMT_(?!INCOME|REQ_)",)
    #: Price increase per unit of intensity (2.0: intensity 0.1 = +20%, 0.3 = +60%). Strong on
    #: purpose: at the notebook's 50 applications a day, a +10% shift is invisible to any test.
    inflation_per_intensity: float = 2.0
    #: Column holding the applicant's age as negative days (Home Credit's DAYS_BIRTH).
    age_column: str = "DAYS_BIRTH"
    #: Years added to every applicant's age per unit of intensity (intensity 0.1 = 2 years).
    ageing_years_per_intensity: float = 20.0
    #: Derived ratio columns recomputed from their parts whenever a part drifts (the Home
    #: Credit kernel's definitions, as the synthetic generator computes them).
    ratios: tuple[RatioFeature, ...] = (
        RatioFeature("DAYS_EMPLOYED_PERC", "DAYS_EMPLOYED", "DAYS_BIRTH"),
        RatioFeature("INCOME_CREDIT_PERC", "AMT_INCOME_TOTAL", "AMT_CREDIT"),
        RatioFeature("INCOME_PER_PERSON", "AMT_INCOME_TOTAL", "CNT_FAM_MEMBERS"),
        RatioFeature("ANNUITY_INCOME_PERC", "AMT_ANNUITY", "AMT_INCOME_TOTAL"),
        RatioFeature("PAYMENT_RATE", "AMT_ANNUITY", "AMT_CREDIT"),
    )
    #: Placeholder values that mean "not applicable" in a ratio's part (Home Credit codes
    #: pensioners' DAYS_EMPLOYED as 365243): the ratio is NaN for them, as in the kernel.
    ratio_sentinels: tuple[tuple[str, float], ...] = (("DAYS_EMPLOYED", 365243.0),)

    # -- sudden: the new customer segment -----------------------------------------------------
    #: Age range of the new segment, in years.
    segment_age_years: tuple[float, float] = (19.0, 26.0)
    #: Days employed of the new segment (a recent first job), as a (low, high) range of days.
    segment_employed_days: tuple[float, float] = (30.0, 700.0)
    employed_column: str = "DAYS_EMPLOYED"
    income_column: str = "AMT_INCOME_TOTAL"
    #: The segment's income as a share of the replaced applicant's income.
    segment_income_factor: float = 0.35
    #: The segment's loan and history amounts (`segment_amount_columns`) as a share.
    segment_amount_factor: float = 0.25
    segment_amount_columns: tuple[str, ...] = (r"AMT_(?!INCOME|REQ_)",)
    #: Columns that become NaN for the segment: no credit-bureau file at all (no bureau credits,
    #: no bureau enquiries) and no building information (young people living with parents).
    segment_missing_columns: tuple[str, ...] = (
        r"^BURO_",
        r"^ACTIVE_",
        r"^CLOSED_",
        r"^AMT_REQ_CREDIT_BUREAU_",
        r"_(AVG|MODE|MEDI)$",
    )
    #: History columns counted in days before the application (negative): the segment's history
    #: is recent, so they are multiplied by this factor (closer to 0).
    segment_history_days_columns: tuple[str, ...] = (
        r"DAYS_(?!BIRTH$|EMPLOYED$)",
        r"MONTHS_BALANCE",
    )
    segment_history_days_factor: float = 0.15
    #: Count columns of the segment's history (few past loans / payments), multiplied.
    segment_count_columns: tuple[str, ...] = (
        r"(^|_)CNT_(?!FAM_MEMBERS$|CHILDREN$)",
        r"_COUNT$",
        r"_SIZE$",
    )
    segment_count_factor: float = 0.3
    segment_one_hots: tuple[OneHotGroup, ...] = (
        OneHotGroup("OCCUPATION_TYPE_", ("OCCUPATION_TYPE_Low-skill Laborers",)),
        OneHotGroup("ORGANIZATION_TYPE_", ("ORGANIZATION_TYPE_Self-employed",)),
        OneHotGroup("NAME_INCOME_TYPE_", ("NAME_INCOME_TYPE_Working",)),
        OneHotGroup("NAME_EDUCATION_TYPE_", ("NAME_EDUCATION_TYPE_Lower secondary",)),
        OneHotGroup("NAME_FAMILY_STATUS_", ("NAME_FAMILY_STATUS_Single / not married",)),
        OneHotGroup("NAME_HOUSING_TYPE_", ("NAME_HOUSING_TYPE_With parents",)),
        OneHotGroup("NAME_CONTRACT_TYPE_", ("NAME_CONTRACT_TYPE_Revolving loans",)),
        OneHotGroup("CODE_GENDER_", ("CODE_GENDER_M",)),
        OneHotGroup("WEEKDAY_APPR_PROCESS_START_", ("WEEKDAY_APPR_PROCESS_START_SUNDAY",)),
        OneHotGroup("HOUSETYPE_MODE_", ("HOUSETYPE_MODE_nan",)),
        OneHotGroup("WALLSMATERIAL_MODE_", ("WALLSMATERIAL_MODE_nan",)),
        OneHotGroup("FONDKAPREMONT_MODE_", ("FONDKAPREMONT_MODE_nan",)),
        OneHotGroup("EMERGENCYSTATE_MODE_", ("EMERGENCYSTATE_MODE_nan",)),
    )
    #: Columns set to one value for the whole segment: single, no children, no car, no
    #: property, a phone at work, an e-mail address but no home phone, registered in another
    #: city than where they live, in the capital (the most populated region, rated 1).
    segment_fixed_values: tuple[tuple[str, float], ...] = (
        ("FLAG_OWN_CAR", 0.0),
        ("OWN_CAR_AGE", float("nan")),
        ("FLAG_OWN_REALTY", 0.0),
        ("FLAG_EMP_PHONE", 1.0),
        ("FLAG_EMAIL", 1.0),
        ("FLAG_PHONE", 0.0),
        ("REG_CITY_NOT_LIVE_CITY", 1.0),
        ("CNT_CHILDREN", 0.0),
        ("CNT_FAM_MEMBERS", 1.0),
        ("REGION_POPULATION_RELATIVE", 0.072508),
        ("REGION_RATING_CLIENT", 1.0),
        ("REGION_RATING_CLIENT_W_CITY", 1.0),
    )
    #: Integer columns drawn uniformly in [low, high] for the segment (they apply online, in
    #: the evening).
    segment_integer_ranges: tuple[tuple[str, int, int], ...] = (
        ("HOUR_APPR_PROCESS_START", 18, 23),
    )
    #: Beta(a, b) distribution of the segment's external scores (training data: about 0.5).
    segment_ext_source_beta: tuple[float, float] = (2.0, 5.0)
    #: Share of the segment's external scores that are missing.
    segment_ext_source_missing: float = 0.4

    # -- feature shift --------------------------------------------------------------------------
    ext_source_columns: tuple[str, ...] = (r"^EXT_SOURCE_\d+$",)
    #: Exponent added at intensity 1: x -> x ** (1 + power * intensity).
    feature_shift_power_per_intensity: float = 2.0

    # -- correlation break ---------------------------------------------------------------------
    #: Columns shuffled (each independently) among the selected rows. One per correlated group:
    #: AMT_GOODS_PRICE vs AMT_CREDIT (r ~ 0.99), EXT_SOURCE_3 and EXT_SOURCE_1 vs EXT_SOURCE_2,
    #: AMT_ANNUITY vs AMT_CREDIT, DAYS_EMPLOYED vs DAYS_BIRTH.
    correlation_break_columns: tuple[str, ...] = (
        "AMT_GOODS_PRICE",
        "AMT_ANNUITY",
        "EXT_SOURCE_1",
        "EXT_SOURCE_3",
        "DAYS_EMPLOYED",
    )


DEFAULT_DRIFT_CONFIG = DriftConfig()


def matching_columns(columns: Sequence[str], patterns: Sequence[str]) -> list[str]:
    """Columns (in frame order) whose name matches any of the regular expressions."""
    compiled = [re.compile(p) for p in patterns]
    return [c for c in columns if any(p.search(c) for p in compiled)]


def check_intensity(kind: str, intensity: float) -> float:
    if kind not in DRIFT_KINDS:
        raise DriftError(f"unknown drift kind {kind!r}; choose one of {', '.join(DRIFT_KINDS)}")
    try:
        value = float(intensity)
    except (TypeError, ValueError):
        raise DriftError(f"{kind}: intensity {intensity!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise DriftError(f"{kind}: intensity {value} must be in [0, 1]")
    if kind == "clean" and value != 0.0:
        raise DriftError(f"clean batches have intensity 0, got {value}")
    return value


@dataclass(frozen=True)
class ColumnStats:
    """What the generic kinds need to know of the population the traffic comes from: each
    numeric column's mean and standard deviation (the spread a `shift` is a fraction of), its
    number of distinct values, and each text column's rarest category."""

    mean: Mapping[str, float]
    std: Mapping[str, float]
    n_distinct: Mapping[str, int]
    rarest: Mapping[str, Any]

    @classmethod
    def of(cls, frame: pd.DataFrame) -> "ColumnStats":
        mean, std, distinct, rarest = {}, {}, {}, {}
        for column in frame.columns:
            if _is_numeric(frame, column):
                values = _values(frame, column)
                finite = values[np.isfinite(values)]
                mean[column] = float(finite.mean()) if finite.size else 0.0
                std[column] = float(finite.std()) if finite.size else 0.0
                distinct[column] = int(np.unique(finite).size)
            else:
                counts = frame[column].dropna().value_counts()
                if len(counts):
                    # Ties broken by the category's text, so the choice never depends on order.
                    least = counts[counts == counts.min()].index
                    rarest[column] = sorted(least, key=str)[0]
        return cls(mean, std, distinct, rarest)


def generic_columns(
    frame: pd.DataFrame,
    kind: str,
    stats: ColumnStats,
    columns: Sequence[str] | None = None,
    column_share: float | None = None,
) -> list[str]:
    """The columns a generic kind changes in `frame` (see the module docstring)."""
    if kind in ("shift", "scale"):
        eligible = [
            c
            for c in frame.columns
            if _is_numeric(frame, c) and stats.n_distinct.get(c, 0) > 2 and stats.std.get(c, 0) > 0
        ]
        what = "numeric columns with more than two distinct values"
    elif kind == "category_mix":
        eligible = [c for c in frame.columns if not _is_numeric(frame, c) and c in stats.rarest]
        what = "text (categorical) and true/false columns"
    else:
        eligible = list(frame.columns)
        what = "columns"
    if columns is not None:
        absent = [c for c in columns if c not in frame.columns]
        if absent:
            raise DriftError(f"{kind}: no column(s) {', '.join(map(repr, absent))} in the data")
        wrong = [c for c in columns if c not in eligible]
        if wrong:
            raise DriftError(f"{kind} applies to {what}; not to {', '.join(map(repr, wrong))}")
        eligible = [c for c in eligible if c in set(columns)]
    if column_share is not None and eligible:
        k = max(1, int(round(column_share * len(eligible))))
        # A fixed draw: every batch of a scenario drifts the same columns.
        order = np.random.default_rng(len(eligible)).permutation(len(eligible))
        eligible = [eligible[i] for i in sorted(order[:k])]
    return eligible


def apply_drift(
    frame: pd.DataFrame,
    kind: str,
    intensity: float,
    rng: np.random.Generator,
    config: DriftConfig = DEFAULT_DRIFT_CONFIG,
    *,
    columns: Sequence[str] | None = None,
    column_share: float | None = None,
    stats: ColumnStats | None = None,
) -> pd.DataFrame:
    """A drifted copy of `frame` (see the module docstring for what intensity means).

    columns / column_share: which columns a generic kind changes (default: all it applies to).
    stats: the population's `ColumnStats` (default: the batch's own)."""
    intensity = check_intensity(kind, intensity)
    if (columns is not None or column_share is not None) and kind not in GENERIC_KINDS:
        raise DriftError(f"{kind}: columns and column_share apply to {', '.join(GENERIC_KINDS)}")
    if column_share is not None and not 0 < column_share <= 1:
        raise DriftError(f"{kind}: column_share {column_share} must be in (0, 1]")
    out = frame.copy()
    if intensity == 0.0 or len(out) == 0:
        return out
    if kind in GENERIC_KINDS:
        stats = stats if stats is not None else ColumnStats.of(frame)
        targets = generic_columns(out, kind, stats, columns, column_share)
        _generic(out, kind, intensity, targets, stats, rng)
    elif kind == "gradual":
        _gradual(out, intensity, config)
    elif kind == "sudden":
        _sudden(out, intensity, rng, config)
    elif kind == "feature_shift":
        _feature_shift(out, intensity, config)
    elif kind == "correlation_break":
        _correlation_break(out, intensity, rng, config)
    return out


# -- helpers ------------------------------------------------------------------------------------
def _is_numeric(frame: pd.DataFrame, column: str) -> bool:
    return pd.api.types.is_numeric_dtype(frame[column].dtype) and not pd.api.types.is_bool_dtype(
        frame[column].dtype
    )


def _numeric_columns(frame: pd.DataFrame, patterns: Sequence[str]) -> list[str]:
    return [c for c in matching_columns(list(frame.columns), patterns) if _is_numeric(frame, c)]


def _values(frame: pd.DataFrame, column: str) -> np.ndarray:
    return frame[column].to_numpy(dtype=np.float64, na_value=np.nan, copy=True)


def _recompute_ratios(
    frame: pd.DataFrame, changed: set[str], rows: np.ndarray, config: DriftConfig
) -> None:
    """Recompute, on `rows` (boolean mask), every ratio one of whose parts is in `changed`."""
    for ratio in config.ratios:
        parts = (ratio.name, ratio.numerator, ratio.denominator)
        if not all(p in frame.columns for p in parts):
            continue
        if ratio.numerator not in changed and ratio.denominator not in changed:
            continue
        num = _values(frame, ratio.numerator)[rows]
        den = _values(frame, ratio.denominator)[rows]
        for column, placeholder in config.ratio_sentinels:
            if column == ratio.numerator:
                num[num == placeholder] = np.nan
            if column == ratio.denominator:
                den[den == placeholder] = np.nan
        with np.errstate(divide="ignore", invalid="ignore"):
            value = num / den
        # A zero denominator has no ratio: missing, as in the source data, never infinite.
        value[~np.isfinite(value)] = np.nan
        column = _values(frame, ratio.name)
        column[rows] = value
        frame[ratio.name] = column


# -- kinds --------------------------------------------------------------------------------------
def _generic(
    frame: pd.DataFrame,
    kind: str,
    intensity: float,
    targets: Sequence[str],
    stats: ColumnStats,
    rng: np.random.Generator,
) -> None:
    for column in targets:
        if kind == "shift":
            frame[column] = _values(frame, column) + intensity * stats.std[column]
        elif kind == "scale":
            mean = stats.mean[column]
            frame[column] = mean + (_values(frame, column) - mean) * (1.0 + intensity)
        elif kind == "category_mix":
            rows = _choose_rows(len(frame), intensity, rng)
            values = frame[column].astype(object).to_numpy(copy=True)
            values[rows] = stats.rarest[column]
            frame[column] = pd.Series(values, index=frame.index, dtype=object)
        elif kind == "missing":
            rows = _choose_rows(len(frame), intensity, rng)
            if _is_numeric(frame, column):
                values = _values(frame, column)
                values[rows] = np.nan
            else:
                values = frame[column].astype(object).to_numpy(copy=True)
                values[rows] = None
            frame[column] = pd.Series(values, index=frame.index)


def _gradual(frame: pd.DataFrame, intensity: float, config: DriftConfig) -> None:
    changed: set[str] = set()
    factor = 1.0 + config.inflation_per_intensity * intensity
    for column in _numeric_columns(frame, config.inflated_columns):
        frame[column] = _values(frame, column) * factor
        changed.add(column)
    if config.age_column in frame.columns and _is_numeric(frame, config.age_column):
        # Ages are negative day counts: older = further below zero.
        shift = config.ageing_years_per_intensity * intensity * DAYS_PER_YEAR
        frame[config.age_column] = _values(frame, config.age_column) - shift
        changed.add(config.age_column)
    _recompute_ratios(frame, changed, np.ones(len(frame), dtype=bool), config)


def _feature_shift(frame: pd.DataFrame, intensity: float, config: DriftConfig) -> None:
    power = 1.0 + config.feature_shift_power_per_intensity * intensity
    for column in _numeric_columns(frame, config.ext_source_columns):
        values = _values(frame, column)
        # Scores live in [0, 1]; clip so the power keeps them there and never yields NaN.
        frame[column] = np.clip(values, 0.0, 1.0) ** power


def _choose_rows(n: int, share: float, rng: np.random.Generator) -> np.ndarray:
    k = int(round(share * n))
    mask = np.zeros(n, dtype=bool)
    mask[rng.choice(n, size=k, replace=False)] = True
    return mask


def _correlation_break(
    frame: pd.DataFrame, intensity: float, rng: np.random.Generator, config: DriftConfig
) -> None:
    rows = np.flatnonzero(_choose_rows(len(frame), intensity, rng))
    for column in config.correlation_break_columns:
        if column not in frame.columns:
            continue
        values = frame[column].to_numpy(copy=True)
        values[rows] = values[rng.permutation(rows)]
        frame[column] = pd.Series(values, index=frame.index, dtype=frame[column].dtype)


def _sudden(
    frame: pd.DataFrame, intensity: float, rng: np.random.Generator, config: DriftConfig
) -> None:
    rows = _choose_rows(len(frame), intensity, rng)
    k = int(rows.sum())
    if k == 0:
        return
    columns = list(frame.columns)
    changed: set[str] = set()

    def assign(column: str, values: np.ndarray) -> None:
        current = _values(frame, column)
        current[rows] = values
        frame[column] = current
        changed.add(column)

    def scale(column: str, factor: float) -> None:
        assign(column, _values(frame, column)[rows] * factor)

    if config.age_column in columns:
        lo, hi = config.segment_age_years
        assign(config.age_column, -rng.uniform(lo, hi, size=k) * DAYS_PER_YEAR)
    if config.employed_column in columns:
        lo, hi = config.segment_employed_days
        assign(config.employed_column, -rng.uniform(lo, hi, size=k))
    if config.income_column in columns and _is_numeric(frame, config.income_column):
        scale(config.income_column, config.segment_income_factor)

    for column, value in config.segment_fixed_values:
        if column in columns and _is_numeric(frame, column):
            assign(column, np.full(k, value))

    for column, low, high in config.segment_integer_ranges:
        if column in columns and _is_numeric(frame, column):
            assign(column, rng.integers(low, high + 1, size=k).astype(np.float64))

    missing = set(_numeric_columns(frame, config.segment_missing_columns))
    for column in missing:
        assign(column, np.full(k, np.nan))
    protected = missing | {config.age_column, config.employed_column, config.income_column}
    protected |= {column for column, _ in config.segment_fixed_values}
    protected |= {column for column, _, _ in config.segment_integer_ranges}
    for column in _numeric_columns(frame, config.segment_amount_columns):
        if column not in protected:
            scale(column, config.segment_amount_factor)
    for column in _numeric_columns(frame, config.segment_history_days_columns):
        if column not in protected:
            scale(column, config.segment_history_days_factor)
    for column in _numeric_columns(frame, config.segment_count_columns):
        if column not in protected:
            scale(column, config.segment_count_factor)

    for group in config.segment_one_hots:
        members = [c for c in columns if c.startswith(group.prefix) and _is_numeric(frame, c)]
        if len(members) < 2:
            continue
        target = next((c for c in group.preferred if c in members), None)
        if target is None:
            means = frame[members].mean(skipna=True).fillna(0.0)
            target = str(means.idxmin())
        for column in members:
            assign(column, np.full(k, 1.0 if column == target else 0.0))

    a, b = config.segment_ext_source_beta
    for column in _numeric_columns(frame, config.ext_source_columns):
        scores = rng.beta(a, b, size=k)
        scores[rng.random(k) < config.segment_ext_source_missing] = np.nan
        assign(column, scores)

    # Ratios of the replaced rows follow their new parts (not the inflation rule: every ratio
    # touching a changed column is recomputed on those rows only).
    _recompute_ratios(frame, changed, rows, config)
