"""After an API worker restarts: how its keep-alive connections are spread, and what that costs.

    python benchmarks/bench_balance.py                  # 2 runs of each arm, 12,000 requests
    python benchmarks/bench_balance.py --runs 3 --requests 20000

A real 2-worker server (`run_server`, as `credit-drift serve --workers 2` runs it) on a fresh
PostgreSQL schema; 32 keep-alive client connections on one event loop, each sending one
`POST /predict` at a time and opening a new connection when an answer says `Connection: close`
(as HTTP clients do). 2,000 requests of warm-up; then one worker is killed (SIGKILL) and 500
requests sent at once: the killed worker's connections fail (counted) and reopen on the other,
while uvicorn starts a new worker (it loads the model). Once the new worker has started,
`--requests` requests are timed: predictions/s, p50/p99 latency, the connections each worker
holds at the end, and how many answers said `Connection: close`. Two arms, in turn: the
balancing of `serving.balance` on (the default), and off (CREDIT_DRIFT_BALANCE_CONNECTIONS=0).
Prints a markdown table, the machine and the load.
"""

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
import psutil  # noqa: E402
from bench_api import (  # noqa: E402
    DEFAULT_PG_URL,
    bodies_for,
    postgres_schema,
    prepare_model,
    server,
)
from common import load_average, machine_info, markdown_kv, markdown_table  # noqa: E402

from credit_drift.serving.balance import BALANCE_ENV  # noqa: E402


class Connection:
    def __init__(self, port: int) -> None:
        self.port = port
        self.reader = self.writer = None

    async def send(self, request: bytes) -> tuple[int, bool]:
        """(status, told to close); status 0 when the connection failed (then reopened). A
        connection the server has closed meanwhile (its idle timeout, 5 s, passes while the
        new worker starts) is reopened first, as HTTP clients check before reusing one."""
        if self.writer is None or self.reader.at_eof():
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            self.writer.write(request)
            head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 60)
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            self.writer.close()
            self.reader = self.writer = None
            return 0, False
        fields = dict(
            line.lower().split(b": ", 1) for line in head.split(b"\r\n")[1:] if b": " in line
        )
        await self.reader.readexactly(int(fields.get(b"content-length", b"0")))
        close = fields.get(b"connection") == b"close"
        if close:
            self.writer.close()
            self.reader = self.writer = None
        return int(head[9:12]), close


async def drive(connections, requests: list[bytes], n: int) -> dict:
    latencies: list[float] = []
    failed = closes = 0
    counter = iter(range(n))

    async def work(conn: Connection) -> None:
        nonlocal failed, closes
        for i in counter:
            t0 = time.perf_counter()
            status, close = await conn.send(requests[i % len(requests)])
            if status == 200:
                latencies.append(time.perf_counter() - t0)
            else:
                failed += 1
            closes += close

    t0 = time.perf_counter()
    await asyncio.gather(*(work(c) for c in connections))
    wall = time.perf_counter() - t0
    ms = np.array(latencies) * 1000
    return {
        "pred/s": len(latencies) / wall,
        "p50": float(np.percentile(ms, 50)),
        "p99": float(np.percentile(ms, 99)),
        "failed": failed,
        "closes": closes,
    }


def _workers() -> list[psutil.Process]:
    return [
        p
        for p in psutil.Process().children(recursive=True)
        if "spawn_main" in " ".join(p.cmdline())
    ]


def _held(port: int) -> list[int]:
    return sorted(
        (
            sum(
                1
                for c in w.net_connections(kind="tcp")
                if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == port
            )
            for w in _workers()
        ),
        reverse=True,
    )


def run_arm(balance: bool, url: str, artifacts_dir: Path, pool, workdir: Path, args) -> dict:
    os.environ[BALANCE_ENV] = "1" if balance else "0"
    bodies = bodies_for(pool, 500, 1)
    requests = [
        (
            f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body
        for body in bodies
    ]
    with server("ours", url, artifacts_dir, workdir, 2) as port:
        log = workdir / f"server-ours-{port}.log"
        return asyncio.run(_scenario(port, log, requests, args.requests))


async def _scenario(port: int, log: Path, requests: list[bytes], n: int) -> dict:
    connections = [Connection(port) for _ in range(32)]
    await drive(connections, requests, 2_000)
    before = _held(port)
    victim = max(_workers(), key=lambda w: w.pid)
    victim.send_signal(signal.SIGKILL)
    # While the new worker starts (it loads the model), the killed one's connections fail and
    # reopen: on the only worker accepting.
    during = await drive(connections, requests, 500)
    # The new worker has started when the log holds a third start-up line.
    deadline = time.monotonic() + 120
    while log.read_text().count('"event":"startup"') < 3:
        if time.monotonic() > deadline:
            raise RuntimeError("no new worker within 120 s")
        await asyncio.sleep(0.2)
    result = await drive(connections, requests, n)
    result["failed"] += during["failed"]
    result["held before the kill"] = before
    result["held at the end"] = _held(port)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=12_000)
    parser.add_argument("--runs", type=int, default=2, help="runs of each arm, in turn")
    parser.add_argument("--postgres-url", default=DEFAULT_PG_URL)
    parser.add_argument("--train-rows", type=int, default=5_000)
    args = parser.parse_args(argv)
    args.artifacts = args.pool = None
    start_load = load_average()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-balance-") as tmp:
        workdir = Path(tmp)
        artifacts_dir, pool = prepare_model(args, workdir)
        for run in range(args.runs):
            for balance in (True, False):
                with contextlib.ExitStack() as stack:
                    url = stack.enter_context(postgres_schema(args.postgres_url))
                    started = time.strftime("%H:%M:%S", time.gmtime())
                    r = run_arm(balance, url, artifacts_dir, pool, workdir, args)
                row = [
                    run + 1,
                    started,
                    "on" if balance else "off",
                    f"{r['pred/s']:,.0f}",
                    f"{r['p50']:.1f}",
                    f"{r['p99']:.1f}",
                    "/".join(map(str, r["held before the kill"])),
                    "/".join(map(str, r["held at the end"])),
                    r["closes"],
                    r["failed"],
                ]
                rows.append(row)
                print("| " + " | ".join(map(str, row)) + " |", file=sys.stderr)
    header = [
        "run",
        "start (UTC)",
        "balancing",
        "pred/s after the restart",
        "p50 ms",
        "p99 ms",
        "connections per worker before the kill",
        "at the end",
        "answers with Connection: close",
        "failed requests",
    ]
    print(markdown_table(header, rows))
    print()
    print(markdown_kv({**machine_info(), "requests after the restart": args.requests}))
    print(f"\nload average at start: {start_load}; at end: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
