"""Running the scoring API under uvicorn: `run_server(host, port, workers, settings)`.

One worker serves the app object built here. Several workers need uvicorn's import-string
factory (`credit_drift.serving.app:app_from_env`), which rebuilds the settings from the
environment in each worker process: the settings the API uses are exported to the environment
first, so every worker sees the same configuration as the caller.
"""

import atexit
import os
import shutil
import tempfile

from credit_drift.serving.balance import WORKER_DIR_ENV
from credit_drift.settings import Settings

FACTORY = "credit_drift.serving.app:app_from_env"


def settings_environment(settings: Settings) -> dict[str, str]:
    """The environment variables that reproduce the API-relevant fields of `settings`."""
    return {
        "CREDIT_DRIFT_HOME": str(settings.home),
        "DATABASE_URL": settings.database_url,
        "CREDIT_DRIFT_ARTIFACTS_DIR": str(settings.artifacts_dir),
        "CREDIT_DRIFT_API_KEY": settings.api_key,
        "CREDIT_DRIFT_ALLOW_REPLAY": "1" if settings.allow_replay else "0",
        "CREDIT_DRIFT_DB_TIMEOUT_S": repr(settings.db_timeout_s),
    }


def run_server(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    settings: Settings | None = None,
    *,
    log_level: str = "info",
) -> None:
    """Serve the API until interrupted. The model is loaded once per worker, before the port
    opens (a missing or corrupt artifact stops start-up with ArtifactsError)."""
    import uvicorn

    settings = settings or Settings.from_env()
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    common = dict(
        host=host,
        port=port,
        log_level=log_level,
        # Every request already produces one JSON log line (serving.request_log).
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    if workers == 1:
        from credit_drift.serving.app import create_app, freeze_startup_objects

        app = create_app(settings)
        freeze_startup_objects()
        uvicorn.run(app, **common)
        return
    # Fail here, once and readably, rather than in every worker's traceback.
    from credit_drift.model.artifacts import load_artifacts

    load_artifacts(settings.artifacts_dir)
    os.environ.update(settings_environment(settings))
    # Before the workers start: their metrics add up in one directory (serving.metrics).
    from credit_drift.serving.metrics import prepare_multiprocess_dir

    prepare_multiprocess_dir(workers)
    # Where the workers publish their connection counts (serving.balance).
    worker_dir = tempfile.mkdtemp(prefix="credit-drift-workers-")
    atexit.register(shutil.rmtree, worker_dir, True)
    os.environ[WORKER_DIR_ENV] = worker_dir
    uvicorn.run(FACTORY, factory=True, workers=workers, **common)
