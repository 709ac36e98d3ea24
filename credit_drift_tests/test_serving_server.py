"""`run_server` in a real server process (uvicorn on a free loopback port, one worker and two),
as `credit-drift serve` starts it: predictions logged, api_logs flushed on shutdown, the API key
enforced and never printed."""

import gc
import os
import signal
import subprocess
import sys

import httpx
import pytest

from credit_drift.serving.app import app_from_env
from credit_drift_tests.test_serving_support import (
    API_KEY,
    application,
    count,
    free_port,
    trained_model,  # noqa: F401 - session fixture
    wait_until,
)

SERVER = (
    "import sys; from credit_drift.serving.server import run_server; "
    "from credit_drift.settings import Settings; "
    "run_server('127.0.0.1', int(sys.argv[1]), int(sys.argv[2]), Settings.from_env())"
)


def _start(
    url: str, artifacts_dir, tmp_path, workers: int, output=None
) -> tuple[subprocess.Popen, str]:
    """The server, its output piped (to read at the end: a few hundred log lines at most fill
    the pipe and stop the server) or written to the open file `output`."""
    port = free_port()
    env = {
        **os.environ,
        "CREDIT_DRIFT_HOME": str(tmp_path / "home"),
        "DATABASE_URL": url,
        "CREDIT_DRIFT_ARTIFACTS_DIR": str(artifacts_dir),
        "CREDIT_DRIFT_API_KEY": API_KEY,
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(port), str(workers)],
        env=env,
        stdout=output or subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stdout.read() if proc.stdout else ''}")
        try:
            return httpx.get(f"{base}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    assert wait_until(healthy, timeout=90, step=0.2)
    return proc, base


@pytest.mark.parametrize(
    ("database", "workers"),
    [("sqlite", 1), pytest.param("postgresql", 2, marks=[pytest.mark.postgres, pytest.mark.slow])],
)
def test_a_real_server_process_logs_every_prediction(
    request,
    database,
    workers,
    trained_model,  # noqa: F811
    tmp_path,
):
    url = request.getfixturevalue("sqlite_url" if database == "sqlite" else "postgres_url")
    proc, base = _start(url, trained_model.artifacts_dir, tmp_path, workers)
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            key = {"X-API-Key": API_KEY}
            bearer = {"Authorization": f"Bearer {API_KEY}"}
            singles = [
                client.post("/predict", json=application(trained_model.pool, i), headers=bearer)
                for i in range(4)
            ]
            batch = client.post(
                "/predict/batch",
                json=[application(trained_model.pool, i) for i in range(10)],
                headers=key,
            )
            refused = client.post("/predict", json=application(trained_model.pool))
            assert [r.status_code for r in singles] == [200] * 4
            assert batch.status_code == 200 and batch.json()["n_predictions"] == 10
            assert refused.status_code == 401
            assert all(r.headers["x-request-id"] for r in singles)
        # Logged before answered: the rows are there as soon as the answers are.
        assert count(url, "predictions") == 14
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert proc.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output
    # Graceful shutdown flushed the request log: one row per request, health probes included.
    assert count(url, "api_logs", "WHERE endpoint <> '/health'") == 6
    assert count(url, "api_logs", "WHERE status_code = 401") == 1
    assert '"status":401' in output and '"endpoint":"/predict/batch"' in output
    assert API_KEY not in output


def test_a_missing_model_stops_start_up_with_a_clear_error(tmp_path, sqlite_url):
    env = {
        **os.environ,
        "DATABASE_URL": sqlite_url,
        "CREDIT_DRIFT_ARTIFACTS_DIR": str(tmp_path / "no-model"),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "credit_drift.cli", "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "no-model" in proc.stderr and "credit-drift train" in proc.stderr


def test_a_worker_process_freezes_its_start_up_objects(
    monkeypatch,
    trained_model,  # noqa: F811
    sqlite_url,
    tmp_path,
):
    # What each uvicorn worker builds (`--factory ...:app_from_env`): after it, the objects of
    # start-up (the model among them) are out of the collector's generations.
    monkeypatch.setenv("CREDIT_DRIFT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("CREDIT_DRIFT_ARTIFACTS_DIR", str(trained_model.artifacts_dir))
    gc.unfreeze()
    try:
        app = app_from_env()
        assert gc.get_freeze_count() > 10_000
        booster = app.state.service.artifacts.booster
        assert not any(booster is o for o in gc.get_objects())  # frozen: in no generation
    finally:
        gc.unfreeze()
