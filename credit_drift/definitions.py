"""The single Dagster entry point (workspace.yaml, `dagster dev -m credit_drift.definitions`,
`dg check defs`): every definition found in the `credit_drift/defs` folder, as `[tool.dg]` in
pyproject.toml declares it (so the package is used from its project folder: an editable install,
or a copy of the repository as in the Dockerfile)."""

from pathlib import Path

import dagster as dg


def load_definitions() -> dg.Definitions:
    """The definitions with resources read from the environment as it is now. A job resolved
    from them keeps the resources it was bound with (`execute_in_process(resources=...)` does
    not replace them), so a process that points the environment at another state directory
    (the demo, the CLI, tests) loads them again."""
    return dg.load_from_defs_folder(path_within_project=Path(__file__).resolve().parent)


defs = load_definitions()
