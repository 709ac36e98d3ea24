"""The simulator logs each application's id from the pool's id column: over HTTP, replayed and
bulk backfilled, every stored prediction carries the id of the pool row it was scored from."""

import numpy as np
import pandas as pd
import pytest

from credit_drift.data.generator import ID_COLUMN
from credit_drift.data.loader import TrainingDataError, load_pool_ids
from credit_drift.serving.app import create_app
from credit_drift.simulator.replay import SimulatorError, bulk_backfill, replay
from credit_drift.simulator.scenario import Scenario
from credit_drift.simulator.sender import simulate
from credit_drift_tests.test_serving_support import (
    live_server,
    rows,
    settings_for,
    trained_model,  # noqa: F401 - session fixture
)

CLEAN = Scenario.constant("clean", 2)


def _pool_ids(pool: pd.DataFrame) -> np.ndarray:
    return np.array([f"P{100_000 + i}" for i in range(len(pool))], dtype=object)


def _assert_ids_match_the_scored_rows(db_url: str, trained_model, ids: np.ndarray) -> int:  # noqa: F811
    """Each stored prediction's probability is the model's score of the pool row its id names
    (the traffic is clean, so the features sent are the pool row's)."""
    stored = rows(db_url, "SELECT application_id, probability FROM predictions ORDER BY id")
    assert stored and all(r.application_id is not None for r in stored)
    position = {app_id: i for i, app_id in enumerate(ids)}
    pool_rows = [position[r.application_id] for r in stored]
    expected = trained_model.artifacts.predict_proba(trained_model.pool.iloc[pool_rows])
    np.testing.assert_allclose([r.probability for r in stored], expected, rtol=0, atol=1e-9)
    return len(stored)


def test_http_simulate_sends_the_pool_id_column(db_url, trained_model, tmp_path):  # noqa: F811
    pool = trained_model.pool.iloc[:40].reset_index(drop=True)
    int_ids = np.arange(100_000, 100_000 + len(pool))
    with_ids = pool.assign(**{ID_COLUMN: int_ids})
    settings = settings_for(db_url, trained_model.artifacts_dir, tmp_path, allow_replay=True)
    app = create_app(settings, trained_model.artifacts)
    with live_server(app) as base:
        simulate(
            base,
            pool=with_ids,
            scenario=CLEAN,
            batch_size=6,
            request_size=4,
            start_date="2026-11-01",
            progress=False,
        )
    app.state.api_log_writer.flush(timeout=10)
    # The integer ids are stored as their decimal text.
    text_ids = np.array([str(i) for i in int_ids], dtype=object)
    assert _assert_ids_match_the_scored_rows(db_url, trained_model, text_ids) == 12


def test_replay_and_bulk_log_the_given_ids(db_url, trained_model):  # noqa: F811
    pool = trained_model.pool.iloc[:30].reset_index(drop=True)
    ids = _pool_ids(pool)
    replay(
        database_url=db_url,
        artifacts=trained_model.artifacts,
        pool=pool,
        scenario=CLEAN,
        batch_size=9,
        start_date="2026-11-01",
        progress=False,
        application_ids=ids,
    )
    bulk_backfill(
        database_url=db_url,
        artifacts=trained_model.artifacts,
        pool=pool,
        days=1,
        rows_per_day=50,  # more than the pool: rows drawn again carry their id again
        start_date="2026-11-05",
        chunk_rows=20,
        progress=False,
        application_ids=ids,
    )
    assert _assert_ids_match_the_scored_rows(db_url, trained_model, ids) == 18 + 50
    with pytest.raises(SimulatorError, match="application_ids has 3 values for a pool of 30"):
        replay(
            database_url=db_url,
            artifacts=trained_model.artifacts,
            pool=pool,
            scenario=CLEAN,
            batch_size=2,
            progress=False,
            application_ids=ids[:3],
        )


def test_load_pool_ids_reads_only_the_id_column(tmp_path):
    frame = pd.DataFrame({ID_COLUMN: [100002, 100003, 100004], "AMT_CREDIT": [1.0, 2.0, 3.0]})
    frame.to_parquet(tmp_path / "pool.parquet")
    frame.to_csv(tmp_path / "pool.csv", index=False)
    for name in ("pool.parquet", "pool.csv"):
        ids = load_pool_ids(tmp_path / name, ID_COLUMN)
        assert ids.tolist() == ["100002", "100003", "100004"]
        assert load_pool_ids(tmp_path / name, "NO_SUCH") is None
        assert load_pool_ids(tmp_path / name, None) is None
    # A CSV integer column with a gap reads as float: integral values are still ids.
    pd.DataFrame({ID_COLUMN: [7.0, None, "x"]}).to_csv(tmp_path / "gap.csv", index=False)
    assert load_pool_ids(tmp_path / "gap.csv", ID_COLUMN).tolist() == ["7.0", None, "x"]
    pd.DataFrame({ID_COLUMN: [7.0, np.nan]}).to_parquet(tmp_path / "gap.parquet")
    assert load_pool_ids(tmp_path / "gap.parquet", ID_COLUMN).tolist() == ["7", None]
    pd.DataFrame({ID_COLUMN: [7.5]}).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(TrainingDataError, match="row 0 holds 7.5, not an integer id"):
        load_pool_ids(tmp_path / "bad.parquet", ID_COLUMN)
