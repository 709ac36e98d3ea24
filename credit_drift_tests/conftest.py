"""Shared fixtures: every storage test runs on a real SQLite file and a real PostgreSQL server.

PostgreSQL comes from CREDIT_DRIFT_TEST_POSTGRES_URL (default: the local server with trust auth).
Each test gets its own PostgreSQL schema (dropped afterwards), selected through the connection's
search_path, so tests never see each other's rows. When the server is unreachable the PostgreSQL
variants are skipped on a developer machine, and FAIL when CI=true: CI must never go green
without having run the database tests.
"""

import os
import uuid

import pytest
import sqlalchemy as sa

DEFAULT_PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


def postgres_base_url() -> str:
    return os.environ.get("CREDIT_DRIFT_TEST_POSTGRES_URL", DEFAULT_PG_URL)


def _postgres_unreachable_reason() -> str | None:
    try:
        engine = sa.create_engine(postgres_base_url(), connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "cannot run the PG tests"
        return f"PostgreSQL at {postgres_base_url()} unreachable: {exc.__class__.__name__}: {exc}"


@pytest.fixture(autouse=True)
def _dispose_engines():
    # Engines are cached per URL and every PostgreSQL test has its own URL: close their pools.
    yield
    from credit_drift.storage.db import dispose_engines

    dispose_engines()


@pytest.fixture(scope="session")
def postgres_available() -> None:
    reason = _postgres_unreachable_reason()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (CI=true: database tests must run, not skip)")
    pytest.skip(reason)


@pytest.fixture
def postgres_url(postgres_available) -> str:
    """A URL whose search_path is a fresh, empty schema; dropped after the test."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_base_url())
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in postgres_base_url() else "?"
    yield f"{postgres_base_url()}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'credit_drift.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request) -> str:
    """Parametrizes a test over both databases."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("postgres_url")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A small model for the pipeline tests (4,000 seeded rows, 30 trees): (root, data paths,
    artifacts), trained once per test module."""
    from credit_drift.data.generator import write_datasets
    from credit_drift.data.loader import load_training_data
    from credit_drift.model.artifacts import save_artifacts
    from credit_drift.model.train import TrainConfig, train_model

    root = tmp_path_factory.mktemp("model")
    paths = write_datasets(root / "data", n_rows=4000, pool_rows=4000, seed=7)
    data = load_training_data(paths.train, "TARGET", "SK_ID_CURR")
    artifacts = train_model(data, config=TrainConfig(n_estimators=30, n_jobs=1))
    save_artifacts(artifacts, root / "artifacts")
    return root, paths, artifacts


def pipeline_env(monkeypatch, tmp_path, db_url: str, model_dir, **extra: str) -> None:
    """Point the settings at a fresh state directory, `db_url` and the small model (its
    artifacts and training data), plus `extra` variables."""
    root, paths, _ = model_dir
    monkeypatch.setenv("CREDIT_DRIFT_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("CREDIT_DRIFT_ARTIFACTS_DIR", str(root / "artifacts"))
    monkeypatch.setenv("CREDIT_DRIFT_TRAINING_DATA", str(paths.train))
    for name, value in extra.items():
        monkeypatch.setenv(name, value)


def replay_batches(db_url: str, model_dir, batches: list[dict], *, batch_size: int):
    """Log scenario `batches` (e.g. {"kind": "sudden", "intensity": 0.7}) into `db_url` through
    the replay path, batch i on 2026-11-01 + i days, from the small model's unseen pool (which is
    returned). The database is migrated first."""
    from credit_drift.data.loader import load_pool
    from credit_drift.simulator.replay import replay
    from credit_drift.simulator.scenario import Scenario
    from credit_drift.storage.db import upgrade

    _, paths, artifacts = model_dir
    upgrade(db_url)
    pool = load_pool(paths.pool, artifacts.schema)
    replay(
        database_url=db_url,
        artifacts=artifacts,
        pool=pool,
        scenario=Scenario.from_dict({"name": "t", "batches": batches}),
        batch_size=batch_size,
        start_date="2026-11-01",
        progress=False,
    )
    return pool


@pytest.fixture
def json_lines():
    """The API's JSON log lines emitted during the test, parsed."""
    import json
    import logging

    from credit_drift.serving.request_log import LOGGER_NAME

    lines: list[dict] = []

    class Collect(logging.Handler):
        def emit(self, record):
            lines.append(json.loads(record.getMessage()))

    handler = Collect()
    logging.getLogger(LOGGER_NAME).addHandler(handler)
    yield lines
    logging.getLogger(LOGGER_NAME).removeHandler(handler)
