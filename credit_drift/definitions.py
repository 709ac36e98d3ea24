"""The single Dagster entry point (workspace.yaml, `dagster dev -m credit_drift.definitions`,
`dg check defs`): every definition found in the `credit_drift/defs` folder, as `[tool.dg]` in
pyproject.toml declares it (so the package is used from its project folder: an editable install,
or a copy of the repository as in the Dockerfile)."""

from pathlib import Path

import dagster as dg

defs = dg.load_from_defs_folder(path_within_project=Path(__file__).resolve().parent)
