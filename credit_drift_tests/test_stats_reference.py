"""The reference profile: exact summaries of the whole training frame, seeded joint sample,
exact storage round trip, content-hash versioning, clear errors."""

import numpy as np
import pandas as pd
import pytest

from credit_drift.features import FeatureSchema, FeatureSpec
from credit_drift.stats.reference import (
    CategoricalReference,
    NumericReference,
    ReferenceProfile,
    ReferenceProfileError,
    fit_reference,
)


@pytest.fixture(scope="module")
def training():
    rng = np.random.default_rng(11)
    n = 3_000
    frame = pd.DataFrame(
        {
            "amount": np.round(rng.lognormal(10, 1, n), 2),
            "flag": (rng.random(n) < 0.3).astype(float),
            "count": rng.poisson(3, n).astype(float),
            "mostly_missing": np.where(rng.random(n) < 0.8, np.nan, rng.normal(size=n)),
            "contract": rng.choice(["cash", "revolving", None], size=n, p=[0.6, 0.3, 0.1]),
        }
    )
    frame.loc[rng.random(n) < 0.1, "amount"] = np.nan
    schema = FeatureSchema(
        (
            FeatureSpec("amount"),
            FeatureSpec("flag"),
            FeatureSpec("count"),
            FeatureSpec("mostly_missing"),
            FeatureSpec("contract", "categorical", ("cash", "revolving")),
        )
    )
    importance = {"amount": 0.5, "flag": 0.2, "count": 0.2, "contract": 0.1}
    scores = rng.random(n)
    return frame, schema, importance, scores


def test_numeric_summaries_are_exact_over_the_whole_frame(training):
    frame, schema, importance, _ = training
    profile = fit_reference(frame, schema, importance, sample_rows=100)
    for name in schema.numeric_names:
        col = frame[name].to_numpy()
        values, counts = np.unique(col[~np.isnan(col)], return_counts=True)
        ref = profile.numeric(name)
        assert np.array_equal(ref.values, values)
        assert np.array_equal(ref.counts, counts)
        assert ref.nan_count == int(np.isnan(col).sum())
        assert ref.n_rows == len(frame)
        assert np.array_equal(ref.expand(), np.sort(col[~np.isnan(col)]))
        if ref.n:
            assert ref.std == pytest.approx(np.std(col[~np.isnan(col)]), rel=1e-12)


def test_categorical_summary_counts_categories_and_missing(training):
    frame, schema, importance, _ = training
    ref = fit_reference(frame, schema, importance).categorical("contract")
    expected = frame["contract"].value_counts()
    assert ref.categories == ("cash", "revolving")
    assert ref.counts.tolist() == [expected["cash"], expected["revolving"]]
    assert ref.nan_count == int(frame["contract"].isna().sum())


def test_categorical_text_rule_matches_storage():
    # 1, 1.0 and "1" are one category, as FeatureSchema.pack stores them.
    ref = CategoricalReference.from_values(pd.Series([1, 1.0, "1", "2", None, float("nan")]))
    assert ref.categories == ("1", "2")
    assert ref.counts.tolist() == [3, 1]
    assert ref.nan_count == 2


def test_joint_sample_is_seeded_rows_of_the_frame(training):
    frame, schema, importance, _ = training
    a = fit_reference(frame, schema, importance, sample_rows=500, seed=3)
    b = fit_reference(frame, schema, importance, sample_rows=500, seed=3)
    c = fit_reference(frame, schema, importance, sample_rows=500, seed=4)
    assert a.sample.shape == (500, len(schema.numeric_names))
    assert a.sample_columns == tuple(schema.numeric_names)
    assert np.array_equal(a.sample, b.sample, equal_nan=True)
    assert not np.array_equal(a.sample, c.sample, equal_nan=True)
    # every sampled row is a training row, and no row is drawn twice
    numeric = frame[schema.numeric_names].to_numpy()
    keys = {tuple(np.nan_to_num(r, nan=-999.0)) for r in numeric}
    sampled = [tuple(np.nan_to_num(r, nan=-999.0)) for r in a.sample]
    assert all(r in keys for r in sampled)
    small = fit_reference(frame.head(50), schema, importance, sample_rows=500)
    assert small.sample.shape[0] == 50


def test_round_trip_is_exact_and_keeps_the_version(training):
    frame, schema, importance, scores = training
    profile = fit_reference(frame, schema, importance, sample_rows=200, scores=scores)
    header, rows, blobs = profile.to_records()
    assert header == {
        "profile_version": profile.profile_version,
        "feature_schema_version": schema.version,
        "n_rows": len(frame),
    }
    assert [r["feature"] for r in rows] == schema.names
    assert [r["position"] for r in rows] == list(range(len(schema)))
    assert all(isinstance(r["summary"], bytes) for r in rows)
    assert set(blobs) == {"meta", "joint_sample", "training_scores"}
    # storage may hand back rows in any order and bytes as memoryview
    restored = ReferenceProfile.from_records(
        dict(header),
        [dict(r, summary=memoryview(r["summary"])) for r in reversed(rows)],
        {k: memoryview(v) for k, v in blobs.items()},
    )
    assert restored.equals(profile)
    assert restored.profile_version == profile.profile_version
    assert restored.schema == schema
    assert restored.training_scores is not None
    assert np.array_equal(restored.training_scores.expand(), np.sort(scores))
    assert restored.importance["mostly_missing"] == 0.0


def test_profile_version_is_a_content_hash(training):
    frame, schema, importance, _ = training
    a = fit_reference(frame, schema, importance, sample_rows=100)
    b = fit_reference(frame.copy(), schema, dict(importance), sample_rows=100)
    assert a.profile_version == b.profile_version
    changed = frame.copy()
    changed.loc[0, "count"] = 999.0
    assert fit_reference(changed, schema, importance, sample_rows=100).profile_version != (
        a.profile_version
    )
    other_importance = dict(importance, amount=0.4)
    assert fit_reference(frame, schema, other_importance, sample_rows=100).profile_version != (
        a.profile_version
    )


def test_corrupt_records_are_refused(training):
    frame, schema, importance, _ = training
    header, rows, blobs = fit_reference(frame, schema, importance, sample_rows=50).to_records()
    with pytest.raises(ReferenceProfileError, match="content hash"):
        ReferenceProfile.from_records(dict(header, profile_version="0" * 16), rows, blobs)
    with pytest.raises(ReferenceProfileError, match="schema"):
        ReferenceProfile.from_records(dict(header, feature_schema_version="x"), rows, blobs)
    with pytest.raises(ReferenceProfileError, match="lacks blobs"):
        ReferenceProfile.from_records(header, rows, {"meta": blobs["meta"]})


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f, i: (f.drop(columns=["count"]), i), "lacks feature columns"),
        (lambda f, i: (f.head(0), i), "empty"),
        (lambda f, i: (f, dict(i, unknown=1.0)), "not in the schema"),
        (lambda f, i: (f, dict(i, amount=-1.0)), "finite and >= 0"),
        (lambda f, i: (f.assign(flag="yes"), i), "non-numeric"),
    ],
)
def test_fit_errors_name_the_problem(training, mutate, message):
    frame, schema, importance, _ = training
    bad_frame, bad_importance = mutate(frame, importance)
    with pytest.raises(ReferenceProfileError, match=message):
        fit_reference(bad_frame, schema, bad_importance)


def test_numeric_reference_validates_and_builds_from_sorted():
    ref = NumericReference.from_sorted(np.array([1.0, 1.0, 2.0, 5.0, 5.0, 5.0]))
    assert ref.values.tolist() == [1.0, 2.0, 5.0]
    assert ref.counts.tolist() == [2, 1, 3]
    assert ref.cum.tolist() == [0, 2, 3, 6]
    with pytest.raises(ReferenceProfileError, match="strictly increasing"):
        NumericReference(np.array([2.0, 1.0]), np.array([1, 1]), 0)
    with pytest.raises(ReferenceProfileError, match="sorted"):
        NumericReference.from_sorted(np.array([2.0, 1.0]))


def test_quantile_edges_and_bin_counts():
    ref = NumericReference.from_values(np.arange(1.0, 101.0))  # 1..100
    edges = ref.quantile_edges(10)
    assert edges.tolist() == [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0]
    assert ref.bin_counts(edges).tolist() == [10] * 10
    flags = NumericReference.from_values(np.array([0.0] * 70 + [1.0] * 30))
    assert flags.quantile_edges(10).tolist() == [0.0]  # bins (-inf, 0], (0, inf)
    assert flags.bin_counts(flags.quantile_edges(10)).tolist() == [70, 30]


def test_quantile_bins_are_the_edges_and_reference_counts_computed_once():
    ref = NumericReference.from_values(np.random.default_rng(3).integers(0, 40, 5_000) * 1.0)
    edges, counts = ref.quantile_bins(10)
    np.testing.assert_array_equal(edges, ref.quantile_edges(10))
    np.testing.assert_array_equal(counts, ref.bin_counts(ref.quantile_edges(10)))
    again = ref.quantile_bins(10)
    assert again[0] is edges and again[1] is counts  # every window reuses them
    assert not edges.flags.writeable and not counts.flags.writeable  # shared: read-only
    assert len(ref.quantile_bins(4)[0]) < len(edges)  # per number of bins
