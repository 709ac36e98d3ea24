"""Running the Dagster definitions from the `credit-drift` CLI and the demo, on a persistent
instance (the state directory's DAGSTER_HOME), so that every run shows up in the Dagster UI.

This is what `credit-drift materialize --from ... --to ...` and `credit-drift demo` use; the same
jobs run unchanged under `dagster dev`, the daemon's schedule, or a production run launcher.
Runs are quiet by default (the CLI prints one line per day); `verbose=True` shows Dagster's own
event log on the console, as `dagster` commands do.
"""

import contextlib
import datetime as dt
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from credit_drift.errors import CreditDriftError
from credit_drift.settings import Settings, redact_url

#: The first line marks a DAGSTER_HOME configuration written by this module (and rewritten when
#: it changes); a dagster.yaml without it is the user's own and is never touched.
INSTANCE_YAML = """\
# The Dagster instance of a local credit-drift state directory: Dagster's default SQLite storage
# under DAGSTER_HOME. credit-drift writes this file into $CREDIT_DRIFT_HOME/dagster (the demo,
# `credit-drift materialize`, `credit-drift ui`); the copy at the top of the repository is what
# `dagster dev` run in the checkout picks up. deploy/dagster.yaml is the production (PostgreSQL)
# configuration.
telemetry:
  enabled: false
# The UI's "join the community" newsletter dialog would cover the first view of every new state.
nux:
  enabled: false
"""
#: How every generated version of INSTANCE_YAML begins: such a file is rewritten when it differs.
_GENERATED_MARKS = (
    "# The Dagster instance of a local credit-drift state directory",
    "# DAGSTER_HOME of credit-drift's state directory",
)
_DAY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class PartitionRangeError(CreditDriftError, ValueError):
    """A day or a range of days that has no daily partition; the message says which exist."""


def dagster_home(settings: Settings) -> Path:
    """The state directory's DAGSTER_HOME (created with a SQLite instance config if absent).
    An explicit DAGSTER_HOME in the environment wins."""
    if os.environ.get("DAGSTER_HOME"):
        home = Path(os.environ["DAGSTER_HOME"]).expanduser().resolve()
    else:
        home = settings.home / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() or (
        config.read_text().startswith(_GENERATED_MARKS) and config.read_text() != INSTANCE_YAML
    ):
        config.write_text(INSTANCE_YAML)
    return home


def instance_for(settings: Settings):
    import dagster as dg

    return dg.DagsterInstance.from_config(str(dagster_home(settings)))


# -- days ---------------------------------------------------------------------------------------
def parse_day(text: str, option: str = "day") -> dt.date:
    """A YYYY-MM-DD day, or a PartitionRangeError that shows the expected form."""
    value = str(text).strip()
    if _DAY_RE.match(value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise PartitionRangeError(f"{option} {text!r} is not a day: write YYYY-MM-DD, e.g. 2026-11-01")


def days_between(first: str, last: str) -> list[str]:
    """Every day from `first` to `last` inclusive, as YYYY-MM-DD."""
    start, end = parse_day(first, "--from"), parse_day(last, "--to")
    if end < start:
        raise PartitionRangeError(f"--to {last} is before --from {first}: swap them")
    return [(start + dt.timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]


def check_partition_days(
    days: list[str], settings: Settings, today: dt.date | None = None
) -> list[str]:
    """`days` if each is a daily partition: from CREDIT_DRIFT_PARTITIONS_START up to yesterday
    (UTC). A day's partition exists once the day is over, so that its window is complete."""
    today = today or dt.datetime.now(dt.UTC).date()
    first = parse_day(settings.partitions_start, "CREDIT_DRIFT_PARTITIONS_START")
    latest = today - dt.timedelta(days=1)
    if not days:
        return days
    start, end = dt.date.fromisoformat(days[0]), dt.date.fromisoformat(days[-1])
    if start < first:
        raise PartitionRangeError(
            f"{start} is before the first daily partition, {first} "
            "(CREDIT_DRIFT_PARTITIONS_START): start at or after it, or set "
            "CREDIT_DRIFT_PARTITIONS_START earlier"
        )
    if end >= today:
        when = "today" if end == today else "in the future"
        raise PartitionRangeError(
            f"{end} is {when} (UTC): a day's partition exists once the day is over (at 00:00 "
            f"UTC the next day), so that its window is complete; the latest day now is {latest}"
        )
    return days


# -- the prediction log -------------------------------------------------------------------------
@dataclass(frozen=True)
class LogSpan:
    """How many predictions the log holds in a range of days, and overall (first, last)."""

    in_range: int
    total: int
    first: dt.datetime | None
    last: dt.datetime | None


def log_span(settings: Settings, first_day: str, last_day: str) -> LogSpan:
    import sqlalchemy as sa

    from credit_drift.storage.db import make_engine, upgrade
    from credit_drift.storage.predictions import count_predictions
    from credit_drift.storage.schema import UTCDateTime

    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    start = dt.datetime.fromisoformat(first_day).replace(tzinfo=dt.UTC)
    end = dt.datetime.fromisoformat(last_day).replace(tzinfo=dt.UTC) + dt.timedelta(days=1)
    created_at = sa.column("created_at", UTCDateTime())
    table = sa.table("predictions", created_at)
    with engine.connect() as conn:
        total, lo, hi = conn.execute(
            sa.select(
                sa.func.count(), sa.func.min(created_at), sa.func.max(created_at)
            ).select_from(table)
        ).one()
    return LogSpan(count_predictions(engine, start, end), int(total), lo, hi)


def empty_range_message(span: LogSpan, first_day: str, last_day: str, settings: Settings) -> str:
    """Why a range of days has nothing to analyse, and what to do."""
    if first_day == last_day:
        where = f"no predictions on {first_day} (UTC)"
    else:
        where = f"no predictions between {first_day} and {last_day} (UTC)"
    if span.total == 0:
        return (
            f"{where}: the prediction log ({redact_url(settings.database_url)}) is empty. Send "
            "traffic first: `credit-drift simulate --start-date "
            f"{first_day}` (through an API started with CREDIT_DRIFT_ALLOW_REPLAY=1), or "
            "`credit-drift simulate --mode replay --start-date ...` (no API needed)"
        )
    first, last = (t.astimezone(dt.UTC) for t in (span.first, span.last))
    latest = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    upto = min(last.date(), latest)
    suggestion = (
        f"materialize those days instead (--from {first.date()} --to {upto})"
        if first.date() <= upto
        else f"they are from {first.date()} (UTC), which can be materialized once it is over"
    )
    return (
        f"{where}; the log holds {span.total} predictions from {first:%Y-%m-%d %H:%M} to "
        f"{last:%Y-%m-%d %H:%M} UTC: {suggestion}, or send traffic dated in your range with "
        f"`credit-drift simulate --start-date {first_day}` (without --start-date, predictions "
        "are logged at the current time)"
    )


# -- runs ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunOutcome:
    partition: str | None
    run_id: str
    success: bool
    #: drift_report's status for a day (OK / WARNING / ALERT / NO_DATA), when it was written.
    status: str | None = None
    drift_percentage: float | None = None
    n_predictions: int | None = None
    #: The first failed step's error, one line, when the run failed.
    error: str | None = None
    seconds: float = 0.0


def _definitions():
    """The definitions as the environment is now: this process (the demo, tests) may have
    pointed it at another state directory since `credit_drift.definitions` was imported."""
    from credit_drift.definitions import load_definitions

    return load_definitions()


def _resources() -> dict:
    """The resources of the environment as it is now (for a sensor's context)."""
    from credit_drift.defs.resources import resources_from_settings

    return resources_from_settings()


def _run_config(verbose: bool) -> dict:
    # Dagster's console logger prints every event at DEBUG; the CLI prints its own summary.
    level = "DEBUG" if verbose else "CRITICAL"
    return {"loggers": {"console": {"config": {"log_level": level}}}}


@contextlib.contextmanager
def _project_logs(verbose: bool) -> Iterator[None]:
    """Without `verbose`, the project's own log lines (e.g. the alert sensor's DRIFT ALERT, which
    Python would print through its last-resort handler) stay off the console: the CLI prints
    each alert once itself."""
    if verbose:
        yield
        return
    logger = logging.getLogger("credit_drift")
    handler = logging.NullHandler()
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def _first_error(result) -> str | None:
    for event in result.get_step_failure_events():
        error = event.step_failure_data.error
        # The user's exception, not Dagster's wrapper around it.
        while error is not None and error.cause is not None and "dagster" in error.cls_name.lower():
            error = error.cause
        if error is not None:
            first = error.message.strip().splitlines()[0]
            # "package.module.SomeError: what happened" -> "what happened"
            first = re.sub(r"^[\w.]*(Error|Exception)\w*: ", "", first)
            return f"{event.step_key}: {first}"
    return None


def has_reference(instance) -> bool:
    """Whether reference_profile was ever materialized on this instance."""
    import dagster as dg

    return instance.get_latest_materialization_event(dg.AssetKey("reference_profile")) is not None


def materialize_reference(
    instance, *, raise_on_error: bool = True, verbose: bool = False
) -> RunOutcome:
    defs = _definitions()
    started = time.monotonic()
    with _project_logs(verbose):
        result = defs.resolve_job_def("reference_profile_job").execute_in_process(
            instance=instance,
            raise_on_error=raise_on_error,
            run_config=_run_config(verbose),
        )
    return RunOutcome(
        None,
        result.run_id,
        result.success,
        error=None if result.success else _first_error(result),
        seconds=time.monotonic() - started,
    )


def materialize_days(
    instance,
    days: Iterable[str],
    *,
    raise_on_error: bool = True,
    verbose: bool = False,
    on_day: Callable[[RunOutcome], None] | None = None,
) -> list[RunOutcome]:
    """One run of the daily drift job per day (as a Dagster backfill would launch them);
    `on_day` is called with each day's outcome as soon as its run ends."""
    defs = _definitions()
    job = defs.resolve_job_def("daily_drift_job")
    outcomes = []
    for day in days:
        started = time.monotonic()
        with _project_logs(verbose):
            result = job.execute_in_process(
                partition_key=day,
                instance=instance,
                raise_on_error=raise_on_error,
                run_config=_run_config(verbose),
            )
        outcome = RunOutcome(
            day,
            result.run_id,
            result.success,
            error=None if result.success else _first_error(result),
            seconds=time.monotonic() - started,
            **_report_metadata(result),
        )
        outcomes.append(outcome)
        if on_day is not None:
            on_day(outcome)
    return outcomes


def _report_metadata(result) -> dict:
    try:
        materializations = result.asset_materializations_for_node("drift_report")
    except Exception:  # noqa: BLE001 - no drift_report step ran (an earlier step failed)
        return {}
    if not materializations:
        return {}
    meta = {k: getattr(v, "value", v) for k, v in materializations[-1].metadata.items()}
    pct = meta.get("drift_percentage")
    n = meta.get("n_predictions")
    return {
        "status": meta.get("status"),
        "drift_percentage": float(pct) if isinstance(pct, int | float) else None,
        "n_predictions": int(n) if isinstance(n, int | float) else None,
    }


def run_alert_sensor(instance, *, verbose: bool = False) -> list[str]:
    """One tick of drift_alert_sensor, its cursor kept in the instance like the daemon does, and
    the alert runs it requests executed in process, each once: a request whose run key already
    ran in this instance is skipped, as the daemon would. Returns the alerted days: `<day>` for
    a drift alert, `<day> (estimated performance)` for the estimate's."""
    import dagster as dg

    defs = _definitions()
    sensor = defs.resolve_sensor_def("drift_alert_sensor")
    origin_key = "credit_drift/demo_sensor_cursor"
    stored = instance.run_storage.get_cursor_values({origin_key}).get(origin_key)
    resources = _resources()
    with (
        _project_logs(verbose),
        dg.build_sensor_context(instance=instance, cursor=stored, resources=resources) as context,
    ):
        if not verbose:
            context.log.setLevel(logging.ERROR)
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
        with _project_logs(verbose):
            job.execute_in_process(
                run_config={**request.run_config, **_run_config(verbose)},
                instance=instance,
                # The tags the daemon gives a sensor's runs: a daemon started later on this
                # instance sees the run key as taken and launches no second alert run.
                tags={
                    **request.tags,
                    "dagster/run_key": request.run_key,
                    "dagster/sensor_name": "drift_alert_sensor",
                },
            )
        day, kind = (
            request.tags["credit_drift/report_date"],
            request.tags["credit_drift/alert_kind"],
        )
        alerted.append(day if kind == "drift" else f"{day} ({kind.replace('_', ' ')})")
    return alerted
