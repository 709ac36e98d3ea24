"""How a run executes its steps and logs: in one process (the multiprocess executor costs 3-6 s
of start-up per step on 2 cores, more than most steps take), with Dagster's console logger, or
JSON lines when CREDIT_DRIFT_LOG_FORMAT=json."""

import dagster as dg

from credit_drift.defs.loggers import pipeline_loggers


@dg.definitions
def execution() -> dg.Definitions:
    return dg.Definitions(executor=dg.in_process_executor, loggers=pipeline_loggers())
