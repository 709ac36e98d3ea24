"""How `credit-drift dashboard` starts Streamlit: the command line and the environment.

Streamlit runs from the same Python as the CLI (`sys.executable -m streamlit`), never whatever
`streamlit` is first on PATH, so the app sees this installation of credit-drift.
"""

import os
import sys
from collections.abc import Mapping
from pathlib import Path

APP = Path(__file__).resolve().parent / "app.py"


def state_environment(home: str | Path) -> dict[str, str]:
    """The environment that points every setting at a state directory: a demo folder's full
    layout (data, artifacts, database, DAGSTER_HOME) or just CREDIT_DRIFT_HOME."""
    from credit_drift.demo import MARKER, DemoPaths

    state = Path(home).expanduser().resolve()
    if (state / MARKER).exists():
        return DemoPaths(state).environment()
    return {"CREDIT_DRIFT_HOME": str(state)}


def streamlit_command(
    *,
    port: int,
    host: str = "127.0.0.1",
    home: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[list[str], dict[str, str]]:
    """(argv, environment) of the Streamlit server for the dashboard."""
    env = dict(os.environ if environ is None else environ)
    if home is not None:
        env.update(state_environment(home))
    argv = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.port",
        str(port),
        "--server.address",
        host,
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        # A viewer's toolbar: no "Deploy" button or developer menu for the people reading it.
        "--client.toolbarMode",
        "viewer",
        # The app reads the database; it has no use for watching its own source files.
        "--server.fileWatcherType",
        "none",
    ]
    return argv, env
