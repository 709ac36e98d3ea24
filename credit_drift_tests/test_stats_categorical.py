"""Categorical drift: chi-square against reference frequencies (equal to scipy), unseen
categories counted apart and named, Jensen-Shannon and PSI effect sizes."""

import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from scipy.spatial.distance import jensenshannon

from credit_drift.stats.categorical import compare_categorical
from credit_drift.stats.reference import CategoricalReference


@pytest.fixture
def ref():
    return CategoricalReference(("a", "b", "c"), np.array([500, 300, 200]), nan_count=10)


def test_chi_square_equals_scipy_on_seen_categories(ref):
    window = ["a"] * 40 + ["b"] * 40 + ["c"] * 20 + [None] * 5 + ["zz"] * 3 + ["yy"] * 7
    out = compare_categorical(ref, window)
    observed = np.array([40, 40, 20])
    expected = scipy.stats.chisquare(observed, np.array([0.5, 0.3, 0.2]) * observed.sum())
    assert out.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert out.p_value == pytest.approx(expected.pvalue, rel=1e-12)
    assert out.dof == 2
    assert out.n_current == 110 and out.nan_count == 5
    assert out.jensen_shannon == pytest.approx(
        jensenshannon([0.5, 0.3, 0.2], [0.4, 0.4, 0.2]), rel=1e-12
    )


def test_unseen_categories_are_counted_and_named_by_frequency(ref):
    window = pd.Series(["a"] * 90 + ["zz"] * 3 + ["yy"] * 7 + [None] * 2, dtype=object)
    out = compare_categorical(ref, window)
    assert out.unseen == ("yy", "zz")
    assert out.unseen_count == 10
    assert out.unseen_share == pytest.approx(10 / 100)


def test_same_frequencies_have_no_effect(ref):
    out = compare_categorical(ref, ["a"] * 50 + ["b"] * 30 + ["c"] * 20)
    assert out.statistic == 0.0 and out.p_value == 1.0
    assert out.jensen_shannon == 0.0 and out.psi == 0.0
    assert out.unseen == () and out.unseen_share == 0.0


def test_numbers_and_text_are_one_category():
    ref = CategoricalReference(("1", "2"), np.array([10, 10]), 0)
    out = compare_categorical(ref, [1, 1.0, "1", 2])
    assert out.unseen == ()
    assert out.statistic == pytest.approx(scipy.stats.chisquare([3, 1], [2, 2]).statistic)


def test_not_testable_without_seen_values_or_with_one_category(ref):
    only_unseen = compare_categorical(ref, ["q", "q", None])
    assert math.isnan(only_unseen.statistic) and math.isnan(only_unseen.p_value)
    assert only_unseen.unseen_share == 1.0
    empty = compare_categorical(ref, [])
    assert empty.n_current == 0 and math.isnan(empty.unseen_share)
    single = compare_categorical(CategoricalReference(("a",), np.array([5]), 0), ["a", "a"])
    assert math.isnan(single.p_value) and single.jensen_shannon == 0.0


@pytest.mark.parametrize(
    "window",
    [
        ["zz"] * 10,  # nothing but an unseen category
        ["a"] * 5 + ["zz"] * 5,  # seen and unseen, "b" and "c" absent
        ["zz", None, None],
        [None] * 4,
        [],
    ],
)
def test_unseen_categories_raise_no_numpy_or_scipy_warning(ref, window):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a divide-by-zero RuntimeWarning fails the test
        compare_categorical(ref, pd.Series(window, dtype=object))
        compare_categorical(CategoricalReference(("a",), np.array([7]), 0), window)
