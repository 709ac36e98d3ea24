"""Training on the synthetic data (held-out AUC, cost-minimizing threshold), model artifacts
(round trip, version), and models with categorical features (unseen categories at scoring)."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from credit_drift.data.generator import FEATURE_NAMES, generate_applications
from credit_drift.data.loader import load_training_data
from credit_drift.model.artifacts import (
    APPROVED,
    REFUSED,
    ArtifactsError,
    ModelArtifacts,
    lightgbm_feature_names,
    load_artifacts,
    save_artifacts,
)
from credit_drift.model.train import TrainConfig, TrainingError, choose_threshold, train_model

SEED = 42
# Default parameters on one thread: on a busy 2-core machine, LightGBM's two OpenMP threads
# spin against the other processes (seen: 11 s on one thread, 129 s on two). With
# deterministic=True the model is the same either way.
DEFAULTS_ONE_THREAD = TrainConfig(n_jobs=1)
SMALL = TrainConfig(n_estimators=40, min_child_samples=20, n_jobs=1)


def brute_force_threshold(y, proba, cost_fn, cost_fp):
    """Independent scan: every distinct probability plus one above the maximum; lowest cost,
    ties to the highest threshold."""
    y = np.asarray(y).astype(bool)
    candidates = sorted(set(proba.tolist()) | {np.nextafter(proba.max(), np.inf)})
    best = None
    for t in candidates:
        refused = proba >= t
        cost = cost_fn * np.sum(y & ~refused) + cost_fp * np.sum(~y & refused)
        if best is None or cost < best[1] or (cost == best[1] and t > best[0]):
            best = (t, cost)
    return best


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "train.parquet"
    generate_applications(20_000, seed=SEED).to_parquet(path, index=False)
    return load_training_data(path, "TARGET", "SK_ID_CURR")


@pytest.fixture(scope="module")
def trained(dataset) -> ModelArtifacts:
    return train_model(
        dataset, cost_fn=10.0, cost_fp=1.0, seed=SEED, test_size=0.2, config=DEFAULTS_ONE_THREAD
    )


@pytest.fixture(scope="module")
def pool() -> pd.DataFrame:
    return generate_applications(2_000, seed=1234, id_start=900_000)[list(FEATURE_NAMES)]


def test_held_out_auc_is_realistic(trained, dataset):
    m = trained.metrics
    assert 0.70 <= m["auc"] <= 0.82
    assert m["n_train"] == 16_000 and m["n_test"] == 4_000
    assert m["default_rate"] == pytest.approx(dataset.y.mean())
    assert 0 < m["refusal_rate"] < 1
    assert m["threshold"] == trained.threshold
    assert m["training_seconds"] > 0


def test_threshold_is_the_brute_force_cost_minimum_on_the_held_out_split(trained, dataset):
    y = dataset.y.to_numpy()
    _, idx_test = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=SEED)
    proba = trained.predict_proba(dataset.X.iloc[idx_test])
    threshold, cost = brute_force_threshold(y[idx_test], proba, 10.0, 1.0)
    report = trained.threshold_report
    assert report.threshold == threshold == trained.threshold
    assert report.cost == cost == trained.metrics["cost"]
    assert report.n_fn * 10.0 + report.n_fp * 1.0 == cost
    assert report.n_tp + report.n_fn == y[idx_test].sum()


@pytest.mark.parametrize("seed", range(6))
def test_choose_threshold_matches_brute_force_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    y = rng.random(n) < 0.2
    proba = np.round(rng.random(n) * (0.5 + 0.5 * y), 2)  # rounded: many ties
    cost_fn, cost_fp = float(rng.choice([1.0, 5.0, 10.0, 0.3])), float(rng.choice([1.0, 2.5]))
    report = choose_threshold(y, proba, cost_fn, cost_fp)
    assert (report.threshold, report.cost) == brute_force_threshold(y, proba, cost_fn, cost_fp)


def test_choose_threshold_known_answers():
    y = np.array([0, 0, 1, 1, 0])
    proba = np.array([0.1, 0.4, 0.35, 0.8, 0.6])
    # Missing a default costs 10: refuse both defaults (threshold 0.35) at 2 false positives.
    report = choose_threshold(y, proba, cost_fn=10, cost_fp=1)
    assert (report.threshold, report.cost, report.n_fn, report.n_fp) == (0.35, 2.0, 0, 2)
    # Refusing a good client costs 10: refuse only the default scored above every good client.
    report = choose_threshold(y, proba, cost_fn=1, cost_fp=10)
    assert (report.threshold, report.cost, report.n_fn, report.n_fp) == (0.8, 1.0, 1, 0)
    # When the top score is a good client, refuse nobody: a threshold above every probability.
    report = choose_threshold([1, 0, 0], np.array([0.2, 0.9, 0.5]), cost_fn=1, cost_fp=10)
    assert report.threshold > 0.9 and (report.cost, report.n_fn, report.n_fp) == (1.0, 1, 0)
    # Equal costs: refusing nobody and refusing everybody both cost 1; the highest threshold
    # (fewest refusals) wins.
    report = choose_threshold([1, 0], np.array([0.3, 0.6]), cost_fn=1, cost_fp=1)
    assert report.threshold > 0.6 and (report.cost, report.n_fn, report.n_fp) == (1.0, 1, 0)
    assert report.n_candidates == 3


def test_artifacts_round_trip(trained, pool, tmp_path):
    save_artifacts(trained, tmp_path / "art")
    names = sorted(p.name for p in (tmp_path / "art").iterdir())
    assert names == [
        "feature_importance.json",
        "feature_schema.json",
        "holdout.json",
        "metrics.json",
        "model.txt",
        "model_version.json",
        "threshold.json",
    ]
    loaded = load_artifacts(tmp_path / "art")
    assert loaded.version == trained.version
    assert len(loaded.version) == 12 and int(loaded.version, 16) >= 0
    assert json.loads((tmp_path / "art" / "model_version.json").read_text())["version"] == (
        trained.version
    )
    np.testing.assert_array_equal(loaded.predict_proba(pool), trained.predict_proba(pool))
    single = pool.iloc[[7]]
    assert loaded.predict_proba(single, num_threads=1)[0] == trained.predict_proba(pool)[7]
    assert loaded.threshold == trained.threshold
    assert loaded.threshold_report == trained.threshold_report
    assert loaded.metrics == trained.metrics
    assert loaded.importance == trained.importance
    assert loaded.schema == trained.schema
    # Saving what was loaded writes the same bytes, hence the same version.
    save_artifacts(loaded, tmp_path / "again")
    for name in ("model.txt", "feature_schema.json", "threshold.json"):
        assert (tmp_path / "again" / name).read_bytes() == (tmp_path / "art" / name).read_bytes()


def test_scoring_equals_lightgbm_on_the_model_frame(trained, pool):
    # predict_proba builds a code matrix; it must equal LightGBM's own pandas path.
    frame = trained.schema.model_frame(pool)
    frame.columns = lightgbm_feature_names(trained.schema)
    np.testing.assert_array_equal(trained.predict_proba(pool), trained.booster.predict(frame))
    shuffled = pool[list(reversed(pool.columns))].assign(extra="ignored")
    np.testing.assert_array_equal(trained.predict_proba(shuffled), trained.predict_proba(pool))


def test_single_rows_score_bit_identical_through_the_fast_path(trained, pool):
    """One row on one thread goes through LightGBM's single-row fast path
    (`model.single_row`); it must give Booster.predict's probabilities bit for bit, missing
    values and categorical codes included, with or without a best iteration."""
    from credit_drift.model.single_row import SingleRowPredictor

    matrix = trained.schema.pack_frame(pool.iloc[:300])[0]
    matrix[::7, ::5] = np.nan  # missing values, too
    expected = trained.booster.predict(matrix, num_threads=1)
    single = np.array(
        [trained.predict_matrix(matrix[i : i + 1], num_threads=1)[0] for i in range(300)]
    )
    assert trained._single_row is not None  # the fast path was taken
    np.testing.assert_array_equal(single, expected)
    # A booster with a best iteration: Booster.predict uses it by default, and so must the path.
    booster = trained.booster
    best = booster.best_iteration
    booster.best_iteration = max(1, booster.current_iteration() // 2)
    try:
        fast = SingleRowPredictor(booster)
        truncated = booster.predict(matrix, num_threads=1)
        assert not np.array_equal(truncated, expected)
        np.testing.assert_array_equal([fast.predict(row) for row in matrix], truncated)
    finally:
        booster.best_iteration = best
    with pytest.raises(ValueError, match="contiguous float64"):
        fast.predict(matrix[0, :10].copy())


def test_changing_the_threshold_changes_the_version(trained, tmp_path):
    other = trained.with_threshold(trained.threshold + 0.01)
    assert other.version != trained.version
    assert trained.with_threshold(trained.threshold).version == trained.version
    # A hand-edited threshold.json is a new version too.
    save_artifacts(trained, tmp_path)
    path = tmp_path / "threshold.json"
    content = json.loads(path.read_text())
    content["threshold"] = 0.5
    path.write_text(json.dumps(content, indent=1))
    edited = load_artifacts(tmp_path)
    assert edited.threshold == 0.5
    assert edited.version not in (trained.version, other.version)


def test_decide_and_importance(trained):
    t = trained.threshold
    decisions = trained.decide(np.array([t - 1e-9, t, t + 0.1]))
    assert decisions.tolist() == [APPROVED, REFUSED, REFUSED]
    importance = trained.importance
    assert list(importance) == trained.schema.names
    assert sum(importance.values()) == pytest.approx(1.0)
    assert min(importance.values()) >= 0
    top3 = sorted(importance, key=importance.get, reverse=True)[:3]
    assert {"EXT_SOURCE_2", "EXT_SOURCE_3"} <= set(top3)


def test_load_errors_name_the_file(trained, tmp_path):
    with pytest.raises(ArtifactsError, match="does not exist.*credit-drift train"):
        load_artifacts(tmp_path / "nothing")
    save_artifacts(trained, tmp_path)
    (tmp_path / "threshold.json").write_text("{not json")
    with pytest.raises(ArtifactsError, match=r"threshold\.json is corrupt.*credit-drift train"):
        load_artifacts(tmp_path)
    save_artifacts(trained, tmp_path)
    (tmp_path / "model.txt").write_text("this is not a model")
    with pytest.raises(ArtifactsError, match=r"model\.txt is corrupt"):
        load_artifacts(tmp_path)
    (tmp_path / "model.txt").unlink()
    with pytest.raises(ArtifactsError, match=r"model\.txt is missing.*credit-drift train"):
        load_artifacts(tmp_path)


def _categorical_training_file(tmp_path, n=3_000):
    rng = np.random.default_rng(3)
    segment = rng.choice(["retail", "sme", "premium", "student"], n, p=[0.5, 0.2, 0.2, 0.1])
    score = rng.random(n)
    base = {"retail": -2.0, "sme": -1.5, "premium": -3.0, "student": -0.5}
    logit = np.array([base[s] for s in segment]) - 2.0 * (score - 0.5)
    frame = pd.DataFrame(
        {
            "id": np.arange(n),
            "score": score,
            "segment": segment,
            "noise": rng.normal(size=n),
            "target": (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int),
        }
    )
    path = tmp_path / "train.csv"
    frame.to_csv(path, index=False)
    return path, frame


def test_declared_categorical_feature_trains_and_scores_unseen_categories(tmp_path):
    path, frame = _categorical_training_file(tmp_path)
    data = load_training_data(path, "target", "id", categorical_columns=["segment"])
    artifacts = train_model(data, seed=1, config=SMALL)
    assert artifacts.schema.categorical_names == ["segment"]
    assert artifacts.importance["segment"] > 0
    save_artifacts(artifacts, tmp_path / "art")
    loaded = load_artifacts(tmp_path / "art")

    rows = pd.DataFrame(
        {
            "score": [0.2, 0.2, 0.2, 0.2],
            "segment": ["student", "never-seen", None, np.nan],
            "noise": [0.0, 0.0, 0.0, 0.0],
        }
    )
    proba = loaded.predict_proba(rows)
    assert np.isfinite(proba).all() and proba.shape == (4,)
    np.testing.assert_array_equal(proba, artifacts.predict_proba(rows))
    # An unseen category is scored exactly as a missing value.
    assert proba[1] == proba[2] == proba[3]
    # And the segment matters: a known risky segment scores differently from missing.
    assert proba[0] != proba[2]
    # Same answer as LightGBM on the pandas Categorical frame.
    model_frame = loaded.schema.model_frame(rows)
    model_frame.columns = lightgbm_feature_names(loaded.schema)
    np.testing.assert_array_equal(proba, loaded.booster.predict(model_frame))


def test_training_is_deterministic(tmp_path):
    path, _ = _categorical_training_file(tmp_path, n=1_500)
    data = load_training_data(path, "target", "id", categorical_columns=["segment"])
    first = train_model(data, seed=5, config=SMALL)
    second = train_model(data, seed=5, config=SMALL)
    assert first.version == second.version
    assert train_model(data, seed=6, config=SMALL).version != first.version


def test_training_input_errors(tmp_path):
    path, frame = _categorical_training_file(tmp_path, n=200)
    data = load_training_data(path, "target", "id", categorical_columns=["segment"])
    with pytest.raises(TrainingError, match="cost_fn"):
        train_model(data, cost_fn=0, config=SMALL)
    with pytest.raises(TrainingError, match="cost_fp"):
        train_model(data, cost_fp=float("nan"), config=SMALL)
    with pytest.raises(TrainingError, match="test_size"):
        train_model(data, test_size=1.5, config=SMALL)
    frame = frame.assign(target=0)
    frame.loc[:2, "target"] = 1
    frame.to_csv(tmp_path / "rare.csv", index=False)
    rare = load_training_data(tmp_path / "rare.csv", "target", "id", ["segment"])
    with pytest.raises(TrainingError, match="3 default"):
        train_model(rare, config=SMALL)
