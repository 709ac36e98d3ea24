"""The README's command sequences, run as a new user runs them: the commands are read from the
README itself ("Running the pipeline", "Your own training data"), run as separate processes of
this environment's `credit-drift`, with smaller sizes given as extra options. Every command must
succeed without a traceback or a warning, and the timeline must be the documented one. Then
`credit-drift ui` on the same state, with nothing of the environment on the PATH, and the demo
as a subprocess (its output short, each alert once, no warning).

Sizes: 5,000 training rows, 30 trees, 400 applications a day give the full-size timeline's
statuses (measured for the demo in test_demo_ui.py, same seed and same data).
"""

import datetime as dt
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from credit_drift.stack import free_port

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
CLI = str(Path(sys.executable).parent / "credit-drift")
#: Extra options per subcommand (argparse: a later option wins over the README's).
SMALL = {
    "generate-data": ["--rows", "5000", "--pool-rows", "5000"],
    "train": ["--trees", "30", "--no-progress"],
    "simulate": ["--batch-size", "400", "--no-progress"],
}
DAYS = [(dt.date(2026, 11, 1) + dt.timedelta(days=i)).isoformat() for i in range(8)]
EXPECTED_STATUS = ["OK", "OK", "OK", "OK", "WARNING", "WARNING", "ALERT", "ALERT"]
#: What a warning or a failure looks like in the output (a WARNING status is not one).
WARNING_LINE = re.compile(r"Warning:|warning:|Traceback|Error:| - (WARNING|ERROR) - ")


def section(title: str) -> str:
    start = README.index(f"\n{title}\n")
    end = README.find("\n## ", start + 1)
    nested = README.find("\n### ", start + 1)
    if title.startswith("## ") and 0 < nested < end:
        end = nested
    return README[start:end]


def commands(text: str) -> list[str]:
    """The command lines of a section's bash blocks, comments and continuations resolved."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        joined = re.sub(r"\\\n\s*(#[^\n]*)?", " ", block)  # `\` continuations (and # after them)
        for line in joined.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CREDIT_DRIFT_") and k not in ("DATABASE_URL", "DAGSTER_HOME")
    }
    return {**env, **extra}


def split(line: str, port: int) -> tuple[dict[str, str], list[str]]:
    """A README line as (environment assignments, argv with this environment's credit-drift)."""
    words = shlex.split(line.replace("8000", str(port)))
    assignments = {}
    while "=" in words[0] and not words[0].startswith("-"):
        key, value = words.pop(0).split("=", 1)
        assignments[key] = value
    assert words[0] == "credit-drift", line
    return assignments, [CLI, *words[1:], *SMALL.get(words[1], [])]


def run(argv, cwd, env, timeout=900) -> str:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{argv[1:]} exited {done.returncode}:\n{output}"
    bad = [line for line in output.splitlines() if WARNING_LINE.search(line)]
    assert not bad, f"{argv[1:]} printed:\n" + "\n".join(bad)
    return done.stdout


def start(argv, cwd, env, log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_for(url: str, process: subprocess.Popen, log: Path, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer in {timeout_s} s:\n{log.read_text()}")


def timeline(status_output: str) -> pd.DataFrame:
    rows = re.findall(
        r"^(\d{4}-\d{2}-\d{2})\s+(\d+)\s+(\d+)/(\d+)\s+\S+\s+\S+\s+(\w+)$", status_output, re.M
    )
    return pd.DataFrame(rows, columns=["day", "predictions", "drifted", "features", "status"])


# -- Running the pipeline -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """Every command of "Running the pipeline" in order, in a fresh directory; the API of the
    second shell runs in the background meanwhile. Returns (directory, {subcommand: stdout})."""
    cwd = tmp_path_factory.mktemp("readme")
    port = free_port()
    env = clean_env()
    outputs: dict[str, str] = {}
    api = None
    lines = commands(section("## Running the pipeline"))
    assert lines[0] == "source .venv/bin/activate"
    try:
        for line in lines[1:]:
            assignments, argv = split(line, port)
            sub = argv[1]
            if sub == "serve":
                log = cwd / "api.log"
                api = start(argv, cwd, {**env, **assignments}, log)
                wait_for(f"http://127.0.0.1:{port}/health", api, log)
            elif sub == "ui":
                outputs["ui"] = line  # tested below, on this state
            else:
                outputs[sub] = run(argv, cwd, {**env, **assignments})
    finally:
        if api is not None:
            stop(api)
    return cwd, outputs


def test_the_documented_sequence_gives_the_documented_timeline(pipeline):
    _, out = pipeline
    assert set(out) >= {"generate-data", "train", "db", "simulate", "materialize", "status", "ui"}
    table = timeline(out["status"])
    assert table["day"].tolist() == DAYS
    assert (table["predictions"] == "400").all()
    assert table["status"].tolist() == EXPECTED_STATUS
    # The README's own table (full size) shows the same statuses.
    documented = timeline(section("## Running the pipeline"))
    assert documented["day"].tolist() == DAYS
    assert documented["status"].tolist() == EXPECTED_STATUS
    assert "alerts raised:" in out["status"]


def test_the_api_of_the_second_shell_logged_no_warning(pipeline):
    cwd, _ = pipeline
    text = (cwd / "api.log").read_text()
    assert '"event":"request"' in text
    assert not [line for line in text.splitlines() if WARNING_LINE.search(line)]


def test_materialize_prints_one_line_per_day_and_each_alert_once(pipeline):
    _, out = pipeline
    lines = out["materialize"].splitlines()
    assert lines[0].startswith("reference profile ... done")
    for i, (day, status) in enumerate(zip(DAYS, EXPECTED_STATUS, strict=True), 1):
        assert lines[i].startswith(f"[{i}/8] {day}  {status}"), lines[i]
    assert "alerts raised for 2026-11-07, 2026-11-08" in out["materialize"]
    assert out["materialize"].count("2026-11-07") == 2  # its day line and the alert line
    assert len(lines) <= 12 and " - DEBUG - " not in out["materialize"]


RUNS_OF_2026_11_07 = """{ runsOrError(filter: {tags: [
  {key: "dagster/partition", value: "2026-11-07"}]}) { ... on Runs { results { status } } } }"""


def test_ui_serves_the_state_from_its_own_environment(pipeline):
    """`credit-drift ui` as the README says, with PATH holding nothing of this environment."""
    cwd, out = pipeline
    port = free_port()
    assignments, argv = split(out["ui"], port)
    argv += ["--port", str(port)]
    env = clean_env(PATH="/usr/bin:/bin", **assignments)
    log = cwd / "ui.log"
    ui = start(argv, cwd, env, log)
    try:
        wait_for(f"http://127.0.0.1:{port}/server_info", ui, log)
        answer = httpx.post(
            f"http://127.0.0.1:{port}/graphql",
            json={"query": "{ shouldShowNux assetNodes { assetKey { path } } }"},
            timeout=60,
        ).json()["data"]
        assert answer["shouldShowNux"] is False  # no "join the community" dialog
        assert ["drift_report"] in [a["assetKey"]["path"] for a in answer["assetNodes"]]
        runs = httpx.post(
            f"http://127.0.0.1:{port}/graphql",
            json={"query": RUNS_OF_2026_11_07},
            timeout=60,
        ).json()["data"]["runsOrError"]["results"]
        assert {"status": "SUCCESS"} in runs  # the CLI's runs are in the UI's instance
    finally:
        stop(ui)
    text = log.read_text()
    bad = [line for line in text.splitlines() if WARNING_LINE.search(line)]
    assert not bad, text


# -- Your own training data -----------------------------------------------------------------------
def own_data(cwd: Path) -> tuple[Path, Path]:
    """Loans of a user's own schema: labelled target, an id, numeric, flag and text columns."""

    def frame(n: int, seed: int) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        income = rng.lognormal(10.5, 0.5, n)
        age = rng.integers(20, 70, n)
        debt = rng.gamma(2.0, 3000, n)
        segment = rng.choice(["retail", "sme", "premium"], n, p=[0.6, 0.3, 0.1])
        logit = -1.5 - 0.8 * (np.log(income) - 10.5) - 0.02 * (age - 45) + (segment == "sme")
        bad = rng.random(n) < 1 / (1 + np.exp(-logit))
        return pd.DataFrame(
            {
                "client_id": np.arange(n) + seed * 1_000_000,
                "income": income,
                "age": age,
                "debt": debt,
                "segment": segment,
                "region": rng.choice(["north", "south", "east", "west"], n),
                "has_car": rng.random(n) < 0.4,
                "risk": np.where(bad, "bad", "good"),
            }
        )

    frame(6000, 1).to_csv(cwd / "loans.csv", index=False)
    frame(4000, 2).drop(columns="risk").to_csv(cwd / "unseen.csv", index=False)
    return cwd / "loans.csv", cwd / "unseen.csv"


def test_own_data_as_the_readme_says(tmp_path):
    loans, unseen = own_data(tmp_path)
    text = section("## Your own training data")
    toml = re.search(r"```toml\n(.*?)```", text, re.S).group(1)
    (tmp_path / "credit-drift.toml").write_text(toml.replace("/path/to/loans.csv", str(loans)))
    env = clean_env()
    outputs = {}
    for line in commands(text):
        line = line.replace("/path/to/loans.csv", str(loans))
        line = line.replace("/path/to/unseen.csv", str(unseen))
        _, argv = split(line, 0)
        outputs.setdefault(argv[1], []).append(run(argv, tmp_path, env))
    # The first `train` is the project file's, the second the same as options.
    assert len(outputs["train"]) == 2
    for out in outputs["train"]:
        assert "6000 rows, 6 features (2 categorical)" in out
    table = timeline(outputs["status"][0])
    assert table["day"].tolist() == DAYS
    assert (table["features"] == "6").all()
    statuses = table["status"].tolist()
    assert statuses[:3] == ["OK", "OK", "OK"]  # clean days
    assert statuses[-1] == "ALERT"  # 30% of every column missing


# -- the demo -------------------------------------------------------------------------------------
def test_demo_output_is_short_and_quiet(tmp_path):
    home = tmp_path / "demo"
    argv = [CLI, "demo", "--home", str(home), "--batch-size", "400", "--train-rows", "5000"]
    argv += ["--trees", "30", "--no-progress"]
    out = run(argv, tmp_path, clean_env())
    lines = out.splitlines()
    # The demo scenario's 11 days, each on a line of the traffic summary, of the materializations,
    # of the timeline, of the label-free estimate and of the realized performance: 85 lines.
    assert len(lines) < 95, out
    assert " - DEBUG - " not in out and " - INFO - " not in out
    # Each alert once, in the alerts list under the timeline (it used to be logged 3 times).
    assert "DRIFT ALERT" not in out
    assert [line[:18] for line in lines if "ALERT:" in line] == [
        "  2026-11-07 ALERT",
        "  2026-11-08 ALERT",
    ]
    # The next steps, typed as they are printed (the home relative to the current directory).
    assert "ui --home demo" in out and "status --home demo" in out
