"""Synthetic training data shaped like the preprocessed Home Credit Default Risk set.

Owns the default dataset of the project: `generate_applications` draws loan applications with an
id (`SK_ID_CURR`), a binary `TARGET` (default rate about 8%) and exactly `N_FEATURES` = 419
float features named like the columns of the Kaggle kernel "LightGBM with simple features"
(application table one-hot encoded, plus bureau / previous-application / POS / installment /
credit-card aggregates). `write_datasets` writes `train.parquet` and an unseen `pool.parquet`.
Everything is vectorized numpy drawn from one `np.random.default_rng(seed)`: same seed, same data.

Feature families (the keys of `FEATURE_FAMILIES`; every feature is in exactly one):

- `ext_source`: EXT_SOURCE_1..3, scores in [0, 1] (Kumaraswamy marginals, means about 0.5)
  through a Gaussian copula on a latent credit quality, so they correlate with each other and
  with age (EXT_SOURCE_1 most, as in the real data). Missing: EXT_SOURCE_1 ~56%,
  EXT_SOURCE_3 ~20%, EXT_SOURCE_2 ~0.2%. The strongest predictors of TARGET.
- `amount`: AMT_INCOME_TOTAL lognormal with a Student-t tail (median ~150k, multiples of 4,500);
  AMT_GOODS_PRICE lognormal tied to income (multiples of 4,500); AMT_CREDIT = goods price times
  an insurance/fee factor (1.0 for a third of loans, else 1.03-1.30, so goods ~ 0.9 x credit);
  AMT_ANNUITY = credit / term with a monthly rate (terms 6-60 months; revolving: 5% of the limit).
- `days`: negative day counts. DAYS_BIRTH (age 20.5-69), DAYS_EMPLOYED (gamma years of
  employment, or the sentinel `DAYS_EMPLOYED_SENTINEL` = 365243 for pensioners and the
  unemployed, ~18% of rows; pension age depends on gender), DAYS_REGISTRATION, DAYS_ID_PUBLISH,
  DAYS_LAST_PHONE_CHANGE (12% zeros).
- `count`: CNT_CHILDREN (Poisson by age and marital status, 70% zero), CNT_FAM_MEMBERS
  (children + 1 or 2), OBS/DEF_30/60_CNT_SOCIAL_CIRCLE (negative binomial, OBS_60 ~ OBS_30,
  DEF_60 <= DEF_30, missing together ~0.3%).
- `bureau_requests`: AMT_REQ_CREDIT_BUREAU_HOUR..YEAR, small counts, missing together ~13.5%.
- `region_and_time`: REGION_POPULATION_RELATIVE (81 discrete regions), REGION_RATING_CLIENT
  (_W_CITY), HOUR_APPR_PROCESS_START, OWN_CAR_AGE (missing exactly when FLAG_OWN_CAR = 0).
- `flag`: 0/1 FLAG_* columns (own car / realty, phones, email, FLAG_DOCUMENT_2..21 at their real
  rates; FLAG_EMP_PHONE = 0 exactly for the DAYS_EMPLOYED sentinel) and the REG_/LIVE_ region/city
  mismatch flags.
- `building`: the 14 *_AVG building descriptors and TOTALAREA_MODE, normalized in [0, 1]
  (lognormal around their real medians, correlated through a building-size factor), missing
  together for the ~48% of clients with no building information, some more often.
- `ratio`: DAYS_EMPLOYED_PERC (NaN for the sentinel, as the kernel computes it after replacing
  the sentinel), INCOME_CREDIT_PERC, INCOME_PER_PERSON, ANNUITY_INCOME_PERC, PAYMENT_RATE;
  `recompute_ratios` recomputes them after a change of their inputs (`RATIO_DEFINITIONS`).
- `one_hot`: one 0/1 column per category of NAME_CONTRACT_TYPE, CODE_GENDER, NAME_TYPE_SUITE,
  NAME_INCOME_TYPE, NAME_EDUCATION_TYPE, NAME_FAMILY_STATUS, NAME_HOUSING_TYPE, OCCUPATION_TYPE,
  WEEKDAY_APPR_PROCESS_START, ORGANIZATION_TYPE (58), FONDKAPREMONT_MODE, HOUSETYPE_MODE,
  WALLSMATERIAL_MODE, EMERGENCYSTATE_MODE, named `<FIELD>_<category>` as `pd.get_dummies` does;
  fields that have missing values get a `<FIELD>_nan` column, so each row has exactly one 1 per
  field (`ONE_HOT_GROUPS`). Categories follow the real frequencies; income type depends on age
  and gender, organization is XNA exactly for the sentinel, occupation is missing for pensioners,
  education and occupation depend on a wealth factor.
- aggregates, computed from simulated child records with the kernel's groupby rules (MEAN, MIN,
  MAX, SUM, VAR with ddof=1, SIZE, NUNIQUE, COUNT; a client with no records of a table has NaN in
  every column of its families; VAR is NaN with one record):
  `bureau` (BURO_*, ~86% of clients have bureau credits, ~5.6 each), `bureau_active` (ACTIVE_*),
  `bureau_closed` (CLOSED_*), `previous` (PREV_*, ~95% have previous applications, ~4.9 each),
  `previous_approved` (APPROVED_*), `previous_refused` (REFUSED_*, refusals more frequent for
  risky clients), `pos_cash` (POS_*, monthly rows of approved instalment loans), `installments`
  (INSTAL_*, one row per paid instalment; late and partial payments more frequent for risky
  clients), `credit_card` (CC_*, ~27% of clients, monthly balances; it fills the list up to 419).
  POS/installment rows exist for ~93% of clients (approved instalment loans).

TARGET ~ Bernoulli(sigmoid(logit)), with the logit a fixed function of the features themselves
(`_risk_logit`): EXT_SOURCE_1..3 most, then credit/goods ratio, payment rate (non-monotonic),
annuity/income, employment length, age, gender, education, occupation, region rating, and
bureau overdue / debt share / refused share / installment delays / card utilization less.
Its intercept and scale are calibrated for a default rate near 8% and a held-out LightGBM AUC
near 0.76 on 50,000 rows (about 0.74 on 20,000) with the default `TrainConfig`.
50,000 rows take about 2 seconds.
"""

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import ndtr

N_FEATURES = 419
ID_COLUMN = "SK_ID_CURR"
TARGET_COLUMN = "TARGET"
DEFAULT_ID_START = 100002
DAYS_EMPLOYED_SENTINEL = 365243.0
# Pool rows come from a child stream of the same seed, never from the training stream.
POOL_STREAM = 1


# -- one-hot fields ---------------------------------------------------------------------------
@dataclass(frozen=True)
class OneHotGroup:
    """A categorical field of the application, one-hot encoded as `<field>_<category>`.

    `frequencies` are the approximate marginal frequencies of the real data (they sum to 1);
    the generator draws some fields conditionally (see the module docstring), so the synthetic
    marginals are close to, not exactly, these.
    """

    field: str
    categories: tuple[str, ...]
    frequencies: tuple[float, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(f"{self.field}_{c}" for c in self.categories)

    def column(self, category: str) -> str:
        if category not in self.categories:
            raise KeyError(f"{self.field} has no category {category!r}")
        return f"{self.field}_{category}"


def _group(field: str, pairs: Sequence[tuple[str, float]]) -> OneHotGroup:
    total = sum(p for _, p in pairs)
    return OneHotGroup(field, tuple(c for c, _ in pairs), tuple(p / total for _, p in pairs))


_ORGANIZATIONS = (
    ("Business Entity Type 3", 0.2211),
    ("XNA", 0.1801),
    ("Self-employed", 0.1249),
    ("Other", 0.0543),
    ("Medicine", 0.0364),
    ("Business Entity Type 2", 0.0343),
    ("Government", 0.0338),
    ("School", 0.0289),
    ("Trade: type 7", 0.0255),
    ("Kindergarten", 0.0224),
    ("Construction", 0.0219),
    ("Business Entity Type 1", 0.0195),
    ("Transport: type 4", 0.0176),
    ("Trade: type 3", 0.0114),
    ("Industry: type 9", 0.0110),
    ("Industry: type 3", 0.0107),
    ("Security", 0.0106),
    ("Housing", 0.0096),
    ("Industry: type 11", 0.0088),
    ("Military", 0.0086),
    ("Bank", 0.0082),
    ("Agriculture", 0.0080),
    ("Police", 0.0076),
    ("Transport: type 2", 0.0072),
    ("Postal", 0.0070),
    ("Security Ministries", 0.0064),
    ("Trade: type 2", 0.0062),
    ("Restaurant", 0.0059),
    ("Services", 0.0051),
    ("University", 0.0043),
    ("Industry: type 7", 0.0043),
    ("Transport: type 3", 0.0039),
    ("Industry: type 1", 0.0034),
    ("Hotel", 0.0031),
    ("Electricity", 0.0031),
    ("Industry: type 4", 0.0028),
    ("Trade: type 6", 0.0021),
    ("Industry: type 5", 0.0019),
    ("Insurance", 0.0019),
    ("Telecom", 0.0019),
    ("Emergency", 0.0018),
    ("Industry: type 2", 0.0015),
    ("Advertising", 0.0014),
    ("Realtor", 0.0013),
    ("Culture", 0.0012),
    ("Industry: type 12", 0.0012),
    ("Trade: type 1", 0.0011),
    ("Mobile", 0.0010),
    ("Legal Services", 0.0010),
    ("Cleaning", 0.0008),
    ("Transport: type 1", 0.0007),
    ("Industry: type 6", 0.0004),
    ("Industry: type 10", 0.0004),
    ("Religion", 0.0003),
    ("Industry: type 13", 0.0002),
    ("Trade: type 4", 0.0002),
    ("Trade: type 5", 0.0002),
    ("Industry: type 8", 0.0001),
)

ONE_HOT_GROUPS: dict[str, OneHotGroup] = {
    g.field: g
    for g in (
        _group("NAME_CONTRACT_TYPE", (("Cash loans", 0.905), ("Revolving loans", 0.095))),
        _group("CODE_GENDER", (("F", 0.658), ("M", 0.342))),
        _group(
            "NAME_TYPE_SUITE",
            (
                ("Unaccompanied", 0.808),
                ("Family", 0.131),
                ("Spouse, partner", 0.037),
                ("Children", 0.011),
                ("Other_B", 0.0058),
                ("Other_A", 0.0028),
                ("Group of people", 0.0009),
                ("nan", 0.0042),
            ),
        ),
        _group(
            "NAME_INCOME_TYPE",
            (
                ("Working", 0.5163),
                ("Commercial associate", 0.2329),
                ("Pensioner", 0.1800),
                ("State servant", 0.0706),
                ("Unemployed", 0.00007),
                ("Student", 0.00006),
                ("Businessman", 0.00003),
                ("Maternity leave", 0.00002),
            ),
        ),
        _group(
            "NAME_EDUCATION_TYPE",
            (
                ("Secondary / secondary special", 0.710),
                ("Higher education", 0.243),
                ("Incomplete higher", 0.033),
                ("Lower secondary", 0.012),
                ("Academic degree", 0.0005),
            ),
        ),
        _group(
            "NAME_FAMILY_STATUS",
            (
                ("Married", 0.639),
                ("Single / not married", 0.148),
                ("Civil marriage", 0.097),
                ("Separated", 0.064),
                ("Widow", 0.052),
            ),
        ),
        _group(
            "NAME_HOUSING_TYPE",
            (
                ("House / apartment", 0.887),
                ("With parents", 0.048),
                ("Municipal apartment", 0.036),
                ("Rented apartment", 0.016),
                ("Office apartment", 0.0085),
                ("Co-op apartment", 0.0036),
            ),
        ),
        _group(
            "OCCUPATION_TYPE",
            (
                ("Laborers", 0.179),
                ("Sales staff", 0.104),
                ("Core staff", 0.090),
                ("Managers", 0.069),
                ("Drivers", 0.060),
                ("High skill tech staff", 0.037),
                ("Accountants", 0.032),
                ("Medicine staff", 0.028),
                ("Security staff", 0.022),
                ("Cooking staff", 0.019),
                ("Cleaning staff", 0.015),
                ("Private service staff", 0.0086),
                ("Low-skill Laborers", 0.0068),
                ("Waiters/barmen staff", 0.0044),
                ("Secretaries", 0.0042),
                ("Realty agents", 0.0024),
                ("HR staff", 0.0018),
                ("IT staff", 0.0017),
                ("nan", 0.313),
            ),
        ),
        _group(
            "WEEKDAY_APPR_PROCESS_START",
            (
                ("MONDAY", 0.165),
                ("TUESDAY", 0.175),
                ("WEDNESDAY", 0.169),
                ("THURSDAY", 0.164),
                ("FRIDAY", 0.164),
                ("SATURDAY", 0.110),
                ("SUNDAY", 0.053),
            ),
        ),
        _group("ORGANIZATION_TYPE", _ORGANIZATIONS),
        _group(
            "FONDKAPREMONT_MODE",
            (
                ("not specified", 0.019),
                ("org spec account", 0.018),
                ("reg oper account", 0.240),
                ("reg oper spec account", 0.039),
                ("nan", 0.684),
            ),
        ),
        _group(
            "HOUSETYPE_MODE",
            (
                ("block of flats", 0.490),
                ("specific housing", 0.0049),
                ("terraced house", 0.0039),
                ("nan", 0.502),
            ),
        ),
        _group(
            "WALLSMATERIAL_MODE",
            (
                ("Block", 0.030),
                ("Mixed", 0.0075),
                ("Monolithic", 0.0058),
                ("Others", 0.0053),
                ("Panel", 0.2150),
                ("Stone, brick", 0.2110),
                ("Wooden", 0.0174),
                ("nan", 0.508),
            ),
        ),
        _group("EMERGENCYSTATE_MODE", (("No", 0.518), ("Yes", 0.0076), ("nan", 0.474))),
    )
}

# -- application numeric families --------------------------------------------------------------
EXT_SOURCES = ("EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3")
AMOUNTS = ("AMT_INCOME_TOTAL", "AMT_CREDIT", "AMT_ANNUITY", "AMT_GOODS_PRICE")
DAYS = (
    "DAYS_BIRTH",
    "DAYS_EMPLOYED",
    "DAYS_REGISTRATION",
    "DAYS_ID_PUBLISH",
    "DAYS_LAST_PHONE_CHANGE",
)
COUNTS = (
    "CNT_CHILDREN",
    "CNT_FAM_MEMBERS",
    "OBS_30_CNT_SOCIAL_CIRCLE",
    "DEF_30_CNT_SOCIAL_CIRCLE",
    "OBS_60_CNT_SOCIAL_CIRCLE",
    "DEF_60_CNT_SOCIAL_CIRCLE",
)
BUREAU_REQUESTS = tuple(
    f"AMT_REQ_CREDIT_BUREAU_{p}" for p in ("HOUR", "DAY", "WEEK", "MON", "QRT", "YEAR")
)
REGION_AND_TIME = (
    "REGION_POPULATION_RELATIVE",
    "REGION_RATING_CLIENT",
    "REGION_RATING_CLIENT_W_CITY",
    "HOUR_APPR_PROCESS_START",
    "OWN_CAR_AGE",
)
# (name, probability of 1) for the flags drawn independently; the others are derived.
_DOCUMENT_RATES = {
    2: 0.00004,
    3: 0.710,
    4: 0.0001,
    5: 0.0151,
    6: 0.0881,
    7: 0.0002,
    8: 0.0814,
    9: 0.0039,
    10: 0.00002,
    11: 0.0039,
    12: 0.00001,
    13: 0.0035,
    14: 0.0029,
    15: 0.0012,
    16: 0.0099,
    17: 0.0003,
    18: 0.0081,
    19: 0.0006,
    20: 0.0005,
    21: 0.0003,
}
FLAGS = (
    "FLAG_OWN_CAR",
    "FLAG_OWN_REALTY",
    "FLAG_MOBIL",
    "FLAG_EMP_PHONE",
    "FLAG_WORK_PHONE",
    "FLAG_CONT_MOBILE",
    "FLAG_PHONE",
    "FLAG_EMAIL",
    "REG_REGION_NOT_LIVE_REGION",
    "REG_REGION_NOT_WORK_REGION",
    "LIVE_REGION_NOT_WORK_REGION",
    "REG_CITY_NOT_LIVE_CITY",
    "REG_CITY_NOT_WORK_CITY",
    "LIVE_CITY_NOT_WORK_CITY",
) + tuple(f"FLAG_DOCUMENT_{k}" for k in _DOCUMENT_RATES)


@dataclass(frozen=True)
class _BuildingSpec:
    name: str
    missing: float  # real share of missing values
    median: float
    sigma: float
    upper: bool = False  # concentrated near 1: value = 1 - (1 - median) * exp(sigma * z)
    zero_share: float = 0.0
    size_loading: float = 0.85  # correlation with the building-size factor


_BUILDINGS = (
    _BuildingSpec("APARTMENTS_AVG", 0.507, 0.0876, 0.75),
    _BuildingSpec("BASEMENTAREA_AVG", 0.585, 0.0763, 0.70, zero_share=0.10),
    _BuildingSpec("YEARS_BEGINEXPLUATATION_AVG", 0.488, 0.9816, 0.55, True, 0, 0.2),
    _BuildingSpec("YEARS_BUILD_AVG", 0.665, 0.7552, 0.45, True, 0, 0.2),
    _BuildingSpec("COMMONAREA_AVG", 0.699, 0.0211, 0.90, zero_share=0.08),
    _BuildingSpec("ELEVATORS_AVG", 0.533, 0.0800, 0.70, zero_share=0.52),
    _BuildingSpec("ENTRANCES_AVG", 0.503, 0.1379, 0.55),
    _BuildingSpec("FLOORSMAX_AVG", 0.498, 0.1667, 0.55),
    _BuildingSpec("FLOORSMIN_AVG", 0.678, 0.2083, 0.50),
    _BuildingSpec("LANDAREA_AVG", 0.594, 0.0481, 0.90, zero_share=0.06, size_loading=0.5),
    _BuildingSpec("LIVINGAPARTMENTS_AVG", 0.684, 0.0756, 0.75),
    _BuildingSpec("LIVINGAREA_AVG", 0.502, 0.0745, 0.80),
    _BuildingSpec("NONLIVINGAPARTMENTS_AVG", 0.694, 0.0080, 0.9, zero_share=0.55, size_loading=0.4),
    _BuildingSpec("NONLIVINGAREA_AVG", 0.552, 0.0200, 1.0, zero_share=0.45, size_loading=0.4),
    _BuildingSpec("TOTALAREA_MODE", 0.483, 0.0688, 0.80),
)
BUILDING = tuple(b.name for b in _BUILDINGS)
_NO_BUILDING_SHARE = 0.483

# ratio feature -> (numerator, denominator), as the kernel defines them.
RATIO_DEFINITIONS: dict[str, tuple[str, str]] = {
    "DAYS_EMPLOYED_PERC": ("DAYS_EMPLOYED", "DAYS_BIRTH"),
    "INCOME_CREDIT_PERC": ("AMT_INCOME_TOTAL", "AMT_CREDIT"),
    "INCOME_PER_PERSON": ("AMT_INCOME_TOTAL", "CNT_FAM_MEMBERS"),
    "ANNUITY_INCOME_PERC": ("AMT_ANNUITY", "AMT_INCOME_TOTAL"),
    "PAYMENT_RATE": ("AMT_ANNUITY", "AMT_CREDIT"),
}
RATIOS = tuple(RATIO_DEFINITIONS)

# -- aggregate families -------------------------------------------------------------------------
_STATS = ("MIN", "MAX", "MEAN", "SUM", "VAR")
_BUREAU_NUM = (
    ("DAYS_CREDIT", ("MIN", "MAX", "MEAN", "VAR")),
    ("DAYS_CREDIT_ENDDATE", ("MIN", "MAX", "MEAN")),
    ("DAYS_CREDIT_UPDATE", ("MEAN",)),
    ("CREDIT_DAY_OVERDUE", ("MAX", "MEAN")),
    ("AMT_CREDIT_MAX_OVERDUE", ("MEAN",)),
    ("AMT_CREDIT_SUM", ("MAX", "MEAN", "SUM")),
    ("AMT_CREDIT_SUM_DEBT", ("MAX", "MEAN", "SUM")),
    ("AMT_CREDIT_SUM_OVERDUE", ("MEAN",)),
    ("AMT_CREDIT_SUM_LIMIT", ("MEAN", "SUM")),
    ("AMT_ANNUITY", ("MAX", "MEAN")),
    ("CNT_CREDIT_PROLONG", ("SUM",)),
    ("MONTHS_BALANCE_MIN", ("MIN",)),
    ("MONTHS_BALANCE_MAX", ("MAX",)),
    ("MONTHS_BALANCE_SIZE", ("MEAN", "SUM")),
)
_CREDIT_ACTIVE = ("Active", "Closed", "Sold")
_CREDIT_TYPES = ("Consumer credit", "Credit card", "Car loan", "Mortgage", "Microloan")
_BUREAU_CAT = tuple((f"CREDIT_ACTIVE_{c}", ("MEAN",)) for c in _CREDIT_ACTIVE) + tuple(
    (f"CREDIT_TYPE_{c}", ("MEAN",)) for c in _CREDIT_TYPES
)
_ACTIVE_NUM = (
    ("DAYS_CREDIT", ("MIN", "MAX", "MEAN", "VAR")),
    ("DAYS_CREDIT_ENDDATE", ("MIN", "MAX", "MEAN")),
    ("DAYS_CREDIT_UPDATE", ("MEAN",)),
    ("CREDIT_DAY_OVERDUE", ("MAX", "MEAN")),
    ("AMT_CREDIT_SUM", ("MAX", "MEAN", "SUM")),
    ("AMT_CREDIT_SUM_DEBT", ("MAX", "MEAN", "SUM")),
    ("AMT_CREDIT_SUM_LIMIT", ("MEAN", "SUM")),
    ("AMT_ANNUITY", ("MAX", "MEAN")),
)
_CLOSED_NUM = (
    ("DAYS_CREDIT", ("MIN", "MAX", "MEAN", "VAR")),
    ("DAYS_CREDIT_ENDDATE", ("MIN", "MAX", "MEAN")),
    ("DAYS_CREDIT_UPDATE", ("MEAN",)),
    ("AMT_CREDIT_MAX_OVERDUE", ("MEAN",)),
    ("AMT_CREDIT_SUM", ("MAX", "MEAN", "SUM")),
    ("AMT_ANNUITY", ("MAX", "MEAN")),
    ("CNT_CREDIT_PROLONG", ("SUM",)),
)
_PREV_NUM = (
    ("AMT_ANNUITY", ("MIN", "MAX", "MEAN")),
    ("AMT_APPLICATION", ("MIN", "MAX", "MEAN")),
    ("AMT_CREDIT", ("MIN", "MAX", "MEAN")),
    ("APP_CREDIT_PERC", ("MIN", "MAX", "MEAN", "VAR")),
    ("AMT_DOWN_PAYMENT", ("MIN", "MAX", "MEAN")),
    ("AMT_GOODS_PRICE", ("MIN", "MAX", "MEAN")),
    ("HOUR_APPR_PROCESS_START", ("MIN", "MAX", "MEAN")),
    ("RATE_DOWN_PAYMENT", ("MIN", "MAX", "MEAN")),
    ("DAYS_DECISION", ("MIN", "MAX", "MEAN")),
    ("CNT_PAYMENT", ("MEAN", "SUM")),
)
_PREV_STATUSES = ("Approved", "Refused", "Canceled", "Unused offer")
_PREV_TYPES = ("Cash loans", "Consumer loans", "Revolving loans")
_YIELD_GROUPS = ("high", "middle", "low_normal")
_PREV_CAT = (
    tuple((f"NAME_CONTRACT_STATUS_{c}", ("MEAN",)) for c in _PREV_STATUSES)
    + tuple((f"NAME_CONTRACT_TYPE_{c}", ("MEAN",)) for c in _PREV_TYPES)
    + tuple((f"NAME_YIELD_GROUP_{c}", ("MEAN",)) for c in _YIELD_GROUPS)
)
_APPROVED_NUM = (
    ("AMT_ANNUITY", ("MIN", "MAX", "MEAN")),
    ("AMT_APPLICATION", ("MAX", "MEAN")),
    ("AMT_CREDIT", ("MAX", "MEAN")),
    ("APP_CREDIT_PERC", ("MIN", "MEAN")),
    ("AMT_DOWN_PAYMENT", ("MAX",)),
    ("DAYS_DECISION", ("MIN", "MAX", "MEAN")),
    ("CNT_PAYMENT", ("MEAN", "SUM")),
)
_REFUSED_NUM = (
    ("AMT_APPLICATION", ("MAX", "MEAN")),
    ("AMT_CREDIT", ("MAX", "MEAN")),
    ("APP_CREDIT_PERC", ("MIN", "MEAN")),
    ("DAYS_DECISION", ("MAX", "MEAN")),
    ("CNT_PAYMENT", ("MEAN", "SUM")),
)
_POS_STATUSES = ("Active", "Completed", "Signed")
_POS = (
    ("MONTHS_BALANCE", ("MAX", "MEAN", "SIZE")),
    ("SK_DPD", ("MAX", "MEAN")),
    ("SK_DPD_DEF", ("MAX", "MEAN")),
) + tuple((f"NAME_CONTRACT_STATUS_{c}", ("MEAN",)) for c in _POS_STATUSES)
_INSTAL = (
    ("NUM_INSTALMENT_VERSION", ("NUNIQUE",)),
    ("DPD", ("MAX", "MEAN", "SUM")),
    ("DBD", ("MAX", "MEAN", "SUM")),
    ("PAYMENT_PERC", ("MEAN", "VAR")),
    ("PAYMENT_DIFF", ("MEAN", "VAR")),
    ("AMT_INSTALMENT", ("MAX", "MEAN")),
    ("AMT_PAYMENT", ("MIN", "MEAN", "SUM")),
    ("DAYS_ENTRY_PAYMENT", ("MAX", "MEAN")),
)
# Credit-card columns in the order they fill the list up to N_FEATURES (kernel: all five stats).
_CC_PRIORITY = (
    "AMT_BALANCE",
    "AMT_CREDIT_LIMIT_ACTUAL",
    "AMT_DRAWINGS_CURRENT",
    "AMT_DRAWINGS_ATM_CURRENT",
    "AMT_PAYMENT_CURRENT",
    "CNT_DRAWINGS_CURRENT",
    "CNT_DRAWINGS_ATM_CURRENT",
    "AMT_TOTAL_RECEIVABLE",
    "AMT_INST_MIN_REGULARITY",
    "MONTHS_BALANCE",
    "CNT_INSTALMENT_MATURE_CUM",
    "SK_DPD",
)


def _agg_names(prefix: str, spec: Sequence[tuple[str, Sequence[str]]]) -> tuple[str, ...]:
    return tuple(f"{prefix}_{var}_{stat}" for var, stats in spec for stat in stats)


_APP_FAMILIES: dict[str, tuple[str, ...]] = {
    "ext_source": EXT_SOURCES,
    "amount": AMOUNTS,
    "days": DAYS,
    "count": COUNTS,
    "bureau_requests": BUREAU_REQUESTS,
    "region_and_time": REGION_AND_TIME,
    "flag": FLAGS,
    "building": BUILDING,
    "ratio": RATIOS,
    "one_hot": tuple(c for g in ONE_HOT_GROUPS.values() for c in g.columns),
}
_AGG_FAMILIES: dict[str, tuple[str, ...]] = {
    "bureau": _agg_names("BURO", _BUREAU_NUM + _BUREAU_CAT),
    "bureau_active": _agg_names("ACTIVE", _ACTIVE_NUM),
    "bureau_closed": _agg_names("CLOSED", _CLOSED_NUM),
    "previous": _agg_names("PREV", _PREV_NUM + _PREV_CAT),
    "previous_approved": _agg_names("APPROVED", _APPROVED_NUM),
    "previous_refused": _agg_names("REFUSED", _REFUSED_NUM),
    "pos_cash": _agg_names("POS", _POS) + ("POS_COUNT",),
    "installments": _agg_names("INSTAL", _INSTAL) + ("INSTAL_COUNT",),
}


def _credit_card_spec() -> tuple[tuple[str, tuple[str, ...]], ...]:
    n_cc = N_FEATURES - sum(len(v) for v in (*_APP_FAMILIES.values(), *_AGG_FAMILIES.values()))
    n_stats = n_cc - 1  # CC_COUNT
    if not 0 < n_stats <= len(_CC_PRIORITY) * len(_STATS):
        raise RuntimeError(f"credit-card family cannot fill {n_cc} columns")
    spec = []
    for var in _CC_PRIORITY:
        take = min(len(_STATS), n_stats)
        if take <= 0:
            break
        spec.append((var, _STATS[:take]))
        n_stats -= take
    return tuple(spec)


_CC = _credit_card_spec()

FEATURE_FAMILIES: dict[str, tuple[str, ...]] = {
    **_APP_FAMILIES,
    **_AGG_FAMILIES,
    "credit_card": _agg_names("CC", _CC) + ("CC_COUNT",),
}
FEATURE_NAMES: tuple[str, ...] = tuple(c for cols in FEATURE_FAMILIES.values() for c in cols)
# Families whose columns are all NaN for a client without records of the underlying table.
AGGREGATE_FAMILIES = tuple(_AGG_FAMILIES) + ("credit_card",)

# Pairs a "correlation break" drift can target: strongly related in the training data.
CORRELATED_PAIRS: tuple[tuple[str, str], ...] = (
    ("AMT_CREDIT", "AMT_GOODS_PRICE"),
    ("AMT_CREDIT", "AMT_ANNUITY"),
    ("AMT_INCOME_TOTAL", "AMT_CREDIT"),
    ("CNT_CHILDREN", "CNT_FAM_MEMBERS"),
    ("OBS_30_CNT_SOCIAL_CIRCLE", "OBS_60_CNT_SOCIAL_CIRCLE"),
    ("DEF_30_CNT_SOCIAL_CIRCLE", "DEF_60_CNT_SOCIAL_CIRCLE"),
    ("DAYS_BIRTH", "EXT_SOURCE_1"),
    ("EXT_SOURCE_2", "EXT_SOURCE_3"),
    ("APARTMENTS_AVG", "LIVINGAREA_AVG"),
    ("APARTMENTS_AVG", "TOTALAREA_MODE"),
    ("BURO_AMT_CREDIT_SUM_MEAN", "BURO_AMT_CREDIT_SUM_MAX"),
    ("BURO_DAYS_CREDIT_MIN", "BURO_DAYS_CREDIT_MEAN"),
    ("PREV_AMT_APPLICATION_MEAN", "PREV_AMT_CREDIT_MEAN"),
    ("INSTAL_AMT_INSTALMENT_MEAN", "INSTAL_AMT_PAYMENT_MEAN"),
    ("CC_AMT_BALANCE_MEAN", "CC_AMT_CREDIT_LIMIT_ACTUAL_MEAN"),
)


def family_of(feature: str) -> str:
    """The `FEATURE_FAMILIES` key of a feature (KeyError if it is not one of the 419)."""
    for family, cols in FEATURE_FAMILIES.items():
        if feature in cols:
            return family
    raise KeyError(f"{feature!r} is not a generated feature")


def recompute_ratios(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` with the `RATIO_DEFINITIONS` columns recomputed from their inputs
    (DAYS_EMPLOYED_PERC is NaN for the DAYS_EMPLOYED sentinel, as in the kernel)."""
    out = frame.copy()
    for name, (num, den) in RATIO_DEFINITIONS.items():
        numerator = out[num].to_numpy(np.float64)
        if num == "DAYS_EMPLOYED":
            numerator = np.where(numerator == DAYS_EMPLOYED_SENTINEL, np.nan, numerator)
        with np.errstate(divide="ignore", invalid="ignore"):
            value = numerator / out[den].to_numpy(np.float64)
        out[name] = np.where(np.isfinite(value), value, np.nan)
    return out


# -- public entry points -------------------------------------------------------------------------
@dataclass(frozen=True)
class DatasetPaths:
    train: Path
    pool: Path


def generate_applications(
    n_rows: int, seed: int | np.random.SeedSequence, id_start: int = DEFAULT_ID_START
) -> pd.DataFrame:
    """`n_rows` synthetic applications: `SK_ID_CURR` (id_start, id_start+1, ...), `TARGET` (0/1)
    and the 419 `FEATURE_NAMES` as float64, drawn from `np.random.default_rng(seed)`."""
    if n_rows < 1:
        raise ValueError(f"n_rows must be >= 1, got {n_rows}")
    rng = np.random.default_rng(seed)
    cols = _Generator(rng, n_rows).run()
    missing = set(FEATURE_NAMES) - set(cols)
    extra = set(cols) - set(FEATURE_NAMES) - {TARGET_COLUMN}
    if missing or extra:  # a bug in this module, never the user's fault
        raise RuntimeError(f"generator mismatch: missing {sorted(missing)}, extra {sorted(extra)}")
    data = {ID_COLUMN: np.arange(id_start, id_start + n_rows, dtype=np.int64)}
    data[TARGET_COLUMN] = cols[TARGET_COLUMN].astype(np.int64)
    data.update({name: cols[name].astype(np.float64, copy=False) for name in FEATURE_NAMES})
    return pd.DataFrame(data)


def write_datasets(
    data_dir: str | os.PathLike,
    n_rows: int = 50_000,
    pool_rows: int = 50_000,
    seed: int = 42,
) -> DatasetPaths:
    """Write `train.parquet` (seed stream `seed`) and `pool.parquet` (unseen applications of the
    same distribution from the child stream `POOL_STREAM`, ids following the training ids)."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    train = generate_applications(n_rows, seed, id_start=DEFAULT_ID_START)
    pool_seed = np.random.SeedSequence(seed, spawn_key=(POOL_STREAM,))
    pool = generate_applications(pool_rows, pool_seed, id_start=DEFAULT_ID_START + n_rows)
    paths = DatasetPaths(train=data_dir / "train.parquet", pool=data_dir / "pool.parquet")
    for frame, path in ((train, paths.train), (pool, paths.pool)):
        # Write then rename, so a reader never sees a half-written file.
        tmp = path.with_name(f".{path.name}.tmp")
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    return paths


# -- generation ------------------------------------------------------------------------------------
def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _draw(
    rng: np.random.Generator, probs: Sequence[float], n: int, tilt: np.ndarray | None = None
) -> np.ndarray:
    """Category codes: `probs` for every row, or per row `probs * exp(tilt[i])` renormalized."""
    p = np.asarray(probs, dtype=np.float64)
    if tilt is None:
        return rng.choice(len(p), size=n, p=p / p.sum())
    weights = np.exp(np.log(np.maximum(p, 1e-12))[None, :] + tilt)
    cum = np.cumsum(weights, axis=1)
    u = rng.random(n) * cum[:, -1]
    return np.minimum((cum < u[:, None]).sum(axis=1), len(p) - 1)


def _kumaraswamy(u: np.ndarray, a: float, b: float) -> np.ndarray:
    """Inverse CDF of Kumaraswamy(a, b): a Beta-like law on [0, 1] with a closed-form quantile."""
    return (1.0 - (1.0 - u) ** (1.0 / b)) ** (1.0 / a)


def _round_to(x: np.ndarray, step: float) -> np.ndarray:
    return np.maximum(np.round(x / step), 1.0) * step


def _nb(rng: np.random.Generator, mean: float | np.ndarray, r: float, n: int) -> np.ndarray:
    """Negative binomial counts with the given mean and dispersion r (smaller r: heavier tail)."""
    mean = np.asarray(mean, dtype=np.float64)
    return rng.negative_binomial(r, r / (r + mean), size=n).astype(np.float64)


class _Records:
    """Child records (bureau credits, previous applications, monthly rows, ...) of n clients,
    sorted by owner, and the kernel's per-client aggregations of their values."""

    def __init__(self, counts: np.ndarray):
        self.counts = counts.astype(np.int64)
        self.n = len(counts)
        self.owner = np.repeat(np.arange(self.n), self.counts)
        self.total = len(self.owner)
        self.starts = np.cumsum(self.counts) - self.counts
        self.nonempty = self.counts > 0
        self.rank = np.arange(self.total) - self.starts[self.owner]  # position within its client

    def subset(self, mask: np.ndarray) -> "_Records":
        return _Records(np.bincount(self.owner[mask], minlength=self.n))

    def per_owner(self, values: np.ndarray) -> np.ndarray:
        return values[self.owner]

    def aggregate(self, values: np.ndarray, stat: str) -> np.ndarray:
        return self.aggregate_many(values, (stat,))[stat]

    def aggregate_many(self, values: np.ndarray, stats: Sequence[str]) -> dict[str, np.ndarray]:
        """Per-client statistics of `values` (one per record), NaN for clients without records;
        NaN values are skipped as pandas does (the SUM of only-NaN values is 0)."""
        ne = self.nonempty
        values = np.asarray(values, dtype=np.float64)
        valid = ~np.isnan(values)
        k = sums = None
        if {"SUM", "MEAN", "VAR"} & set(stats):
            k = np.bincount(self.owner, weights=valid, minlength=self.n)
            sums = np.bincount(self.owner, weights=np.where(valid, values, 0.0), minlength=self.n)
        result = {}
        for stat in stats:
            out = np.full(self.n, np.nan)
            if stat in ("SIZE", "COUNT"):
                out[ne] = self.counts[ne]
            elif stat == "SUM":
                out[ne] = sums[ne]
            elif stat == "MEAN":
                ok = k > 0
                out[ok] = sums[ok] / k[ok]
            elif stat in ("MIN", "MAX"):
                fill = np.inf if stat == "MIN" else -np.inf
                ufunc = np.minimum if stat == "MIN" else np.maximum
                if self.total:
                    red = ufunc.reduceat(np.where(valid, values, fill), self.starts[ne])
                    out[ne] = np.where(np.isinf(red), np.nan, red)
            elif stat == "VAR":  # ddof=1, NaN below two values, as pandas
                ok = k > 1
                mean = np.where(k > 0, sums / np.maximum(k, 1), 0.0)
                dev = np.where(valid, values - mean[self.owner], 0.0)
                ss = np.bincount(self.owner, weights=dev * dev, minlength=self.n)
                out[ok] = ss[ok] / (k[ok] - 1)
            elif stat == "NUNIQUE":  # small non-negative integer codes
                key = self.owner[valid].astype(np.float64) * 1024.0 + values[valid]
                owners = (np.unique(key) // 1024.0).astype(np.int64)
                out[ne] = np.bincount(owners, minlength=self.n)[ne]
            else:
                raise ValueError(f"unknown aggregation {stat}")
            result[stat] = out
        return result

    def aggregate_into(
        self,
        cols: dict[str, np.ndarray],
        prefix: str,
        spec: Sequence[tuple[str, Sequence[str]]],
        values: Mapping[str, np.ndarray],
    ) -> None:
        for var, stats in spec:
            for stat, out in self.aggregate_many(values[var], stats).items():
                cols[f"{prefix}_{var}_{stat}"] = out


def _nan_where(mask: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.where(mask, np.nan, values)


class _Generator:
    def __init__(self, rng: np.random.Generator, n: int):
        self.rng = rng
        self.n = n
        self.cols: dict[str, np.ndarray] = {}

    def run(self) -> dict[str, np.ndarray]:
        self._person()
        self._ext_sources()
        self._amounts()
        self._application_misc()
        self._building()
        self._bureau()
        self._previous()
        ratios = recompute_ratios(pd.DataFrame({k: self.cols[k] for k in _RATIO_INPUTS}))
        for name in RATIOS:
            self.cols[name] = ratios[name].to_numpy()
        logit = _risk_logit(self.cols)
        self.cols[TARGET_COLUMN] = (self.rng.random(self.n) < _sigmoid(logit)).astype(np.int64)
        return self.cols

    # -- helpers ---------------------------------------------------------------------------
    def _one_hot(self, field: str, codes: np.ndarray) -> None:
        group = ONE_HOT_GROUPS[field]
        for j, col in enumerate(group.columns):
            self.cols[col] = (codes == j).astype(np.float64)

    def _probs(self, field: str, exclude: Sequence[str] = ("nan",)) -> tuple[list[str], np.ndarray]:
        g = ONE_HOT_GROUPS[field]
        cats = [c for c in g.categories if c not in exclude]
        p = np.array([g.frequencies[g.categories.index(c)] for c in cats])
        return cats, p / p.sum()

    def _codes(self, field: str, chosen: np.ndarray, cats: Sequence[str]) -> np.ndarray:
        """Translate indices into `cats` to indices into the group's categories."""
        index = np.array([ONE_HOT_GROUPS[field].categories.index(c) for c in cats])
        return index[chosen]

    # -- demographics ----------------------------------------------------------------------
    def _person(self) -> None:
        rng, n = self.rng, self.n
        self.z_risk = rng.standard_normal(n)  # latent credit quality, higher = riskier
        self.z_wealth = rng.standard_normal(n)
        self.age = 20.5 + 48.5 * rng.beta(1.5, 1.7, n)
        male = rng.random(n) < ONE_HOT_GROUPS["CODE_GENDER"].frequencies[1]
        self.male = male
        self._one_hot("CODE_GENDER", male.astype(np.int64))

        # Pension age 55 for women, 60 for men (Russia/Kazakhstan, where the data comes from).
        pension_age = np.where(male, 59.5, 54.5)
        p_pension = 0.015 + 0.95 * _sigmoid((self.age - pension_age) / 1.2)
        pensioner = rng.random(n) < p_pension
        cats, p = self._probs("NAME_INCOME_TYPE", exclude=("Pensioner",))
        others = self._codes("NAME_INCOME_TYPE", _draw(rng, p, n), cats)
        pension_code = ONE_HOT_GROUPS["NAME_INCOME_TYPE"].categories.index("Pensioner")
        income_type = np.where(pensioner, pension_code, others)
        self.income_type = income_type
        self._one_hot("NAME_INCOME_TYPE", income_type)
        cats_all = ONE_HOT_GROUPS["NAME_INCOME_TYPE"].categories
        self.sentinel = pensioner | (income_type == cats_all.index("Unemployed"))
        self.commercial = income_type == cats_all.index("Commercial associate")

        edu = ONE_HOT_GROUPS["NAME_EDUCATION_TYPE"]
        tilt = np.zeros((n, len(edu.categories)))
        tilt[:, edu.categories.index("Higher education")] = 0.9 * self.z_wealth
        tilt[:, edu.categories.index("Academic degree")] = 1.2 * self.z_wealth
        tilt[:, edu.categories.index("Lower secondary")] = -0.6 * self.z_wealth
        tilt[:, edu.categories.index("Incomplete higher")] = (
            0.3 * self.z_wealth - (self.age - 35) / 20
        )
        self.education = _draw(rng, edu.frequencies, n, tilt)
        self._one_hot("NAME_EDUCATION_TYPE", self.education)
        self.higher_edu = self.education == edu.categories.index("Higher education")

        fam = ONE_HOT_GROUPS["NAME_FAMILY_STATUS"]
        tilt = np.zeros((n, len(fam.categories)))
        tilt[:, fam.categories.index("Single / not married")] = -(self.age - 35) / 8
        tilt[:, fam.categories.index("Widow")] = (self.age - 55) / 6 + 0.8 * (~male)
        family = _draw(rng, fam.frequencies, n, tilt)
        self._one_hot("NAME_FAMILY_STATUS", family)
        couple = np.isin(
            family, [fam.categories.index("Married"), fam.categories.index("Civil marriage")]
        )
        lam = 0.95 * np.where(couple, 1.0, 0.45) * np.exp(-(((self.age - 36) / 10) ** 2))
        children = np.minimum(rng.poisson(lam), 8).astype(np.float64)
        self.cols["CNT_CHILDREN"] = children
        self.cols["CNT_FAM_MEMBERS"] = children + np.where(couple, 2.0, 1.0)

        # Years of employment; the sentinel replaces it for pensioners and the unemployed.
        years = np.minimum(rng.gamma(1.1, 5.5, n), np.maximum(self.age - 18.5, 0.1))
        self.employed_years = np.where(self.sentinel, np.nan, years)
        self.cols["DAYS_BIRTH"] = -np.floor(self.age * 365.25)
        self.cols["DAYS_EMPLOYED"] = np.where(
            self.sentinel, DAYS_EMPLOYED_SENTINEL, -np.floor(years * 365.25) - 1
        )

        occ = ONE_HOT_GROUPS["OCCUPATION_TYPE"]
        cats, p = self._probs("OCCUPATION_TYPE")
        skilled = {"Managers": 1, "High skill tech staff": 1, "Accountants": 1, "IT staff": 1}
        skilled |= {"Core staff": 0.5, "HR staff": 0.5, "Medicine staff": 0.3}
        manual = ("Laborers", "Drivers", "Low-skill Laborers", "Cleaning staff", "Cooking staff")
        skill = np.array([skilled.get(c, -0.8 if c in manual else 0.0) for c in cats])
        tilt = np.outer(self.higher_edu * 1.0 - 0.3, skill) * 0.9
        drawn = self._codes("OCCUPATION_TYPE", _draw(rng, p, n, tilt), cats)
        no_occupation = np.where(self.sentinel, rng.random(n) < 0.98, rng.random(n) < 0.166)
        self.occupation = np.where(no_occupation, occ.categories.index("nan"), drawn)
        self._one_hot("OCCUPATION_TYPE", self.occupation)

        org = ONE_HOT_GROUPS["ORGANIZATION_TYPE"]
        cats, p = self._probs("ORGANIZATION_TYPE", exclude=("XNA",))
        drawn = self._codes("ORGANIZATION_TYPE", _draw(rng, p, n), cats)
        self._one_hot(
            "ORGANIZATION_TYPE", np.where(self.sentinel, org.categories.index("XNA"), drawn)
        )

        for field in ("NAME_TYPE_SUITE", "NAME_HOUSING_TYPE", "WEEKDAY_APPR_PROCESS_START"):
            self._one_hot(field, _draw(rng, ONE_HOT_GROUPS[field].frequencies, n))

    def _ext_sources(self) -> None:
        rng, n = self.rng, self.n
        age_z = (self.age - 43.5) / 11.5
        # (loading on -risk, loading on age, Kumaraswamy a, b, scale, missing share)
        specs = {
            "EXT_SOURCE_1": (0.45, 0.55, 2.4, 2.6, 0.96, 0.56),
            "EXT_SOURCE_2": (0.62, 0.10, 2.6, 2.4, 0.86, 0.002),
            "EXT_SOURCE_3": (0.60, 0.22, 2.5, 2.6, 0.90, 0.20),
        }
        for name, (lr, la, a, b, scale, missing) in specs.items():
            latent = -lr * self.z_risk + la * age_z
            latent = latent + math.sqrt(max(1 - lr**2 - la**2, 0.05)) * rng.standard_normal(n)
            latent /= math.sqrt(lr**2 + la**2 + max(1 - lr**2 - la**2, 0.05))
            value = scale * _kumaraswamy(ndtr(latent), a, b)
            self.cols[name] = np.where(rng.random(n) < missing, np.nan, value)

    def _amounts(self) -> None:
        rng, n = self.rng, self.n
        revolving = rng.random(n) < ONE_HOT_GROUPS["NAME_CONTRACT_TYPE"].frequencies[1]
        self.revolving = revolving
        self._one_hot("NAME_CONTRACT_TYPE", revolving.astype(np.int64))
        log_income = (
            11.88
            + 0.33 * self.z_wealth
            + 0.12 * self.commercial
            - 0.25 * self.sentinel
            + 0.12 * self.male
            + 0.3 * rng.standard_t(5, n)
        )
        income = _round_to(np.exp(np.clip(log_income, 10.1, 17.5)), 4500.0)
        log_goods = 12.95 + 0.5 * (log_income - 11.88) + 0.15 * self.z_wealth
        log_goods = log_goods + 0.55 * rng.standard_normal(n)
        goods = _round_to(np.exp(np.clip(log_goods, 10.3, 15.2)), 4500.0)
        fee = np.where(rng.random(n) < 0.33, 1.0, rng.uniform(1.03, 1.30, n))
        credit = np.round(goods * fee * 2) / 2
        # Revolving loans are round credit limits with goods price = limit (sometimes missing).
        limit = _round_to(np.exp(11.9 + 0.5 * (log_income - 11.88)), 22500.0)
        credit = np.where(revolving, limit, credit)
        goods = np.where(revolving, np.where(rng.random(n) < 0.01, np.nan, limit), goods)

        terms = np.array([6, 10, 12, 18, 24, 30, 36, 48, 60], dtype=np.float64)
        term_p = np.array([0.01, 0.04, 0.16, 0.12, 0.22, 0.10, 0.17, 0.10, 0.08])
        term = terms[_draw(rng, term_p, n, np.outer(0.25 * self.z_risk, np.log(terms / 24)))]
        rate = rng.uniform(0.005, 0.016, n) + 0.002 * np.clip(self.z_risk, -2, 3)
        rate = np.maximum(rate, 0.004)
        annuity = credit * rate / (1.0 - (1.0 + rate) ** -term)
        annuity = np.where(revolving, 0.05 * credit, annuity)
        self.cols["AMT_INCOME_TOTAL"] = income
        self.cols["AMT_CREDIT"] = credit
        self.cols["AMT_GOODS_PRICE"] = goods
        self.cols["AMT_ANNUITY"] = np.round(annuity * 2) / 2

    def _application_misc(self) -> None:
        rng, n, cols = self.rng, self.n, self.cols
        age = self.age
        own_car = rng.random(n) < _sigmoid(-0.95 + 0.6 * self.z_wealth + 0.6 * self.male)
        cols["FLAG_OWN_CAR"] = own_car * 1.0
        cols["OWN_CAR_AGE"] = np.where(own_car, np.floor(rng.gamma(1.8, 6.5, n)), np.nan)
        cols["FLAG_OWN_REALTY"] = (rng.random(n) < 0.62 + 0.0025 * (age - 40)) * 1.0
        cols["FLAG_MOBIL"] = np.ones(n)
        cols["FLAG_EMP_PHONE"] = (~self.sentinel) * 1.0
        cols["FLAG_WORK_PHONE"] = ((~self.sentinel) & (rng.random(n) < 0.24)) * 1.0
        cols["FLAG_CONT_MOBILE"] = (rng.random(n) < 0.998) * 1.0
        cols["FLAG_PHONE"] = (rng.random(n) < 0.22 + 0.0035 * (age - 30)) * 1.0
        cols["FLAG_EMAIL"] = (rng.random(n) < 0.04 + 0.06 * self.higher_edu) * 1.0
        doc3 = rng.random(n) < np.where(self.sentinel, 0.45, _DOCUMENT_RATES[3] / 0.82 - 0.1)
        for k, rate in _DOCUMENT_RATES.items():
            if k == 3:
                cols["FLAG_DOCUMENT_3"] = doc3 * 1.0
            elif k in (6, 8):  # alternatives to document 3
                cols[f"FLAG_DOCUMENT_{k}"] = ((~doc3) & (rng.random(n) < rate / 0.3)) * 1.0
            else:
                cols[f"FLAG_DOCUMENT_{k}"] = (rng.random(n) < rate) * 1.0

        working = ~self.sentinel
        live_not_reg_city = rng.random(n) < 0.078
        work_not_live_city = working & (rng.random(n) < 0.215)
        cols["REG_CITY_NOT_LIVE_CITY"] = live_not_reg_city * 1.0
        cols["LIVE_CITY_NOT_WORK_CITY"] = work_not_live_city * 1.0
        cols["REG_CITY_NOT_WORK_CITY"] = (
            work_not_live_city | (working & live_not_reg_city & (rng.random(n) < 0.7))
        ) * 1.0
        reg_region = live_not_reg_city & (rng.random(n) < 0.19)
        live_region_work = work_not_live_city & (rng.random(n) < 0.22)
        cols["REG_REGION_NOT_LIVE_REGION"] = reg_region * 1.0
        cols["LIVE_REGION_NOT_WORK_REGION"] = live_region_work * 1.0
        cols["REG_REGION_NOT_WORK_REGION"] = (live_region_work | (working & reg_region)) * 1.0

        region = _draw(rng, _REGION_FREQ, n)
        cols["REGION_POPULATION_RELATIVE"] = _REGION_POPULATION[region]
        cols["REGION_RATING_CLIENT"] = _REGION_RATING[region]
        shift = np.where(rng.random(n) < 0.06, rng.choice([-1.0, 1.0], n), 0.0)
        cols["REGION_RATING_CLIENT_W_CITY"] = np.clip(_REGION_RATING[region] + shift, 1, 3)
        cols["HOUR_APPR_PROCESS_START"] = np.clip(np.round(rng.normal(12.1, 3.3, n)), 0, 23)

        reg_years = np.maximum(age - 18, 0.5) * rng.beta(1.5, 1.5, n)
        cols["DAYS_REGISTRATION"] = -np.floor(reg_years * 365.25)
        renewal = np.where(age >= 45, 45.0, 20.0)
        id_years = rng.uniform(0, 1, n) ** 0.7 * np.minimum(age - renewal + 0.2, 19.7)
        cols["DAYS_ID_PUBLISH"] = -np.floor(id_years * 365.25)
        phone = np.minimum(np.floor(rng.exponential(1000.0, n)), 4292.0)
        cols["DAYS_LAST_PHONE_CHANGE"] = -np.where(rng.random(n) < 0.12, 0.0, phone)

        social_missing = rng.random(n) < 0.0033
        obs30 = _nb(rng, 1.42, 0.45, n)
        obs60 = obs30 + (rng.random(n) < 0.02)
        p_def = np.clip(0.09 * np.exp(0.35 * self.z_risk), 0, 0.9)
        def30 = rng.binomial(obs30.astype(np.int64), p_def).astype(np.float64)
        def60 = rng.binomial(def30.astype(np.int64), 0.72).astype(np.float64)
        for name, v in (
            ("OBS_30_CNT_SOCIAL_CIRCLE", obs30),
            ("DEF_30_CNT_SOCIAL_CIRCLE", def30),
            ("OBS_60_CNT_SOCIAL_CIRCLE", obs60),
            ("DEF_60_CNT_SOCIAL_CIRCLE", def60),
        ):
            cols[name] = _nan_where(social_missing, v)

        req_missing = rng.random(n) < 0.135
        req_scale = np.exp(0.15 * self.z_risk)
        for name, (mean, r) in zip(
            BUREAU_REQUESTS,
            ((0.0064, 0.3), (0.007, 0.3), (0.034, 0.3), (0.27, 0.25), (0.27, 0.6), (1.9, 1.6)),
            strict=True,
        ):
            cols[name] = _nan_where(req_missing, _nb(rng, mean * req_scale, r, n))

    def _building(self) -> None:
        rng, n, cols = self.rng, self.n, self.cols
        no_building = rng.random(n) < _NO_BUILDING_SHARE
        size = rng.standard_normal(n)
        for spec in _BUILDINGS:
            z = spec.size_loading * size + math.sqrt(1 - spec.size_loading**2) * (
                rng.standard_normal(n)
            )
            if spec.upper:
                value = 1.0 - (1.0 - spec.median) * np.exp(spec.sigma * z)
            else:
                value = spec.median * np.exp(spec.sigma * z)
            value = np.where(rng.random(n) < spec.zero_share, 0.0, np.clip(value, 0.0, 1.0))
            extra = (spec.missing - _NO_BUILDING_SHARE) / (1 - _NO_BUILDING_SHARE)
            missing = no_building | (rng.random(n) < max(extra, 0.0))
            cols[spec.name] = _nan_where(missing, np.round(value, 4))
        extra_missing = {"FONDKAPREMONT_MODE": 0.39, "HOUSETYPE_MODE": 0.037}
        extra_missing |= {"WALLSMATERIAL_MODE": 0.048, "EMERGENCYSTATE_MODE": 0.0}
        for field, extra in extra_missing.items():
            group = ONE_HOT_GROUPS[field]
            cats, p = self._probs(field)
            drawn = self._codes(field, _draw(rng, p, n), cats)
            missing = no_building | (rng.random(n) < extra)
            self._one_hot(field, np.where(missing, group.categories.index("nan"), drawn))

    # -- bureau ----------------------------------------------------------------------------
    def _bureau(self) -> None:
        rng, n, cols = self.rng, self.n, self.cols
        has = rng.random(n) < 0.857
        counts = np.where(has, 1 + _nb(rng, 4.6, 1.5, n), 0)
        rec = _Records(counts)
        m = rec.total
        z = rec.per_owner(self.z_risk)
        wealth = rec.per_owner(self.z_wealth)

        u = rng.random(m)
        p_active = np.clip(0.37 + 0.06 * z, 0.05, 0.95)
        active = u < p_active
        sold = u > 0.996
        closed = ~active & ~sold
        ctype_p = np.array([0.73, 0.235, 0.017, 0.011, 0.007])
        tilt = np.zeros((m, 5))
        tilt[:, 4] = 0.9 * z
        ctype = _draw(rng, ctype_p, m, tilt)
        card = ctype == 1

        days_credit = np.where(
            active, -np.floor(rng.exponential(650.0, m)), -np.floor(150 + rng.gamma(2.0, 650, m))
        )
        days_credit = np.maximum(days_credit, -2922.0)
        term_months = np.array([18.0, 36.0, 48.0, 240.0, 3.0])[ctype] * rng.uniform(0.5, 1.5, m)
        duration = np.floor(term_months * 30.4)
        repaid = np.floor(duration * np.where(active, 1.0, rng.uniform(0.3, 1.0, m)))
        end = days_credit + repaid
        end = np.where(closed & (end > 0), -rng.integers(1, 120, m).astype(np.float64), end)
        end = _nan_where(rng.random(m) < np.where(card, 0.3, 0.04), end)
        update = np.where(
            active,
            -rng.integers(0, 40, m).astype(np.float64),
            np.minimum(np.where(np.isnan(end), days_credit + 30, end) + rng.integers(0, 30, m), 0),
        )
        overdue_now = active & (rng.random(m) < 0.006 * np.exp(0.9 * z))
        day_overdue = np.where(overdue_now, np.ceil(rng.exponential(200.0, m)), 0.0)
        median = np.array([100_000.0, 135_000.0, 600_000.0, 2_500_000.0, 20_000.0])[ctype]
        amount = np.round(median * np.exp(0.9 * rng.standard_normal(m) + 0.3 * wealth), 1)
        debt_share = np.clip(rng.beta(2.0, 2.0, m) + 0.08 * z, 0, 1)
        debt = np.where(active, np.round(amount * debt_share, 1), 0.0)
        debt = _nan_where(rng.random(m) < 0.15, debt)
        limit = np.where(card & active, np.round(amount * rng.uniform(0, 1, m), 1), 0.0)
        limit = _nan_where(rng.random(m) < 0.34, limit)
        sum_overdue = np.where(overdue_now, np.round(amount * rng.uniform(0, 0.2, m), 1), 0.0)
        had_overdue = rng.random(m) < np.clip(0.08 * np.exp(0.6 * z), 0, 1)
        max_overdue = np.where(had_overdue, np.round(np.exp(rng.normal(8.0, 1.5, m)), 1), 0.0)
        max_overdue = _nan_where(rng.random(m) < 0.65, max_overdue)
        annuity = _nan_where(rng.random(m) < 0.71, np.round(amount / term_months, 1))
        prolong = (rng.random(m) < 0.005) * 1.0

        has_balance = rec.per_owner(rng.random(n) < 0.35)
        mb_min = np.maximum(np.floor(days_credit / 30.4), -96.0)
        mb_max = np.where(active | np.isnan(end), 0.0, np.minimum(np.floor(end / 30.4), 0.0))
        mb_max = np.maximum(mb_max, mb_min)
        values = {
            "DAYS_CREDIT": days_credit,
            "DAYS_CREDIT_ENDDATE": end,
            "DAYS_CREDIT_UPDATE": update,
            "CREDIT_DAY_OVERDUE": day_overdue,
            "AMT_CREDIT_MAX_OVERDUE": max_overdue,
            "AMT_CREDIT_SUM": amount,
            "AMT_CREDIT_SUM_DEBT": debt,
            "AMT_CREDIT_SUM_OVERDUE": sum_overdue,
            "AMT_CREDIT_SUM_LIMIT": limit,
            "AMT_ANNUITY": annuity,
            "CNT_CREDIT_PROLONG": prolong,
            "MONTHS_BALANCE_MIN": _nan_where(~has_balance, mb_min),
            "MONTHS_BALANCE_MAX": _nan_where(~has_balance, mb_max),
            "MONTHS_BALANCE_SIZE": _nan_where(~has_balance, mb_max - mb_min + 1),
        }
        status = np.where(active, 0, np.where(closed, 1, 2))
        for j, c in enumerate(_CREDIT_ACTIVE):
            values[f"CREDIT_ACTIVE_{c}"] = (status == j) * 1.0
        for j, c in enumerate(_CREDIT_TYPES):
            values[f"CREDIT_TYPE_{c}"] = (ctype == j) * 1.0
        rec.aggregate_into(cols, "BURO", _BUREAU_NUM + _BUREAU_CAT, values)
        for prefix, spec, mask in (
            ("ACTIVE", _ACTIVE_NUM, active),
            ("CLOSED", _CLOSED_NUM, closed),
        ):
            sub = rec.subset(mask)
            sub.aggregate_into(cols, prefix, spec, {k: v[mask] for k, v in values.items()})

    # -- previous applications and what follows from them -------------------------------------
    def _previous(self) -> None:
        rng, n, cols = self.rng, self.n, self.cols
        has = rng.random(n) < 0.946
        counts = np.where(has, 1 + _nb(rng, 3.9, 1.2, n), 0)
        rec = _Records(counts)
        m = rec.total
        z = rec.per_owner(self.z_risk)
        wealth = rec.per_owner(self.z_wealth)

        ptype = _draw(rng, [0.43, 0.42, 0.15], m)  # cash, consumer, revolving
        p_refused = _sigmoid(math.log(0.15 / 0.85) + 0.7 * z)
        u = rng.random(m)
        status = np.select(
            [u < p_refused, u < p_refused + 0.17, u < p_refused + 0.186], [1, 2, 3], default=0
        )  # 0 approved, 1 refused, 2 canceled, 3 unused offer
        # Almost every client with a history got one instalment loan (POS/installment rows).
        first_loan = (rec.rank == 0) & (rng.random(m) < 0.9)
        status = np.where(first_loan, 0, status)
        ptype = np.where(first_loan & (ptype == 2), 1, ptype)
        canceled = status == 2
        med = np.array([225_000.0, 60_000.0, 135_000.0])[ptype]
        application = _round_to(med * np.exp(0.8 * rng.standard_normal(m) + 0.25 * wealth), 450.0)
        application = np.where(canceled & (rng.random(m) < 0.85), 0.0, application)
        factor = np.where(
            status == 1,
            rng.uniform(0.9, 1.1, m),
            np.where(ptype == 1, rng.uniform(0.95, 1.2, m), 1.0),
        )
        factor = np.where(ptype == 0, rng.uniform(1.0, 1.15, m), factor)
        credit = np.round(application * factor, 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            app_credit = np.where(credit > 0, application / credit, np.nan)
        consumer = ptype == 1
        down = np.where(rng.random(m) < 0.5, 0.0, np.round(np.exp(rng.normal(8.7, 1.0, m)), 1))
        down = np.minimum(down, application)
        down = np.where(consumer & (rng.random(m) < 0.9) & ~canceled, down, np.nan)
        goods = np.where(consumer | ((ptype == 0) & (rng.random(m) < 0.5)), application, np.nan)
        goods = np.where(application > 0, goods, np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            rate_down = np.where(goods > 0, np.clip(down / goods, 0, 1), np.nan)
        rate_down = _nan_where(np.isnan(down), rate_down)
        hour = np.clip(np.round(rng.normal(12.5, 3.3, m)), 0, 23)
        decision = -np.minimum(1 + np.floor(rng.exponential(880.0, m)), 2922.0)
        term_choices = np.array([6.0, 10.0, 12.0, 18.0, 24.0, 36.0, 48.0, 60.0])
        term_tilt = np.outer(0.3 * z, np.log(term_choices / 18))
        term = term_choices[
            _draw(rng, [0.1, 0.15, 0.25, 0.1, 0.18, 0.12, 0.05, 0.05], m, term_tilt)
        ]
        term = np.where(ptype == 0, np.maximum(term, 12.0), np.minimum(term, 24.0))
        cnt_payment = np.where(ptype == 2, 0.0, term)
        cnt_payment = _nan_where(canceled, cnt_payment)
        monthly = rng.uniform(0.01, 0.03, m)
        annuity = np.where(
            ptype == 2,
            0.05 * credit,
            credit * monthly / (1 - (1 + monthly) ** -np.maximum(term, 1.0)),
        )
        annuity = _nan_where(canceled, np.round(annuity, 1))
        ytilt = np.zeros((m, 4))
        ytilt[:, 0] = 0.5 * z
        ytilt[:, 3] = -0.4 * z
        yield_group = np.where(canceled, -1, _draw(rng, [0.30, 0.33, 0.28, 0.09], m, ytilt))
        values = {
            "AMT_ANNUITY": annuity,
            "AMT_APPLICATION": application,
            "AMT_CREDIT": credit,
            "APP_CREDIT_PERC": app_credit,
            "AMT_DOWN_PAYMENT": down,
            "AMT_GOODS_PRICE": goods,
            "HOUR_APPR_PROCESS_START": hour,
            "RATE_DOWN_PAYMENT": rate_down,
            "DAYS_DECISION": decision,
            "CNT_PAYMENT": cnt_payment,
        }
        for j, c in enumerate(_PREV_STATUSES):
            values[f"NAME_CONTRACT_STATUS_{c}"] = (status == j) * 1.0
        for j, c in enumerate(_PREV_TYPES):
            values[f"NAME_CONTRACT_TYPE_{c}"] = (ptype == j) * 1.0
        for j, c in enumerate(_YIELD_GROUPS):
            values[f"NAME_YIELD_GROUP_{c}"] = (yield_group == j) * 1.0
        rec.aggregate_into(cols, "PREV", _PREV_NUM + _PREV_CAT, values)
        approved, refused = status == 0, status == 1
        for prefix, spec, mask in (
            ("APPROVED", _APPROVED_NUM, approved),
            ("REFUSED", _REFUSED_NUM, refused),
        ):
            sub = rec.subset(mask)
            sub.aggregate_into(cols, prefix, spec, {k: v[mask] for k, v in values.items()})

        # Approved instalment loans produce POS and installment rows; revolving ones, card rows.
        loans = approved & (ptype != 2)
        months_open = np.ceil(-decision / 30.4)
        self._pos_and_installments(
            rec.owner[loans],
            months_open[loans],
            term[loans],
            decision[loans],
            annuity[loans],
        )
        cards = approved & (ptype == 2)
        self._credit_cards(rec.owner[cards], months_open[cards], credit[cards])

    def _pos_and_installments(
        self,
        owner: np.ndarray,
        months_open: np.ndarray,
        term: np.ndarray,
        decision: np.ndarray,
        annuity: np.ndarray,
    ) -> None:
        rng, n, cols = self.rng, self.n, self.cols
        # POS: one row per month since the loan started (the last 96 months), +1 once completed.
        pos_len = np.minimum(np.minimum(months_open, term + 1), 96).astype(np.int64)
        pos_len = np.maximum(pos_len, 1)
        loan_idx = np.repeat(np.arange(len(owner)), pos_len)
        k = np.arange(len(loan_idx)) - (np.cumsum(pos_len) - pos_len)[loan_idx]
        pos = _Records(np.bincount(owner[loan_idx], minlength=n))
        z = self.z_risk[owner[loan_idx]]
        late = rng.random(len(k)) < np.clip(0.012 * np.exp(1.1 * z), 0, 0.9)
        dpd = np.where(late, np.ceil(rng.exponential(12.0, len(k))), 0.0)
        dpd_def = np.where(late & (rng.random(len(k)) < 0.4), dpd, 0.0)
        status = np.where(k >= term[loan_idx], 1, 0)
        status = np.where((k == 0) & (rng.random(len(k)) < 0.03), 2, status)
        values = {
            "MONTHS_BALANCE": -(months_open[loan_idx] - k).clip(min=1),
            "SK_DPD": dpd,
            "SK_DPD_DEF": dpd_def,
        }
        for j, c in enumerate(_POS_STATUSES):
            values[f"NAME_CONTRACT_STATUS_{c}"] = (status == j) * 1.0
        pos.aggregate_into(cols, "POS", _POS, values)
        cols["POS_COUNT"] = pos.aggregate(values["SK_DPD"], "COUNT")

        # Installments: one row per instalment due so far.
        inst_len = np.maximum(np.minimum(months_open, term), 1).astype(np.int64)
        loan_idx = np.repeat(np.arange(len(owner)), inst_len)
        k = np.arange(len(loan_idx)) - (np.cumsum(inst_len) - inst_len)[loan_idx]
        inst = _Records(np.bincount(owner[loan_idx], minlength=n))
        t = len(k)
        z = self.z_risk[owner[loan_idx]]
        due = decision[loan_idx] + np.floor(30.4 * (k + 1))
        late = rng.random(t) < np.clip(0.05 * np.exp(0.8 * z), 0, 0.95)
        delay = np.where(
            late, np.ceil(rng.exponential(12.0, t)), -np.floor(rng.gamma(1.0, 10.0, t))
        )
        entry = due + delay
        amount = np.nan_to_num(annuity[loan_idx], nan=0.0)
        partial = rng.random(t) < np.clip(0.03 * np.exp(0.8 * z), 0, 0.9)
        paid = np.round(np.where(partial, amount * rng.uniform(0, 1, t), amount), 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            perc = np.where(amount > 0, paid / amount, np.nan)
        # The version is a property of the loan, changed for a few of its instalments.
        loan_version = _draw(rng, [0.15, 0.80, 0.05], len(owner)).astype(np.float64)
        version = loan_version[loan_idx] + (rng.random(t) < 0.02)
        values = {
            "NUM_INSTALMENT_VERSION": version,
            "DPD": np.maximum(entry - due, 0.0),
            "DBD": np.maximum(due - entry, 0.0),
            "PAYMENT_PERC": perc,
            "PAYMENT_DIFF": amount - paid,
            "AMT_INSTALMENT": amount,
            "AMT_PAYMENT": paid,
            "DAYS_ENTRY_PAYMENT": entry,
        }
        inst.aggregate_into(cols, "INSTAL", _INSTAL, values)
        cols["INSTAL_COUNT"] = inst.aggregate(amount, "COUNT")

    def _credit_cards(self, owner: np.ndarray, months_open: np.ndarray, limit: np.ndarray) -> None:
        rng, n, cols = self.rng, self.n, self.cols
        # One card per client (the first approved revolving loan): monthly rows, last 96 months.
        first = np.unique(owner, return_index=True)[1]
        owner, months_open, limit = owner[first], months_open[first], limit[first]
        length = np.clip(months_open, 1, 96).astype(np.int64)
        card_idx = np.repeat(np.arange(len(owner)), length)
        k = np.arange(len(card_idx)) - (np.cumsum(length) - length)[card_idx]
        rec = _Records(np.bincount(owner[card_idx], minlength=n))
        t = len(k)
        z = self.z_risk[owner[card_idx]]
        grows = k >= (length[card_idx] * rng.uniform(0, 1, len(owner))[card_idx]).astype(np.int64)
        card_limit = limit[card_idx] * np.where(grows, 1.0, 0.6)
        usage = np.clip(rng.beta(0.8, 2.0, len(owner)) + 0.12 * self.z_risk[owner], 0, 1)
        inactive = rng.random(len(owner)) < 0.3
        util = np.where(
            inactive[card_idx],
            0.0,
            np.clip(usage[card_idx] + 0.08 * rng.standard_normal(t), 0, 1.05),
        )
        balance = np.round(card_limit * util, 2)
        draws = (~inactive[card_idx]) & (rng.random(t) < 0.35)
        drawings = np.where(draws, np.round(np.exp(rng.normal(9.0, 1.0, t)), 2), 0.0)
        unreported = rng.random(t) < 0.2
        atm_share = np.where(rng.random(t) < 0.5, 1.0, 0.0)
        cnt_draw = np.where(draws, 1 + rng.poisson(1.5, t), 0).astype(np.float64)
        late = rng.random(t) < np.clip(0.01 * np.exp(1.0 * z), 0, 0.9)
        values = {
            "AMT_BALANCE": balance,
            "AMT_CREDIT_LIMIT_ACTUAL": card_limit,
            "AMT_DRAWINGS_CURRENT": drawings,
            "AMT_DRAWINGS_ATM_CURRENT": _nan_where(unreported, drawings * atm_share),
            "AMT_PAYMENT_CURRENT": _nan_where(
                unreported, np.round(balance * rng.uniform(0.05, 0.3, t), 2)
            ),
            "CNT_DRAWINGS_CURRENT": cnt_draw,
            "CNT_DRAWINGS_ATM_CURRENT": _nan_where(unreported, cnt_draw * atm_share),
            "AMT_TOTAL_RECEIVABLE": np.round(balance * 1.01, 2),
            "AMT_INST_MIN_REGULARITY": np.round(balance * 0.05, 2),
            "MONTHS_BALANCE": -(months_open[card_idx] - k).clip(min=1),
            "CNT_INSTALMENT_MATURE_CUM": np.floor(k * 0.6),
            "SK_DPD": np.where(late, np.ceil(rng.exponential(10.0, t)), 0.0),
        }
        rec.aggregate_into(cols, "CC", _CC, values)
        cols["CC_COUNT"] = rec.aggregate(balance, "COUNT")


# 81 regions: relative populations and ratings, a fixed table (the same for every seed).
def _region_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    table_rng = np.random.default_rng(20180517)
    population = np.sort(np.exp(table_rng.uniform(np.log(0.00029), np.log(0.0725), 81)))
    population[-1] = 0.072508
    freq = population**0.75 * table_rng.uniform(0.5, 1.5, 81)
    freq[-1] *= 2.0
    freq /= freq.sum()
    rating = np.where(population > 0.045, 1.0, np.where(population > 0.006, 2.0, 3.0))
    return np.round(population, 6), freq, rating


_REGION_POPULATION, _REGION_FREQ, _REGION_RATING = _region_table()
_RATIO_INPUTS = sorted({c for pair in RATIO_DEFINITIONS.values() for c in pair})


# -- the risk model behind TARGET -------------------------------------------------------------
# Intercept calibrated for a default rate near 8%, and a common scale of every term calibrated
# so that LightGBM reaches a held-out AUC near 0.75 (see the generator and training tests).
_RISK_INTERCEPT = -3.21
_RISK_SCALE = 0.92


def _risk_logit(cols: Mapping[str, np.ndarray]) -> np.ndarray:
    """The log-odds of default, a fixed function of the generated features (documented in the
    module docstring). Missing values contribute a fixed amount (0 unless stated)."""

    def col(name: str) -> np.ndarray:
        return np.asarray(cols[name], dtype=np.float64)

    def centred(name: str, centre: float, scale: float, missing: float = 0.0) -> np.ndarray:
        v = (col(name) - centre) / scale
        return np.where(np.isnan(v), missing, np.clip(v, -4, 4))

    logit = np.zeros(len(col("AMT_CREDIT")))
    logit -= 0.60 * centred("EXT_SOURCE_2", 0.51, 0.19)
    logit -= 0.58 * centred("EXT_SOURCE_3", 0.51, 0.19, missing=-0.35)
    logit -= 0.32 * centred("EXT_SOURCE_1", 0.50, 0.21)
    logit -= 0.14 * centred("DAYS_BIRTH", -16000, 4300) * -1.0  # younger: riskier
    employed = col("DAYS_EMPLOYED")
    years = np.where(employed == DAYS_EMPLOYED_SENTINEL, np.nan, -employed / 365.25)
    logit += np.where(np.isnan(years), -0.15, -0.22 * (np.log1p(years) - np.log1p(5.0)))
    with np.errstate(divide="ignore", invalid="ignore"):
        credit_goods = col("AMT_CREDIT") / col("AMT_GOODS_PRICE")
    logit += 0.22 * np.where(
        np.isnan(credit_goods), 0.0, np.clip((credit_goods - 1.1) / 0.1, -2, 3)
    )
    pr = centred("PAYMENT_RATE", 0.05, 0.02)
    logit += 0.22 * pr - 0.10 * pr**2
    logit += 0.10 * centred("ANNUITY_INCOME_PERC", 0.18, 0.10)
    logit -= 0.10 * np.clip((np.log(col("AMT_CREDIT")) - 13.0) / 0.6, -3, 3)
    logit += 0.30 * col("CODE_GENDER_M")
    logit -= 0.30 * col("NAME_EDUCATION_TYPE_Higher education")
    logit -= 0.80 * col("NAME_EDUCATION_TYPE_Academic degree")
    logit += 0.25 * col("NAME_EDUCATION_TYPE_Lower secondary")
    logit += 0.22 * (col("REGION_RATING_CLIENT_W_CITY") - 2)
    logit -= 0.15 * col("FLAG_OWN_CAR")
    logit -= 0.35 * col("NAME_CONTRACT_TYPE_Revolving loans")
    for occupation, weight in (
        ("Laborers", 0.12),
        ("Drivers", 0.25),
        ("Low-skill Laborers", 0.5),
        ("Security staff", 0.15),
        ("Waiters/barmen staff", 0.2),
        ("Cooking staff", 0.12),
        ("Accountants", -0.3),
        ("Managers", -0.15),
        ("High skill tech staff", -0.2),
        ("Core staff", -0.12),
    ):
        logit += weight * col(f"OCCUPATION_TYPE_{occupation}")
    logit += 0.15 * col("FLAG_DOCUMENT_3")
    logit += 0.15 * col("REG_CITY_NOT_WORK_CITY")
    logit += 0.15 * np.minimum(np.nan_to_num(col("DEF_30_CNT_SOCIAL_CIRCLE")), 3)
    logit += 0.08 * centred("DAYS_ID_PUBLISH", -3000, 1500)
    logit += 0.08 * centred("DAYS_LAST_PHONE_CHANGE", -1000, 800)

    logit += 0.12 * np.isnan(col("BURO_DAYS_CREDIT_MAX"))
    logit += 0.12 * centred("BURO_DAYS_CREDIT_MAX", -500, 500)
    with np.errstate(divide="ignore", invalid="ignore"):
        debt_share = col("ACTIVE_AMT_CREDIT_SUM_DEBT_SUM") / col("ACTIVE_AMT_CREDIT_SUM_SUM")
    logit += 0.35 * np.where(np.isfinite(debt_share), np.clip(debt_share, 0, 1.5) - 0.5, 0.0)
    logit += 0.35 * (np.nan_to_num(col("BURO_CREDIT_DAY_OVERDUE_MAX")) > 0)
    logit += 0.6 * np.nan_to_num(col("BURO_CREDIT_TYPE_Microloan_MEAN"))
    logit += 0.8 * centred("PREV_NAME_CONTRACT_STATUS_Refused_MEAN", 0.17, 1.0)
    logit += 0.08 * centred("APPROVED_CNT_PAYMENT_MEAN", 14, 8)
    logit += 0.15 * np.log1p(np.nan_to_num(col("INSTAL_DPD_MEAN")))
    logit += 0.8 * np.clip(1.0 - np.nan_to_num(col("INSTAL_PAYMENT_PERC_MEAN"), nan=1.0), 0, 1)
    logit += 0.25 * (np.nan_to_num(col("POS_SK_DPD_DEF_MAX")) > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        usage = col("CC_AMT_BALANCE_MEAN") / col("CC_AMT_CREDIT_LIMIT_ACTUAL_MEAN")
    logit += 0.4 * np.where(np.isfinite(usage), usage - 0.3, 0.0)
    return _RISK_INTERCEPT + _RISK_SCALE * logit


def risk_logit(cols: Mapping[str, np.ndarray] | pd.DataFrame) -> np.ndarray:
    """The generator's own log-odds of default (the function TARGET is drawn from) for any
    applications with the generator's columns: the simulator draws the outcomes of the traffic
    it sends from it. A column it needs that is absent raises KeyError naming it."""
    return _risk_logit(cols)
