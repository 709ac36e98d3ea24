"""The API's Prometheus metrics at /metrics: counted in process against a real uvicorn server,
then (slow) scraped by a real Prometheus server (Debian's `prometheus`) from `credit-drift serve
--workers 2` processes and read back through Prometheus's HTTP query API, where the two workers'
counts must add up."""

import concurrent.futures
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from credit_drift.serving.app import create_app
from credit_drift_tests.test_serving_support import (
    application,
    count,
    free_port,
    live_server,
    rows,
    settings_for,
    trained_model,  # noqa: F401 - session fixture
    wait_until,
)

GRAFANA_PROMETHEUS_DASHBOARD = (
    Path(__file__).resolve().parents[1]
    / "deploy"
    / "grafana"
    / "dashboards"
    / "credit-drift-prometheus.json"
)


def scrape(base: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of one /metrics answer."""
    response = httpx.get(f"{base}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def delta(after, before, name: str, **labels) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def unreachable_postgres_url() -> str:
    return f"postgresql+psycopg2://postgres@127.0.0.1:{free_port()}/nothing"


# -- in process ---------------------------------------------------------------------------------
def test_requests_predictions_and_scores_are_counted(trained_model, tmp_path, sqlite_url):  # noqa: F811
    settings = settings_for(sqlite_url, trained_model.artifacts_dir, tmp_path)
    app = create_app(settings, trained_model.artifacts)
    pool = trained_model.pool
    with live_server(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        before = scrape(base)
        answers = [client.post("/predict", json=application(pool, i)).json() for i in range(5)]
        batch = client.post("/predict/batch", json=[application(pool, i) for i in range(5, 12)])
        assert batch.status_code == 200
        bad = application(pool, 0)
        bad.pop("EXT_SOURCE_2")
        assert client.post("/predict", json=bad).status_code == 422
        assert client.get("/no/such/path").status_code == 404
        assert app.state.api_log_writer.flush(timeout=15)
        logged_before_scrape = count(sqlite_url, "api_logs")
        after = scrape(base)
        scrape(base)
        assert app.state.api_log_writer.flush(timeout=15)
        # Scrapes never reach the request log.
        assert count(sqlite_url, "api_logs") == logged_before_scrape == 8

    requests = "credit_drift_http_requests_total"
    assert delta(after, before, requests, endpoint="/predict", method="POST", status="200") == 5
    assert delta(after, before, requests, endpoint="/predict", method="POST", status="422") == 1
    assert (
        delta(after, before, requests, endpoint="/predict/batch", method="POST", status="200") == 1
    )
    assert delta(after, before, requests, endpoint="unmatched", method="GET", status="404") == 1
    duration = "credit_drift_http_request_duration_seconds_count"
    assert delta(after, before, duration, endpoint="/predict", method="POST") == 6

    decisions = [a["decision"] for a in answers] + [
        p["decision"] for p in batch.json()["predictions"]
    ]
    for decision in ("APPROVED", "REFUSED"):
        got = delta(after, before, "credit_drift_predictions_total", decision=decision)
        assert got == decisions.count(decision), decision
    assert delta(after, before, "credit_drift_prediction_probability_count") == 12
    probabilities = [a["probability"] for a in answers] + [
        p["probability"] for p in batch.json()["predictions"]
    ]
    assert delta(after, before, "credit_drift_prediction_probability_sum") == pytest.approx(
        sum(probabilities)
    )
    low = sum(p <= 0.05 for p in probabilities)
    assert delta(after, before, "credit_drift_prediction_probability_bucket", le="0.05") == low


def test_database_down_counts_failures_and_the_queue(trained_model, tmp_path):  # noqa: F811
    settings = settings_for(unreachable_postgres_url(), trained_model.artifacts_dir, tmp_path)
    app = create_app(settings, trained_model.artifacts)
    with live_server(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        before = scrape(base)
        for i in range(3):
            assert (
                client.post("/predict", json=application(trained_model.pool, i)).status_code == 503
            )
        writer = app.state.api_log_writer

        def settled() -> bool:
            now = scrape(base)
            return (
                value(now, "credit_drift_api_logs_queue_rows") == writer.pending() >= 3
                and delta(now, before, "credit_drift_db_write_failures_total", table="api_logs")
                >= 1
            )

        assert wait_until(settled, timeout=20, step=0.3)
        after = scrape(base)
    failures = "credit_drift_db_write_failures_total"
    assert delta(after, before, failures, table="predictions") == 3
    assert delta(after, before, "credit_drift_predictions_total", decision="APPROVED") == 0


# -- a real Prometheus scraping two workers ---------------------------------------------------
def _prometheus_or_skip() -> str:
    exe = shutil.which("prometheus")
    if exe is None:
        reason = "no prometheus on PATH (Debian: apt-get install prometheus)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{reason}; CI=true: the Prometheus test must run, not skip")
        pytest.skip(reason)
    return exe


def _start(args: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(
            args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _serve(url: str, artifacts_dir: Path, home: Path, multiproc: Path, log: Path):
    port = free_port()
    env = {
        **os.environ,
        "CREDIT_DRIFT_HOME": str(home),
        "DATABASE_URL": url,
        "CREDIT_DRIFT_ARTIFACTS_DIR": str(artifacts_dir),
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
    }
    args = [sys.executable, "-m", "credit_drift.cli", "serve", "--workers", "2"]
    process = _start(args + ["--port", str(port)], log, env)
    return process, f"http://127.0.0.1:{port}"


def _up(process: subprocess.Popen, base: str, log: Path, health_calls: list[int]) -> None:
    def answering() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"server exited:\n{log.read_text()[-3000:]}")
        try:
            httpx.get(f"{base}/health", timeout=2)
            health_calls.append(1)  # an answer, 200 or 503: one request logged
            return True
        except httpx.HTTPError:
            return False

    assert wait_until(answering, timeout=120, step=0.3), log.read_text()[-3000:]


def _worker_counts(multiproc: Path, endpoint: str) -> list[float]:
    """/predict 200s counted by each worker, from the workers' own files."""
    from prometheus_client.multiprocess import MultiProcessCollector

    counts = []
    for path in sorted(multiproc.glob("counter_*.db")):
        total = 0.0
        for family in MultiProcessCollector.merge([str(path)]):
            for s in family.samples:
                if (
                    s.name == "credit_drift_http_requests_total"
                    and s.labels.get("endpoint") == endpoint
                    and s.labels.get("status") == "200"
                ):
                    total += s.value
        counts.append(total)
    return counts


def _sum(metric: str, **labels: str) -> str:
    """PromQL: the sum of a credit_drift_ metric over the series matching the labels."""
    matchers = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return f"sum(credit_drift_{metric}{{{matchers}}})"


def _query(prom: str, expr: str) -> float | None:
    body = httpx.get(f"{prom}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert body["status"] == "success", body
    result = body["data"]["result"]
    return float(result[0]["value"][1]) if result else None


@pytest.mark.slow
def test_prometheus_scrapes_two_workers_that_add_up(trained_model, tmp_path, sqlite_url):  # noqa: F811
    prometheus = _prometheus_or_skip()
    processes: list[subprocess.Popen] = []
    try:
        # A: a healthy API on SQLite. B: the same API with its database unreachable.
        mp_a, mp_b = tmp_path / "mp-a", tmp_path / "mp-b"
        a, base_a = _serve(
            sqlite_url, trained_model.artifacts_dir, tmp_path / "a", mp_a, tmp_path / "a.log"
        )
        processes.append(a)
        b, base_b = _serve(
            unreachable_postgres_url(),
            trained_model.artifacts_dir,
            tmp_path / "b",
            mp_b,
            tmp_path / "b.log",
        )
        processes.append(b)
        health_a, health_b = [], []
        _up(a, base_a, tmp_path / "a.log", health_a)
        _up(b, base_b, tmp_path / "b.log", health_b)

        # New connection per request, several at once, until both workers of A served some.
        pool = trained_model.pool

        def predict(i: int) -> int:
            return httpx.post(
                f"{base_a}/predict", json=application(pool, i), timeout=30
            ).status_code

        sent_ok = 0
        with concurrent.futures.ThreadPoolExecutor(4) as executor:
            for round_ in range(20):
                codes = list(executor.map(predict, range(round_ * 20, round_ * 20 + 20)))
                assert set(codes) == {200}, codes
                sent_ok += len(codes)
                per_worker = _worker_counts(mp_a, "/predict")
                if len(per_worker) == 2 and min(per_worker) > 0:
                    break
        per_worker = _worker_counts(mp_a, "/predict")
        assert len(per_worker) == 2 and min(per_worker) > 0, per_worker
        assert sum(per_worker) == sent_ok
        bad = application(pool, 0)
        bad.pop("EXT_SOURCE_2")
        for _ in range(3):
            assert httpx.post(f"{base_a}/predict", json=bad, timeout=30).status_code == 422
        n_down = 7
        for i in range(n_down):
            assert (
                httpx.post(f"{base_b}/predict", json=application(pool, i), timeout=30).status_code
                == 503
            )

        port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n"
            f"  - job_name: api\n    static_configs:\n      - targets: ['{base_a[7:]}']\n"
            f"  - job_name: api_db_down\n    static_configs:\n      - targets: ['{base_b[7:]}']\n"
        )
        prom_log = tmp_path / "prometheus.log"
        processes.append(
            _start(
                [
                    prometheus,
                    f"--config.file={config}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                ],
                prom_log,
            )
        )
        prom = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            # Until its storage is open Prometheus answers 503 in plain text, even to queries.
            if processes[-1].poll() is not None:
                raise AssertionError(f"prometheus exited:\n{prom_log.read_text()[-3000:]}")
            try:
                return httpx.get(f"{prom}/-/ready", timeout=5).status_code == 200
            except httpx.HTTPError:
                return False

        assert wait_until(ready, timeout=60, step=0.5), prom_log.read_text()[-2000:]

        refused = rows(sqlite_url, "SELECT count(*) FROM predictions WHERE decision = 'REFUSED'")[
            0
        ][0]
        expected = {
            _sum("http_requests_total", job="api", endpoint="/predict", status="200"): sent_ok,
            _sum("http_requests_total", job="api", endpoint="/predict", status="422"): 3,
            _sum("predictions_total", job="api"): sent_ok,
            _sum("predictions_total", job="api", decision="REFUSED"): refused,
            _sum("prediction_probability_count", job="api"): sent_ok,
            _sum("http_request_duration_seconds_count", job="api", endpoint="/predict"): sent_ok
            + 3,
            _sum("db_write_failures_total", job="api_db_down", table="predictions"): n_down,
            # Every request B answered waits in its workers' queues: the gauge sums both.
            _sum("api_logs_queue_rows", job="api_db_down"): n_down + len(health_b),
            _sum("api_logs_queue_rows", job="api"): 0,
        }
        last: dict[str, float | None] = {}

        def scraped() -> bool:
            if processes[-1].poll() is not None:
                raise AssertionError(f"prometheus exited:\n{prom_log.read_text()[-3000:]}")
            try:
                for expr in expected:
                    last[expr] = _query(prom, expr)
                return all(last[e] == w for e, w in expected.items())
            except httpx.HTTPError:
                return False

        assert wait_until(scraped, timeout=90, step=1.0), (
            last,
            expected,
            prom_log.read_text()[-2000:],
        )
        assert count(sqlite_url, "predictions") == sent_ok
        failures = _query(
            prom, 'sum(credit_drift_db_write_failures_total{job="api_db_down",table="api_logs"})'
        )
        assert failures is not None and failures >= 1
        # Every PromQL expression of the Grafana dashboard is valid here and finds its series
        # (rate and increase need two scrapes in their window: poll until they have them).
        dashboard = json.loads(GRAFANA_PROMETHEUS_DASHBOARD.read_text())
        exprs = {
            target["expr"].replace("$__rate_interval", "1m"): panel["title"]
            for panel in dashboard["panels"]
            for target in panel["targets"]
        }
        empty: dict[str, str] = {}

        def every_panel_has_series() -> bool:
            empty.clear()
            for expr, title in exprs.items():
                body = httpx.get(f"{prom}/api/v1/query", params={"query": expr}, timeout=10)
                assert body.status_code == 200, (title, expr, body.text)
                data = body.json()
                assert data["status"] == "success", (title, data)
                if not data["data"]["result"]:
                    empty[title] = expr
            return not empty

        assert wait_until(every_panel_has_series, timeout=60, step=1.0), empty
        targets = httpx.get(f"{prom}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
        assert {t["labels"]["job"]: t["health"] for t in targets} == {
            "api": "up",
            "api_db_down": "up",
        }
    finally:
        for process in reversed(processes):
            _stop(process)


def test_api_logs_rows_the_database_refuses_are_counted(trained_model, tmp_path, sqlite_url):  # noqa: F811
    """A database that refuses one request's log row for good (here a trigger): the row is
    dropped after a row-by-row retry, counted in credit_drift_api_logs_rejected_total, and the
    rows before and after it are written."""
    import sqlalchemy as sa

    from credit_drift.storage.db import make_engine

    settings = settings_for(sqlite_url, trained_model.artifacts_dir, tmp_path)
    app = create_app(settings, trained_model.artifacts)
    with live_server(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        with make_engine(sqlite_url).begin() as conn:  # migrated at start-up
            conn.execute(
                sa.text(
                    "CREATE TRIGGER refuse_poison BEFORE INSERT ON api_logs "
                    "WHEN NEW.endpoint = '/poison' BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )
        before = scrape(base)
        assert client.get("/before").status_code == 404
        assert client.get("/poison").status_code == 404
        assert client.get("/after").status_code == 404
        writer = app.state.api_log_writer
        assert writer.flush(timeout=15)

        def counted() -> bool:
            return delta(scrape(base), before, "credit_drift_api_logs_rejected_total") == 1

        assert wait_until(counted, timeout=20, step=0.3)
    endpoints = [r.endpoint for r in rows(sqlite_url, "SELECT endpoint FROM api_logs ORDER BY id")]
    assert endpoints[-2:] == ["/before", "/after"] and "/poison" not in endpoints
    assert writer.rejected == 1


# -- one app per process: the queue gauge follows the live writer only --------------------------
class _FakeWriter:
    def __init__(self, pending: int) -> None:
        self._pending = pending
        self.dropped = self.failed = self.rejected = 0
        self.closed = False

    def pending(self) -> int:
        return self._pending


def _gauge_samples(seconds: float) -> set[float]:
    from credit_drift.serving.metrics import api_metrics

    gauge = api_metrics().queue_rows
    seen = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen.add(gauge._value.get())
        time.sleep(0.05)
    return seen


def test_an_earlier_apps_writer_stops_overwriting_the_queue_gauge():
    """Regression (a CI failure): an earlier app's writer, still alive in the same process, kept
    setting the process-wide gauge to its own depth (0) every second, so the live app's queue
    (3 rows) showed only part of the time."""
    from credit_drift.serving.metrics import QUEUE_SAMPLE_SECONDS, _start_queue_sampler

    old, live = _FakeWriter(0), _FakeWriter(3)
    _start_queue_sampler(old)
    time.sleep(QUEUE_SAMPLE_SECONDS / 2)  # out of phase: each would show half the time
    _start_queue_sampler(live)
    time.sleep(QUEUE_SAMPLE_SECONDS * 1.2)
    assert _gauge_samples(QUEUE_SAMPLE_SECONDS * 2.5) == {3.0}

    # A closed writer's sampler stops too: the gauge keeps its last figure.
    live._pending = 5
    live.closed = True
    time.sleep(QUEUE_SAMPLE_SECONDS * 1.2)
    assert _gauge_samples(QUEUE_SAMPLE_SECONDS * 1.5) == {3.0}
