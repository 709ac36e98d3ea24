"""The `api_logs` writer against what clients can send and what databases refuse, on SQLite and
PostgreSQL: NUL bytes, lone surrogates and over-long strings are stored escaped and cut, a row
the database refuses for good is isolated (the rows around it are written) and counted, and an
outage keeps the rows and backs off instead of spinning."""

import contextlib
import datetime as dt
import json
import logging
import threading
import time

import httpx
import pytest

from credit_drift.serving.app import create_app
from credit_drift.serving.config import ServingConfig
from credit_drift.serving.database import DatabaseUnavailable
from credit_drift.serving.request_log import LOGGER_NAME, ApiLogWriter, clean_row, clean_text
from credit_drift.storage.api_logs import ApiLogRow, insert_api_logs
from credit_drift.storage.db import make_engine, upgrade
from credit_drift_tests.test_log_schema import check
from credit_drift_tests.test_serving_support import (
    application,
    live_server,
    rows,
    settings_for,
    trained_model,  # noqa: F401 - session fixture
)

FAST = ServingConfig(log_flush_seconds=0.05, shutdown_flush_seconds=1.0)


@pytest.fixture
def serve(trained_model, tmp_path):  # noqa: F811
    with contextlib.ExitStack() as stack:

        def start(url: str) -> httpx.Client:
            settings = settings_for(url, trained_model.artifacts_dir, tmp_path)
            app = create_app(settings, trained_model.artifacts, config=FAST)
            base = stack.enter_context(live_server(app))
            client = stack.enter_context(httpx.Client(base_url=base, timeout=30))
            client.app = app
            return client

        yield start


def row(i: int, **changes) -> ApiLogRow:
    base = ApiLogRow(
        created_at=dt.datetime(2026, 11, 2, 12, 0, i % 60, tzinfo=dt.UTC),
        request_id=f"r{i}",
        method="GET",
        endpoint=f"/p{i}",
        status_code=200,
        latency_ms=1.0,
    )
    return ApiLogRow(**{**base.__dict__, **changes})


def test_hostile_strings_do_not_stop_the_log(db_url, serve, trained_model, json_lines):  # noqa: F811
    """A NUL in the path (404, no key needed), a NUL key and a lone surrogate key echoed in a
    422, an over-long path: every request gets its row, and so do the requests after them."""
    client = serve(db_url)
    assert client.get("/%00").status_code == 404
    good = application(trained_model.pool, 0)
    nul_key = json.dumps({**good, "\u0000": 1.0})
    answer = client.post("/predict", content=nul_key, headers={"content-type": "application/json"})
    assert answer.status_code == 422 and "\x00" in answer.json()["detail"]
    # json.dumps writes a lone surrogate as the escape "\ud800", which orjson refuses and the
    # standard library reads into a str that no database can encode.
    surrogate = json.dumps({**good, "\ud800": 1.0})
    answer = client.post(
        "/predict", content=surrogate, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 422, answer.text
    assert "\ud800" in answer.json()["detail"]
    assert client.get("/" + "%C3%A9" * 400 + "%00").status_code == 404
    after = [client.post("/predict", json=application(trained_model.pool, i)) for i in (1, 2)]
    assert [a.status_code for a in after] == [200, 200]

    writer = client.app.state.api_log_writer
    assert writer.flush(timeout=15), "the api_logs writer is stuck"
    stored = rows(db_url, "SELECT endpoint, method, status_code, error FROM api_logs ORDER BY id")
    assert [(r.endpoint, r.status_code) for r in stored] == [
        ("/\\x00", 404),
        ("/predict", 422),
        ("/predict", 422),
        (stored[3].endpoint, 404),
        ("/predict", 200),
        ("/predict", 200),
    ]
    assert "\\x00" in stored[1].error and "\\ud800" in stored[2].error
    assert stored[3].endpoint.startswith("/éé") and len(stored[3].endpoint) == 256
    assert writer.rejected == 0 and writer.failed == 0
    # The JSON log lines went out too, escaped the same way.
    endpoints = [line.get("endpoint") for line in json_lines if line.get("event") == "request"]
    assert endpoints[0] == "/\\x00"


def test_a_row_refused_for_good_is_isolated_and_counted(db_url, json_lines):
    """n_items beyond 64 bits: PostgreSQL refuses it (integer out of range), SQLite's driver
    cannot bind it. The rows of the same batch before and after it are written; the refused row
    is counted and logged, and never goes back to the queue."""
    upgrade(db_url)
    engine = make_engine(db_url)
    writer = ApiLogWriter(
        lambda batch: insert_api_logs(engine, batch),
        max_rows=1000,
        flush_seconds=0.05,
        batch_rows=100,
        retry_seconds=0.05,
        logger=logging.getLogger(LOGGER_NAME),
    )
    for i in range(10):
        writer.submit(row(i, n_items=2**70 if i == 4 else 1))
    assert writer.flush(timeout=15)
    for i in range(10, 13):
        writer.submit(row(i))
    assert writer.flush(timeout=15)
    writer.close(1.0)
    stored = [r.request_id for r in rows(db_url, "SELECT request_id FROM api_logs ORDER BY id")]
    assert stored == [f"r{i}" for i in range(13) if i != 4]
    assert writer.rejected == 1 and writer.failed == 0 and writer.pending() == 0
    rejected = [line for line in json_lines if line["event"] == "api_logs_row_rejected"]
    assert len(rejected) == 1 and rejected[0]["request_id"] == "r4"
    for line in json_lines:  # the documented log schema (docs/log-schema.json)
        check(json.dumps(line))


def test_a_refused_row_is_stored_in_a_reduced_form_when_it_can_be(json_lines):
    """A database that refuses one row's error text: the batch is retried row by row and that
    row is stored with the reason in place of its text."""
    stored: list[ApiLogRow] = []
    attempts = []

    def write(batch):
        attempts.append(len(batch))
        if any(r.error == "poison" for r in batch):
            raise ValueError("cannot store this")
        stored.extend(batch)

    writer = ApiLogWriter(
        write,
        max_rows=100,
        flush_seconds=0.05,
        batch_rows=10,
        retry_seconds=0.05,
        logger=logging.getLogger(LOGGER_NAME),
    )
    for i in range(5):
        writer.submit(row(i, error="poison" if i == 2 else None))
    assert writer.flush(timeout=10)
    writer.close(1.0)
    assert [r.request_id for r in stored] == ["r0", "r1", "r2", "r3", "r4"]
    assert "cannot store this" in stored[2].error
    assert writer.reduced == 1 and writer.rejected == 0
    # One batch attempt, then one attempt per row (the poison one twice): never re-queued.
    assert attempts == [5, 1, 1, 1, 1, 1, 1]
    reduced = [line for line in json_lines if line["event"] == "api_logs_row_reduced"]
    assert len(reduced) == 1 and reduced[0]["request_id"] == "r2"
    for line in json_lines:
        check(json.dumps(line))


def test_an_outage_keeps_the_rows_and_backs_off(json_lines):
    """While the database is down the writer keeps every row, tries again after a growing
    delay whatever the request rate, and logs one line per second at most; when the database
    is back, everything queued is written."""
    down = threading.Event()
    down.set()
    attempts = 0
    stored: list[ApiLogRow] = []

    def write(batch):
        nonlocal attempts
        attempts += 1
        if down.is_set():
            raise DatabaseUnavailable("OperationalError: connection refused", 0.05)
        stored.extend(batch)

    writer = ApiLogWriter(
        write,
        max_rows=100_000,
        flush_seconds=0.01,
        batch_rows=5,
        retry_seconds=0.05,
        max_retry_seconds=0.4,
        logger=logging.getLogger(LOGGER_NAME),
    )
    # Under load new rows arrive all the time; they must not cut the back-off short.
    deadline = time.monotonic() + 1.5
    n = 0
    while time.monotonic() < deadline:
        writer.submit(row(n))
        n += 1
        time.sleep(0.0005)
    # Delays of 0.05, 0.1, 0.2, 0.4, 0.4 ... fit at most about 6 attempts in 1.5 s; the old
    # writer, woken by every submit, tried hundreds of times.
    assert 1 <= attempts <= 8, attempts
    failure_lines = [line for line in json_lines if line["event"] == "api_logs_write_failed"]
    assert 1 <= len(failure_lines) <= 3
    for line in failure_lines:
        check(json.dumps(line))
    down.clear()
    assert writer.flush(timeout=10)
    writer.close(1.0)
    assert [r.request_id for r in stored] == [f"r{i}" for i in range(n)]
    assert writer.dropped == 0 and writer.rejected == 0


@pytest.mark.parametrize(
    ("value", "limit", "expected"),
    [
        ("/ok", 256, "/ok"),
        ("/a\x00b", 256, "/a\\x00b"),
        ("k\ud800", 256, "k\\ud800"),
        ("é", 256, "é"),
        ("x" * 300, 256, "x" * 253 + "..."),
        (None, 10, None),
    ],
)
def test_clean_text(value, limit, expected):
    assert clean_text(value, limit) == expected


def test_clean_row_keeps_a_clean_row_as_it_is():
    clean = row(1)
    assert clean_row(clean) is clean
    dirty = clean_row(row(1, method="M" * 40, client="\x00"))
    assert dirty.method == "M" * 13 + "..." and dirty.client == "\\x00"
