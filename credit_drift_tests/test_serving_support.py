"""Shared helpers of the serving and simulator tests (no tests here): a small model trained once
per session with the project's own data and model code, a real uvicorn server on a free
loopback port, and a TCP proxy in front of PostgreSQL that a test can cut and restore."""

import contextlib
import datetime as dt
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from credit_drift.settings import Settings
from credit_drift.stack import free_port  # noqa: F401 - the serving tests import it from here

API_KEY = "test-key-Zq81-not-a-real-secret"


@dataclass(frozen=True)
class TrainedModel:
    artifacts_dir: Path
    artifacts: object
    pool: pd.DataFrame  # unseen applications, model features only


_TRAINED: list[TrainedModel] = []


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory) -> TrainedModel:
    """3,000 synthetic applications, trained once per session with the project's trainer.
    (Modules import this fixture, which makes one fixture per module: the module-level cache
    keeps it to one training per session.)"""
    if _TRAINED:
        return _TRAINED[0]
    from credit_drift.data.generator import write_datasets
    from credit_drift.data.loader import load_pool, load_training_data
    from credit_drift.model.artifacts import load_artifacts, save_artifacts
    from credit_drift.model.train import TrainConfig, train_model

    root = tmp_path_factory.mktemp("serving-model")
    paths = write_datasets(root / "data", n_rows=3_000, pool_rows=2_000, seed=5)
    data = load_training_data(paths.train, target_column="TARGET", id_column="SK_ID_CURR")
    artifacts = train_model(data, seed=0, config=TrainConfig(n_estimators=40))
    save_artifacts(artifacts, root / "artifacts")
    loaded = load_artifacts(root / "artifacts")
    _TRAINED.append(TrainedModel(root / "artifacts", loaded, load_pool(paths.pool, loaded.schema)))
    return _TRAINED[0]


def settings_for(database_url: str, artifacts_dir: Path, tmp_path: Path, **overrides) -> Settings:
    env = {
        "CREDIT_DRIFT_HOME": str(tmp_path / "home"),
        "DATABASE_URL": database_url,
        "CREDIT_DRIFT_ARTIFACTS_DIR": str(artifacts_dir),
    }
    return Settings.from_env(env, **overrides)


def application(pool: pd.DataFrame, i: int = 0) -> dict:
    """Row i of the pool as a JSON-ready application (NaN -> None)."""
    row = pool.iloc[i]
    return {k: (None if pd.isna(v) else float(v)) for k, v in row.items()}


@contextlib.contextmanager
def live_server(app) -> Iterator[str]:
    """A real uvicorn server (HTTP on loopback) serving `app` from a thread."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def wait_until(predicate: Callable[[], bool], timeout: float = 15.0, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def count(url: str, table: str, where: str = "") -> int:
    from credit_drift.storage.db import make_engine

    with make_engine(url).connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table} {where}")).scalar_one())


def rows(url: str, sql: str) -> list:
    from credit_drift.storage.db import make_engine

    with make_engine(url).connect() as conn:
        return list(conn.execute(sa.text(sql)).all())


def utc_day(value) -> dt.date:
    """The UTC calendar day of a stored created_at (aware datetime, or naive UTC text/datetime
    as SQLite returns it from raw SQL)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).date()


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; `cut()` closes the listener and every open
    connection (the database "goes away"), `restore()` listens again on the same port;
    `stall()` keeps every connection open and accepts new ones but moves no byte either way
    (a server that is alive but does not answer, like a stopped process), `resume()` undoes it."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._flowing = threading.Event()
        self._flowing.set()

    def stall(self) -> None:
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            if self._listener is not None:
                with contextlib.suppress(OSError):
                    self._listener.shutdown(socket.SHUT_RDWR)
                self._listener.close()
                self._listener = None
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self._conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=3)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                self._flowing.wait()
                data = src.recv(65536)
                if not data:
                    break
                # Bytes read just before a stall are held back too.
                self._flowing.wait()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
