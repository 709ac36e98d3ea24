"""The API when its database is down: a quick 503 with a clear message (never a hang, never a
500, never a decision without its log row), the JSON log line still written, and recovery by
itself when the database comes back (PostgreSQL behind a proxy the test cuts and restores)."""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from credit_drift.serving.app import create_app
from credit_drift.serving.config import ServingConfig
from credit_drift_tests.test_serving_support import (
    TcpProxy,
    application,
    count,
    free_port,
    live_server,
    rows,
    settings_for,
    trained_model,  # noqa: F401 - session fixture
    wait_until,
)

pytestmark = pytest.mark.postgres

# Short cool-down so recovery shows within the test's patience.
CONFIG = ServingConfig(
    database_retry_seconds=0.3, log_flush_seconds=0.05, shutdown_flush_seconds=0.5
)


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
            assert "database unreachable" in detail
            # The driver's text (host, port) stays in the server's log.
            port = str(make_url(dead).port)
            assert port not in response.text and "127.0.0.1" not in response.text
            assert response.headers["retry-after"]
        health = client.get("/health")
        assert health.status_code == 503
        assert health.json()["database"] == "unreachable"
        assert health.json()["model_loaded"] is True
        assert port not in health.text and "127.0.0.1" not in health.text
        assert client.get("/health/live").status_code == 200
        # Invalid input is still named (validation does not need the database).
        assert client.post("/predict", json={"x": 1}).status_code == 422
    statuses = [(line["endpoint"], line["status"]) for line in json_lines if "status" in line]
    assert ("/predict", 503) in statuses and ("/predict/batch", 503) in statuses
    failed = [
        line for line in json_lines if line.get("status") == 503 and line["endpoint"] != "/health"
    ]
    assert failed and all("database unavailable" in line["error"] for line in failed)
    # ...where the operator does get the driver's own words.
    assert all(port in line["error"] for line in failed)


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


# -- bounded waits, read-only databases, readiness, idempotent retries --------------------------
# The deadline of every database call in these tests; the client's own timeout is far above it,
# so a request that waits on the database without bound fails the test by timing out.
BOUND = 1.0
BOUNDED = ServingConfig(
    database_retry_seconds=0.3,
    database_timeout_seconds=BOUND,
    ready_cache_seconds=0.2,
    log_flush_seconds=0.05,
    shutdown_flush_seconds=0.5,
)
CLIENT_TIMEOUT = BOUND + 9


def _request_ids_logged(url: str, ids: list[str]) -> set[str]:
    found = rows(url, "SELECT request_id FROM predictions")
    return {r.request_id for r in found} & set(ids)


def test_a_stalled_postgresql_answers_503_within_the_bound_and_recovers(
    postgres_url,
    trained_model,  # noqa: F811
    tmp_path,
):
    target = make_url(postgres_url)
    proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432)
    proxy.restore()
    settings = settings_for(
        _with_port(postgres_url, proxy.port), trained_model.artifacts_dir, tmp_path
    )
    app = create_app(settings, trained_model.artifacts, config=BOUNDED)
    answered: list[str] = []
    body = application(trained_model.pool)
    try:
        with (
            live_server(app) as base,
            httpx.Client(base_url=base, timeout=CLIENT_TIMEOUT) as client,
        ):
            first = client.post("/predict", json=body)
            assert first.status_code == 200
            answered.append(first.json()["request_id"])

            proxy.stall()  # connections stay open, nothing comes back: a stopped server
            try:
                for path, payload in (("/predict", body), ("/predict/batch", [body, body])):
                    response = client.post(path, json=payload)
                    assert response.status_code == 503, response.text
                    assert "did not answer" in response.json()["detail"]
                assert client.get("/health/live").status_code == 200
                for probe in ("/health/ready", "/health"):
                    ready = client.get(probe)
                    assert ready.status_code == 503
                    assert ready.json()["database"] in ("timeout", "unreachable")
            finally:
                proxy.resume()

            def recovered() -> bool:
                response = client.post("/predict", json=body)
                assert response.status_code in (200, 503)
                if response.status_code == 200:
                    answered.append(response.json()["request_id"])
                return response.status_code == 200

            assert wait_until(recovered, timeout=20, step=0.2)
            assert wait_until(lambda: client.get("/health/ready").status_code == 200, timeout=10)
    finally:
        proxy.cut()
    # Every 200 has its row (a 503'd call that was already running may have committed too).
    assert _request_ids_logged(postgres_url, answered) == set(answered)


def test_a_locked_sqlite_database_answers_503_within_the_bound(
    sqlite_url,
    trained_model,  # noqa: F811
    tmp_path,
):
    import sqlite3

    settings = settings_for(sqlite_url, trained_model.artifacts_dir, tmp_path)
    app = create_app(settings, trained_model.artifacts, config=BOUNDED)
    body = application(trained_model.pool)
    with live_server(app) as base, httpx.Client(base_url=base, timeout=CLIENT_TIMEOUT) as client:
        assert client.post("/predict", json=body).status_code == 200
        # Another process holds SQLite's write lock (a long pipeline write, a stuck tool).
        other = sqlite3.connect(make_url(sqlite_url).database, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            response = client.post("/predict", json=body)
            assert response.status_code == 503, response.text
            assert client.get("/health/live").status_code == 200
            assert client.get("/health/ready").status_code == 503
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert wait_until(lambda: client.post("/predict", json=body).status_code == 200, 10, 0.2)


def _read_only_url(url: str, tmp_path) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"sqlite:///file:{parsed.database}?mode=ro&uri=true"
    # What a client connected to a standby (or to a database set read-only) sees.
    return url + "%20-cdefault_transaction_read_only%3Don"


def test_a_read_only_database_is_a_503_and_not_ready(
    db_url,
    trained_model,  # noqa: F811
    tmp_path,
    json_lines,
):
    # The database was in service (migrated, schema registered), then became read-only.
    writable = create_app(
        settings_for(db_url, trained_model.artifacts_dir, tmp_path),
        trained_model.artifacts,
        config=BOUNDED,
    )
    body = application(trained_model.pool)
    with live_server(writable) as base, httpx.Client(base_url=base, timeout=CLIENT_TIMEOUT) as c:
        assert c.post("/predict", json=body).status_code == 200
    read_only = _read_only_url(db_url, tmp_path)
    app = create_app(
        settings_for(read_only, trained_model.artifacts_dir, tmp_path),
        trained_model.artifacts,
        config=BOUNDED,
    )
    with live_server(app) as base, httpx.Client(base_url=base, timeout=CLIENT_TIMEOUT) as client:
        for path, payload in (("/predict", body), ("/predict/batch", [body, body])):
            response = client.post(path, json=payload)
            assert response.status_code == 503, response.text
            assert "read-only" in response.json()["detail"]
        ready = client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["database"] == "read_only"
        assert ready.json()["status"] == "degraded"
        assert client.get("/health").status_code == 503
        assert client.get("/health/live").status_code == 200
    assert count(db_url, "predictions") == 1
    # The server's log has the driver's words; the answers above only the fixed sentence.
    errors = [line.get("error") or "" for line in json_lines if line.get("status") == 503]
    assert any("read-only" in e or "readonly" in e for e in errors)


def test_liveness_never_touches_the_database_and_readiness_is_cached(
    postgres_url,
    trained_model,  # noqa: F811
    tmp_path,
):
    settings = settings_for(postgres_url, trained_model.artifacts_dir, tmp_path)
    app = create_app(
        settings,
        trained_model.artifacts,
        config=ServingConfig(database_timeout_seconds=BOUND, ready_cache_seconds=60),
    )
    gate = app.state.service.gate
    checks: list[int] = []
    real_ping = gate.ping

    def counted_ping(*args):
        checks.append(1)
        return real_ping(*args)

    gate.ping = counted_ping
    with live_server(app) as base, httpx.Client(base_url=base, timeout=CLIENT_TIMEOUT) as client:
        started = len(checks)  # the startup check
        for _ in range(5):
            assert client.get("/health/live").json()["status"] == "alive"
        assert len(checks) == started
        for _ in range(20):
            assert client.get("/health/ready").status_code == 200
        assert len(checks) == started + 1  # one check for twenty probes within the cache time


def _keyed(client: httpx.Client, path: str, payload, key: str) -> httpx.Response:
    return client.post(path, json=payload, headers={"Idempotency-Key": key})


def test_a_retry_with_the_same_idempotency_key_logs_nothing_twice(
    db_url,
    trained_model,  # noqa: F811
    tmp_path,
):
    settings = settings_for(db_url, trained_model.artifacts_dir, tmp_path)
    app = create_app(settings, trained_model.artifacts, config=BOUNDED)
    one = application(trained_model.pool, 0)
    other = application(trained_model.pool, 1)
    batch = [application(trained_model.pool, i) for i in range(3)]
    with live_server(app) as base, httpx.Client(base_url=base, timeout=CLIENT_TIMEOUT) as client:
        first = _keyed(client, "/predict", one, "order-0001")
        assert first.status_code == 200
        assert "idempotent-replayed" not in first.headers
        again = _keyed(client, "/predict", one, "order-0001")
        assert again.status_code == 200
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json() == first.json()
        assert count(db_url, "predictions") == 1

        conflict = _keyed(client, "/predict", other, "order-0001")
        assert conflict.status_code == 409
        assert "Idempotency-Key" in conflict.json()["detail"]
        # Same key on the other endpoint: another request, refused too.
        assert _keyed(client, "/predict/batch", [one], "order-0001").status_code == 409

        b1 = _keyed(client, "/predict/batch", batch, "batch-0001")
        b2 = _keyed(client, "/predict/batch", batch, "batch-0001")
        assert b1.status_code == b2.status_code == 200
        assert b2.json() == b1.json() and b2.headers["idempotent-replayed"] == "true"
        assert count(db_url, "predictions") == 4

        # Without a key, the same body is a new prediction, as before.
        assert client.post("/predict", json=one).status_code == 200
        assert count(db_url, "predictions") == 5
        for bad in ("", "x" * 129, "caf\u00e9", "a b"):
            response = client.post("/predict", json=one, headers={"Idempotency-Key": bad.encode()})
            assert response.status_code == 400, bad
        assert count(db_url, "predictions") == 5
        assert count(db_url, "idempotency_keys") == 2


def test_concurrent_retries_with_one_idempotency_key_log_one_prediction(
    db_url,
    trained_model,  # noqa: F811
    tmp_path,
):
    from concurrent.futures import ThreadPoolExecutor

    settings = settings_for(db_url, trained_model.artifacts_dir, tmp_path)
    app = create_app(
        settings, trained_model.artifacts, config=ServingConfig(database_timeout_seconds=10)
    )
    barrier = threading.Barrier(8)
    with live_server(app) as base:
        clients = [httpx.Client(base_url=base, timeout=30) for _ in range(8)]
        try:
            for round_ in range(3):
                key = f"retry-{round_}"
                body = application(trained_model.pool, round_)

                def send(client: httpx.Client, key=key, body=body) -> httpx.Response:
                    barrier.wait()
                    return _keyed(client, "/predict", body, key)

                with ThreadPoolExecutor(8) as pool:
                    responses = list(pool.map(send, clients))
                assert [r.status_code for r in responses] == [200] * 8
                assert len({r.json()["request_id"] for r in responses}) == 1
                assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 7
        finally:
            for client in clients:
                client.close()
    assert count(db_url, "predictions") == 3
    assert count(db_url, "idempotency_keys") == 3


# -- fault tests with real processes: a private PostgreSQL and `credit-drift serve` -------------
# The newest PostgreSQL server binaries installed (Debian's layout; 15 on the project's machines).
_INITDBS = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
PG_BIN = _INITDBS[-1].parent if _INITDBS else Path("/usr/lib/postgresql/15/bin")
FAULT_BOUND = 1.5  # CREDIT_DRIFT_DB_TIMEOUT_S of the API under test


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own (tmp dir, free port) that it can stop, start,
    stall (SIGSTOP every server process) and make read-only, without touching any other."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        self.url = f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"
        # initdb refuses to run as root.
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self._stopped_pids: list[int] = []

    def _run(self, *args: str, timeout: float = 60) -> None:
        subprocess.run([*self._as, *args], check=True, timeout=timeout, capture_output=True)

    def init(self) -> None:
        if self._as:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-N"
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options,
            "-l", str(self.root / "pg.log"), "-w", "-t", "30", "start",
        )  # fmt: skip

    def stop(self) -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def _server_pids(self) -> list[int]:
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(postmaster)],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.split()
        return [postmaster, *map(int, children)]

    def stall(self) -> None:
        """Every server process stopped: sockets stay open, the kernel still accepts and
        acknowledges, nothing answers."""
        self._stopped_pids = self._server_pids()
        for pid in self._stopped_pids:
            os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        for pid in reversed(self._stopped_pids):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self._stopped_pids = []

    def read_only(self, on: bool) -> None:
        """What a failover to a standby looks like to a client: every new transaction is
        read-only (reloaded into open sessions too)."""
        engine = sa.create_engine(self.url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                value = "on" if on else "off"
                conn.exec_driver_sql(f"ALTER SYSTEM SET default_transaction_read_only = {value}")
                conn.exec_driver_sql("SELECT pg_reload_conf()")
        finally:
            engine.dispose()

    def close(self) -> None:
        self.resume()
        with contextlib.suppress(Exception):
            self.stop()


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    if not (PG_BIN / "initdb").exists():
        reason = f"no PostgreSQL server binaries (initdb) under {PG_BIN.parent.parent}"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{reason} (CI=true: the fault tests must run, not skip)")
        pytest.skip(reason)
    # Not under pytest's tmp_path: the postgres user must be able to reach the directory.
    root = Path(tempfile.mkdtemp(prefix="credit-drift-pg-"))
    pg = PrivatePostgres(root)
    try:
        pg.init()
        pg.start()
        yield pg
    finally:
        pg.close()
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def api_process(database_url: str, artifacts_dir: Path, home: Path) -> Iterator[str]:
    """`python -m credit_drift.cli serve` on a free port, stopped (and waited for) on exit."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CREDIT_DRIFT_ARTIFACTS_DIR": str(artifacts_dir),
        "CREDIT_DRIFT_HOME": str(home),
        "CREDIT_DRIFT_DB_TIMEOUT_S": str(FAULT_BOUND),
    }
    log = (home.parent / "api.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "credit_drift.cli", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            assert proc.poll() is None, "the API process exited"
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"{base}/health/live", timeout=2).status_code == 200
            return False

        assert wait_until(up, timeout=120, step=0.25)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


@pytest.mark.slow
def test_api_process_against_a_postgresql_that_stops_stalls_and_turns_read_only(
    trained_model,  # noqa: F811
    tmp_path,
):
    answered: list[str] = []  # request ids of every 200
    body = application(trained_model.pool)

    with (
        private_postgres() as pg,
        api_process(pg.url, trained_model.artifacts_dir, tmp_path / "home") as base,
        httpx.Client(base_url=base, timeout=FAULT_BOUND + 8) as client,
    ):

        def predict(path: str = "/predict", payload=None, key: str | None = None):
            headers = {"Idempotency-Key": key} if key else {}
            response = client.post(path, json=payload or body, headers=headers)
            assert response.status_code in (200, 503), response.text
            if response.status_code == 200:
                data = response.json()
                answered.extend(
                    [p["request_id"] for p in data["predictions"]]
                    if "predictions" in data
                    else [data["request_id"]]
                )
            return response

        def recovers() -> bool:
            return wait_until(lambda: predict().status_code == 200, timeout=20, step=0.2)

        assert wait_until(lambda: client.get("/health/ready").status_code == 200, timeout=30)
        assert predict().status_code == 200
        assert predict("/predict/batch", [body] * 3).status_code == 200

        # 1. The server stops: a quick 503, liveness unaffected, recovery by itself.
        pg.stop()
        assert predict().status_code == 503
        assert client.get("/health/ready").status_code == 503
        assert client.get("/health/live").status_code == 200
        pg.start()
        assert recovers()

        # 2. The server stalls (SIGSTOP): 503 within the bound, not a hang.
        pg.stall()
        try:
            for path, payload in (("/predict", body), ("/predict/batch", [body] * 2)):
                response = predict(path, payload)
                assert response.status_code == 503
                assert "did not answer" in response.json()["detail"]
            assert client.get("/health/live").status_code == 200
            assert client.get("/health/ready").status_code == 503
        finally:
            pg.resume()
        assert recovers()

        # 3. A failover to a read-only standby: 503, not ready, and back when writable.
        pg.read_only(True)
        assert wait_until(lambda: predict().status_code == 503, timeout=10)
        ready = client.get("/health/ready")
        assert ready.status_code == 503 and ready.json()["database"] == "read_only"
        assert str(pg.port) not in ready.text
        pg.read_only(False)
        assert recovers()

        # 4. A client that gives up during a stall and retries with its key: one row per key.
        before = count(pg.url, "predictions")
        keys = [f"client-retry-{i}" for i in range(3)]
        pg.stall()
        try:
            with httpx.Client(base_url=base, timeout=0.3) as impatient:
                for key in keys:
                    with contextlib.suppress(httpx.TimeoutException):
                        impatient.post("/predict", json=body, headers={"Idempotency-Key": key})
        finally:
            pg.resume()
        for key in keys:
            assert wait_until(lambda key=key: predict(key=key).status_code == 200, timeout=20)
            again = predict(key=key)
            assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
        assert count(pg.url, "predictions") - before == len(keys)

        # Every 200 has its row.
        assert len(answered) == len(set(answered)) + len(keys)  # each key answered twice
        logged = {r.request_id for r in rows(pg.url, "SELECT request_id FROM predictions")}
        assert set(answered) <= logged


def test_the_database_timeout_setting_bounds_the_apis_engine(
    postgres_url,
    trained_model,  # noqa: F811
    tmp_path,
):
    from credit_drift.settings import Settings, SettingsError

    env = {"CREDIT_DRIFT_HOME": str(tmp_path), "CREDIT_DRIFT_DB_TIMEOUT_S": "0.7"}
    assert Settings.from_env(env).db_timeout_s == 0.7
    for bad in ("0", "-1", "soon", "601"):
        with pytest.raises(SettingsError, match="CREDIT_DRIFT_DB_TIMEOUT_S"):
            Settings.from_env({**env, "CREDIT_DRIFT_DB_TIMEOUT_S": bad})
    settings = settings_for(postgres_url, trained_model.artifacts_dir, tmp_path, db_timeout_s=0.7)
    gate = create_app(settings, trained_model.artifacts).state.service.gate
    assert gate.timeout_seconds == 0.7
    with gate.engine.connect() as conn:
        # Shares of the bound: the server's own error comes before the API's deadline.
        assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "525ms"
        assert conn.exec_driver_sql("SHOW lock_timeout").scalar() == "350ms"
        # The URL's own options (here the test's search_path) are kept.
        assert conn.exec_driver_sql("SELECT current_schema()").scalar().startswith("t_")
    assert gate.engine.pool.timeout() == 0.7


def test_a_key_held_by_a_slow_request_is_a_409_not_an_outage(
    postgres_url,
    trained_model,  # noqa: F811
    tmp_path,
):
    from credit_drift.storage.db import make_engine

    settings = settings_for(postgres_url, trained_model.artifacts_dir, tmp_path)
    app = create_app(settings, trained_model.artifacts, config=BOUNDED)
    body = application(trained_model.pool)
    with live_server(app) as base, httpx.Client(base_url=base, timeout=CLIENT_TIMEOUT) as client:
        assert client.post("/predict", json=body).status_code == 200
        # Another request with this key is in the middle of its transaction.
        with make_engine(postgres_url).connect() as other, other.begin():
            other.exec_driver_sql(
                "INSERT INTO idempotency_keys (key, endpoint, body_sha256, request_id, response,"
                " created_at) VALUES ('slow-1', '/predict', 'x', 'r', '{}', now())"
            )
            response = _keyed(client, "/predict", body, "slow-1")
            assert response.status_code == 409, response.text
            assert "still being answered" in response.json()["detail"]
            # Not an outage: the next request (another key) is answered at once.
            assert _keyed(client, "/predict", body, "other-1").status_code == 200
            assert client.get("/health/ready").status_code == 200
    assert count(postgres_url, "predictions") == 2
