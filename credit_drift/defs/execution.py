"""How a run executes its steps: in one process (the multiprocess executor costs 3-6 s of
start-up per step on 2 cores, more than most steps take)."""

import dagster as dg


@dg.definitions
def execution() -> dg.Definitions:
    return dg.Definitions(executor=dg.in_process_executor)
