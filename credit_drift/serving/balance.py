"""Keep-alive connections spread evenly over the API's worker processes.

uvicorn's workers accept from one shared socket, and a connection stays with the worker that
accepted it for as long as the client keeps it alive. Which worker accepts is a race the kernel
settles, so a client pool that opens its connections in a burst often lands most of them on one
worker (32 connections on 2 workers, 2026-12-04: splits of 24/8 and 26/1 seen, the fuller
worker's median latency 2.3-2.9x the other's), and every connection reopened while a worker
restarts lands on the others and stays there (32/0 after a restart, `bench_balance.py`).

Each worker counts the client connections it has served in the last `window_s` and publishes
that count in a small shared file (one per worker, in the directory `run_server` names in
CREDIT_DRIFT_WORKER_DIR). A worker holding at least two more than its fair share (the
connections of all live workers divided by their number, rounded up), or one more while that
share is 4 or less (a 2/0 or 3/1 split of a few long requests, batches, halves what the server
can do), answers one request, at most every `shed_interval_s`, with `Connection: close`: the
standard HTTP/1.1 way for a server to end a keep-alive connection after a complete answer,
which every HTTP client honours by opening a new connection for its next request. That new
connection goes to whichever worker accepts first, most often the less busy one, and the
counts even out within a few rounds. No request is refused or cut: only the connection it came
on is not reused.
"""

import math
import mmap
import os
import struct
import time
from collections.abc import Callable
from pathlib import Path

WORKER_DIR_ENV = "CREDIT_DRIFT_WORKER_DIR"
# "0" turns the balancing off (e.g. behind a proxy that spreads requests itself).
BALANCE_ENV = "CREDIT_DRIFT_BALANCE_CONNECTIONS"

# pid, connections seen in the window, monotonic times of publication and of the first request
# served (CLOCK_MONOTONIC is system-wide on Linux, so workers compare each other's times).
_SLOT = struct.Struct("<qqdd")


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (a worker that died leaves its files behind)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


class ConnectionBalancer:
    """One per worker process. `should_close(client)` is called once per answered request
    with the client's (host, port), and says whether to answer it with `Connection: close`."""

    def __init__(
        self,
        folder: Path,
        *,
        window_s: float = 0.5,
        publish_every_s: float = 0.05,
        peers_every_s: float = 1.0,
        shed_interval_s: float = 0.01,
        clock: Callable[[], float] = time.monotonic,
        pid: int | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.pid = os.getpid() if pid is None else pid
        self.window_s = window_s
        self.publish_every_s = publish_every_s
        self.peers_every_s = peers_every_s
        self.shed_interval_s = shed_interval_s
        self.clock = clock
        self.path = self.folder / f"connections_{self.pid}.bin"
        with open(self.path, "wb") as f:
            f.write(_SLOT.pack(self.pid, 0, 0.0, 0.0))
        with open(self.path, "r+b") as f:
            self._mine = mmap.mmap(f.fileno(), _SLOT.size)
        self._seen: dict[object, float] = {}
        self._peers: dict[int, mmap.mmap] = {}
        self._next_publish = 0.0
        self._next_peers = 0.0
        self._next_shed = 0.0
        self._started = 0.0  # when this worker served its first request
        self._excess = 0
        self._min_excess = 2
        self.closed = 0  # connections this worker asked to close

    def close(self) -> None:
        for m in self._peers.values():
            m.close()
        self._peers.clear()
        self._mine.close()
        self.path.unlink(missing_ok=True)

    def _refresh_peers(self) -> None:
        """Map the live workers' files; forget (and remove) those of dead workers."""
        present = {}
        for path in self.folder.glob("connections_*.bin"):
            pid_text = path.stem.rsplit("_", 1)[-1]
            if not pid_text.isdigit() or int(pid_text) == self.pid:
                continue
            pid = int(pid_text)
            if not pid_alive(pid):
                path.unlink(missing_ok=True)
                continue
            present[pid] = path
        for pid in list(self._peers):
            if pid not in present:
                self._peers.pop(pid).close()
        for pid, path in present.items():
            if pid not in self._peers:
                try:
                    with open(path, "rb") as f:
                        view = mmap.mmap(f.fileno(), _SLOT.size, access=mmap.ACCESS_READ)
                    self._peers[pid] = view
                except (OSError, ValueError):  # vanished or not yet written whole
                    continue

    def _publish(self, now: float) -> None:
        horizon = now - self.window_s
        self._seen = {client: t for client, t in self._seen.items() if t >= horizon}
        mine = len(self._seen)
        self._mine[:] = _SLOT.pack(self.pid, mine, now, self._started)
        if now >= self._next_peers:
            self._refresh_peers()
            self._next_peers = now + self.peers_every_s
        # A count is a whole window's only a window after a worker's first request: until then
        # (a server just started, a worker just restarted) there is nothing to compare.
        settled = now - self._started >= self.window_s
        total, workers = mine, 1
        for m in self._peers.values():
            _, count, published, started = _SLOT.unpack(m[:])
            workers += 1
            if published >= horizon:
                total += count
                settled = settled and published - started >= self.window_s
            # else it has served nobody within the window: it counts as holding none
        fair = math.ceil(total / workers)
        self._excess = mine - fair if settled else 0
        # With many connections, one above the share is the accept race's normal wobble (a
        # connection closed for it often reopens on the same worker: shedding at one above,
        # the two-worker server test went on closing 5-6 connections in 20 rounds once even);
        # with a few, one connection is a quarter or more of a worker's load.
        self._min_excess = 1 if fair <= 4 else 2

    def should_close(self, client: object) -> bool:
        now = self.clock()
        if not self._started:
            self._started = now
        self._seen[client] = now
        if now >= self._next_publish:
            self._publish(now)
            self._next_publish = now + self.publish_every_s
        if self._excess >= self._min_excess and now >= self._next_shed:
            self._excess -= 1
            self._next_shed = now + self.shed_interval_s
            self._seen.pop(client, None)
            self.closed += 1
            return True
        return False


def balancer_from_env() -> ConnectionBalancer | None:
    """The worker's balancer when `run_server` started several workers (and CREDIT_DRIFT_
    BALANCE_CONNECTIONS is not "0"), else None."""
    folder = os.environ.get(WORKER_DIR_ENV)
    if os.environ.get(BALANCE_ENV, "1").strip() == "0" or not folder or not Path(folder).is_dir():
        return None
    return ConnectionBalancer(Path(folder))
