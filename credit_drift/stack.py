"""The production stack on one machine: `./run.sh stack up|down|status` (`python -m
credit_drift.stack ...`).

supervisord runs every process: redis (the celery broker, on a port of its own), the code
location's gRPC server, two or more dagster-celery workers (the steps of every run), the scoring
API with several uvicorn workers, dagster-webserver and dagster-daemon (sensors, automation, the
run queue and backfills). The Dagster instance is on PostgreSQL (deploy/dagster.yaml,
DAGSTER_PG_URL); the prediction log too (DATABASE_URL). Everything the stack writes is under
its state directory, $CREDIT_DRIFT_HOME/stack: the rendered configuration, DAGSTER_HOME, the
logs, redis's files and the supervisor socket.
"""

import argparse
import json
import os
import shutil
import socket
import string
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from credit_drift.errors import CreditDriftError
from credit_drift.settings import Settings, normalize_database_url, redact_url

#: The code location's name, in the stack's workspace and in the web server's GraphQL.
LOCATION_NAME = "credit_drift.definitions"
#: The repository (deploy/ holds the templates; the code location is imported from here).
PROJECT = Path(__file__).resolve().parent.parent
DEPLOY = PROJECT / "deploy"
CELERY_QUEUE = "dagster"  # the queue dagster-celery's executor sends steps to by default
PROGRAMS = ("redis", "code-server", "celery-worker", "api", "webserver", "daemon")


class StackError(CreditDriftError):
    """Something the stack needs is missing or in the way; the message says what, in one line."""


@dataclass(frozen=True)
class Ports:
    webserver: int = 3000
    api: int = 8000
    redis: int = 6380
    code_server: int = 4266


@dataclass(frozen=True)
class StackLayout:
    """Where the stack keeps everything (all absolute)."""

    state: Path

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def dagster_home(self) -> Path:
        return self.state / "dagster"

    @property
    def conf(self) -> Path:
        return self.state / "supervisord.conf"

    @property
    def socket(self) -> Path:
        return self.state / "supervisor.sock"

    @property
    def pidfile(self) -> Path:
        return self.state / "supervisord.pid"

    @property
    def info(self) -> Path:
        return self.state / "stack.json"


def layout(settings: Settings) -> StackLayout:
    return StackLayout(settings.home / "stack")


def _bin(name: str) -> str:
    """A console script of this environment (the one `stack up` runs in)."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise StackError(
            f"{name} is not installed in {Path(sys.executable).parent.parent}: install the "
            "deploy extra (pip install -e '.[deploy]', or ./run.sh stack up, which does)"
        )
    return str(path)


def check_requirements(settings: Settings, env: dict[str, str]) -> str:
    """What the stack needs, checked before anything starts; returns DAGSTER_PG_URL. Raises
    StackError naming the first thing missing."""
    if not settings.database_url.startswith("postgresql"):
        raise StackError(
            "the stack needs DATABASE_URL set to a PostgreSQL database "
            "(postgresql+psycopg2://user@host:5432/db): several processes write the prediction log"
        )
    dagster_pg = normalize_database_url(env.get("DAGSTER_PG_URL", ""))
    if not dagster_pg.startswith("postgresql"):
        raise StackError(
            "the stack needs DAGSTER_PG_URL set to a PostgreSQL database for Dagster's instance "
            "(postgresql+psycopg2://user@host:5432/db)"
        )
    if shutil.which("redis-server") is None:
        raise StackError(
            "redis-server is not installed (the celery broker): apt-get install redis-server"
        )
    for module, what in (("supervisor", "supervisor"), ("dagster_celery", "dagster-celery")):
        try:
            __import__(module)
        except ImportError:
            raise StackError(
                f"{what} is not installed: pip install -e '.[deploy]' (./run.sh stack up does)"
            ) from None
    model = settings.artifacts_dir / "model.txt"
    if not model.is_file():
        raise StackError(
            f"no model at {model}: run `credit-drift train` first (or set "
            "CREDIT_DRIFT_ARTIFACTS_DIR)"
        )
    return dagster_pg


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS's choice; another process may take it
    before it is bound again, which the callers' start-up checks report)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def render(lay: StackLayout, ports: Ports, *, api_workers: int, celery_workers: int) -> None:
    """Write supervisord.conf, DAGSTER_HOME/dagster.yaml and workspace.yaml into the state
    directory."""
    for d in (lay.state, lay.logs, lay.dagster_home, lay.state / "redis"):
        d.mkdir(parents=True, exist_ok=True)
    template = string.Template((DEPLOY / "supervisord.conf.template").read_text(encoding="utf-8"))
    conf = template.substitute(
        state=lay.state,
        logs=lay.logs,
        project=PROJECT,
        bin=Path(sys.executable).parent,
        redis_server=shutil.which("redis-server"),
        redis_port=ports.redis,
        code_server_port=ports.code_server,
        celery_workers=celery_workers,
        celery_queue=CELERY_QUEUE,
        # dagster_celery.app reads its broker from deploy/celery/dagster_celery_config.py.
        celery_config_dir=DEPLOY / "celery",
        api_host="127.0.0.1",
        api_port=ports.api,
        api_workers=api_workers,
        webserver_host="127.0.0.1",
        webserver_port=ports.webserver,
    )
    lay.conf.write_text(conf, encoding="utf-8")
    shutil.copyfile(DEPLOY / "dagster.yaml", lay.dagster_home / "dagster.yaml")
    (lay.state / "workspace.yaml").write_text(
        "# Written by `credit-drift stack up`: the code server supervisord runs.\n"
        "load_from:\n"
        "  - grpc_server:\n"
        "      host: 127.0.0.1\n"
        f"      port: {ports.code_server}\n"
        f"      location_name: {LOCATION_NAME}\n",
        encoding="utf-8",
    )


def _supervisorctl(
    lay: StackLayout, *args: str, timeout: float = 60
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [_bin("supervisorctl"), "-c", str(lay.conf), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def supervisord_pid(lay: StackLayout) -> int | None:
    """The pid of the stack's running supervisord, or None."""
    try:
        pid = int(lay.pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def program_status(lay: StackLayout) -> dict[str, tuple[str, int | None]]:
    """{process name: (state, pid)} as supervisord reports it."""
    out = _supervisorctl(lay, "status").stdout
    result = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        pid = None
        if "pid" in parts:
            pid = int(parts[parts.index("pid") + 1].rstrip(","))
        result[parts[0]] = (parts[1], pid)
    return result


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return resp.status == 200
    except OSError:
        return False


#: What the web server says of the code location: loaded, loading, or the error it got.
_LOCATION_QUERY = """
query {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError { __typename ... on PythonError { message } }
      }
    }
  }
}
"""
_RELOAD_LOCATION = """
mutation($name: String!) { reloadRepositoryLocation(repositoryLocationName: $name) { __typename } }
"""


#: Launching through the web server's GraphQL API (what the UI's buttons send).
LAUNCH_RUN = """
mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
  }
}"""
LAUNCH_BACKFILL = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}"""


def graphql(web: str, query: str, variables: dict | None = None, *, timeout: float = 60) -> dict:
    """The `data` of one query to the web server at `web`; OSError when it does not answer
    (or answers an HTTP error), StackError naming the GraphQL errors it returns."""
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    req = urllib.request.Request(
        f"{web}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        out = json.loads(resp.read())
    if "errors" in out:
        raise StackError(f"GraphQL errors: {out['errors']}")
    return out["data"]


def _graphql(web: str, query: str, variables: dict | None = None) -> dict | None:
    """`graphql` for polling: None when the web server cannot answer yet."""
    try:
        return graphql(web, query, variables, timeout=10)
    except (OSError, ValueError, StackError):
        return None


def location_state(web: str) -> tuple[str, str]:
    """("loaded" | "loading" | "error" | "unknown", detail) for the stack's code location as
    the web server sees it. The web server answers /server_info before it has reached the code
    server; a run launched then fails with "job not found"."""
    data = _graphql(web, _LOCATION_QUERY)
    workspace = (data or {}).get("workspaceOrError") or {}
    entries = [e for e in workspace.get("locationEntries") or [] if e["name"] == LOCATION_NAME]
    if not entries:
        return "unknown", "the web server lists no location " + LOCATION_NAME
    entry = entries[0]
    loaded = entry.get("locationOrLoadError") or {}
    if entry["loadStatus"] != "LOADED":
        return "loading", entry["loadStatus"]
    if loaded.get("__typename") == "RepositoryLocation":
        return "loaded", ""
    return "error", (loaded.get("message") or str(loaded)).strip().splitlines()[-1:][0]


def _listing(lay: StackLayout, info: dict) -> list[str]:
    p = info["ports"]
    return [
        f"dagster-webserver  http://127.0.0.1:{p['webserver']}  log {lay.logs}/webserver.log",
        f"scoring API        http://127.0.0.1:{p['api']} ({info['api_workers']} workers)  "
        f"log {lay.logs}/api.log",
        f"dagster-daemon     sensors, automation, run queue, backfills  log {lay.logs}/daemon.log",
        f"code server        grpc 127.0.0.1:{p['code_server']}  log {lay.logs}/code-server.log",
        f"celery workers     {info['celery_workers']} on queue {CELERY_QUEUE}  "
        f"logs {lay.logs}/celery-worker-N.log",
        f"redis (broker)     redis://127.0.0.1:{p['redis']}  log {lay.logs}/redis.log",
        f"dagster instance   DAGSTER_HOME={lay.dagster_home} on {redact_url(info['dagster_pg'])}",
        f"prediction log     {redact_url(info['database'])}",
        f"supervisord        {lay.conf}  log {lay.logs}/supervisord.log",
    ]


def up(
    settings: Settings,
    ports: Ports,
    *,
    api_workers: int = 2,
    celery_workers: int = 2,
    wait_seconds: float = 240,
    allow_one_celery_worker: bool = False,
) -> list[str]:
    """Start the stack and wait until every program runs and the web server and the API
    answer. Returns the lines that say where everything is.

    `allow_one_celery_worker`: for benchmarks only (benchmarks/bench_capacity.py measures a
    backfill at one worker against two); a deployment keeps two so one busy step never stalls
    every run. The command line does not offer it."""
    min_workers = 1 if allow_one_celery_worker else 2
    if api_workers < 2 or celery_workers < min_workers:
        raise StackError("the stack runs at least 2 API workers and 2 celery workers")
    env = dict(os.environ)
    dagster_pg = check_requirements(settings, env)
    lay = layout(settings)
    if supervisord_pid(lay) is not None:
        raise StackError(f"the stack is already running (supervisord pid {supervisord_pid(lay)})")
    if len(str(lay.socket)) > 100:  # a unix socket path must fit in 108 bytes
        raise StackError(
            f"the state directory {lay.state} is too deep for supervisord's socket: set "
            "CREDIT_DRIFT_HOME to a shorter path"
        )
    busy = [f"{name} {port}" for name, port in asdict(ports).items() if not _port_free(port)]
    if busy:
        raise StackError(f"port(s) in use: {', '.join(busy)} (choose others with --*-port)")
    broker = f"redis://127.0.0.1:{ports.redis}/0"
    render(lay, ports, api_workers=api_workers, celery_workers=celery_workers)
    env.update(settings.environment())
    env.update(
        DAGSTER_HOME=str(lay.dagster_home),
        DAGSTER_PG_URL=dagster_pg,
        CREDIT_DRIFT_EXECUTOR="celery",
        CREDIT_DRIFT_CELERY_BROKER=broker,
        CREDIT_DRIFT_DAGSTER_URL=f"http://127.0.0.1:{ports.webserver}",
    )
    # The stack's programs log on their own; the run.sh hint is for interactive commands.
    env.pop("CREDIT_DRIFT_RUN_SH", None)
    info = {
        "ports": asdict(ports),
        "api_workers": api_workers,
        "celery_workers": celery_workers,
        "dagster_pg": dagster_pg,
        "database": settings.database_url,
    }
    lay.info.write_text(json.dumps(info, indent=2), encoding="utf-8")
    # supervisord daemonizes itself once its socket is up; its pid file says where it is.
    subprocess.run(
        [_bin("supervisord"), "-c", str(lay.conf)], env=env, check=True, cwd=PROJECT, timeout=60
    )
    deadline = time.monotonic() + wait_seconds
    expected = {"redis", "code-server", "api", "webserver", "daemon"} | {
        f"celery-worker-{i}" for i in range(celery_workers)
    }
    web = f"http://127.0.0.1:{ports.webserver}"
    reloaded_at = 0.0
    while True:
        states = {name.split(":")[-1]: st for name, (st, _) in program_status(lay).items()}
        running = {n for n, st in states.items() if st == "RUNNING"}
        failed = {n for n, st in states.items() if st == "FATAL"}  # gave up retrying
        web_ok = _http_ok(f"{web}/server_info")
        api_ok = _http_ok(f"http://127.0.0.1:{ports.api}/health")
        location, detail = location_state(web) if web_ok else ("unknown", "")
        if location == "error" and time.monotonic() - reloaded_at > 5:
            # The web server reached for the code server before it listened: ask it again.
            _graphql(web, _RELOAD_LOCATION, {"name": LOCATION_NAME})
            reloaded_at = time.monotonic()
        if expected <= running and web_ok and api_ok and location == "loaded":
            break
        if failed or time.monotonic() > deadline:
            missing = sorted(expected - running)
            missing += [] if web_ok else ["webserver (no answer on /server_info)"]
            missing += [] if api_ok else ["api (no answer on /health)"]
            if web_ok and location != "loaded":
                missing += [f"code location {LOCATION_NAME} ({location}: {detail})"]
            what = ", ".join(sorted(failed)) or "not up in time: " + ", ".join(missing)
            down(settings)
            raise StackError(f"the stack did not start ({what}); see the logs in {lay.logs}")
        time.sleep(1)
    return _listing(lay, info)


def down(settings: Settings, *, wait_seconds: float = 120) -> bool:
    """Stop every program and supervisord; True when a stack was running."""
    lay = layout(settings)
    pid = supervisord_pid(lay)
    if pid is None:
        return False
    # shutdown stops the programs (each with its whole process group) in reverse priority.
    _supervisorctl(lay, "shutdown", timeout=wait_seconds)
    deadline = time.monotonic() + wait_seconds
    while supervisord_pid(lay) is not None:
        if time.monotonic() > deadline:
            raise StackError(f"supervisord (pid {pid}) did not exit in {wait_seconds:.0f} s")
        time.sleep(0.5)
    return True


def status(settings: Settings) -> tuple[bool, list[str]]:
    lay = layout(settings)
    if supervisord_pid(lay) is None:
        return False, [f"the stack is not running (state directory {lay.state})"]
    info = json.loads(lay.info.read_text(encoding="utf-8"))
    lines = _supervisorctl(lay, "status").stdout.rstrip().splitlines()
    return True, [*lines, "", *_listing(lay, info)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="stack",
        description="The production stack on this machine under supervisord (needs DATABASE_URL "
        "and DAGSTER_PG_URL on PostgreSQL, redis-server, the deploy extra).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="start every component and print where it listens")
    defaults = Ports()
    p_up.add_argument("--webserver-port", type=int, default=defaults.webserver)
    p_up.add_argument("--api-port", type=int, default=defaults.api)
    p_up.add_argument("--redis-port", type=int, default=defaults.redis)
    p_up.add_argument("--code-server-port", type=int, default=defaults.code_server)
    p_up.add_argument("--api-workers", type=int, default=2)
    p_up.add_argument("--celery-workers", type=int, default=2)
    sub.add_parser("down", help="stop every component")
    sub.add_parser("status", help="each component's state, where it listens and logs")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        if args.command == "up":
            ports = Ports(
                args.webserver_port, args.api_port, args.redis_port, args.code_server_port
            )
            for line in up(
                settings, ports, api_workers=args.api_workers, celery_workers=args.celery_workers
            ):
                print(line)
            print("stop it with: ./run.sh stack down")
            return 0
        if args.command == "down":
            print("stopped" if down(settings) else "the stack was not running")
            return 0
        running, lines = status(settings)
        print("\n".join(lines))
        return 0 if running else 3
    except CreditDriftError as exc:
        print(f"stack: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
