"""Group commit (`serving.group_commit`): concurrent requests' predictions committed together in
one transaction, each answered only after that commit; a poison request does not fail its
neighbours; an outage during a group fails every member and writes nothing of it. Real SQLite
and PostgreSQL, real threads; the service's own group write is only held at its start, so that
the test knows which requests share a group."""

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from credit_drift.serving.app import create_app
from credit_drift.serving.config import ServingConfig
from credit_drift.serving.database import DatabaseUnavailable
from credit_drift.serving.group_commit import GroupCommit, _Entry
from credit_drift.serving.service import ScoringService
from credit_drift.storage.db import make_engine
from credit_drift.storage.idempotency import IdempotencyKeyTaken, record_answer
from credit_drift_tests.test_serving_support import (
    application,
    count,
    live_server,
    rows,
    settings_for,
    trained_model,  # noqa: F401 - session fixture
    wait_until,
)

N = 12  # requests of the tested group (plus the one whose write holds them back)


class HeldWrite:
    """The service's group write, held at the start of its first calls until the test lets it
    go, recording how many requests each call wrote."""

    def __init__(self, service: ScoringService, held_calls: int) -> None:
        self.write = service._write_rows
        self.arrived = [threading.Event() for _ in range(held_calls)]
        self.go = [threading.Event() for _ in range(held_calls)]
        self.sizes: list[int] = []

    def __call__(self, engine, payloads, before_commit) -> None:
        k = len(self.sizes)
        self.sizes.append(len(payloads))
        if k < len(self.go):
            self.arrived[k].set()
            assert self.go[k].wait(30), "the test never let the write go"
        self.write(engine, payloads, before_commit)


def _service(db_url: str, model, **config) -> ScoringService:
    options = dict(database_timeout_seconds=5.0, database_retry_seconds=0.0) | config
    service = ScoringService(model.artifacts, db_url, config=ServingConfig(**options))
    assert service.gate.ping() is None  # migrated, as the API's start does
    return service


def _hold(service: ScoringService, held_calls: int) -> HeldWrite:
    held = HeldWrite(service, held_calls)
    service.group_commit = GroupCommit(service.gate, held, max_rows=1_000)
    return held


def _log(service: ScoringService, pool, i: int, rid: str, key: str | None = None):
    """Score application i and log it as request `rid` (storing idempotency key `key` in the
    same transaction, as the API does); returns the answers or the exception raised."""
    matrix, raw = service.schema.pack_frame(pool.iloc[i : i + 1])
    proba = service.predict(matrix)

    def keep(conn, scored) -> None:
        record_answer(
            conn,
            key=key,
            endpoint="/predict",
            body_sha256=f"body-{i}",
            request_id=rid,
            response=f'{{"request_id": "{rid}"}}'.encode(),
        )

    try:
        return service.log(
            matrix, raw, proba, [rid], None, 0.5, same_transaction=keep if key else None
        )
    except Exception as exc:  # noqa: BLE001 - the test looks at what each request got
        return exc


def _run_group(service: ScoringService, held: HeldWrite, pool, requests) -> list:
    """Request 'first' alone in a held write while `requests` (rid, key) queue behind it: they
    form the next group. Returns what each of `requests` got."""
    with ThreadPoolExecutor(len(requests) + 1) as threads:
        first = threads.submit(_log, service, pool, 0, "first")
        assert held.arrived[0].wait(30)
        outcomes = [
            threads.submit(_log, service, pool, i + 1, rid, key)
            for i, (rid, key) in enumerate(requests)
        ]
        assert wait_until(lambda: len(service.group_commit._queue) == len(requests))
        held.go[0].set()
        results = [f.result(timeout=60) for f in outcomes]
        assert not isinstance(first.result(timeout=60), Exception)
    return results


def _logged(db_url: str) -> dict[str, float]:
    return dict(rows(db_url, "SELECT request_id, probability FROM predictions"))


def test_concurrent_requests_share_one_transaction_and_each_answer_has_its_row(
    db_url,
    trained_model,  # noqa: F811
):
    service = _service(db_url, trained_model)
    held = _hold(service, 1)
    requests = [(f"r-{k}", None) for k in range(N)]
    results = _run_group(service, held, trained_model.pool, requests)
    assert held.sizes == [1, N]  # the first alone, then all the others in one transaction
    logged = _logged(db_url)
    assert len(logged) == N + 1 == count(db_url, "predictions")
    for (rid, _), scored in zip(requests, results, strict=True):
        assert scored.request_ids == [rid]
        # Each answer has its own row: the stored probability is the one it was answered.
        assert logged[rid] == pytest.approx(float(scored.probability[0]), rel=1e-12)
    assert service.group_commit.largest_group == N


def test_a_poison_request_fails_alone_and_its_neighbours_are_committed(
    db_url,
    trained_model,  # noqa: F811
):
    service = _service(db_url, trained_model)
    with make_engine(db_url).begin() as conn:
        record_answer(
            conn,
            key="taken",
            endpoint="/predict",
            body_sha256="x",
            request_id="earlier",
            response=b"{}",
        )
    held = _hold(service, 1)
    requests = [(f"r-{k}", f"key-{k}") for k in range(N)]
    requests[5] = ("poison", "taken")  # its key is already answered: a constraint violation
    results = _run_group(service, held, trained_model.pool, requests)
    assert isinstance(results[5], IdempotencyKeyTaken)
    for k, result in enumerate(results):
        if k != 5:
            assert not isinstance(result, Exception), (k, result)
    # The group failed whole, then its members were written one by one.
    assert held.sizes == [1, N] + [1] * N
    logged = _logged(db_url)
    assert "poison" not in logged
    assert set(logged) == {"first"} | {rid for rid, _ in requests if rid != "poison"}
    keys = dict(rows(db_url, "SELECT key, request_id FROM idempotency_keys"))
    assert keys == {"taken": "earlier"} | {key: rid for rid, key in requests if rid != "poison"}


def _hold_the_write_lock(db_url: str):
    """Another client holding what the API's write needs: SQLite's write lock (another
    process's long write), or an exclusive lock on `predictions` (PostgreSQL). Returns the
    function that releases it."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        other = sqlite3.connect(url.database, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")

        def release() -> None:
            other.execute("ROLLBACK")
            other.close()

        return release
    conn = make_engine(db_url).connect()
    conn.begin()
    conn.execute(sa.text("LOCK TABLE predictions IN EXCLUSIVE MODE"))

    def release_pg() -> None:
        conn.rollback()
        conn.close()

    return release_pg


def test_a_database_fault_during_a_group_fails_every_member_and_writes_nothing(
    db_url,
    trained_model,  # noqa: F811
):
    service = _service(db_url, trained_model, database_timeout_seconds=1.5)
    held = _hold(service, 2)
    requests = [(f"r-{k}", f"key-{k}") for k in range(N)]
    release = None
    with ThreadPoolExecutor(N + 1) as threads:
        first = threads.submit(_log, service, trained_model.pool, 0, "first")
        assert held.arrived[0].wait(30)
        outcomes = [
            threads.submit(_log, service, trained_model.pool, i + 1, rid, key)
            for i, (rid, key) in enumerate(requests)
        ]
        assert wait_until(lambda: len(service.group_commit._queue) == N)
        held.go[0].set()
        assert held.arrived[1].wait(30)  # the group of N is about to be written
        release = _hold_the_write_lock(db_url)
        try:
            held.go[1].set()
            results = [f.result(timeout=60) for f in outcomes]
        finally:
            release()
        assert not isinstance(first.result(timeout=60), Exception)
    assert held.sizes == [1, N]  # no retry one by one after an outage
    assert all(isinstance(r, DatabaseUnavailable) for r in results), results
    assert set(_logged(db_url)) == {"first"}
    assert count(db_url, "idempotency_keys") == 0
    # The database is back: the next request is written.
    assert not isinstance(_log(service, trained_model.pool, 1, "after"), Exception)
    assert set(_logged(db_url)) == {"first", "after"}


def test_concurrent_http_requests_each_get_their_own_logged_row(
    db_url,
    trained_model,  # noqa: F811
    tmp_path,
):
    settings = settings_for(db_url, trained_model.artifacts_dir, tmp_path)
    app = create_app(
        settings, trained_model.artifacts, config=ServingConfig(database_timeout_seconds=10)
    )
    n_clients, per_client = 16, 5
    barrier = threading.Barrier(n_clients)
    with live_server(app) as base:

        def client_run(c: int) -> list[dict]:
            with httpx.Client(base_url=base, timeout=30) as client:
                barrier.wait()
                out = []
                for k in range(per_client):
                    i = c * per_client + k
                    response = client.post("/predict", json=application(trained_model.pool, i))
                    assert response.status_code == 200, response.text
                    out.append((i, response.json()))
                return out

        with ThreadPoolExecutor(n_clients) as threads:
            answers = [a for batch in threads.map(client_run, range(n_clients)) for a in batch]
    logged = _logged(db_url)
    assert len(answers) == len(logged) == n_clients * per_client
    for _, answer in answers:
        assert logged[answer["request_id"]] == pytest.approx(answer["probability"], rel=1e-12)
    stats = app.state.service.group_commit
    assert stats.grouped_requests == n_clients * per_client


# -- requests awaited on an event loop (`commit_async`: the API's single predictions) -----------
@contextlib.contextmanager
def _event_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop running in its own thread, as uvicorn's is in an API worker."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield loop
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def _log_on(loop, service: ScoringService, pool, i: int, rid: str):
    """Score application i on `loop` and await its log row there (as `POST /predict` does);
    a concurrent future of the answers or the exception raised."""

    async def log():
        try:
            return await service.score_and_log_async(application(pool, i), request_id=rid)
        except Exception as exc:  # noqa: BLE001 - the test looks at what each request got
            return exc

    return asyncio.run_coroutine_threadsafe(log(), loop)


def _queued(service: ScoringService, n: int) -> bool:
    return wait_until(lambda: len(service.group_commit._queue) == n)


def test_requests_awaited_on_an_event_loop_share_one_transaction(
    db_url,
    trained_model,  # noqa: F811
):
    service = _service(db_url, trained_model)
    held = _hold(service, 1)
    pool = trained_model.pool
    with _event_loop() as loop, ThreadPoolExecutor(1) as threads:
        first = threads.submit(_log, service, pool, 0, "first")
        assert held.arrived[0].wait(30)
        waiting = [_log_on(loop, service, pool, k + 1, f"r-{k}") for k in range(N)]
        assert _queued(service, N)
        held.go[0].set()
        results = [f.result(timeout=60) for f in waiting]
        assert not isinstance(first.result(timeout=60), Exception)
    assert held.sizes == [1, N]
    logged = _logged(db_url)
    assert len(logged) == N + 1 == count(db_url, "predictions")
    for k, scored in enumerate(results):
        assert scored.request_ids == [f"r-{k}"]
        assert logged[f"r-{k}"] == pytest.approx(float(scored.probability[0]), rel=1e-12)
    assert not service.group_commit._leading and not service.group_commit._queue


def test_the_lead_passes_between_request_threads_and_the_writer_thread(
    db_url,
    trained_model,  # noqa: F811
):
    """Groups of 4 rows: [loop x4] [thread x4] [loop x4] queued behind a held first write. The
    first (a thread) hands the next group to the writer thread, which hands the one after to
    a request thread, which hands the last back to the writer."""
    service = _service(db_url, trained_model)
    held = HeldWrite(service, 1)
    service.group_commit = GroupCommit(service.gate, held, max_rows=4)
    pool = trained_model.pool
    with _event_loop() as loop, ThreadPoolExecutor(5) as threads:
        first = threads.submit(_log, service, pool, 0, "first")
        assert held.arrived[0].wait(30)
        waiting = []
        for k in range(12):
            rid = f"r-{k}"
            if 4 <= k < 8:
                waiting.append(threads.submit(_log, service, pool, k + 1, rid))
            else:
                waiting.append(_log_on(loop, service, pool, k + 1, rid))
            assert _queued(service, k + 1)  # queued in this order
        held.go[0].set()
        results = [f.result(timeout=60) for f in waiting]
        assert not isinstance(first.result(timeout=60), Exception)
    assert held.sizes == [1, 4, 4, 4]
    assert not any(isinstance(r, Exception) for r in results), results
    assert set(_logged(db_url)) == {"first"} | {f"r-{k}" for k in range(12)}
    assert not service.group_commit._leading


def test_an_outage_fails_every_request_awaited_on_a_loop_and_writes_nothing(
    db_url,
    trained_model,  # noqa: F811
):
    service = _service(db_url, trained_model, database_timeout_seconds=1.5)
    held = _hold(service, 2)
    pool = trained_model.pool
    with _event_loop() as loop, ThreadPoolExecutor(1) as threads:
        first = threads.submit(_log, service, pool, 0, "first")
        assert held.arrived[0].wait(30)
        waiting = [_log_on(loop, service, pool, k + 1, f"r-{k}") for k in range(N)]
        assert _queued(service, N)
        held.go[0].set()
        assert held.arrived[1].wait(30)  # the group of N is about to be written
        release = _hold_the_write_lock(db_url)
        try:
            held.go[1].set()
            results = [f.result(timeout=60) for f in waiting]
        finally:
            release()
        assert not isinstance(first.result(timeout=60), Exception)
        assert held.sizes == [1, N]
        assert all(isinstance(r, DatabaseUnavailable) for r in results), results
        assert set(_logged(db_url)) == {"first"}
        # The database is back: the next request awaited on the loop is written.
        after = _log_on(loop, service, pool, 1, "after").result(timeout=60)
    assert not isinstance(after, Exception), after
    assert set(_logged(db_url)) == {"first", "after"}


def test_a_request_awaited_on_a_loop_stops_waiting_at_its_bound(
    db_url,
    trained_model,  # noqa: F811
    monkeypatch,
):
    """A writer stuck beyond every database bound (a hung write the gate cannot cut short):
    the request awaited on the loop answers DatabaseUnavailable at its own bound, without
    blocking the loop; once the writer is free, the queue drains and the next request is
    written."""
    service = _service(db_url, trained_model)
    service.gate.timeout_seconds = 0.5  # after the migration: the waiters' bound is 2.5 s
    stuck, unstuck = threading.Event(), threading.Event()
    run = service.group_commit._run

    def hung_run(payloads) -> None:
        if not stuck.is_set():
            stuck.set()
            assert unstuck.wait(60)
        run(payloads)

    monkeypatch.setattr(service.group_commit, "_run", hung_run)
    pool = trained_model.pool
    with _event_loop() as loop:
        waiting = _log_on(loop, service, pool, 0, "stuck")
        assert stuck.wait(30)
        late = _log_on(loop, service, pool, 1, "late")
        # The loop stays free meanwhile: it answers other work at once.
        assert asyncio.run_coroutine_threadsafe(asyncio.sleep(0), loop).result(5) is None
        result = late.result(timeout=30)
        assert isinstance(result, DatabaseUnavailable), result
        assert "no answer before its group was written" in str(result)
        result = waiting.result(timeout=30)
        assert isinstance(result, DatabaseUnavailable), result
        assert "no answer while its group was written" in str(result)
        unstuck.set()
        assert not isinstance(_log_on(loop, service, pool, 2, "next").result(30), Exception)
    # "late" gave up while still queued: it was taken out of the queue and never written.
    # "stuck" gave up while its group was being written, which then committed (the case
    # `serving.idempotency`'s safe retries are for).
    assert set(_logged(db_url)) == {"stuck", "next"}


def test_a_cancelled_request_leaves_its_row_to_be_written_and_the_queue_moving(
    db_url,
    trained_model,  # noqa: F811
):
    service = _service(db_url, trained_model)
    held = _hold(service, 1)
    pool = trained_model.pool
    with _event_loop() as loop, ThreadPoolExecutor(1) as threads:
        first = threads.submit(_log, service, pool, 0, "first")
        assert held.arrived[0].wait(30)
        cancelled = _log_on(loop, service, pool, 1, "cancelled")
        assert _queued(service, 1)
        cancelled.cancel()  # the coroutine's task is cancelled on the loop
        others = [_log_on(loop, service, pool, k + 2, f"r-{k}") for k in range(3)]
        assert _queued(service, 4)
        held.go[0].set()
        results = [f.result(timeout=60) for f in others]
        assert not isinstance(first.result(timeout=60), Exception)
    assert not any(isinstance(r, Exception) for r in results), results
    # Like a waiter that gave up after its group was taken, its row may still be committed.
    assert set(_logged(db_url)) == {"first", "cancelled", "r-0", "r-1", "r-2"}
    assert held.sizes == [1, 4]


def test_a_request_of_a_closed_loop_heading_the_queue_is_still_written(
    db_url,
    trained_model,  # noqa: F811
):
    """The writer is scheduled through the loop of the request heading the queue; when that
    loop is closed (an API worker shutting down), it is started directly instead."""
    service = _service(db_url, trained_model)
    group_commit = service.group_commit
    loop = asyncio.new_event_loop()
    future = loop.create_future()
    loop.close()
    _, payload = service._score([application(trained_model.pool, 0)], "orphan", False, False, None)
    entry = _Entry(payload, 1, payload.source, time.monotonic(), future=future)
    with group_commit._lock:
        group_commit._queue.append(entry)
        group_commit._leading = True
        group_commit._start_writer()
    assert wait_until(lambda: not group_commit._leading)
    assert entry.finished and entry.error is None
    assert set(_logged(db_url)) == {"orphan"}
