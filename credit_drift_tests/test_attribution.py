"""Why the score moved: the change in mean log-odds between a reference sample and a window,
split over the features by LightGBM's own contributions (pred_contrib)."""

import numpy as np
import pandas as pd
import pytest

from credit_drift.data.loader import load_pool, load_training_data
from credit_drift.model.artifacts import model_matrix
from credit_drift.pipeline.attribution import compute_score_attribution, reference_sample_frame
from credit_drift.pipeline.reference import LoadedReference
from credit_drift.pipeline.window import ProductionWindow
from credit_drift.stats.attribution import attribute_mean_change
from credit_drift.stats.reference import fit_reference
from credit_drift.storage.windows import DayWindow


@pytest.fixture(scope="module")
def model(model_dir):
    _, paths, artifacts = model_dir
    pool = load_pool(paths.pool, artifacts.schema)
    gain = pd.Series(artifacts.importance).sort_values(ascending=False)
    return artifacts, pool, gain


def _attribute(artifacts, reference: pd.DataFrame, window: pd.DataFrame):
    schema = artifacts.schema
    return attribute_mean_change(
        artifacts.contributions(model_matrix(schema, reference)),
        artifacts.contributions(model_matrix(schema, window)),
        schema.names,
    )


def _raw_mean(artifacts, frame: pd.DataFrame) -> float:
    matrix = model_matrix(artifacts.schema, frame)
    return float(artifacts.booster.predict(matrix, raw_score=True).mean())


def test_contributions_sum_to_the_change_in_mean_log_odds(model):
    artifacts, pool, _ = model
    reference, window = pool.iloc[:1500], pool.iloc[1500:2500]
    out = _attribute(artifacts, reference, window)
    expected = _raw_mean(artifacts, window) - _raw_mean(artifacts, reference)
    assert out.mean_margin_change == pytest.approx(expected, abs=1e-9)
    assert out.table["contribution_change"].sum() + out.bias_change == pytest.approx(
        expected, abs=1e-9
    )
    assert abs(out.bias_change) < 1e-12
    proba = artifacts.predict_proba(window)
    assert out.mean_probability_window == pytest.approx(float(proba.mean()), abs=1e-9)
    assert np.abs(out.table["share_of_change"]).sum() == pytest.approx(1.0)
    assert out.table["contribution_change"].abs().is_monotonic_decreasing
    # The noise of each mean change is reported beside it (two independent samples).
    ref_m = artifacts.booster.predict(model_matrix(artifacts.schema, reference), raw_score=True)
    cur_m = artifacts.booster.predict(model_matrix(artifacts.schema, window), raw_score=True)
    se = np.sqrt(ref_m.var(ddof=1) / len(ref_m) + cur_m.var(ddof=1) / len(cur_m))
    assert out.mean_margin_change_se == pytest.approx(se, rel=1e-9)
    assert (out.table["standard_error"] >= 0).all()


def test_a_shifted_influential_feature_is_blamed_first(model):
    artifacts, pool, gain = model
    top = gain.index[0]
    reference, window = pool.iloc[:1500], pool.iloc[1500:3000].copy()
    spread = float(reference[top].std())
    window[top] = window[top] - 1.5 * spread  # e.g. an external score that fell
    out = _attribute(artifacts, reference, window)
    assert out.table["feature"].iloc[0] == top
    assert abs(out.mean_margin_change) > 0.1
    # It carries most of the movement, not just a bit more than the sampling noise.
    assert abs(out.table["share_of_change"].iloc[0]) > 0.5


def test_a_shift_the_model_ignores_moves_nothing_and_is_not_blamed(model):
    artifacts, pool, gain = model
    ignored = gain.index[gain == 0][0]
    reference = pool.iloc[:1500]
    window = reference.copy()
    window[ignored] = window[ignored].fillna(0) * 10 + 1e6
    out = _attribute(artifacts, reference, window)
    assert abs(out.mean_margin_change) < 1e-12
    assert abs(out.mean_probability_change) < 1e-12
    row = out.table.set_index("feature").loc[ignored]
    assert row["contribution_change"] == 0.0 and row["share_of_change"] == 0.0

    # The same shift in a different sample of applications: still never blamed.
    other = pool.iloc[1500:3000].copy()
    other[ignored] = other[ignored].fillna(0) * 10 + 1e6
    out = _attribute(artifacts, reference, other)
    row = out.table.set_index("feature").loc[ignored]
    assert row["contribution_change"] == 0.0
    assert (
        ignored not in set(out.top(15)["feature"]) or out.top(15)["contribution_change"].eq(0).all()
    )


def test_mismatched_or_empty_contributions_are_refused():
    with pytest.raises(ValueError, match="expected"):
        attribute_mean_change(np.zeros((3, 3)), np.zeros((3, 4)), ["a", "b", "c"])
    with pytest.raises(ValueError, match="empty"):
        attribute_mean_change(np.zeros((0, 3)), np.zeros((3, 3)), ["a", "b"])


def test_the_pipeline_step_uses_the_stored_joint_sample_and_caps_rows(model_dir, model):
    _, paths, artifacts = model_dir
    _, pool, gain = model
    data = load_training_data(paths.train, "TARGET", "SK_ID_CURR")
    profile = fit_reference(data.X, artifacts.schema, artifacts.importance, sample_rows=2000)
    loaded = LoadedReference(profile, profile.profile_version, artifacts.version)
    frame = reference_sample_frame(loaded)
    assert list(frame.columns) == list(artifacts.schema.names) and len(frame) == 2000

    top = gain.index[0]
    features = pool.iloc[:1200].reset_index(drop=True).copy()
    features[top] = features[top] - 1.5 * float(features[top].std())
    day = DayWindow.of("2026-11-02")
    window = ProductionWindow(day=day, features=features, meta=pd.DataFrame(index=features.index))
    out = compute_score_attribution(artifacts, loaded, window, max_rows=1000)
    assert (out.n_reference, out.n_window) == (1000, 1000)
    assert out.table["feature"].iloc[0] == top
    expected = _raw_mean(
        artifacts,
        window.features.iloc[
            np.sort(np.random.default_rng(0).choice(1200, size=1000, replace=False))
        ],
    ) - _raw_mean(
        artifacts,
        frame.iloc[np.sort(np.random.default_rng(0).choice(2000, size=1000, replace=False))],
    )
    assert out.mean_margin_change == pytest.approx(expected, abs=1e-9)

    empty = ProductionWindow(day=day, features=features.iloc[:0], meta=pd.DataFrame())
    assert compute_score_attribution(artifacts, loaded, empty) is None


def test_the_reference_side_is_computed_once_and_gives_the_same_numbers(model_dir, model):
    # The reference side depends on the profile, the model, the row count and the seed only:
    # kept after the first day, it gives the very numbers a fresh computation gives.
    from credit_drift.pipeline import attribution as step

    _, paths, artifacts = model_dir
    _, pool, _ = model
    data = load_training_data(paths.train, "TARGET", "SK_ID_CURR")
    profile = fit_reference(data.X, artifacts.schema, artifacts.importance, sample_rows=1500)
    loaded = LoadedReference(profile, profile.profile_version, artifacts.version)
    day = DayWindow.of("2026-11-02")
    features = pool.iloc[:900].reset_index(drop=True)
    window = ProductionWindow(day=day, features=features, meta=pd.DataFrame(index=features.index))
    step.clear_contributions_cache()
    first = compute_score_attribution(artifacts, loaded, window, max_rows=700)
    assert (first.n_reference, first.n_window) == (700, 700)
    kept = step.reference_contributions(artifacts, loaded, 700, 0)
    assert not kept.flags.writeable  # shared between days: nobody may change it
    again = compute_score_attribution(artifacts, loaded, window, max_rows=700)
    assert step.reference_contributions(artifacts, loaded, 700, 0) is kept

    frame = reference_sample_frame(loaded)
    rows = np.sort(np.random.default_rng(0).choice(1500, size=700, replace=False))
    fresh = artifacts.contributions(model_matrix(artifacts.schema, frame.iloc[rows]))
    assert np.array_equal(kept, fresh)
    step.clear_contributions_cache()
    recomputed = compute_score_attribution(artifacts, loaded, window, max_rows=700)
    for out in (again, recomputed):
        pd.testing.assert_frame_equal(out.table, first.table, check_exact=True)
        assert out.mean_margin_change == first.mean_margin_change
        assert out.mean_margin_change_se == first.mean_margin_change_se

    # Another profile, seed or row count is another entry; at most CACHED_CONTRIBUTIONS kept.
    other = fit_reference(data.X.iloc[:2000], artifacts.schema, artifacts.importance)
    other_loaded = LoadedReference(other, other.profile_version, artifacts.version)
    assert other.profile_version != profile.profile_version
    keys = [(loaded, 700, 0), (other_loaded, 700, 0), (loaded, 700, 1), (loaded, 600, 0)]
    arrays = [step.reference_contributions(artifacts, r, n, s) for r, n, s in keys]
    assert not np.array_equal(arrays[0], arrays[1]) and not np.array_equal(arrays[0], arrays[2])
    assert arrays[3].shape[0] == 600
    step.reference_contributions(artifacts, loaded, 500, 0)
    assert len(step._contributions) == step.CACHED_CONTRIBUTIONS
    step.clear_contributions_cache()


def test_the_chart_ranks_the_features_and_an_empty_table_says_so(model, tmp_path):
    from credit_drift.reports.plots import plot_score_attribution

    artifacts, pool, _ = model
    out = _attribute(artifacts, pool.iloc[:300], pool.iloc[300:600])
    kwargs = dict(
        mean_log_odds_change=out.mean_margin_change,
        mean_probability_change=out.mean_probability_change,
    )
    path = plot_score_attribution(out.table, tmp_path / "a.png", **kwargs)
    assert path.read_bytes().startswith(b"\x89PNG")
    empty = plot_score_attribution(out.table.iloc[:0], tmp_path / "b.png", **kwargs)
    assert empty.read_bytes().startswith(b"\x89PNG")
