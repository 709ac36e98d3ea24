"""Prometheus metrics of the scoring API, served at `/metrics` (prometheus-client).

What is measured (every name starts with `credit_drift_`; the table with labels and meanings is
in deploy/README.md, "Prometheus"): requests by endpoint (route template) and status, request
latency, predictions by decision, the predicted probabilities, database write failures (by
table), the api_logs queue depth, the api_logs rows dropped (queue full) and those the database
refused for good.

Several uvicorn workers: prometheus-client's multiprocess mode. When PROMETHEUS_MULTIPROC_DIR is
set before the workers start, each worker writes its values to files there and whichever worker
answers `/metrics` sums them all, so a scrape sees the whole server, not one worker.
`credit-drift serve --workers N` (N > 1) sets it to a fresh temporary directory when it is not
set, and wipes its stale files when it is (the library requires a clean directory per run). The
queue gauge uses the `livesum` mode: the files of a worker that exited are removed at its exit,
and at scrape time for workers that died without exiting cleanly.

`/metrics` is answered by the outermost middleware, before the request log: scrapes do not fill
`api_logs` or the JSON request log. Like `/health`, it needs no API key and shows no request data.
"""

import atexit
import collections
import functools
import glob
import os
import shutil
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from credit_drift.serving.balance import pid_alive

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METRICS_PATH = "/metrics"
#: How often each worker copies its api_logs queue depth into the gauge.
QUEUE_SAMPLE_SECONDS = 1.0

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
PROBABILITY_BUCKETS = tuple(round(0.05 * k, 2) for k in range(1, 20)) + (1.0,)


@dataclass(frozen=True)
class ApiMetrics:
    requests: Counter
    latency: Histogram
    predictions: Counter
    probability: Histogram
    db_write_failures: Counter
    queue_rows: Gauge
    dropped_rows: Counter
    rejected_rows: Counter
    rebalanced: Counter


@functools.cache
def api_metrics() -> ApiMetrics:
    """The metric objects, created on first use in the process that records them: created at
    import, they would open value files in the multiprocess directory from any process that
    merely imports this module (the server's parent, which must prepare that directory first)."""
    return ApiMetrics(
        requests=Counter(
            "credit_drift_http_requests_total",
            "HTTP requests answered by the scoring API.",
            ["endpoint", "method", "status"],
        ),
        latency=Histogram(
            "credit_drift_http_request_duration_seconds",
            "Time from an HTTP request to the last byte of its answer.",
            ["endpoint", "method"],
            buckets=LATENCY_BUCKETS,
        ),
        predictions=Counter(
            "credit_drift_predictions_total",
            "Applications scored and logged, by decision.",
            ["decision"],
        ),
        probability=Histogram(
            "credit_drift_prediction_probability",
            "Predicted probability of default of each logged application.",
            buckets=PROBABILITY_BUCKETS,
        ),
        db_write_failures=Counter(
            "credit_drift_db_write_failures_total",
            "Database writes that failed because the database was unreachable.",
            ["table"],
        ),
        queue_rows=Gauge(
            "credit_drift_api_logs_queue_rows",
            "api_logs rows waiting in memory to be written to the database.",
            multiprocess_mode="livesum",
        ),
        dropped_rows=Counter(
            "credit_drift_api_logs_dropped_total",
            "api_logs rows dropped because the in-memory queue was full.",
        ),
        rejected_rows=Counter(
            "credit_drift_api_logs_rejected_total",
            "api_logs rows the database refused in every form tried (dropped; the JSON log "
            "line still has them).",
        ),
        rebalanced=Counter(
            "credit_drift_connections_rebalanced_total",
            "Keep-alive connections a worker ended (Connection: close) to even out the "
            "workers' connections (serving.balance).",
        ),
    )


def multiprocess_enabled() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


def prepare_multiprocess_dir(workers: int) -> Path | None:
    """Before starting several workers: make sure PROMETHEUS_MULTIPROC_DIR names an empty
    directory (a fresh temporary one when unset) so that their metrics add up. The variable
    must be in the environment before the workers import prometheus-client."""
    if workers <= 1:
        return None
    path = os.environ.get(MULTIPROC_ENV)
    if path:
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink()
    else:
        folder = Path(tempfile.mkdtemp(prefix="credit-drift-metrics-"))
        os.environ[MULTIPROC_ENV] = str(folder)
        atexit.register(shutil.rmtree, folder, True)
    return folder


def _remove_dead_workers(path: str) -> None:
    """Drop the live-gauge files of workers that died without their exit hook running."""
    for name in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        pid = Path(name).stem.rsplit("_", 1)[-1]
        if not pid.isdigit():
            continue
        if not pid_alive(int(pid)):
            multiprocess.mark_process_dead(int(pid), path)


def render() -> tuple[bytes, str]:
    """The exposition text of every metric (summed over workers in multiprocess mode)."""
    path = os.environ.get(MULTIPROC_ENV)
    if path:
        _remove_dead_workers(path)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=path)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def _endpoint(scope) -> str:
    # The route template (bounded label values), never the raw path a client made up.
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


class MetricsMiddleware:
    """Outermost pure ASGI middleware: answers GET /metrics itself and counts and times every
    other request with its final status."""

    def __init__(self, app, writer: Any = None) -> None:
        self.app = app
        self._writer = writer
        self._sampler_started = False

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope.get("path") == METRICS_PATH and scope.get("method") in ("GET", "HEAD"):
            await self._metrics(send)
            return
        if not self._sampler_started and self._writer is not None:
            self._sampler_started = True
            _start_queue_sampler(self._writer)
        t0 = time.perf_counter()
        status = 500

        async def send_counted(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        finally:
            endpoint = _endpoint(scope)
            method = scope.get("method", "")
            m = api_metrics()
            m.requests.labels(endpoint, method, str(status)).inc()
            m.latency.labels(endpoint, method).observe(time.perf_counter() - t0)

    async def _metrics(self, send) -> None:
        body, content_type = render()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", content_type.encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


_SAMPLER_GENERATION = 0


def _start_queue_sampler(writer: Any) -> None:
    """A daemon thread copying this worker's api_logs queue depth, dropped, failed and rejected
    rows into the metrics every QUEUE_SAMPLE_SECONDS (the writer counts them; the metrics follow
    within a second). It ends with the writer."""
    ref = weakref.ref(writer)
    m = api_metrics()
    global _SAMPLER_GENERATION
    _SAMPLER_GENERATION += 1
    generation = _SAMPLER_GENERATION

    def run() -> None:
        dropped = failed = rejected = 0
        while True:
            w = ref()
            if w is None or getattr(w, "closed", False) or generation != _SAMPLER_GENERATION:
                # The gauges are per process and a process serves one app: a writer closed or
                # superseded by a newer app's (an earlier app in the same test process) must
                # stop overwriting the live writer's figures.
                return
            m.queue_rows.set(w.pending())
            now_dropped, now_failed = w.dropped, getattr(w, "failed", 0)
            now_rejected = getattr(w, "rejected", 0)
            if now_dropped > dropped:
                m.dropped_rows.inc(now_dropped - dropped)
            if now_failed > failed:
                m.db_write_failures.labels("api_logs").inc(now_failed - failed)
            if now_rejected > rejected:
                m.rejected_rows.inc(now_rejected - rejected)
            dropped, failed, rejected = now_dropped, now_failed, now_rejected
            del w
            time.sleep(QUEUE_SAMPLE_SECONDS)

    threading.Thread(target=run, name="metrics-queue-sampler", daemon=True).start()


def instrument_service(service: Any) -> None:
    """Count the service's scored applications by decision, their probabilities, and the
    prediction writes refused by an unreachable database (wraps `score_and_log` and
    `score_and_log_async`)."""
    from credit_drift.serving.database import DatabaseUnavailable

    score_and_log = service.score_and_log
    score_and_log_async = service.score_and_log_async
    m = api_metrics()

    def count(scored: Any) -> Any:
        for decision, n in collections.Counter(scored.decision.tolist()).items():
            m.predictions.labels(str(decision)).inc(n)
        for p in scored.probability.tolist():
            m.probability.observe(p)
        return scored

    def counted(*args, **kwargs):
        try:
            scored = score_and_log(*args, **kwargs)
        except DatabaseUnavailable:
            m.db_write_failures.labels("predictions").inc()
            raise
        return count(scored)

    async def counted_async(*args, **kwargs):
        try:
            scored = await score_and_log_async(*args, **kwargs)
        except DatabaseUnavailable:
            m.db_write_failures.labels("predictions").inc()
            raise
        return count(scored)

    service.score_and_log = counted
    service.score_and_log_async = counted_async


def _mark_dead_at_exit() -> None:
    path = os.environ.get(MULTIPROC_ENV)
    if path:
        multiprocess.mark_process_dead(os.getpid(), path)


def instrument(app: Any, service: Any, writer: Any) -> None:
    """Wire the metrics into a scoring app: the middleware (added last, so outermost) and the
    service hook. In multiprocess mode, this worker's live gauges are removed at its exit."""
    if multiprocess_enabled():
        Path(os.environ[MULTIPROC_ENV]).mkdir(parents=True, exist_ok=True)
        atexit.register(_mark_dead_at_exit)
    instrument_service(service)
    app.add_middleware(MetricsMiddleware, writer=writer)
