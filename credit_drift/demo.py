"""`credit-drift demo`: the whole loop on the embedded default, in a fresh state directory.

generate data -> train -> start the scoring API (a real uvicorn process) -> send the `demo`
scenario through HTTP, one batch per day, with each application's outcome -> materialize the
reference profile and the daily partitions on the state directory's Dagster instance ->
evaluate the alert sensor -> print the timeline, the label-free estimate, the realized
performance and the alerts, and say where everything is.

The `demo` scenario shows both failure modes in one timeline: the notebook's 8 days first
(clean, gradual, sudden: covariate drift, which the drift report sees and the model survives),
then 3 clean days in a downturn (concept drift: the same applicant defaults more often, which
neither the drift report nor the label-free estimate can see; only the outcomes do).

Batch size: the notebook sent 50 applications per batch. The demo sends 1,000 by default: with
50 rows a KS test can only see shifts larger than about 0.19 in D (its 5% critical value), and
with 419 features and a multiple-testing correction the gradual days (intensity 0.1-0.3) are
then indistinguishable from clean ones. At 1,000 rows the clean days are OK, the drifted share
rises with the gradual intensity, and both sudden days are ALERT (see README).
"""

import datetime as dt
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from credit_drift.errors import CreditDriftError
from credit_drift.stack import free_port

MARKER = ".credit-drift-demo"
DEFAULT_BATCH_SIZE = 1000
DEFAULT_TRAIN_ROWS = 20_000
DEFAULT_START = "2026-11-01"
#: The traffic the demo sends by default (simulator/scenarios/demo.json).
DEFAULT_SCENARIO = "demo"
API_START_TIMEOUT_S = 60.0


class DemoError(CreditDriftError):
    """The demo could not run; the message says which step failed."""


@dataclass(frozen=True)
class DemoPaths:
    home: Path

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def artifacts(self) -> Path:
        return self.home / "artifacts"

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.home / 'credit_drift.db'}"

    def environment(self) -> dict[str, str]:
        return {
            "CREDIT_DRIFT_HOME": str(self.home),
            "CREDIT_DRIFT_DATA_DIR": str(self.data),
            "CREDIT_DRIFT_ARTIFACTS_DIR": str(self.artifacts),
            "CREDIT_DRIFT_TRAINING_DATA": str(self.data / "train.parquet"),
            "DATABASE_URL": self.database_url,
            "DAGSTER_HOME": str(self.home / "dagster"),
        }


def fresh_state(home: Path) -> DemoPaths:
    """Empty `home` for a new demo run. Refuses to delete a folder that is not a demo's own."""
    home = home.expanduser().resolve()
    if home.exists() and any(home.iterdir()):
        if not (home / MARKER).exists():
            raise DemoError(
                f"{home} exists and is not a credit-drift demo folder: choose another --home "
                "(the demo deletes its folder at each run)"
            )
        from credit_drift.storage.db import dispose_engines

        # A previous run_demo in this process left pooled SQLite connections to the database
        # about to be deleted: they would go on reading and writing the unlinked file.
        dispose_engines()
        shutil.rmtree(home)
    home.mkdir(parents=True, exist_ok=True)
    (home / MARKER).write_text("created by credit-drift demo; deleted by the next demo run\n")
    return DemoPaths(home)


def _wait_healthy(url: str, process: subprocess.Popen, timeout_s: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DemoError(f"the scoring API exited with code {process.returncode} at start-up")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise DemoError(f"the scoring API did not answer {url}/health within {timeout_s:.0f} s")


def start_api(paths: DemoPaths, port: int | None = None) -> tuple[subprocess.Popen, str]:
    """A real `credit-drift serve` process with replay enabled (the simulator places each batch
    on its own day through the API's event_time)."""
    port = port or free_port()
    env = {**os.environ, **paths.environment(), "CREDIT_DRIFT_ALLOW_REPLAY": "1"}
    log = open(paths.home / "api.log", "ab")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [sys.executable, "-m", "credit_drift.cli", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process, API_START_TIMEOUT_S)
    except BaseException:
        process.terminate()
        raise
    return process, url


def run_demo(
    home: Path,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    train_rows: int = DEFAULT_TRAIN_ROWS,
    start_date: str = DEFAULT_START,
    n_estimators: int | None = None,
    seed: int = 42,
    progress: bool = True,
    verbose: bool = False,
    scenario: str = DEFAULT_SCENARIO,
) -> DemoPaths:
    """Run the demo end to end; returns where its state lives. Prints one line per step and
    per day (`verbose`: Dagster's event log too). `scenario`: the traffic sent, a shipped
    scenario's name or a JSON file (default `demo`: the notebook's 8 days of covariate drift,
    then 3 days of a downturn that only the outcomes see; `notebook`: the 8 days alone)."""
    paths = fresh_state(home)
    os.environ.update(paths.environment())
    from credit_drift import orchestration
    from credit_drift.data.generator import write_datasets
    from credit_drift.data.loader import load_training_data
    from credit_drift.model.artifacts import save_artifacts
    from credit_drift.model.train import TrainConfig, train_model
    from credit_drift.settings import Settings
    from credit_drift.simulator.sender import simulate
    from credit_drift.storage.db import upgrade

    settings = Settings.from_env()
    step = _Steps()
    step("generating data", f"{train_rows} training rows + unseen pool")
    data_paths = write_datasets(paths.data, n_rows=train_rows, pool_rows=train_rows, seed=seed)
    step("training the LightGBM scorer")
    config = TrainConfig(n_jobs=settings.train_threads)
    if n_estimators is not None:
        config = TrainConfig(n_estimators=n_estimators, n_jobs=settings.train_threads)
    data = load_training_data(data_paths.train, "TARGET", "SK_ID_CURR")
    from tqdm import tqdm

    with tqdm(
        total=config.n_estimators, unit="trees", disable=not progress, dynamic_ncols=True
    ) as bar:
        artifacts = train_model(
            data, seed=seed, config=config, progress=lambda done, _: bar.update(done - bar.n)
        )
    save_artifacts(artifacts, paths.artifacts)
    print(
        f"    model {artifacts.version}: held-out AUC {artifacts.metrics['auc']:.3f}, "
        f"threshold {artifacts.threshold:.3f}"
    )
    upgrade(settings.database_url)
    step("starting the scoring API")
    process, url = start_api(paths)
    try:
        print(f"    {url} (log: {paths.home / 'api.log'})")
        from credit_drift.simulator.scenario import load_scenario

        traffic = load_scenario(scenario)
        step(
            f"sending the {traffic.name} scenario's {len(traffic)} batches through the API",
            f"{batch_size} per batch, 1/day",
        )
        summary = simulate(
            url,
            pool=data_paths.pool,
            scenario=traffic,
            batch_size=batch_size,
            seed=seed,
            start_date=start_date,
            batch_interval="1d",
            request_size=min(100, batch_size),
            progress=progress,
            # Each application's default, drawn from the synthetic data's risk model and
            # observed 14 days after scoring, posted to /outcomes: realized_performance.
            outcomes=True,
        )
    finally:
        process.terminate()
        process.wait(timeout=15)
    print(summary.table())
    first = dt.date.fromisoformat(start_date)
    days = [(first + dt.timedelta(days=i)).isoformat() for i in range(len(summary.batches))]
    step("materializing the drift assets", f"reference profile + {len(days)} daily partitions")
    instance = orchestration.instance_for(settings)
    ref = orchestration.materialize_reference(instance, raise_on_error=False, verbose=verbose)
    if not ref.success:
        raise DemoError(f"building the reference profile failed: {ref.error}")

    def show(outcome: orchestration.RunOutcome) -> None:
        if not outcome.success:
            raise DemoError(f"materializing {outcome.partition} failed: {outcome.error}")
        print(f"    {outcome.partition}: {outcome.status} ({outcome.seconds:.0f} s)", flush=True)

    orchestration.materialize_days(
        instance, days, raise_on_error=False, verbose=verbose, on_day=show
    )
    step("evaluating the alert sensor")
    orchestration.run_alert_sensor(instance, verbose=verbose)
    step("timeline")
    from credit_drift.console import how_to_run, print_status, shown_path

    print_status(settings)
    home = shown_path(paths.home)
    print(
        f"\nreports and plots: {shown_path(settings.reports_dir)}/<day>/ "
        "(evidently_report.html, *.png)\n"
        f"Dagster UI on this state:  {how_to_run('ui', home)}\n"
        "  then open http://127.0.0.1:3000: Assets -> drift_report -> Partitions\n"
        f"the timeline again:        {how_to_run('status', home)}\n"
        f"total {step.elapsed():.0f} s"
    )
    return paths


class _Steps:
    def __init__(self) -> None:
        self.start = time.monotonic()
        self.n = 0

    def __call__(self, title: str, detail: str = "") -> None:
        self.n += 1
        extra = f" ({detail})" if detail else ""
        print(f"[{self.n}] {title}{extra}  [{self.elapsed():.0f} s]", flush=True)

    def elapsed(self) -> float:
        return time.monotonic() - self.start
