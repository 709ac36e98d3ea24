"""Keep-alive connections spread over the API's workers (`serving.balance`): the rule on a
simulated clock, then a real 2-worker server whose 32 connections all start on one worker."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import httpx
import psutil
import pytest

from credit_drift.serving.balance import BALANCE_ENV, WORKER_DIR_ENV, ConnectionBalancer
from credit_drift_tests.test_serving_server import _start
from credit_drift_tests.test_serving_support import (
    API_KEY,
    application,
    count,
    trained_model,  # noqa: F401 - session fixture
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def peer_pid():
    """A live process whose pid stands for a second worker."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def _pair(tmp_path, peer_pid, clock):
    a = ConnectionBalancer(tmp_path, clock=clock)
    b = ConnectionBalancer(tmp_path, clock=clock, pid=peer_pid)
    return a, b


def _serve_round(clock, holders, balancers) -> int:
    """Every connection sends one request to the worker holding it; a connection told to
    close reopens on the worker holding fewest connections (as the less busy worker most often
    wins the accept race). Returns how many were told to close."""
    closes = 0
    for conn, worker in list(holders.items()):
        clock.now += 0.001
        if balancers[worker].should_close(conn):
            closes += 1
            del holders[conn]
            new = (conn[0], conn[1] + 100_000)
            counts = [sum(1 for w in holders.values() if w == i) for i in range(len(balancers))]
            holders[new] = counts.index(min(counts))
    return closes


def test_the_fuller_worker_closes_connections_until_the_split_is_even(tmp_path, peer_pid):
    clock = Clock()
    a, b = _pair(tmp_path, peer_pid, clock)
    holders = {("127.0.0.1", 40_000 + i): (0 if i < 30 else 1) for i in range(32)}
    closes = [_serve_round(clock, holders, [a, b]) for _ in range(100)]
    per_worker = [sum(1 for w in holders.values() if w == i) for i in (0, 1)]
    assert max(per_worker) <= 17 and min(per_worker) >= 15, per_worker
    # It stops once even: the last rounds close nothing, and the total stays small.
    assert sum(closes[-10:]) == 0 and 13 <= sum(closes) <= 20, closes
    assert b.closed == 0 and a.closed == sum(closes)


def test_a_few_connections_on_one_worker_are_split_too(tmp_path, peer_pid):
    """Two to four long-lived connections (batches of 1,000) on two workers: a 2/0 or 3/1
    split is one above a fair share of 1 or 2, and is evened out (with many connections one
    above is left alone: the 10-against-8 test below)."""
    for n in (2, 3, 4):
        clock = Clock()
        (tmp_path / str(n)).mkdir()
        a, b = _pair(tmp_path / str(n), peer_pid, clock)
        holders = {("127.0.0.1", 40_000 + i): 0 for i in range(n)}
        closes = []
        for _ in range(100):
            clock.now += 0.1  # a batch's answer takes about that long
            closes.append(_serve_round(clock, holders, [a, b]))
        per_worker = sorted(sum(1 for w in holders.values() if w == i) for i in (0, 1))
        assert per_worker == [n // 2, n - n // 2], (n, per_worker)
        # Each worker sees the other's count with a delay, so it may close one more than the
        # least needed; then nothing.
        assert sum(closes[-10:]) == 0 and n // 2 <= sum(closes) <= n, (n, closes)
        a.close()
        b.close()


def test_an_even_split_a_lone_worker_and_an_idle_peer(tmp_path, peer_pid):
    clock = Clock()
    a, b = _pair(tmp_path, peer_pid, clock)
    even = {("127.0.0.1", 40_000 + i): i % 2 for i in range(32)}
    assert sum(_serve_round(clock, even, [a, b]) for _ in range(100)) == 0
    # One worker alone (the other's file gone) never sheds, however many it holds.
    b.close()
    clock.now += 5
    alone = {("127.0.0.1", 50_000 + i): 0 for i in range(32)}
    assert sum(_serve_round(clock, alone, [a]) for _ in range(100)) == 0


def test_a_peer_counts_only_the_connections_it_served_within_the_window(tmp_path, peer_pid):
    clock = Clock()
    a, b = _pair(tmp_path, peer_pid, clock)
    both = {("127.0.0.1", 40_000 + i): (0 if i < 10 else 1) for i in range(18)}
    # 10 against 8 for 1.8 s: within one of the fair 9, nothing to do.
    assert sum(_serve_round(clock, both, [a, b]) for _ in range(100)) == 0
    # Then b's clients stop. Once b has served nobody for longer than the window, its 8 no
    # longer count: a holds 10 of 10, twice its share of 5, and hands connections over.
    mine = {conn: w for conn, w in both.items() if w == 0}
    assert sum(_serve_round(clock, mine, [a, b]) for _ in range(150)) >= 1
    assert b.closed == 0


def test_a_dead_workers_file_is_removed_and_not_counted(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    clock = Clock()
    ghost = ConnectionBalancer(tmp_path, clock=clock, pid=proc.pid)  # its file says 0
    a = ConnectionBalancer(tmp_path, clock=clock)
    # Counted as a live worker holding nothing, the ghost would make a shed half of these.
    assert not any(a.should_close(("127.0.0.1", 40_000 + i)) for i in range(10))
    assert not ghost.path.exists()


def _workers(server_pid: int) -> list[psutil.Process]:
    return [
        p
        for p in psutil.Process(server_pid).children(recursive=True)
        if "spawn_main" in " ".join(p.cmdline())
    ]


def _held(workers: list[psutil.Process], port: int) -> list[int]:
    return [
        sum(
            1
            for c in w.net_connections(kind="tcp")
            if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == port
        )
        for w in workers
    ]


def _even(split: list[int]) -> bool:
    return max(split) - min(split) <= 2  # 17/15 of 32 at worst


class _Connection:
    """A keep-alive client connection that sends one request at a time and, told
    `Connection: close`, opens a new one for its next request (as HTTP clients do)."""

    def __init__(self, port: int, request: bytes) -> None:
        self.port = port
        self.request = request
        self.reader = self.writer = None

    async def send(self) -> tuple[int, bool]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer.write(self.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        fields = dict(
            line.lower().split(b": ", 1) for line in head.split(b"\r\n")[1:] if b": " in line
        )
        await self.reader.readexactly(int(fields[b"content-length"]))
        close = fields.get(b"connection") == b"close"
        if close:
            self.writer.close()
            self.reader = self.writer = None
        return int(head[9:12]), close


def _spread(proc, base: str, pool, postgres_url: str) -> None:
    """32 connections opened on one worker, then requests until they are spread; stops the
    server at the end."""
    port = int(base.rsplit(":", 1)[1])
    body = json.dumps(application(pool, 0)).encode()
    request = (
        f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {API_KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    try:
        workers = _workers(proc.pid)
        assert len(workers) == 2
        time.sleep(1.0)  # the start-up's /health rows flushed: no worker mid-write

        async def load() -> tuple[list[list[int]], list[int], int, int]:
            connections = [_Connection(port, request) for _ in range(32)]
            statuses: list[int] = []
            closes = 0

            async def round_() -> None:
                nonlocal closes
                for status, close in await asyncio.wait_for(
                    asyncio.gather(*(c.send() for c in connections)), 60
                ):
                    statuses.append(status)
                    closes += close

            # All 32 connections opened while the second worker is stopped: the first accepts
            # (and answers on) every one of them.
            workers[1].suspend()
            try:
                await round_()
                start = _held(workers, port)
            finally:
                workers[1].resume()
            splits = [start]
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                await round_()
                splits.append(_held(workers, port))
                if _even(splits[-1]):
                    break
            # A while longer: it stays even, and stops closing connections.
            before = closes
            for _ in range(20):
                await round_()
            splits.append(_held(workers, port))
            return splits, statuses, closes - before, closes

        splits, statuses, late_closes, closes = asyncio.run(load())
        assert splits[0] == [32, 0]
        assert _even(splits[-1]), splits
        assert late_closes <= 3, (late_closes, splits)
        # Nothing refused or lost on the way: every request answered and logged.
        assert statuses == [200] * len(statuses)
        assert count(postgres_url, "predictions") == len(statuses)
        # Every connection ended is counted in /metrics (summed over the workers).
        scrape = httpx.get(f"{base}/metrics", headers={"X-API-Key": API_KEY}, timeout=10).text
        counted = [
            float(line.split()[-1])
            for line in scrape.splitlines()
            if line.startswith("credit_drift_connections_rebalanced_total")
        ]
        assert closes > 0 and counted == [closes]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


@pytest.mark.slow
@pytest.mark.postgres
def test_a_real_two_worker_server_spreads_32_connections_that_start_on_one_worker(
    trained_model,  # noqa: F811
    postgres_url,
    tmp_path,
):
    # On PostgreSQL: a worker stopped inside an SQLite write would hold the file's lock. The
    # output to a file: a thousand log lines would fill a pipe and stop the server.
    with open(tmp_path / "server.log", "w") as log:
        proc, base = _start(postgres_url, trained_model.artifacts_dir, tmp_path, 2, output=log)
        _spread(proc, base, trained_model.pool, postgres_url)
    assert proc.returncode in (0, -signal.SIGTERM)


def test_the_balancing_can_be_turned_off(monkeypatch, tmp_path):
    from credit_drift.serving.balance import balancer_from_env

    monkeypatch.setenv(WORKER_DIR_ENV, str(tmp_path))
    on = balancer_from_env()
    assert on is not None
    on.close()
    monkeypatch.setenv(BALANCE_ENV, "0")
    assert balancer_from_env() is None
    monkeypatch.delenv(WORKER_DIR_ENV)
    monkeypatch.delenv(BALANCE_ENV)
    assert balancer_from_env() is None  # one worker: nothing to balance
    assert os.listdir(tmp_path) == []
