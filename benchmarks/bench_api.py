"""Benchmark of the scoring API on loopback, database write included: latency p50/p99 and
throughput for single and batch requests, on SQLite and PostgreSQL, against a real uvicorn
server started by this script; side by side with the naive API a user would otherwise write
(the notebook style: a pydantic model validating 419 fields, a pandas DataFrame per request,
`Booster.predict` with default threads, the features inserted as one JSON/JSONB object per row).

    python benchmarks/bench_api.py                       # both databases, both APIs
    python benchmarks/bench_api.py --skip-postgres --single-requests 500   # quick look

Prints a markdown table (and the machine it ran on). Each server runs in its own process with
one uvicorn worker; the client runs in this process over keep-alive HTTP/1.1 connections
(`http.client`, so the client's own cost stays small). Every answered prediction is checked
to be in the database at the end of each run.

Measurements:
- single, sequential: one connection, one application per `POST /predict`, one after the other.
  p50 / p99 of the client-observed latency; predictions per second.
- single, concurrent: `--concurrency` connections sending at once; predictions per second.
- batch: `POST /predict/batch` with `--batch-size` applications, one after the other; p50 / p99
  per request and predictions per second.
"""

import argparse
import contextlib
import datetime as dt
import http.client
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from credit_drift.stack import free_port  # noqa: E402 - after the path above

DEFAULT_PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
NAIVE_TABLE = "naive_predictions"


# -- the naive baseline (served by uvicorn --factory bench_api:naive_app) -----------------------
def naive_app():
    """The notebook-style API: what a user writes without this project."""
    import json

    import pandas as pd
    import sqlalchemy as sa
    from fastapi import FastAPI
    from pydantic import Field, create_model

    from credit_drift.model.artifacts import load_artifacts

    artifacts = load_artifacts(os.environ["CREDIT_DRIFT_ARTIFACTS_DIR"])
    booster, names = artifacts.booster, artifacts.schema.names
    fields = {f"f{j}": (float | None, Field(alias=name)) for j, name in enumerate(names)}
    Application = create_model("Application", **fields)  # noqa: N806 - a class

    engine = sa.create_engine(os.environ["DATABASE_URL"])
    postgres = engine.dialect.name == "postgresql"
    features_type = "JSONB" if postgres else "TEXT"
    id_type = "BIGSERIAL PRIMARY KEY" if postgres else "INTEGER PRIMARY KEY AUTOINCREMENT"
    create = sa.text(
        f"CREATE TABLE IF NOT EXISTS {NAIVE_TABLE} (id {id_type}, created_at TIMESTAMP, "
        f"request_id TEXT, features {features_type}, probability DOUBLE PRECISION, "
        "decision TEXT, threshold DOUBLE PRECISION, model_version TEXT, "
        "inference_time_ms DOUBLE PRECISION)"
    )
    try:
        with engine.begin() as conn:
            conn.execute(create)
    except sa.exc.DBAPIError:
        # Another worker (uvicorn --workers N) created it at the same moment: it must exist.
        with engine.connect() as conn:
            conn.execute(sa.text(f"SELECT 1 FROM {NAIVE_TABLE} LIMIT 0"))
    insert = sa.text(
        f"INSERT INTO {NAIVE_TABLE} (created_at, request_id, features, probability, decision, "
        "threshold, model_version, inference_time_ms) VALUES (:created_at, :request_id, "
        + ("CAST(:features AS JSONB)" if postgres else ":features")
        + ", :probability, :decision, :threshold, :model_version, :ms)"
    )
    app = FastAPI()

    def score(apps) -> tuple[list[dict], list[float], float]:
        t0 = time.perf_counter()
        records = [a.model_dump(by_alias=True) for a in apps]
        frame = pd.DataFrame(records, columns=names).astype(float)
        proba = booster.predict(frame).tolist()  # default threads
        return records, proba, (time.perf_counter() - t0) * 1000

    def log(records, proba, ms) -> list[dict]:
        out, params = [], []
        for record, p in zip(records, proba, strict=True):
            rid = uuid.uuid4().hex
            decision = "REFUSED" if p >= artifacts.threshold else "APPROVED"
            params.append(
                {
                    "created_at": dt.datetime.now(dt.UTC),
                    "request_id": rid,
                    "features": json.dumps(record),
                    "probability": p,
                    "decision": decision,
                    "threshold": artifacts.threshold,
                    "model_version": artifacts.version,
                    "ms": ms / len(records),
                }
            )
            out.append({"request_id": rid, "probability": p, "decision": decision})
        with engine.begin() as conn:
            conn.execute(insert, params)
        return out

    @app.post("/predict")
    def predict(application: Application):
        return log(*score([application]))[0]

    @app.post("/predict/batch")
    def predict_batch(applications: list[Application]):
        return {"predictions": log(*score(applications))}

    @app.get("/health")
    def health():
        return {"status": "ok"}

    return app


# -- servers ------------------------------------------------------------------------------------
@contextlib.contextmanager
def server(
    kind: str, database_url: str, artifacts_dir: Path, workdir: Path, workers: int = 1
) -> Iterator[int]:
    """Start the credit-drift API (`ours`) or the baseline (`naive`) in a child process, with
    `workers` uvicorn worker processes (`ours` and `naive` only)."""
    if workers != 1 and kind not in ("ours", "naive"):
        raise ValueError(f"{kind}: one worker only")
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CREDIT_DRIFT_ARTIFACTS_DIR": str(artifacts_dir),
        "CREDIT_DRIFT_HOME": str(workdir / "home"),
        "CREDIT_DRIFT_API_KEY": "",
        "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }
    if kind == "ours":
        cmd = [
            sys.executable,
            "-c",
            "import sys; from credit_drift.serving.server import run_server; "
            "from credit_drift.settings import Settings; "
            "run_server('127.0.0.1', int(sys.argv[1]), int(sys.argv[2]), Settings.from_env(), "
            "log_level='warning')",
            str(port),
            str(workers),
        ]
    elif kind in ("ours-async", "ours-ungrouped"):
        # The same API with ServingConfig(postgres_synchronous_commit=False), or with every
        # request committed alone (group_commit_max_rows=1: as before group commit).
        option = (
            "postgres_synchronous_commit=False"
            if kind == "ours-async"
            else "group_commit_max_rows=1"
        )
        cmd = [
            sys.executable,
            "-c",
            "import sys, uvicorn; from credit_drift.serving.app import create_app; "
            "from credit_drift.serving.config import ServingConfig; "
            "from credit_drift.settings import Settings; "
            "app = create_app(Settings.from_env(), "
            f"config=ServingConfig({option})); "
            "uvicorn.run(app, host='127.0.0.1', port=int(sys.argv[1]), log_level='warning', "
            "access_log=False)",
            str(port),
        ]
    else:
        cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "--app-dir",
            str(HERE),
            "bench_api:naive_app",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
            "--workers",
            str(workers),
        ]
    log_path = workdir / f"server-{kind}-{port}.log"
    with open(log_path, "w") as log:
        # From ROOT: `python -c` puts the working directory first on sys.path, so a run from
        # another checkout would otherwise serve that checkout's code.
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{kind} server exited: {log_path.read_text()[-2000:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{kind} server did not start: {log_path.read_text()[-2000:]}")
            time.sleep(0.2)
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


# -- client -------------------------------------------------------------------------------------
HEADERS = {"Content-Type": "application/json"}


def _post(conn: http.client.HTTPConnection, path: str, body: bytes) -> float:
    t0 = time.perf_counter()
    conn.request("POST", path, body, HEADERS)
    response = conn.getresponse()
    data = response.read()
    elapsed = time.perf_counter() - t0
    if response.status != 200:
        raise RuntimeError(f"POST {path} answered {response.status}: {data[:300]!r}")
    return elapsed


@dataclass(frozen=True)
class Result:
    latencies_s: list[float]
    n_predictions: int
    wall_s: float

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies_s) * 1000

    @property
    def p99_ms(self) -> float:
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))] * 1000

    @property
    def per_second(self) -> float:
        return self.n_predictions / self.wall_s


def sequential(port: int, path: str, bodies: Sequence[bytes], n: int, per_body: int) -> Result:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    for body in bodies[:3]:  # warm-up (not counted, not logged twice: new request ids)
        _post(conn, path, body)
    latencies = []
    t0 = time.perf_counter()
    for i in range(n):
        latencies.append(_post(conn, path, bodies[i % len(bodies)]))
    wall = time.perf_counter() - t0
    conn.close()
    return Result(latencies, n * per_body, wall)


def concurrent(
    port: int,
    bodies: Sequence[bytes],
    n: int,
    threads: int,
    path: str = "/predict",
    per_body: int = 1,
) -> Result:
    """`threads` connections sending `n` requests in total at once."""
    per_thread = n // threads
    latencies: list[list[float]] = [[] for _ in range(threads)]
    barrier = threading.Barrier(threads + 1)

    def work(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        _post(conn, path, bodies[k % len(bodies)])  # connect + warm up
        barrier.wait()
        for i in range(per_thread):
            latencies[k].append(_post(conn, path, bodies[(k * per_thread + i) % len(bodies)]))
        conn.close()

    workers = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()
    t0 = time.perf_counter()
    for w in workers:
        w.join()
    wall = time.perf_counter() - t0
    return Result([x for xs in latencies for x in xs], per_thread * threads * per_body, wall)


# -- set-up -------------------------------------------------------------------------------------
def prepare_model(args, workdir: Path) -> tuple[Path, "object"]:
    from credit_drift.data.generator import write_datasets
    from credit_drift.data.loader import load_pool, load_training_data
    from credit_drift.model.artifacts import load_artifacts, save_artifacts
    from credit_drift.model.train import train_model

    if args.artifacts:
        artifacts = load_artifacts(args.artifacts)
        pool_path = Path(args.pool) if args.pool else None
        if pool_path is None:
            paths = write_datasets(workdir / "data", n_rows=1_000, pool_rows=3_000, seed=7)
            pool_path = paths.pool
        return Path(args.artifacts), load_pool(pool_path, artifacts.schema)
    print(f"training a model on {args.train_rows} synthetic applications ...", file=sys.stderr)
    paths = write_datasets(workdir / "data", n_rows=args.train_rows, pool_rows=3_000, seed=7)
    data = load_training_data(paths.train, target_column="TARGET", id_column="SK_ID_CURR")
    artifacts = train_model(data, seed=0)
    save_artifacts(artifacts, workdir / "artifacts")
    return workdir / "artifacts", load_pool(paths.pool, artifacts.schema)


@contextlib.contextmanager
def postgres_schema(base_url: str) -> Iterator[str]:
    import sqlalchemy as sa

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base_url else "?"
    try:
        yield f"{base_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def count_rows(url: str, table: str) -> int:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()


def bodies_for(pool, n: int, size: int, split: bool = False) -> list[bytes]:
    """n request bodies of `size` applications: a JSON object (size 1), a JSON array of
    objects, or the split layout {"columns", "data"} (what DataFrame.to_json(orient="split")
    writes)."""
    import orjson

    frame = pool.iloc[: n * size].astype(object)
    frame = frame.where(frame.notna(), None)
    if split:
        columns = list(frame.columns)
        rows = frame.to_numpy().tolist()
        return [
            orjson.dumps({"columns": columns, "data": rows[i * size : (i + 1) * size]})
            for i in range(n)
        ]
    records = frame.to_dict(orient="records")
    if size == 1:
        return [orjson.dumps(r) for r in records]
    return [orjson.dumps(records[i * size : (i + 1) * size]) for i in range(n)]


def run_one(kind, database, url, artifacts_dir, pool, workdir, args) -> dict:
    singles = bodies_for(pool, 500, 1)
    batches = bodies_for(pool, 3, args.batch_size)
    ours = kind.startswith("ours")
    scale = 1.0 if ours else args.naive_fraction
    n_single = max(20, int(args.single_requests * scale))
    n_batch = max(3, int(args.batch_requests * scale))
    split = bodies_for(pool, 3, args.batch_size, split=True) if ours else None
    with server(kind, url, artifacts_dir, workdir) as port:
        seq = sequential(port, "/predict", singles, n_single, 1)
        conc = concurrent(port, singles, n_single, args.concurrency)
        batch = sequential(port, "/predict/batch", batches, n_batch, args.batch_size)
        split_batch = split_conc = None
        if split:
            split_batch = sequential(port, "/predict/batch", split, n_batch, args.batch_size)
            split_conc = concurrent(
                port, split, n_batch, 2, path="/predict/batch", per_body=args.batch_size
            )
    table = "predictions" if ours else NAIVE_TABLE
    sent = 3 + n_single + args.concurrency + (n_single // args.concurrency) * args.concurrency
    sent += (3 + n_batch) * args.batch_size
    if split:
        sent += (3 + n_batch + 2 + (n_batch // 2) * 2) * args.batch_size
    stored = count_rows(url, table)
    if stored != sent:
        raise RuntimeError(f"{kind}/{database}: {sent} predictions answered, {stored} logged")
    return {
        "seq": seq,
        "conc": conc,
        "batch": batch,
        "split": split_batch,
        "split_conc": split_conc,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--artifacts", help="existing artifacts dir (default: train a model)")
    parser.add_argument("--pool", help="applications to send (default: generated)")
    parser.add_argument("--train-rows", type=int, default=20_000)
    parser.add_argument("--single-requests", type=int, default=2_000)
    parser.add_argument("--batch-requests", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument(
        "--naive-fraction",
        type=float,
        default=0.25,
        help="share of the request counts sent to the (slow) naive API (default 0.25)",
    )
    parser.add_argument(
        "--postgres-url", default=os.environ.get("CREDIT_DRIFT_TEST_POSTGRES_URL", DEFAULT_PG_URL)
    )
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument(
        "--no-pg-async-commit",
        dest="pg_async_commit",
        action="store_false",
        help="skip the PostgreSQL run with ServingConfig(postgres_synchronous_commit=False)",
    )
    args = parser.parse_args(argv)

    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench_api_") as tmp:
        workdir = Path(tmp)
        artifacts_dir, pool = prepare_model(args, workdir)
        databases = ["sqlite"] + ([] if args.skip_postgres else ["postgresql"])
        kinds = ["ours"] + ([] if args.skip_naive else ["naive"])
        results: dict[tuple[str, str], dict] = {}
        for database in databases:
            extra = ["ours-async"] if database == "postgresql" and args.pg_async_commit else []
            for kind in kinds[:1] + extra + kinds[1:]:
                print(f"{database} / {kind} ...", file=sys.stderr)
                with contextlib.ExitStack() as stack:
                    if database == "sqlite":
                        url = f"sqlite:///{workdir / f'{kind}.db'}"
                    else:
                        url = stack.enter_context(postgres_schema(args.postgres_url))
                    results[database, kind] = run_one(
                        kind, database, url, artifacts_dir, pool, workdir, args
                    )
    print(report(results, args, load_start))


def report(results: dict, args, load_start) -> str:
    import lightgbm

    load_end = os.getloadavg()
    lines = [
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores "
        f"({platform.processor() or platform.machine()}), Python {platform.python_version()}, "
        f"LightGBM {lightgbm.__version__}; load average {load_start[0]:.2f} at start, "
        f"{load_end[0]:.2f} at end. One uvicorn worker per server; client on the same machine.",
        "",
        f"| database | API | single p50 ms | single p99 ms | single seq. pred/s | "
        f"single x{args.concurrency} conn. pred/s | batch of {args.batch_size} | "
        "batch p50 ms | batch p99 ms | batch pred/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (database, kind), r in results.items():
        label = {
            "ours": "credit-drift",
            "ours-async": "credit-drift, synchronous_commit=off",
            "naive": "naive (notebook style)",
        }[kind]
        for name, fmt in (
            ("batch", "list of objects"),
            ("split", "split layout"),
            ("split_conc", "split layout, 2 connections"),
        ):
            b = r[name]
            if b is None:
                continue
            single = (
                f"{r['seq'].p50_ms:.2f} | {r['seq'].p99_ms:.2f} | {r['seq'].per_second:,.0f} | "
                f"{r['conc'].per_second:,.0f}"
                if name == "batch"
                else '" | " | " | "'
            )
            lines.append(
                f"| {database} | {label} | {single} | {fmt} | {b.p50_ms:,.0f} | "
                f"{b.p99_ms:,.0f} | {b.per_second:,.0f} |"
            )
    if any(kind == "naive" for _, kind in results):
        lines += [
            "",
            "| database | ratio credit-drift / naive | single p50 (lower is better) | "
            "single pred/s | batch pred/s |",
            "|---|---|---|---|---|",
        ]
        for database in dict.fromkeys(d for d, _ in results):
            if (database, "naive") not in results:
                continue
            ours, naive = results[database, "ours"], results[database, "naive"]
            lines.append(
                f"| {database} | | {naive['seq'].p50_ms / ours['seq'].p50_ms:.1f}x faster | "
                f"{ours['seq'].per_second / naive['seq'].per_second:.1f}x | "
                f"{ours['batch'].per_second / naive['batch'].per_second:.1f}x |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
