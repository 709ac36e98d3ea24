"""How a run executes its steps and logs.

Steps: in one process by default (the multiprocess executor costs 3-6 s of start-up per step on
2 cores, more than most steps take); on dagster-celery workers when CREDIT_DRIFT_EXECUTOR=celery
(the production stack, `./run.sh stack up`), so that a deployment spreads days and steps over as
many worker processes and machines as it runs. Logs: Dagster's console logger, or JSON lines when
CREDIT_DRIFT_LOG_FORMAT=json."""

import dagster as dg

from credit_drift.defs.loggers import pipeline_loggers
from credit_drift.settings import executor_settings

#: The celery queue the workers of the stack listen on (dagster-celery's default queue).
CELERY_QUEUE = "dagster"


def pipeline_executor() -> dg.ExecutorDefinition:
    """The executor every job uses, chosen by CREDIT_DRIFT_EXECUTOR when the definitions load."""
    chosen = executor_settings()
    if chosen.kind != "celery":
        return dg.in_process_executor
    # Imported only here: celery is the deploy extra's, the demo and the tests never need it.
    from dagster_celery import celery_executor

    return celery_executor.configured(
        {
            "broker": chosen.broker,
            # Step results come back through the same redis (celery's rpc:// backend needs AMQP).
            "backend": chosen.broker,
        },
        name="celery",
    )


@dg.definitions
def execution() -> dg.Definitions:
    return dg.Definitions(executor=pipeline_executor(), loggers=pipeline_loggers())
