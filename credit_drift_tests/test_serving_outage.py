"""The API when its database is down: a quick 503 with a clear message (never a hang, never a
500, never a decision without its log row), the JSON log line still written, and recovery by
itself when the database comes back (PostgreSQL behind a proxy the test cuts and restores)."""

import contextlib
import json
import logging

import httpx
import pytest
from sqlalchemy.engine import make_url

from credit_drift.serving.app import create_app
from credit_drift.serving.config import ServingConfig
from credit_drift.serving.request_log import LOGGER_NAME
from credit_drift_tests.test_serving_support import (
    TcpProxy,
    application,
    count,
    free_port,
    live_server,
    settings_for,
    trained_model,  # noqa: F401 - session fixture
    wait_until,
)

pytestmark = pytest.mark.postgres

# Short cool-down so recovery shows within the test's patience.
CONFIG = ServingConfig(
    database_retry_seconds=0.3, log_flush_seconds=0.05, shutdown_flush_seconds=0.5
)


@pytest.fixture
def json_lines():
    lines: list[dict] = []

    class Collect(logging.Handler):
        def emit(self, record):
            lines.append(json.loads(record.getMessage()))

    handler = Collect()
    logging.getLogger(LOGGER_NAME).addHandler(handler)
    yield lines
    logging.getLogger(LOGGER_NAME).removeHandler(handler)


def _with_port(url: str, port: int) -> str:
    return make_url(url).set(port=port).render_as_string(hide_password=False)


def test_unreachable_database_gives_a_quick_503_and_the_log_line_still_goes_out(
    postgres_url,
    trained_model,  # noqa: F811
    tmp_path,
    json_lines,
):
    dead = _with_port(postgres_url, free_port())  # nothing listens there
    settings = settings_for(dead, trained_model.artifacts_dir, tmp_path)
    app = create_app(settings, trained_model.artifacts, config=CONFIG)
    with live_server(app) as base, httpx.Client(base_url=base, timeout=15) as client:
        for path, body in (
            ("/predict", application(trained_model.pool)),
            ("/predict/batch", [application(trained_model.pool, i) for i in range(3)]),
        ):
            response = client.post(path, json=body)
            assert response.status_code == 503, response.text
            detail = response.json()["detail"]
            assert "database unavailable" in detail and "nothing was scored" in detail
            assert "Connection refused" in detail or "could not connect" in detail
            assert response.headers["retry-after"]
        health = client.get("/health")
        assert health.status_code == 503
        assert health.json()["database"] == "unreachable"
        assert health.json()["model_loaded"] is True
        # Invalid input is still named (validation does not need the database).
        assert client.post("/predict", json={"x": 1}).status_code == 422
    statuses = [(line["endpoint"], line["status"]) for line in json_lines if "status" in line]
    assert ("/predict", 503) in statuses and ("/predict/batch", 503) in statuses
    failed = [
        line for line in json_lines if line.get("status") == 503 and line["endpoint"] != "/health"
    ]
    assert failed and all("database unavailable" in line["error"] for line in failed)


def test_recovers_by_itself_when_the_database_comes_back(
    postgres_url,
    trained_model,  # noqa: F811
    tmp_path,
):
    target = make_url(postgres_url)
    proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432)
    proxy.restore()
    url = _with_port(postgres_url, proxy.port)
    settings = settings_for(url, trained_model.artifacts_dir, tmp_path)
    app = create_app(settings, trained_model.artifacts, config=CONFIG)
    answered = 0
    try:
        with contextlib.ExitStack() as stack:
            base = stack.enter_context(live_server(app))
            client = stack.enter_context(httpx.Client(base_url=base, timeout=15))
            body = application(trained_model.pool)
            assert client.post("/predict", json=body).status_code == 200
            answered += 1

            proxy.cut()
            down = [client.post("/predict", json=body).status_code for _ in range(3)]
            assert down == [503, 503, 503]
            assert client.get("/health").status_code == 503

            proxy.restore()

            def answers() -> bool:
                nonlocal answered
                status = client.post("/predict", json=body).status_code
                assert status in (200, 503)
                answered += status == 200
                return status == 200

            assert wait_until(answers, timeout=20, step=0.2)
            assert client.get("/health").status_code == 200
            batch = [application(trained_model.pool, i) for i in range(5)]
            assert client.post("/predict/batch", json=batch).status_code == 200
            answered += 5
            # The api_logs rows of the outage waited in memory and are written now.
            assert app.state.api_log_writer.flush(timeout=15)
        direct = postgres_url
        assert count(direct, "predictions") == answered
        assert count(direct, "api_logs", "WHERE status_code = 503") >= 4
        assert count(direct, "api_logs", "WHERE status_code = 200") >= 3
    finally:
        proxy.cut()
