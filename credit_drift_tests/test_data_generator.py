"""The synthetic Home-Credit-like generator: determinism, the 419 named features, realistic
rates and missingness, consistency of derived columns, and the datasets written to disk."""

import numpy as np
import pandas as pd
import pytest

from credit_drift.data import generator as g
from credit_drift.data.generator import (
    DAYS_EMPLOYED_SENTINEL,
    FEATURE_FAMILIES,
    FEATURE_NAMES,
    ID_COLUMN,
    N_FEATURES,
    ONE_HOT_GROUPS,
    TARGET_COLUMN,
    generate_applications,
    recompute_ratios,
    write_datasets,
)

FAMILY_PREFIXES = {
    "bureau": "BURO_",
    "bureau_active": "ACTIVE_",
    "bureau_closed": "CLOSED_",
    "previous": "PREV_",
    "previous_approved": "APPROVED_",
    "previous_refused": "REFUSED_",
    "pos_cash": "POS_",
    "installments": "INSTAL_",
    "credit_card": "CC_",
}


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return generate_applications(20_000, seed=11)


def test_same_seed_same_data_and_different_seed_different_data():
    a = generate_applications(1_500, seed=5)
    b = generate_applications(1_500, seed=5)
    c = generate_applications(1_500, seed=6)
    pd.testing.assert_frame_equal(a, b)
    assert not a[list(FEATURE_NAMES)].equals(c[list(FEATURE_NAMES)])
    # Not just one column: most features differ between the two seeds.
    differing = [n for n in FEATURE_NAMES if not a[n].equals(c[n])]
    assert len(differing) > 300


def test_columns_are_id_target_and_exactly_419_float_features(sample):
    assert N_FEATURES == 419
    assert list(sample.columns) == [ID_COLUMN, TARGET_COLUMN, *FEATURE_NAMES]
    assert len(FEATURE_NAMES) == len(set(FEATURE_NAMES)) == 419
    assert all(sample[n].dtype == np.float64 for n in FEATURE_NAMES)
    assert set(sample[TARGET_COLUMN].unique()) == {0, 1}
    assert sample[ID_COLUMN].is_unique
    values = sample[list(FEATURE_NAMES)].to_numpy()
    assert not np.isinf(values).any()


def test_families_partition_the_features_with_the_expected_names():
    flat = [c for cols in FEATURE_FAMILIES.values() for c in cols]
    assert sorted(flat) == sorted(FEATURE_NAMES)
    assert all(FEATURE_FAMILIES.values())
    assert FEATURE_FAMILIES["ext_source"] == ("EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3")
    assert {"AMT_CREDIT", "AMT_ANNUITY", "AMT_GOODS_PRICE", "AMT_INCOME_TOTAL"} <= set(
        FEATURE_FAMILIES["amount"]
    )
    assert {"DAYS_BIRTH", "DAYS_EMPLOYED"} <= set(FEATURE_FAMILIES["days"])
    assert set(FEATURE_FAMILIES["ratio"]) == {
        "DAYS_EMPLOYED_PERC",
        "INCOME_CREDIT_PERC",
        "INCOME_PER_PERSON",
        "ANNUITY_INCOME_PERC",
        "PAYMENT_RATE",
    }
    for family, prefix in FAMILY_PREFIXES.items():
        assert all(c.startswith(prefix) for c in FEATURE_FAMILIES[family]), family
        assert all(
            c.split("_")[-1] in ("MEAN", "MIN", "MAX", "SUM", "VAR", "SIZE", "NUNIQUE", "COUNT")
            for c in FEATURE_FAMILIES[family]
        ), family
    # Kaggle one-hot names, as pd.get_dummies writes them.
    for name in (
        "NAME_CONTRACT_TYPE_Cash loans",
        "CODE_GENDER_M",
        "NAME_INCOME_TYPE_Working",
        "NAME_EDUCATION_TYPE_Higher education",
        "NAME_FAMILY_STATUS_Married",
        "NAME_HOUSING_TYPE_House / apartment",
        "OCCUPATION_TYPE_Laborers",
        "ORGANIZATION_TYPE_Business Entity Type 3",
        "ORGANIZATION_TYPE_XNA",
    ):
        assert name in FEATURE_FAMILIES["one_hot"]
    assert len(ONE_HOT_GROUPS["ORGANIZATION_TYPE"].columns) == 58
    assert all(
        c.startswith("FLAG_") or c.endswith(("_CITY", "_REGION")) for c in FEATURE_FAMILIES["flag"]
    )
    assert g.family_of("BURO_DAYS_CREDIT_MEAN") == "bureau"


def test_default_rate_near_eight_percent(sample):
    assert 0.06 <= sample[TARGET_COLUMN].mean() <= 0.10


def test_ext_source_missingness_and_bounds(sample):
    missing = sample[list(g.EXT_SOURCES)].isna().mean()
    assert 0.52 <= missing["EXT_SOURCE_1"] <= 0.60
    assert 0.17 <= missing["EXT_SOURCE_3"] <= 0.23
    assert missing["EXT_SOURCE_2"] < 0.01
    for name in g.EXT_SOURCES:
        values = sample[name].dropna()
        assert values.between(0, 1).all()
        assert 0.4 < values.mean() < 0.6


def test_bureau_history_missing_together(sample):
    buro = sample[list(FEATURE_FAMILIES["bureau"])]
    no_history = buro["BURO_DAYS_CREDIT_MEAN"].isna()
    assert 0.11 <= no_history.mean() <= 0.18
    # A client without bureau credits has every BURO_*, ACTIVE_* and CLOSED_* column NaN...
    assert buro[no_history].isna().all().all()
    for family in ("bureau_active", "bureau_closed"):
        assert sample.loc[no_history, list(FEATURE_FAMILIES[family])].isna().all().all()
    # ...and a client with a history has those that cannot be NaN per credit (sums, dates,
    # shares); the others are NaN when every credit lacks the value (pandas skips NaN).
    always = [
        c
        for c in buro.columns
        if c.endswith("_SUM") or c.startswith(("BURO_DAYS_CREDIT_M", "BURO_CREDIT_"))
    ]
    assert len(always) >= 15
    assert buro.loc[~no_history, always].notna().all().all()
    # Clients without any previous application have every previous-application family NaN.
    no_prev = sample["PREV_AMT_CREDIT_MEAN"].isna()
    for family in ("previous", "previous_approved", "previous_refused", "pos_cash"):
        assert sample.loc[no_prev, list(FEATURE_FAMILIES[family])].isna().all().all()
    assert 0.6 <= sample["CC_COUNT"].isna().mean() <= 0.85


def test_days_employed_sentinel_marks_pensioners_and_the_unemployed(sample):
    sentinel = sample["DAYS_EMPLOYED"] == DAYS_EMPLOYED_SENTINEL
    assert 0.15 <= sentinel.mean() <= 0.21
    pensioner = sample["NAME_INCOME_TYPE_Pensioner"] == 1
    assert (sentinel[pensioner]).all()
    assert pensioner[sentinel].mean() > 0.99
    assert (sample.loc[sentinel, "ORGANIZATION_TYPE_XNA"] == 1).all()
    assert (sample.loc[~sentinel, "ORGANIZATION_TYPE_XNA"] == 0).all()
    assert (sample.loc[sentinel, "FLAG_EMP_PHONE"] == 0).all()
    assert sample.loc[sentinel, "DAYS_EMPLOYED_PERC"].isna().all()
    others = sample.loc[~sentinel, ["DAYS_EMPLOYED", "DAYS_BIRTH"]]
    assert (others["DAYS_EMPLOYED"] < 0).all()
    assert (others["DAYS_EMPLOYED"] > others["DAYS_BIRTH"]).all()


def test_one_hot_groups_have_exactly_one_hot_column_per_row(sample):
    for field, group in ONE_HOT_GROUPS.items():
        block = sample[list(group.columns)]
        assert set(np.unique(block.to_numpy())) <= {0.0, 1.0}, field
        assert (block.sum(axis=1) == 1).all(), field
        share = block.mean().to_numpy()
        # Frequent categories are drawn near their real frequency.
        frequent = np.asarray(group.frequencies) > 0.05
        np.testing.assert_allclose(
            share[frequent], np.asarray(group.frequencies)[frequent], atol=0.05, err_msg=field
        )


def test_amounts_are_heavy_tailed_and_correlated(sample):
    credit, goods = sample["AMT_CREDIT"], sample["AMT_GOODS_PRICE"]
    ratio = (goods / credit).dropna()
    assert 0.85 <= ratio.median() <= 0.97
    assert (ratio <= 1.0 + 1e-9).all()
    assert np.corrcoef(np.log(credit), np.log(sample["AMT_ANNUITY"]))[0, 1] > 0.6
    income = sample["AMT_INCOME_TOTAL"]
    assert income.mean() > income.median() * 1.05
    assert income.max() > 10 * income.median()
    assert (sample[["AMT_CREDIT", "AMT_ANNUITY", "AMT_INCOME_TOTAL"]] > 0).all().all()


def test_ratio_features_match_their_definition(sample):
    recomputed = recompute_ratios(sample)
    for name in g.RATIOS:
        pd.testing.assert_series_equal(recomputed[name], sample[name], check_exact=False)


def test_aggregates_are_ordered_and_counts_consistent(sample):
    have = sample["BURO_DAYS_CREDIT_MEAN"].notna()
    b = sample[have]
    assert (b["BURO_DAYS_CREDIT_MIN"] <= b["BURO_DAYS_CREDIT_MEAN"] + 1e-9).all()
    assert (b["BURO_DAYS_CREDIT_MEAN"] <= b["BURO_DAYS_CREDIT_MAX"] + 1e-9).all()
    assert (b["BURO_AMT_CREDIT_SUM_SUM"] >= b["BURO_AMT_CREDIT_SUM_MAX"] - 1e-6).all()
    shares = b[[f"BURO_CREDIT_ACTIVE_{c}_MEAN" for c in ("Active", "Closed", "Sold")]]
    np.testing.assert_allclose(shares.sum(axis=1), 1.0)
    pos = sample["POS_COUNT"].notna()
    assert (sample.loc[pos, "POS_COUNT"] == sample.loc[pos, "POS_MONTHS_BALANCE_SIZE"]).all()


def test_record_aggregation_matches_pandas_groupby():
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 5, 300)
    rec = g._Records(counts)
    values = rng.normal(size=rec.total).round(1)
    values[rng.random(rec.total) < 0.3] = np.nan
    frame = pd.DataFrame({"owner": rec.owner, "v": values})
    expected = frame.groupby("owner")["v"].agg(["min", "max", "mean", "sum", "var", "size"])
    expected = expected.reindex(range(len(counts)))
    got = rec.aggregate_many(values, ("MIN", "MAX", "MEAN", "SUM", "VAR", "SIZE"))
    for stat in ("min", "max", "mean", "sum", "var", "size"):
        np.testing.assert_allclose(got[stat.upper()], expected[stat].to_numpy(), err_msg=stat)
    codes = rng.integers(0, 3, rec.total).astype(float)
    nunique = pd.Series(codes).groupby(rec.owner).nunique().reindex(range(len(counts)))
    np.testing.assert_array_equal(rec.aggregate(codes, "NUNIQUE"), nunique.to_numpy())


def test_target_depends_on_ext_source_most(sample):
    score = sample["EXT_SOURCE_2"]
    quartile = pd.qcut(score, 4, labels=False)
    rates = sample[TARGET_COLUMN].groupby(quartile).mean()
    assert rates.iloc[0] > 2.5 * rates.iloc[-1]
    # Age and a bureau signal matter too, less.
    young = sample["DAYS_BIRTH"] > -30 * 365.25
    assert sample.loc[young, TARGET_COLUMN].mean() > sample.loc[~young, TARGET_COLUMN].mean()


def test_write_datasets_train_and_unseen_pool(tmp_path):
    paths = write_datasets(tmp_path / "data", n_rows=600, pool_rows=400, seed=9)
    assert paths.train.name == "train.parquet" and paths.pool.name == "pool.parquet"
    train = pd.read_parquet(paths.train)
    pool = pd.read_parquet(paths.pool)
    pd.testing.assert_frame_equal(train, generate_applications(600, seed=9))
    assert len(pool) == 400 and list(pool.columns) == list(train.columns)
    assert set(train[ID_COLUMN]).isdisjoint(pool[ID_COLUMN])
    # The pool is a different random stream, not a continuation or a copy of the training one.
    same_seed = generate_applications(400, seed=9, id_start=int(pool[ID_COLUMN].iloc[0]))
    assert not pool[list(FEATURE_NAMES)].equals(same_seed[list(FEATURE_NAMES)])
    assert not (tmp_path / "data" / ".train.parquet.tmp").exists()
