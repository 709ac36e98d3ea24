"""The production stack (`./run.sh stack up`) with its real processes: supervisord, redis,
the code server, two dagster-celery workers, the scoring API, dagster-webserver and
dagster-daemon, on a database of their own on the CI PostgreSQL (and Dagster's storage in another).

Three days of traffic are logged (clean, clean, sudden drift); the reference profile and a
backfill of the three days are launched through the web server's GraphQL API. Checked: the runs
complete, every step ran in a celery worker process (the pid Dagster records on each step event
is a worker's, never the run's own process), the daemon's alert sensor launches the alert run
of the ALERT day exactly once and the outbox holds its one alert row, and `stack down` leaves no
process behind.

The refusals (missing PostgreSQL URLs, redis-server, supervisor) are fast tests.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from credit_drift.stack import free_port
from credit_drift_tests.conftest import postgres_base_url, replay_batches

REPO = Path(__file__).resolve().parents[1]
LOCATION = "credit_drift.definitions"
DAYS = ["2026-11-01", "2026-11-02", "2026-11-03"]
ALERT_DAY = "2026-11-03"
BATCHES = [{"kind": "clean"}, {"kind": "clean"}, {"kind": "sudden", "intensity": 0.7}]
BATCH_SIZE = 600  # with the module's model: clean -> OK, sudden 0.7 -> ALERT (test_alerts.py)
DAILY_ASSETS = [
    "production_window",
    "feature_drift",
    "evidently_report",
    "drift_report",
    "operational_metrics",
]
UP_TIMEOUT_S = 300
RUN_TIMEOUT_S = 600


def _clean_env(**values: str) -> dict[str, str]:
    """This process's environment without any credit-drift or Dagster setting, plus values."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CREDIT_DRIFT_", "DAGSTER_")) and k != "DATABASE_URL"
    }
    env.update(values)
    return env


def _stack(env: dict[str, str], cwd: Path, *args: str, timeout: float = 120):
    return subprocess.run(
        [sys.executable, "-m", "credit_drift.stack", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# -- refusals (fast) ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "the stack needs DATABASE_URL set to a PostgreSQL database"),
        (
            {"DATABASE_URL": "postgresql+psycopg2://u@127.0.0.1:1/x"},
            "the stack needs DAGSTER_PG_URL set to a PostgreSQL database",
        ),
    ],
)
def test_stack_up_refuses_without_postgresql_urls(tmp_path, values, message):
    env = _clean_env(CREDIT_DRIFT_HOME=str(tmp_path / "state"), **values)
    out = _stack(env, tmp_path, "up")
    assert out.returncode == 2, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("stack: ") and message in lines[0], lines
    assert not (tmp_path / "state" / "stack" / "supervisord.conf").exists()


def test_stack_up_refuses_without_redis_server(tmp_path):
    # A PATH on which everything but redis-server is found.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    env = _clean_env(
        CREDIT_DRIFT_HOME=str(tmp_path / "state"),
        DATABASE_URL="postgresql+psycopg2://u@127.0.0.1:1/x",
        DAGSTER_PG_URL="postgresql+psycopg2://u@127.0.0.1:1/y",
        PATH=str(bin_dir),
    )
    out = _stack(env, tmp_path, "up")
    assert out.returncode == 2, out
    assert len(out.stderr.strip().splitlines()) == 1
    assert "redis-server is not installed" in out.stderr


def test_stack_up_refuses_without_supervisor(tmp_path, monkeypatch):
    from credit_drift import stack
    from credit_drift.settings import Settings

    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is checked before supervisor")
    # An import of supervisor that fails, as in an environment without the deploy extra.
    monkeypatch.setitem(sys.modules, "supervisor", None)
    settings = Settings.from_env(
        {"CREDIT_DRIFT_HOME": str(tmp_path), "DATABASE_URL": "postgresql+psycopg2://u@h/x"}
    )
    with pytest.raises(stack.StackError, match="supervisor is not installed"):
        stack.check_requirements(settings, {"DAGSTER_PG_URL": "postgresql+psycopg2://u@h/y"})


def test_status_of_a_stack_that_is_not_running(tmp_path):
    out = _stack(_clean_env(CREDIT_DRIFT_HOME=str(tmp_path / "state")), tmp_path, "status")
    assert out.returncode == 3 and "the stack is not running" in out.stdout
    out = _stack(_clean_env(CREDIT_DRIFT_HOME=str(tmp_path / "state")), tmp_path, "down")
    assert out.returncode == 0 and "the stack was not running" in out.stdout


@pytest.fixture
def fake_webserver():
    """A real HTTP server answering the web server's GraphQL with a code location that failed
    to load (the code server was not listening yet) until it is asked to reload it."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    state = {"reloads": 0, "status": "LOADED", "loaded": False}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if "reloadRepositoryLocation" in body["query"]:
                assert body["variables"] == {"name": LOCATION}
                state["reloads"] += 1
                state["loaded"] = True
                data = {"reloadRepositoryLocation": {"__typename": "WorkspaceLocationEntry"}}
            else:
                error = {"__typename": "PythonError", "message": "failed to connect\nUNAVAILABLE"}
                entry = {
                    "name": LOCATION,
                    "loadStatus": state["status"],
                    "locationOrLoadError": (
                        {"__typename": "RepositoryLocation"} if state["loaded"] else error
                    ),
                }
                data = {"workspaceOrError": {"__typename": "Workspace", "locationEntries": [entry]}}
            out = json.dumps({"data": data}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()


def test_the_code_location_is_loaded_only_when_the_web_server_says_so(fake_webserver):
    """`stack up` waits on this: the web server answers /server_info before it has reached the
    code server, and a run launched then fails with PipelineNotFoundError."""
    from credit_drift import stack

    web, state = fake_webserver
    state["status"] = "LOADING"
    assert stack.location_state(web) == ("loading", "LOADING")
    state["status"] = "LOADED"
    assert stack.location_state(web) == ("error", "UNAVAILABLE")
    assert stack._graphql(web, stack._RELOAD_LOCATION, {"name": stack.LOCATION_NAME})
    assert state["reloads"] == 1
    assert stack.location_state(web) == ("loaded", "")
    # Nobody listening: unknown, not an exception (a bounded wait).
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    assert stack.location_state(closed)[0] == "unknown"


def test_rendered_configuration_has_every_program(tmp_path):
    """The supervisord template renders with absolute paths and the ports asked for, and
    supervisord itself accepts it (its own parser)."""
    pytest.importorskip("supervisor")
    from supervisor.options import ServerOptions

    from credit_drift import stack

    lay = stack.StackLayout(tmp_path / "stack")
    ports = stack.Ports(webserver=13000, api=18000, redis=16380, code_server=14266)
    stack.render(lay, ports, api_workers=3, celery_workers=2)
    options = ServerOptions()
    options.configfile = str(lay.conf)
    options.process_config(do_usage=False)
    groups = {g.name: g for g in options.process_group_configs}
    assert set(groups) == {"redis", "code-server", "celery-worker", "api", "webserver", "daemon"}
    workers = [p.name for p in groups["celery-worker"].process_configs]
    assert workers == ["celery-worker-0", "celery-worker-1"]
    commands = {name: g.process_configs[0].command for name, g in groups.items()}
    assert "--port 16380" in commands["redis"] and "--workers 3" in commands["api"]
    assert "-p 13000" in commands["webserver"] and "-p 14266" in commands["code-server"]
    for g in groups.values():
        for p in g.process_configs:
            assert p.stopasgroup and p.killasgroup, p.name
            assert Path(p.command.split()[0]).is_absolute(), p.command
            assert Path(p.command.split()[0]).exists(), p.command
    worker_env = groups["celery-worker"].process_configs[0].environment
    assert (Path(worker_env["PYTHONPATH"]) / "dagster_celery_config.py").is_file()
    assert f"port: {ports.code_server}" in (lay.state / "workspace.yaml").read_text()


# -- the stack, for real (slow) ------------------------------------------------------------------
def _proc_table() -> dict[int, tuple[int, str, str]]:
    """{pid: (parent pid, state, command line)} of every process, from /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        table[int(entry.name)] = (int(fields[1]), fields[0], cmdline)
    return table


def _descendants(root: int) -> set[int]:
    table = _proc_table()
    found, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, (ppid, _, _) in table.items() if ppid == parent]
        found.update(children)
        frontier.extend(children)
    return found


def _alive(pids: set[int]) -> set[int]:
    """The pids still running (zombies, already exited, do not count)."""
    table = _proc_table()
    return {pid for pid in pids if pid in table and table[pid][1] != "Z"}


@pytest.fixture
def fresh_databases(postgres_available):
    """Two new databases on the CI PostgreSQL: the prediction log and Dagster's storage."""
    admin = sa.create_engine(postgres_base_url(), isolation_level="AUTOCOMMIT")
    names = [f"cd_stack_{kind}_{uuid.uuid4().hex[:8]}" for kind in ("log", "dagster")]
    with admin.connect() as conn:
        for name in names:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    base = sa.engine.make_url(postgres_base_url())
    urls = [base.set(database=name).render_as_string(hide_password=False) for name in names]
    yield urls
    with admin.connect() as conn:
        for name in names:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


SENSOR_TICKS = """
query($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    __typename
    ... on Sensor { sensorState { status ticks(limit: 20) { timestamp status } } }
  }
}"""


def _wait(what: str, predicate, timeout: float, logs: Path):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            tails = []
            for log in sorted(logs.glob("*.log")):
                tails.append(f"--- {log.name}\n" + "\n".join(log.read_text().splitlines()[-25:]))
            pytest.fail(f"{what}: not within {timeout:.0f} s\n" + "\n".join(tails))
        time.sleep(2)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(1500)
def test_stack_runs_a_backfill_on_celery_workers_and_the_daemon_alerts_once(
    tmp_path, model_dir, fresh_databases, monkeypatch
):
    if shutil.which("redis-server") is None and os.environ.get("CI", "") not in ("1", "true"):
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    import dagster as dg
    from dagster._core.execution.backfill import BulkActionStatus
    from dagster._core.instance.ref import InstanceRef

    from credit_drift import stack
    from credit_drift.storage.alert_outbox import read_alerts
    from credit_drift.storage.db import make_engine
    from credit_drift.storage.drift_results import read_drift_reports

    log_url, dagster_url = fresh_databases
    root, paths, _ = model_dir
    replay_batches(log_url, model_dir, BATCHES, batch_size=BATCH_SIZE)
    home = tmp_path / "state"
    env = _clean_env(
        CREDIT_DRIFT_HOME=str(home),
        DATABASE_URL=log_url,
        DAGSTER_PG_URL=dagster_url,
        CREDIT_DRIFT_ARTIFACTS_DIR=str(root / "artifacts"),
        CREDIT_DRIFT_TRAINING_DATA=str(paths.train),
        CREDIT_DRIFT_DATA_DIR=str(root / "data"),
    )
    ports = {name: free_port() for name in ("webserver", "api", "redis", "code-server")}
    lay = stack.StackLayout(home / "stack")
    started: set[int] = set()
    try:
        out = _stack(
            env,
            tmp_path,
            "up",
            *[arg for name, port in ports.items() for arg in (f"--{name}-port", str(port))],
            timeout=UP_TIMEOUT_S + 60,
        )
        assert out.returncode == 0, out.stdout + out.stderr
        web = f"http://127.0.0.1:{ports['webserver']}"
        # Where each component listens and logs.
        assert f"dagster-webserver  {web}" in out.stdout
        assert f"http://127.0.0.1:{ports['api']} (2 workers)" in out.stdout
        assert f"redis://127.0.0.1:{ports['redis']}" in out.stdout
        for log in ("webserver", "api", "daemon", "code-server", "redis"):
            assert str(lay.logs / f"{log}.log") in out.stdout
        supervisord = stack.supervisord_pid(lay)
        assert supervisord is not None
        status = stack.program_status(lay)
        assert {st for st, _ in status.values()} == {"RUNNING"}, status
        workers = {pid for name, (_, pid) in status.items() if name.startswith("celery-worker:")}
        assert len(workers) == 2, status
        # The broker is the stack's own redis, not the machine's.
        assert httpx.get(f"http://127.0.0.1:{ports['api']}/health", timeout=10).status_code == 200
        status_out = _stack(env, tmp_path, "status")
        assert status_out.returncode == 0 and "celery-worker:celery-worker-1" in status_out.stdout

        # The test reads the same Dagster instance (PostgreSQL) the stack writes.
        monkeypatch.setenv("DAGSTER_PG_URL", dagster_url)
        instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(lay.dagster_home)))
        repo = {"repositoryLocationName": LOCATION, "repositoryName": "__repository__"}

        launched = stack.graphql(
            web,
            stack.LAUNCH_RUN,
            {"params": {"selector": {**repo, "jobName": "reference_profile_job"}}},
        )["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        reference_run = launched["run"]["runId"]

        def finished(run_id):
            run = instance.get_run_by_id(run_id)
            return run if run and run.is_finished else None

        run = _wait("the reference profile run", lambda: finished(reference_run), 600, lay.logs)
        assert run.status == dg.DagsterRunStatus.SUCCESS, run.status

        backfill = stack.graphql(
            web,
            stack.LAUNCH_BACKFILL,
            {
                "params": {
                    "assetSelection": [{"path": [name]} for name in DAILY_ASSETS],
                    "partitionNames": DAYS,
                }
            },
        )["launchPartitionBackfill"]
        assert backfill["__typename"] == "LaunchBackfillSuccess", backfill
        backfill_id = backfill["backfillId"]

        def backfill_done():
            b = instance.get_backfill(backfill_id)
            in_progress = (BulkActionStatus.REQUESTED, BulkActionStatus.CANCELING)
            return b if b.status not in in_progress + (BulkActionStatus.FAILING,) else None

        done = _wait("the backfill", backfill_done, RUN_TIMEOUT_S, lay.logs)
        runs = instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
        assert runs and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs), [
            (r.run_id, r.status) for r in runs
        ]
        assert done.status in (BulkActionStatus.COMPLETED, BulkActionStatus.COMPLETED_SUCCESS)
        # Every day materialized, each asset once per day.
        for asset in DAILY_ASSETS:
            keys = instance.get_materialized_partitions(dg.AssetKey(asset))
            assert set(DAYS) <= keys, (asset, keys)

        # Where the steps ran: Dagster records the pid of the process that emitted each event.
        step_pids, run_pids = set(), set()
        for r in [run, *runs]:
            for record in instance.all_logs(r.run_id, of_type=dg.DagsterEventType.STEP_START):
                step_pids.add(record.dagster_event.pid)
            for record in instance.all_logs(r.run_id, of_type=dg.DagsterEventType.RUN_START):
                run_pids.add(record.dagster_event.pid)
        assert step_pids and run_pids
        assert step_pids <= workers, (step_pids, workers)
        assert not run_pids & workers, (run_pids, workers)
        assert os.getpid() not in step_pids | run_pids

        engine = make_engine(log_url)
        reports = read_drift_reports(engine)
        statuses = {
            str(day)[:10]: status
            for day, status in zip(reports["report_date"], reports["status"], strict=True)
            if str(day)[:10] in DAYS
        }
        assert statuses == {"2026-11-01": "OK", "2026-11-02": "OK", ALERT_DAY: "ALERT"}

        # The daemon's alert sensor: one drift_alert_job run for the ALERT day, then another
        # tick that launches nothing more.
        def alert_runs():
            return instance.get_runs(
                dg.RunsFilter(
                    job_name="drift_alert_job", tags={"credit_drift/report_date": ALERT_DAY}
                )
            )

        alert_run = _wait(
            "the alert run", lambda: [r for r in alert_runs() if r.is_finished], 300, lay.logs
        )[0]
        assert alert_run.status == dg.DagsterRunStatus.SUCCESS
        assert alert_run.tags.get("dagster/sensor_name") == "drift_alert_sensor"
        launched_at = instance.get_run_record_by_id(alert_run.run_id).create_timestamp.timestamp()
        selector = {**repo, "sensorName": "drift_alert_sensor"}

        def ticks_after_launch():
            sensor = stack.graphql(web, SENSOR_TICKS, {"selector": selector})["sensorOrError"]
            ticks = sensor["sensorState"]["ticks"]
            return [t for t in ticks if t["timestamp"] > launched_at + 1]

        _wait("a sensor tick after the alert run", ticks_after_launch, 180, lay.logs)
        assert len(alert_runs()) == 1
        alert_days = [str(day)[:10] for day in read_alerts(engine)["report_date"]]
        assert [day for day in alert_days if day in DAYS] == [ALERT_DAY]
        engine.dispose()

        started = _descendants(supervisord)
        assert len(started) >= 8, started  # supervisord, redis, code server, 2 workers, API...
    finally:
        if not started and (pid := stack.supervisord_pid(lay)) is not None:
            started = _descendants(pid)
        down = _stack(env, tmp_path, "down", timeout=180)
    assert down.returncode == 0 and "stopped" in down.stdout, down
    assert stack.supervisord_pid(lay) is None
    assert not _alive(started), {p: _proc_table().get(p) for p in _alive(started)}
    state = str(lay.state)
    leftovers = [cmd for pid, (_, st, cmd) in _proc_table().items() if state in cmd and st != "Z"]
    assert not leftovers, leftovers
    for port in ports.values():
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still answers"


def test_jobs_run_on_celery_only_when_the_setting_says_so(tmp_path):
    """The executor is chosen when the definitions load (each process of a deployment loads them
    with the stack's environment): fresh interpreters, as the code server and workers are."""
    probe = (
        "from credit_drift.definitions import defs\n"
        "jobs = ['daily_drift_job', 'reference_profile_job', 'drift_alert_job']\n"
        "names = [defs.resolve_job_def(j).executor_def.name for j in jobs]\n"
        "names.append(defs.resolve_implicit_global_asset_job_def().executor_def.name)\n"
        "print(' '.join(names))\n"
    )

    def executors(**values):
        env = _clean_env(CREDIT_DRIFT_HOME=str(tmp_path), **values)
        return subprocess.run(
            [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120
        )

    out = executors()
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["in_process"] * 4
    broker = "redis://127.0.0.1:16380/0"
    out = executors(CREDIT_DRIFT_EXECUTOR="celery", CREDIT_DRIFT_CELERY_BROKER=broker)
    assert out.returncode == 0, out.stderr
    # Asset backfills run the implicit asset job: it uses the definitions' executor, celery too.
    assert out.stdout.split() == ["celery"] * 4
    out = executors(CREDIT_DRIFT_EXECUTOR="celery")
    assert out.returncode != 0
    assert "CREDIT_DRIFT_EXECUTOR=celery needs CREDIT_DRIFT_CELERY_BROKER" in out.stderr
