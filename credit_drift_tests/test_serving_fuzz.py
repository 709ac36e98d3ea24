"""Schemathesis against the live OpenAPI document of a real server process on PostgreSQL (the
stricter database: no NUL in text): a few thousand generated requests, valid and invalid, NUL
bytes allowed, with 0 server errors, 0 answers that contradict the document (status codes,
content types, response schemas), and an `api_logs` row for every request answered."""

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from credit_drift_tests.test_serving_support import (
    count,
    free_port,
    trained_model,  # noqa: F401 - session fixture
    wait_until,
)

SERVER = (
    "import sys; from credit_drift.serving.server import run_server; "
    "from credit_drift.settings import Settings; "
    "run_server('127.0.0.1', int(sys.argv[1]), 1, Settings.from_env())"
)

#: What "the answer agrees with the document" means here. Not included: positive_data_acceptance
#: (the JSON Schema cannot say that a split batch's rows have as many values as its columns, nor
#: that event_time is refused unless replay is on, so a schema-valid body may rightly get a 4xx)
#: and the stateful/auth checks (no resources to create, no per-user objects).
CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
    )
)

#: A batch of more than max_batch_size applications violates the schema's maxItems and is
#: answered 413 Content Too Large (documented for that path), which schemathesis does not count
#: as a rejection unless told.
CONFIG = """
[checks.negative_data_rejection]
expected-statuses = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429, "5xx"]
"""


def _schemathesis() -> str:
    found = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("schemathesis is not installed: pip install -e '.[dev]'")
    return found


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.postgres
def test_schemathesis_finds_no_server_error_and_no_spec_violation(
    postgres_url,
    trained_model,  # noqa: F811
    tmp_path,
):
    port = free_port()
    env = {
        **os.environ,
        "CREDIT_DRIFT_HOME": str(tmp_path / "home"),
        "DATABASE_URL": postgres_url,
        "CREDIT_DRIFT_ARTIFACTS_DIR": str(trained_model.artifacts_dir),
        "CREDIT_DRIFT_API_KEY": "",
    }
    log_path = tmp_path / "server.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:

        def healthy() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"server exited: {log_path.read_text()[-3000:]}")
            try:
                return httpx.get(f"{base}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        assert wait_until(healthy, timeout=90, step=0.2)
        config = tmp_path / "schemathesis.toml"
        config.write_text(CONFIG)
        run = subprocess.run(
            [
                _schemathesis(),
                "--config-file",
                str(config),
                "run",
                f"{base}/openapi.json",
                "--checks",
                CHECKS,
                "--max-examples",
                "60",
                "--seed",
                "20261202",
                "--workers",
                "1",
                "--request-timeout",
                "20",
                "--generation-database",
                "none",
                "--generation-allow-x00",
                "true",
                "--no-color",
                "--suppress-health-check",
                "too_slow,data_too_large,large_base_example,filter_too_much",
            ],
            capture_output=True,
            text=True,
            timeout=480,
            cwd=tmp_path,
        )
        output = run.stdout + run.stderr
        (tmp_path / "schemathesis.out").write_text(output)
        # Failing bodies can be megabytes: show the failures and the summary, cut.
        shown = "\n".join(line[:300] for line in output.splitlines())
        assert run.returncode == 0, shown[-8000:]
        sent = httpx.get(f"{base}/health", timeout=5)
        assert sent.status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    server_log = log_path.read_text()
    assert "unhandled_error" not in server_log, server_log[-3000:]
    # Every request answered has its JSON line in the server's log and its api_logs row
    # (flushed at shutdown): hostile strings must not have stopped the writer.
    answered = sum('"event":"request"' in line for line in server_log.splitlines())
    assert answered >= 1000
    assert count(postgres_url, "api_logs") == answered
    assert "api_logs_lost" not in server_log
