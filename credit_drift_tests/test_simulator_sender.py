"""The traffic simulator end to end: over HTTP to a real server, replayed without HTTP, and bulk
backfilled, on SQLite and PostgreSQL; batches land on the requested UTC days; the live API
refuses forged event times; the CLI wiring works."""

import contextlib
import datetime as dt

import numpy as np
import pytest

from credit_drift.serving.app import create_app
from credit_drift.simulator.replay import SimulatorError, bulk_backfill, replay
from credit_drift.simulator.scenario import Scenario, default_scenario
from credit_drift.simulator.sender import simulate
from credit_drift_tests.test_serving_support import (
    count,
    live_server,
    rows,
    settings_for,
    trained_model,  # noqa: F401 - session fixture
    utc_day,
)

START = dt.date(2026, 11, 1)


@pytest.fixture
def serve(trained_model, tmp_path):  # noqa: F811
    """serve(url, **settings overrides) -> base URL of a real uvicorn serving the model."""
    with contextlib.ExitStack() as stack:

        def start(url: str, **overrides) -> str:
            settings = settings_for(url, trained_model.artifacts_dir, tmp_path, **overrides)
            app = create_app(settings, trained_model.artifacts)
            stack.enter_context(contextlib.closing(_Flusher(app)))
            return stack.enter_context(live_server(app))

        yield start


class _Flusher:
    def __init__(self, app) -> None:
        self.app = app

    def close(self) -> None:
        self.app.state.api_log_writer.flush(timeout=10)


def _days(url: str, source: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows(url, f"SELECT created_at FROM predictions WHERE source = '{source}'"):
        key = utc_day(r.created_at).isoformat()
        out[key] = out.get(key, 0) + 1
    return out


def _expected_days(n: int, size: int) -> dict[str, int]:
    return {(START + dt.timedelta(days=i)).isoformat(): size for i in range(n)}


@pytest.mark.parametrize("request_size", [1, 5])
def test_http_traffic_lands_on_the_requested_days(
    db_url,
    serve,
    trained_model,  # noqa: F811
    request_size,
):
    base = serve(db_url, allow_replay=True)
    summary = simulate(
        base,
        pool=trained_model.pool,
        batch_size=10,
        seed=3,
        start_date="2026-11-01",
        batch_interval="1d",
        request_size=request_size,
        progress=False,
    )
    assert [b.n_logged for b in summary.batches] == [10] * 8
    assert summary.n_failed == 0
    assert [b.name for b in summary.batches][3:] == [
        "gradual 0.1",
        "gradual 0.2",
        "gradual 0.3",
        "sudden 0.5",
        "sudden 0.7",
    ]
    assert _days(db_url, "replay") == _expected_days(8, 10)
    assert count(db_url, "predictions") == 80


def test_the_live_api_refuses_forged_times(sqlite_url, serve, trained_model):  # noqa: F811
    base = serve(sqlite_url)  # replay not allowed
    with pytest.raises(SimulatorError, match="CREDIT_DRIFT_ALLOW_REPLAY=1"):
        simulate(
            base,
            pool=trained_model.pool,
            batch_size=5,
            start_date="2026-11-01",
            progress=False,
        )
    assert count(sqlite_url, "predictions") == 0
    # Without a start date the traffic is live: stamped now, logged as ordinary API traffic.
    summary = simulate(base, pool=trained_model.pool, batch_size=4, n_batches=2, progress=False)
    assert summary.n_logged == 8
    assert set(_days(sqlite_url, "api")) <= {
        dt.datetime.now(dt.UTC).date().isoformat(),
        (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).date().isoformat(),
    }


def test_http_errors_are_reported_not_swallowed(sqlite_url, serve, trained_model):  # noqa: F811
    base = serve(sqlite_url, api_key="k")
    with pytest.raises(SimulatorError, match="401"):
        simulate(base, pool=trained_model.pool, batch_size=2, progress=False)
    with pytest.raises(SimulatorError, match="cannot reach the scoring API"):
        simulate("http://127.0.0.1:9", pool=trained_model.pool, batch_size=2, progress=False)
    summary = simulate(
        base, pool=trained_model.pool, batch_size=2, n_batches=1, api_key="k", progress=False
    )
    assert summary.n_logged == 2


def test_replay_without_http_lands_on_the_requested_days(db_url, trained_model):  # noqa: F811
    summary = replay(
        database_url=db_url,
        artifacts=trained_model.artifacts,
        pool=trained_model.pool,
        scenario=default_scenario(),
        batch_size=7,
        seed=1,
        start_date="2026-11-01",
        progress=False,
    )
    assert summary.n_logged == 56
    assert _days(db_url, "replay") == _expected_days(8, 7)
    assert 0 <= summary.batches[0].refused_share <= 1


def test_same_seed_same_traffic_in_the_log(tmp_path, trained_model):  # noqa: F811
    from credit_drift.storage.db import make_engine
    from credit_drift.storage.predictions import read_predictions

    logged = []
    for name in ("a", "b"):
        url = f"sqlite:///{tmp_path / name}.db"
        replay(
            database_url=url,
            artifacts=trained_model.artifacts,
            pool=trained_model.pool,
            batch_size=6,
            n_batches=8,
            seed=9,
            start_date="2026-11-01",
            progress=False,
        )
        window = read_predictions(
            make_engine(url),
            trained_model.artifacts.schema,
            dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
            dt.datetime(2026, 11, 9, tzinfo=dt.UTC),
        )
        logged.append(window)
    np.testing.assert_array_equal(logged[0].features.to_numpy(), logged[1].features.to_numpy())
    np.testing.assert_array_equal(
        logged[0].meta["probability"].to_numpy(), logged[1].meta["probability"].to_numpy()
    )
    np.testing.assert_array_equal(
        logged[0].meta["created_at"].to_numpy(), logged[1].meta["created_at"].to_numpy()
    )


def test_bulk_backfill_spreads_each_day(db_url, trained_model):  # noqa: F811
    scenario = Scenario.from_dict(
        [
            {"kind": "clean"},
            {"kind": "sudden", "intensity": 0.7},
            {"kind": "gradual", "intensity": 0.3},
        ]
    )
    summary = bulk_backfill(
        database_url=db_url,
        artifacts=trained_model.artifacts,
        pool=trained_model.pool.iloc[:500],  # smaller than a day: the pool is reshuffled
        scenario=scenario,
        rows_per_day=700,
        start_date="2026-11-01",
        chunk_rows=300,
        progress=False,
    )
    assert summary.days == ("2026-11-01", "2026-11-02", "2026-11-03")
    assert summary.n_rows == 2_100
    assert _days(db_url, "bulk") == _expected_days(3, 700)
    stamps = sorted(r.created_at for r in rows(db_url, "SELECT created_at FROM predictions"))
    first = [s for s in stamps if utc_day(s) == START]
    # Spread over the whole day, not piled at midnight.
    spread = [dt.datetime.fromisoformat(s) if isinstance(s, str) else s for s in first]
    spread = [s.replace(tzinfo=None) for s in spread]
    assert (spread[-1] - spread[0]) > dt.timedelta(hours=23)
    # Each day follows its scenario batch: the sudden day's new segment has no bureau file.
    from credit_drift.storage.db import make_engine
    from credit_drift.storage.predictions import read_predictions

    def bureau_missing(day: int) -> float:
        start = dt.datetime(2026, 11, 1 + day, tzinfo=dt.UTC)
        window = read_predictions(
            make_engine(db_url), trained_model.artifacts.schema, start, start + dt.timedelta(1)
        )
        return float(window.features["BURO_DAYS_CREDIT_MAX"].isna().mean())

    clean, sudden = bureau_missing(0), bureau_missing(1)
    assert sudden > clean + 0.5


def test_cli_simulate_replay_and_http(
    sqlite_url,
    serve,
    trained_model,  # noqa: F811
    tmp_path,
    monkeypatch,
    capsys,
):
    from credit_drift.cli import main

    pool_path = tmp_path / "pool.parquet"
    trained_model.pool.to_parquet(pool_path)
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("CREDIT_DRIFT_ARTIFACTS_DIR", str(trained_model.artifacts_dir))
    monkeypatch.setenv("CREDIT_DRIFT_HOME", str(tmp_path / "home"))
    common = ["--pool", str(pool_path), "--batch-size", "5", "--no-progress"]
    assert main(["simulate", "--mode", "replay", "--start-date", "2026-11-01", *common]) == 0
    assert _days(sqlite_url, "replay") == _expected_days(8, 5)
    assert "sudden 0.7" in capsys.readouterr().out

    base = serve(sqlite_url)
    assert main(["simulate", "--url", base, "--n-batches", "2", *common]) == 0
    assert count(sqlite_url, "predictions", "WHERE source = 'api'") == 10

    assert main(["simulate", "--scenario", "nope", *common]) == 2
    assert "nope" in capsys.readouterr().err

    # Bulk mode defaults to the 30-day `month` scenario from CREDIT_DRIFT_PARTITIONS_START.
    bulk = ["--mode", "bulk", "--rows-per-day", "40", "--days", "3", "--no-progress"]
    assert main(["simulate", *bulk, "--pool", str(pool_path)]) == 0
    assert _days(sqlite_url, "bulk") == _expected_days(3, 40)
    assert "120 predictions on 3 days" in capsys.readouterr().out


def test_a_scenario_that_changes_nothing_is_warned_about(capsys):
    import pandas as pd

    from credit_drift.simulator.drift import DEFAULT_DRIFT_CONFIG
    from credit_drift.simulator.scenario import load_scenario
    from credit_drift.simulator.sender import warn_inert_batches

    rng = np.random.default_rng(0)
    own = pd.DataFrame({"income": rng.lognormal(10, 0.5, 300), "age": rng.integers(20, 70, 300)})
    assert warn_inert_batches(own, default_scenario(), None, DEFAULT_DRIFT_CONFIG) == [
        3,
        4,
        5,
        6,
        7,
    ]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("credit-drift: warning: batch 4 (gradual 0.1)")
    assert "batch 8 (sudden 0.7) change nothing" in err and "--scenario generic" in err
    # Only the batches that will be sent are checked.
    assert warn_inert_batches(own, default_scenario(), 3, DEFAULT_DRIFT_CONFIG) == []
    assert warn_inert_batches(own, load_scenario("generic"), None, DEFAULT_DRIFT_CONFIG) == []
    assert capsys.readouterr().err == ""
