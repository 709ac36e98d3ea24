"""The run logger of the definitions: Dagster's own console logger by default, JSON lines with
the documented fields (`credit_drift.logs`) when CREDIT_DRIFT_LOG_FORMAT=json."""

import logging

import dagster as dg

from credit_drift.logs import json_handler, use_json_for_project_loggers
from credit_drift.settings import log_format

#: Run config that selects the "console" logger: Dagster only starts the loggers a run's config
#: names (otherwise its own default console logger), so the jobs name it by default, and it is
#: the JSON one when CREDIT_DRIFT_LOG_FORMAT=json (Dagster's own console logger otherwise).
SELECT_CONSOLE_LOGGER = {"loggers": {"console": {}}}


@dg.logger(
    config_schema={
        "log_level": dg.Field(str, is_required=False, default_value="DEBUG"),
        "name": dg.Field(str, is_required=False, default_value="dagster"),
    },
    description="Run logs as JSON lines on stderr (docs/log-schema.md), materializations and "
    "alerts included.",
)
def json_lines_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    config = init_context.logger_config
    logger = logging.Logger(config["name"], level=config["log_level"].upper())
    logger.addHandler(json_handler())
    # The project's own Python loggers (alert lines) in the same format, from the run's process.
    use_json_for_project_loggers()
    return logger


def pipeline_loggers(env: dict[str, str] | None = None) -> dict[str, dg.LoggerDefinition]:
    """Definitions-level loggers: replaces Dagster's "console" logger when JSON is asked for."""
    return {"console": json_lines_logger} if log_format(env) == "json" else {}
