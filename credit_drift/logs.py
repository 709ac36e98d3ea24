"""The pipeline's logs as JSON lines (CREDIT_DRIFT_LOG_FORMAT=json), one documented field set
(docs/log-schema.md, docs/log-schema.json) for Dagster's run logs and the project's own Python
loggers, so that Fluentd or Vector can ship them beside the API's request lines.

Dagster's built-in `json_console_logger` writes every attribute of Python's LogRecord plus
Dagster's packed event: complete, but its field names follow Python and Dagster internals, not a
schema a log pipeline can rely on. `JsonLineFormatter` keeps the same source (the log records of
the run) and writes the stable fields below. No Dagster import here: `credit_drift.defs.loggers`
wires it into Dagster.
"""

import datetime as dt
import logging
import sys
from typing import Any

import orjson

#: The fields of a pipeline log line; the first four are always present.
PIPELINE_LOG_FIELDS = (
    "ts",
    "level",
    "logger",
    "message",
    "run_id",
    "job",
    "step",
    "partition",
    "dagster_event",
)
#: The Python logger whose records (the alert lines of `credit_drift.alerts`, ...) are
#: written as JSON too; `credit_drift.api` has its own JSON lines and does not propagate.
PROJECT_LOGGER = "credit_drift"
_HANDLER_NAME = "credit-drift-json"

# Dagster attaches its run context to each record under this attribute.
_DAGSTER_META = "dagster_meta"


class JsonLineFormatter(logging.Formatter):
    """One JSON object per record with `PIPELINE_LOG_FIELDS` (absent context fields omitted)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        meta = getattr(record, _DAGSTER_META, None)
        if isinstance(meta, dict):
            line["message"] = meta.get("orig_message") or line["message"]
            tags = meta.get("job_tags") or {}
            event = meta.get("dagster_event")
            context = {
                "run_id": meta.get("run_id"),
                "job": meta.get("job_name"),
                "step": meta.get("step_key"),
                "partition": tags.get("dagster/partition"),
                "dagster_event": getattr(event, "event_type_value", None),
            }
            line.update({k: v for k, v in context.items() if v})
        if record.exc_info:
            line["message"] += "\n" + self.formatException(record.exc_info)
        return orjson.dumps(line).decode()


def json_handler(stream=None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonLineFormatter())
    handler.set_name(_HANDLER_NAME)
    return handler


def use_json_for_project_loggers(level: int = logging.INFO) -> None:
    """Write the `credit_drift` Python loggers as JSON lines on stderr (idempotent)."""
    logger = logging.getLogger(PROJECT_LOGGER)
    if not any(h.get_name() == _HANDLER_NAME for h in logger.handlers):
        logger.addHandler(json_handler())
    if logger.level == logging.NOTSET or logger.level > level:
        logger.setLevel(level)
    # Printed once, as JSON: not again by a root handler in another format.
    logger.propagate = False
