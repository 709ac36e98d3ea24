"""The Evidently report: argument order (current = window, reference = training), atomic HTML,
column selection, and the reference rebuilt from stored summaries."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from credit_drift.errors import CreditDriftError
from credit_drift.reports.evidently_report import (
    EvidentlyReportError,
    build_evidently_report,
    parse_snapshot,
    reference_frame_from_summaries,
    select_report_columns,
)

# More than 1,000 reference rows: Evidently then scores numeric columns with the normed
# Wasserstein distance; with 1,000 or fewer it would switch to KS. The window is smaller than
# that on purpose, so swapping the arguments would change the method Evidently reports.
N_REF, N_CUR = 3_000, 400


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(7)
    reference = pd.DataFrame(
        {
            "shifted": rng.normal(0.0, 1.0, N_REF),
            "stable": rng.normal(0.0, 1.0, N_REF),
            "grade": np.array(rng.choice(["A", "B", "C"], N_REF), dtype=object),
        }
    )
    current = pd.DataFrame(
        {
            # Values only in a range the reference never reaches, with a different spread.
            "shifted": rng.uniform(10.0, 20.0, N_CUR),
            # The reference's own distribution without sampling noise (normal quantiles), so the
            # column cannot cross Evidently's 0.1 threshold by chance.
            "stable": stats.norm.ppf((np.arange(N_CUR) + 0.5) / N_CUR),
            "grade": np.array(rng.choice(["A", "B", "C"], N_CUR), dtype=object),
        }
    )
    return reference, current


@pytest.fixture(scope="module")
def built(frames, tmp_path_factory):
    reference, current = frames
    path = tmp_path_factory.mktemp("evidently") / "day" / "report.html"
    return build_evidently_report(reference, current, path)


def test_report_flags_the_feature_shifted_in_the_current_window_only(built):
    by_column = {c.column: c for c in built.columns}
    assert by_column["shifted"].drifted is True
    assert by_column["stable"].drifted is False
    assert by_column["grade"].drifted is False
    assert built.drifted_columns == ["shifted"]
    assert (built.n_columns, built.n_drifted_columns) == (3, 1)
    assert built.drift_share == pytest.approx(1 / 3)
    assert built.dataset_drift is False


def test_report_treats_the_window_as_current_and_training_as_reference(built, frames):
    reference, current = frames
    shifted = {c.column: c for c in built.columns}["shifted"]
    # Evidently picks the test from the REFERENCE size: Wasserstein for 3,000 rows; had the
    # 400-row window been passed as reference it would have used KS.
    assert shifted.method == "Wasserstein distance (normed)"
    # The score is normed by the REFERENCE standard deviation: the training column's (1.0),
    # not the window's (about 2.9).
    distance = stats.wasserstein_distance(reference["shifted"], current["shifted"])
    assert shifted.score == pytest.approx(distance / np.std(reference["shifted"]), rel=1e-9)
    assert shifted.score != pytest.approx(distance / np.std(current["shifted"]), rel=0.1)


def test_report_html_is_complete(built):
    data = built.path.read_bytes()
    assert built.html_bytes == len(data) > 0
    assert data.rstrip().endswith(b"</html>")
    assert b"shifted" in data
    assert [p.name for p in built.path.parent.iterdir()] == ["report.html"]


def test_failed_build_leaves_no_partial_file_and_keeps_the_previous_report(
    frames, tmp_path, monkeypatch
):
    from evidently.core.report import Snapshot

    reference, current = frames
    path = tmp_path / "report.html"
    path.write_text("<html>yesterday's complete report</html>")

    def crash_midway(self, filename):
        Path(filename).write_text("<html><body>half a rep")
        raise OSError("disk full")

    monkeypatch.setattr(Snapshot, "save_html", crash_midway)
    with pytest.raises(OSError, match="disk full"):
        build_evidently_report(reference, current, path)
    assert path.read_text() == "<html>yesterday's complete report</html>"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_truncated_html_is_never_published(frames, tmp_path, monkeypatch):
    from evidently.core.report import Snapshot

    reference, current = frames
    monkeypatch.setattr(
        Snapshot, "save_html", lambda self, f: Path(f).write_text("<html><body>trunc")
    )
    with pytest.raises(EvidentlyReportError, match="incomplete"):
        build_evidently_report(reference, current, tmp_path / "report.html")
    assert list(tmp_path.iterdir()) == []


def test_empty_window_is_a_clear_error_and_writes_nothing(frames, tmp_path):
    reference, current = frames
    with pytest.raises(EvidentlyReportError, match="current window is empty") as err:
        build_evidently_report(reference, current.iloc[:0], tmp_path / "report.html")
    assert isinstance(err.value, CreditDriftError)
    assert list(tmp_path.iterdir()) == []


def test_window_missing_a_reference_column_is_named(frames, tmp_path):
    reference, current = frames
    with pytest.raises(EvidentlyReportError, match="stable"):
        build_evidently_report(reference, current.drop(columns="stable"), tmp_path / "r.html")


def test_columns_without_any_value_on_one_side_are_skipped(tmp_path):
    rng = np.random.default_rng(3)
    reference = pd.DataFrame({"x": rng.normal(size=1500), "gone": rng.normal(size=1500)})
    current = pd.DataFrame({"x": rng.normal(size=200), "gone": np.full(200, np.nan)})
    result = build_evidently_report(reference, current, tmp_path / "r.html")
    assert result.skipped_columns == ("gone",)
    assert [c.column for c in result.columns] == ["x"]
    assert result.n_columns == 1

    with pytest.raises(EvidentlyReportError, match="no column has values"):
        build_evidently_report(reference[["gone"]], current[["gone"]], tmp_path / "s.html")


def test_declared_categorical_codes_compare_as_categories(tmp_path):
    # Training stored the category as a float code, the window as text: same categories.
    rng = np.random.default_rng(5)
    codes = rng.choice([1.0, 2.0, 3.0], 2000)
    reference = pd.DataFrame({"region": codes, "x": rng.normal(size=2000)})
    current = pd.DataFrame(
        {
            "region": np.array([str(int(v)) for v in codes[:300]], dtype=object),
            "x": rng.normal(size=300),
        }
    )
    result = build_evidently_report(
        reference, current, tmp_path / "r.html", categorical_columns=["region"]
    )
    region = {c.column: c for c in result.columns}["region"]
    assert region.drifted is False
    assert region.score < 0.05


def test_parse_snapshot_rejects_an_unknown_structure():
    with pytest.raises(EvidentlyReportError, match="DriftedColumnsCount"):
        parse_snapshot({"metrics": [{"config": {"type": "something else"}, "value": 1.0}]})
    with pytest.raises(EvidentlyReportError, match="metrics"):
        parse_snapshot({})


# -- select_report_columns ------------------------------------------------------------------
def _results(stat: dict[str, float], drifted: set[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "feature": list(stat),
            "statistic": list(stat.values()),
            "drifted": [f in drifted for f in stat],
        }
    )


def test_selection_is_drifted_by_statistic_then_most_important_within_the_cap():
    stat = {f"f{i}": i / 100 for i in range(10)}
    stat["f5"] = np.nan
    results = _results(stat, drifted={"f2", "f5", "f7", "f8", "f9"})
    importance = {"f0": 0.5, "f1": 0.3, "f9": 0.1, "f3": 0.05}
    # Cap 4: ceil(4/3) = 2 slots for the most important (f0, f1), 2 for the top drifted
    # (f9 then f8); f7, f2 and the NaN-statistic f5 do not fit.
    assert select_report_columns(results, importance, max_columns=4) == ["f9", "f8", "f0", "f1"]
    # A roomier cap: every drifted feature (NaN statistic last), then the important ones.
    assert select_report_columns(results, importance, max_columns=9) == [
        "f9", "f8", "f7", "f2", "f5", "f0", "f1",
    ]  # fmt: skip


def test_selection_keeps_the_top_important_features_even_without_drift():
    results = _results({"a": 0.01, "b": 0.02, "c": 0.5}, drifted=set())
    assert select_report_columns(results, {"b": 1.0, "a": 0.5}, max_columns=3) == ["b"]
    assert select_report_columns(results, {}, max_columns=3) == ["a"]  # ties broken by name


def test_selection_include_all_and_validation():
    results = _results({"a": 0.1, "b": 0.2}, drifted={"b"})
    assert select_report_columns(results, {}, include_all=True) == ["a", "b"]
    with pytest.raises(ValueError, match="drifted"):
        select_report_columns(results.drop(columns="drifted"), {})
    with pytest.raises(ValueError, match="max_columns"):
        select_report_columns(results, {}, max_columns=0)


# -- reference_frame_from_summaries ---------------------------------------------------------
def _summary(column: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    present = column[~np.isnan(column)]
    values, counts = np.unique(present, return_counts=True)
    return values, counts, int(np.isnan(column).sum())


@pytest.fixture(scope="module")
def training() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    n = 5_000
    amount = np.round(rng.lognormal(11, 0.6, n), -2)
    amount[rng.random(n) < 0.07] = np.nan
    return pd.DataFrame(
        {"amount": amount, "flag": rng.integers(0, 2, n).astype(float), "z": rng.normal(size=n)}
    )


def test_rebuilt_reference_holds_exactly_the_training_values(training):
    summaries = {c: _summary(training[c].to_numpy()) for c in training}
    rebuilt = reference_frame_from_summaries(summaries)
    assert list(rebuilt.columns) == list(training.columns)
    assert len(rebuilt) == len(training)
    for c in training:
        assert rebuilt[c].dtype == np.float64
        np.testing.assert_array_equal(np.sort(rebuilt[c]), np.sort(training[c]))  # NaNs last
    # Columns are shuffled independently: no fake sorted order, no shared row order.
    assert not rebuilt["z"].is_monotonic_increasing


def test_rebuilt_reference_is_seeded(training):
    summaries = {"z": _summary(training["z"].to_numpy())}
    a = reference_frame_from_summaries(summaries, seed=1)
    b = reference_frame_from_summaries(summaries, seed=1)
    c = reference_frame_from_summaries(summaries, seed=2)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_subsampled_reference_keeps_every_value_share_within_one_row(training):
    summaries = {c: _summary(training[c].to_numpy()) for c in training}
    m = 700
    small = reference_frame_from_summaries(summaries, max_rows=m)
    assert len(small) == m
    n = len(training)
    for c in training:
        values, counts, nan_count = summaries[c]
        got = small[c].value_counts()
        expected = counts * m / n
        assert np.all(np.abs(got.reindex(values, fill_value=0).to_numpy() - expected) <= 1)
        assert abs(int(small[c].isna().sum()) - nan_count * m / n) <= 1
    # Distribution kept: KS distance to the full column within 1/m.
    z = training["z"].to_numpy()
    assert stats.ks_2samp(small["z"], z).statistic <= 1 / m + 1e-12


def test_categorical_summary_rebuilds_as_objects_with_none():
    summaries = {"grade": (np.array(["A", "B"]), np.array([3, 1]), 2)}
    frame = reference_frame_from_summaries(summaries)
    assert frame["grade"].dtype == object
    assert sorted(frame["grade"], key=str) == ["A", "A", "A", "B", None, None]


def test_summaries_of_different_row_counts_are_rejected():
    summaries = {
        "a": (np.array([1.0]), np.array([5]), 0),
        "b": (np.array([1.0]), np.array([4]), 0),
    }
    with pytest.raises(ValueError, match="'b' has 4"):
        reference_frame_from_summaries(summaries)
    with pytest.raises(ValueError, match="same length"):
        reference_frame_from_summaries({"a": (np.array([1.0, 2.0]), np.array([5]), 0)})
