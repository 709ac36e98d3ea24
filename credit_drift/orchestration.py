"""Running the Dagster definitions from the `credit-drift` CLI and the demo, on a persistent
instance (the state directory's DAGSTER_HOME), so that every run shows up in the Dagster UI.

This is what `credit-drift materialize --from ... --to ...` and `credit-drift demo` use; the same
jobs run unchanged under `dagster dev`, the daemon's schedule, or a production run launcher.
"""

import datetime as dt
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from credit_drift.settings import Settings

INSTANCE_YAML = """\
# DAGSTER_HOME of credit-drift's state directory: Dagster's default SQLite storage.
# (The production instance configuration is the dagster.yaml at the top of the repository.)
telemetry:
  enabled: false
"""


def dagster_home(settings: Settings) -> Path:
    """The state directory's DAGSTER_HOME (created with a SQLite instance config if absent).
    An explicit DAGSTER_HOME in the environment wins."""
    if os.environ.get("DAGSTER_HOME"):
        home = Path(os.environ["DAGSTER_HOME"])
    else:
        home = settings.home / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(INSTANCE_YAML)
    return home


def instance_for(settings: Settings):
    import dagster as dg

    return dg.DagsterInstance.from_config(str(dagster_home(settings)))


def days_between(first: str, last: str) -> list[str]:
    start, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    if end < start:
        raise ValueError(f"--to {last} is before --from {first}")
    return [(start + dt.timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]


@dataclass(frozen=True)
class RunOutcome:
    partition: str | None
    run_id: str
    success: bool


def _resources() -> dict:
    """Resources from the environment as it is now: the definitions bound theirs when they were
    first imported, and this process (the demo, tests) may have pointed the environment at
    another state directory since."""
    from credit_drift.defs.resources import resources_from_settings

    return resources_from_settings()


def materialize_reference(instance) -> RunOutcome:
    from credit_drift.definitions import defs

    result = defs.resolve_job_def("reference_profile_job").execute_in_process(
        instance=instance, raise_on_error=True, resources=_resources()
    )
    return RunOutcome(None, result.run_id, result.success)


def materialize_days(
    instance, days: Iterable[str], *, raise_on_error: bool = True
) -> list[RunOutcome]:
    """One run of the daily drift job per day (as a Dagster backfill would launch them)."""
    from credit_drift.definitions import defs

    job = defs.resolve_job_def("daily_drift_job")
    resources = _resources()
    outcomes = []
    for day in days:
        result = job.execute_in_process(
            partition_key=day, instance=instance, raise_on_error=raise_on_error, resources=resources
        )
        outcomes.append(RunOutcome(day, result.run_id, result.success))
    return outcomes


def run_alert_sensor(instance) -> list[str]:
    """One tick of drift_alert_sensor, its cursor kept in the instance like the daemon does, and
    the alert runs it requests executed in process, each once: a request whose run key already
    ran in this instance is skipped, as the daemon would. Returns the alerted days."""
    import dagster as dg

    from credit_drift.definitions import defs

    sensor = defs.resolve_sensor_def("drift_alert_sensor")
    origin_key = "credit_drift/demo_sensor_cursor"
    stored = instance.run_storage.get_cursor_values({origin_key}).get(origin_key)
    with dg.build_sensor_context(
        instance=instance, cursor=stored, resources=_resources()
    ) as context:
        result = sensor(context)
        instance.run_storage.set_cursor_values({origin_key: context.cursor or ""})
    requests = result if isinstance(result, list) else []
    alerted = []
    job = defs.resolve_job_def("drift_alert_job")
    for request in requests:
        ran = instance.get_run_records(
            filters=dg.RunsFilter(tags={"dagster/run_key": request.run_key}), limit=1
        )
        if ran:
            continue
        job.execute_in_process(
            run_config=request.run_config,
            instance=instance,
            resources=_resources(),
            tags={**request.tags, "dagster/run_key": request.run_key},
        )
        alerted.append(request.tags["credit_drift/report_date"])
    return alerted
