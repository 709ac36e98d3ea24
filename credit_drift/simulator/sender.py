"""`credit-drift simulate`: send the scenario's traffic to the scoring API over HTTP (httpx).

`simulate(url, ...)` draws applications from the unseen pool, applies each batch's drift and
posts them (one application per `POST /predict`, or `request_size` at a time to
`/predict/batch`), with a tqdm progress bar over batches and requests. The answers are counted,
not trusted blindly: a 4xx stops the run with the server's message (every later request would
fail the same way), a 503 is retried with a pause (the API recovers when its database does).

Placing batches on past days (`start_date`): the API only accepts an `event_time` when it runs
with CREDIT_DRIFT_ALLOW_REPLAY=1, so an ordinary client can never forge when a prediction was
made. Without access to such a server, `--mode replay` writes the same traffic through the same
scoring and storage code without HTTP (`simulator.replay`), and `--mode bulk` backfills large
volumes for benchmarks.
"""

import argparse
import datetime as dt
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from credit_drift.data.generator import ID_COLUMN
from credit_drift.data.loader import ids_as_text, load_pool_ids
from credit_drift.simulator.drift import (
    DEFAULT_DRIFT_CONFIG,
    DRIFT_KINDS,
    GENERIC_KINDS,
    DriftConfig,
)
from credit_drift.simulator.outcomes import outcomes_of_batch
from credit_drift.simulator.replay import (
    BatchOutcome,
    SimulationSummary,
    SimulatorError,
    bulk_backfill,
    pool_application_ids,
    read_pool,
    replay,
)
from credit_drift.simulator.scenario import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_INTERVAL,
    DEFAULT_SCENARIO,
    DEFAULT_SEED,
    Scenario,
    available_scenarios,
    inert_batches,
    iter_traffic,
    load_scenario,
    selected_batches,
)

DEFAULT_URL = "http://127.0.0.1:8000"
#: Scenario of `--mode bulk` when none is given: 30 days (clean, gradual, shift, break, sudden).
BULK_SCENARIO = "month"
#: Attempts per request when the API answers 503 (database down), and the pause between them.
RETRIES_ON_503 = 5
RETRY_PAUSE_S = 1.0


def warn_inert_batches(
    pool: pd.DataFrame, scenario: Scenario, n_batches: int | None, config: DriftConfig
) -> list[int]:
    """Print a warning (stderr) for each drift batch that changes nothing in this data, e.g. a
    Home-Credit kind on another schema; returns their indices."""
    selected = Scenario(scenario.name, selected_batches(scenario, n_batches), scenario.description)
    inert = inert_batches(pool, selected, config)
    if inert:
        names = ", ".join(f"batch {i + 1} ({selected.batches[i].name})" for i in inert)
        kinds = sorted({selected.batches[i].kind for i in inert})
        print(
            f"credit-drift: warning: {names} change nothing in this data: the "
            f"{'/'.join(kinds)} drift finds none of the columns it changes among the model's "
            f"features. For any schema use the generic kinds ({', '.join(GENERIC_KINDS)}), "
            "e.g. --scenario generic",
            file=sys.stderr,
        )
    return inert


def _headers(api_key: str | None) -> dict[str, str]:
    headers = {"content-type": "application/json"}
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"
    return headers


def _records(
    frame: pd.DataFrame,
    times: Sequence[dt.datetime] | None,
    application_ids: Sequence[str | None] | None = None,
) -> list[dict[str, Any]]:
    """JSON-ready applications: NaN -> null (missing), event_time when placed in time,
    application_id when the pool has ids."""
    values = frame.to_numpy(dtype=object, copy=True)
    # NaN (float) -> None; categorical strings and numbers pass through.
    missing = frame.isna().to_numpy()
    values[missing] = None
    columns = list(frame.columns)
    records = [dict(zip(columns, row, strict=True)) for row in values.tolist()]
    if times is not None:
        for record, when in zip(records, times, strict=True):
            record["event_time"] = when.isoformat()
    if application_ids is not None:
        for record, app_id in zip(records, application_ids, strict=True):
            if app_id is not None:
                record["application_id"] = app_id
    return records


def _detail(response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])
    return str(body)[:300]


def _post(client, path: str, body: bytes, headers: dict[str, str]):
    import httpx

    for attempt in range(RETRIES_ON_503):
        try:
            response = client.post(path, content=body, headers=headers)
        except httpx.ConnectError as exc:
            raise SimulatorError(
                f"cannot reach the scoring API at {client.base_url}: {exc}. Start it with "
                "`credit-drift serve`, or pass --url"
            ) from None
        if response.status_code != 503 or attempt == RETRIES_ON_503 - 1:
            return response
        time.sleep(RETRY_PAUSE_S)
    return response  # pragma: no cover - the loop always returns


def model_features(client, api_key: str | None) -> list[str]:
    """The feature list of the served model (`GET /model`)."""
    import httpx

    try:
        response = client.get("/model", headers=_headers(api_key))
    except httpx.ConnectError as exc:
        raise SimulatorError(
            f"cannot reach the scoring API at {client.base_url}: {exc}. Start it with "
            "`credit-drift serve`, or pass --url"
        ) from None
    if response.status_code != 200:
        raise SimulatorError(
            f"GET {client.base_url}/model answered {response.status_code}: {_detail(response)}"
        )
    return list(response.json()["features"])


def simulate(
    url: str = DEFAULT_URL,
    *,
    pool: pd.DataFrame | str | Path,
    scenario: Scenario | str | Path = DEFAULT_SCENARIO,
    batch_size: int = DEFAULT_BATCH_SIZE,
    n_batches: int | None = None,
    seed: int = DEFAULT_SEED,
    start_date: str | dt.date | dt.datetime | None = None,
    batch_interval: str | dt.timedelta = DEFAULT_INTERVAL,
    request_size: int = 1,
    api_key: str | None = None,
    timeout_s: float = 30.0,
    config: DriftConfig = DEFAULT_DRIFT_CONFIG,
    progress: bool = True,
    transport: Any = None,
    application_ids: Sequence[str | None] | np.ndarray | None = None,
    id_column: str | None = ID_COLUMN,
    outcomes: bool = False,
) -> SimulationSummary:
    """Send the scenario's traffic to the API at `url`; returns what each batch produced.

    pool: a DataFrame of applications or the path of pool.parquet (restricted to the served
        model's features, read from `GET /model`).
    start_date / batch_interval: place batch i on [start + i * interval, + interval); the
        server must run with CREDIT_DRIFT_ALLOW_REPLAY=1 (otherwise it answers 403 and this
        raises SimulatorError saying so).
    request_size: applications per request (1: POST /predict; more: POST /predict/batch).
    transport: an httpx transport (tests: `httpx.ASGITransport(app)`), default real HTTP.
    application_ids: one id per pool row, sent as each application's `application_id`; by
        default read from the pool's `id_column` when it has one.
    outcomes: also draw each application's outcome (`simulator.outcomes`) and POST those
        observed by now to /outcomes (the others are counted as pending, not sent).
    """
    import httpx

    if request_size < 1:
        raise SimulatorError(f"request_size must be positive, got {request_size}")
    scenario = load_scenario(scenario) if isinstance(scenario, str | Path) else scenario
    specs = selected_batches(scenario, n_batches)
    headers = _headers(api_key)
    results: list[BatchOutcome] = []
    drawn = []
    t0 = time.perf_counter()
    with httpx.Client(base_url=url, timeout=timeout_s, transport=transport) as client:
        features = model_features(client, api_key)
        if application_ids is None and id_column:
            if isinstance(pool, pd.DataFrame):
                if id_column in pool.columns:
                    application_ids = ids_as_text(pool[id_column], f"pool column {id_column!r}")
            else:
                application_ids = load_pool_ids(pool, id_column)
        frame = read_pool(pool, features) if not isinstance(pool, pd.DataFrame) else pool
        ids_of = pool_application_ids(application_ids, len(frame))
        if outcomes and application_ids is None:
            raise SimulatorError(
                "simulated outcomes are linked to predictions by application id: the pool has "
                "no id column (CREDIT_DRIFT_ID_COLUMN)"
            )
        missing = [f for f in features if f not in frame.columns]
        if missing:
            raise SimulatorError(f"the pool lacks model features {missing[:10]}")
        frame = frame.loc[:, features]
        warn_inert_batches(frame, scenario, n_batches, config)
        total = sum(s.size or batch_size for s in specs)
        from tqdm import tqdm

        with tqdm(total=total, unit="app", disable=not progress, dynamic_ncols=True) as bar:
            for batch in iter_traffic(
                frame,
                scenario,
                batch_size=batch_size,
                n_batches=n_batches,
                seed=seed,
                start=start_date,
                interval=batch_interval,
                config=config,
            ):
                bar.set_description(f"batch {batch.index + 1}/{len(specs)} {batch.spec.name}")
                records = _records(batch.frame, batch.event_times(), ids_of(batch.pool_rows))
                probabilities: list[float] = []
                decisions: list[str] = []
                failed = 0
                for lo in range(0, len(records), request_size):
                    chunk = records[lo : lo + request_size]
                    if request_size == 1:
                        response = _post(client, "/predict", orjson.dumps(chunk[0]), headers)
                    else:
                        response = _post(client, "/predict/batch", orjson.dumps(chunk), headers)
                    if response.status_code == 200:
                        body = response.json()
                        answers = [body] if request_size == 1 else body["predictions"]
                        probabilities += [a["probability"] for a in answers]
                        decisions += [a["decision"] for a in answers]
                    elif response.status_code == 403 and batch.start is not None:
                        raise SimulatorError(
                            f"the API refused the event times ({_detail(response)}). Start it "
                            "with CREDIT_DRIFT_ALLOW_REPLAY=1, or use --mode replay to write "
                            "the traffic without HTTP"
                        )
                    elif 400 <= response.status_code < 500:
                        raise SimulatorError(
                            f"the API answered {response.status_code} to batch "
                            f"{batch.index + 1}: {_detail(response)}"
                        )
                    else:
                        failed += len(chunk)
                    bar.update(len(chunk))
                results.append(
                    BatchOutcome.of(batch, len(records), failed, probabilities, decisions)
                )
                if outcomes:
                    drawn.append(
                        outcomes_of_batch(
                            batch, application_ids, seed=seed, maturity_days=scenario.maturity_days
                        )
                    )
        delivery = post_outcomes(client, headers, drawn) if outcomes else None
    return SimulationSummary(
        "http", scenario.name, tuple(results), time.perf_counter() - t0, delivery
    )


def post_outcomes(client, headers: dict[str, str], drawn, *, as_of=None):
    """POST the drawn outcomes observed by `as_of` (default now) to /outcomes, in requests of
    the API's default limit (`ServingConfig.max_outcomes`); returns an `OutcomeDelivery` with
    the API's counts."""
    from credit_drift.serving.config import ServingConfig
    from credit_drift.simulator.outcomes import OutcomeDelivery, observed_by
    from credit_drift.storage.outcomes import OutcomeWriteSummary

    as_of, due, pending = observed_by(drawn, as_of)
    rows = [{"application_id": a, "outcome": o, "observed_at": t.isoformat()} for a, o, t in due]
    counts = dict.fromkeys(("inserted", "unchanged", "updated", "unknown_ids"), 0)
    conflicts: list[str] = []
    per_request = ServingConfig.max_outcomes
    for lo in range(0, len(rows), per_request):
        body = orjson.dumps({"outcomes": rows[lo : lo + per_request]})
        response = _post(client, "/outcomes", body, headers)
        if response.status_code != 200:
            raise SimulatorError(
                f"POST /outcomes answered {response.status_code}: {_detail(response)}"
            )
        answer = response.json()
        for name in counts:
            counts[name] += int(answer[name])
        conflicts += list(answer.get("conflicts", []))
    summary = OutcomeWriteSummary(**counts, conflicts=conflicts) if rows else None
    return OutcomeDelivery(as_of, len(rows), pending, summary)


# -- the command line (wired by credit_drift.cli) -------------------------------------------
def add_simulate_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `credit-drift simulate`."""
    parser.add_argument("--url", default=DEFAULT_URL, help=f"scoring API (default {DEFAULT_URL})")
    parser.add_argument(
        "--scenario",
        help="a shipped scenario name ("
        + ", ".join(available_scenarios())
        + ") or the path of a JSON scenario file (default: notebook, 3 clean, gradual "
        f"0.1/0.2/0.3, sudden 0.5/0.7; in bulk mode {BULK_SCENARIO}, 30 days). Drift kinds: "
        + ", ".join(DRIFT_KINDS),
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        help=f"applications per batch (default {DEFAULT_BATCH_SIZE})",
    )
    parser.add_argument(
        "--n-batches", type=int, help="send only the first N batches (default: all of them)"
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help="same seed, same traffic (default 42)"
    )
    parser.add_argument(
        "--pool", help="unseen applications (default $CREDIT_DRIFT_DATA_DIR/pool.parquet)"
    )
    parser.add_argument(
        "--start-date",
        help="place batch i on START + i x INTERVAL (UTC, e.g. 2026-11-01); over HTTP the API "
        "must run with CREDIT_DRIFT_ALLOW_REPLAY=1",
    )
    parser.add_argument(
        "--batch-interval", default="1d", help="time between batches: 1d, 6h, 30m (default 1d)"
    )
    parser.add_argument(
        "--mode",
        choices=("http", "replay", "bulk"),
        default="http",
        help="http: POST to the API (default); replay: score and log directly through the "
        "storage code, no HTTP (needs the model and DATABASE_URL); bulk: backfill "
        "--rows-per-day predictions on each day (benchmarks)",
    )
    parser.add_argument(
        "--request-size",
        type=int,
        default=1,
        help="applications per HTTP request: 1 = POST /predict each (default), more = "
        "POST /predict/batch",
    )
    parser.add_argument(
        "--api-key-file",
        help="file holding the API key (default: CREDIT_DRIFT_API_KEY); a key is never taken "
        "on the command line, where every user of the machine sees it in `ps`",
    )
    # Refused with a message saying what to do instead (see `api_key_from_args`).
    parser.add_argument("--api-key", help=argparse.SUPPRESS)
    parser.add_argument(
        "--rows-per-day", type=int, default=100_000, help="bulk mode: predictions per day"
    )
    parser.add_argument(
        "--days", type=int, help="bulk mode: number of days (default: the scenario's batches)"
    )
    parser.add_argument(
        "--outcomes",
        action="store_true",
        help="also draw each application's outcome from the synthetic data's risk model (plus "
        "the scenario's concept_shift) and record those observed by now, maturity_days after "
        "scoring: over HTTP with POST /outcomes, in replay and bulk modes in the database",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def api_key_from_args(args: argparse.Namespace, settings: Any) -> str | None:
    """The API key from `--api-key-file` (first line, stripped) or CREDIT_DRIFT_API_KEY."""
    if getattr(args, "api_key", None) is not None:
        raise SimulatorError(
            "--api-key is refused: a key on the command line is visible to every user of the "
            "machine (ps, /proc). Set CREDIT_DRIFT_API_KEY or pass --api-key-file PATH"
        )
    path = getattr(args, "api_key_file", None)
    if path:
        try:
            lines = Path(path).read_text().splitlines()
        except OSError as exc:
            raise SimulatorError(f"cannot read the API key file {path}: {exc.strerror}") from None
        key = lines[0].strip() if lines else ""
        if not key:
            raise SimulatorError(f"the API key file {path} is empty")
        return key
    return settings.api_key or None


def simulate_from_args(args: argparse.Namespace, settings: Any) -> SimulationSummary | Any:
    """Run `credit-drift simulate` with parsed arguments; prints a summary. Its errors
    (`SimulatorError`, `ScenarioError`) are `CreditDriftError`s, which the CLI prints."""
    api_key = api_key_from_args(args, settings)
    pool_path = Path(args.pool) if args.pool else Path(settings.data_dir) / "pool.parquet"
    progress = not args.no_progress
    default = BULK_SCENARIO if args.mode == "bulk" else DEFAULT_SCENARIO
    scenario = load_scenario(args.scenario or default)
    if args.mode == "http":
        summary = simulate(
            args.url,
            pool=pool_path,
            scenario=scenario,
            batch_size=args.batch_size,
            n_batches=args.n_batches,
            seed=args.seed,
            start_date=args.start_date,
            batch_interval=args.batch_interval,
            request_size=args.request_size,
            api_key=api_key,
            progress=progress,
            id_column=settings.id_column or None,
            outcomes=args.outcomes,
        )
        print(summary.table())
        _say_when(args.start_date)
        return summary
    from credit_drift.data.loader import load_pool
    from credit_drift.model.artifacts import load_artifacts

    artifacts = load_artifacts(settings.artifacts_dir)
    if not pool_path.is_file():
        raise SimulatorError(
            f"pool of unseen applications {pool_path} does not exist: run `credit-drift "
            "generate-data` (it writes data/pool.parquet) or pass --pool"
        )
    pool = load_pool(pool_path, artifacts.schema)
    application_ids = load_pool_ids(pool_path, settings.id_column)
    warn_inert_batches(
        pool,
        scenario,
        args.n_batches if args.mode == "replay" else args.days,
        DEFAULT_DRIFT_CONFIG,
    )
    if args.mode == "replay":
        summary = replay(
            database_url=settings.database_url,
            artifacts=artifacts,
            pool=pool,
            scenario=scenario,
            batch_size=args.batch_size,
            n_batches=args.n_batches,
            seed=args.seed,
            start_date=args.start_date,
            batch_interval=args.batch_interval,
            progress=progress,
            application_ids=application_ids,
            outcomes=args.outcomes,
        )
        print(summary.table())
        _say_when(args.start_date)
        return summary
    backfill = bulk_backfill(
        database_url=settings.database_url,
        artifacts=artifacts,
        pool=pool,
        scenario=scenario,
        days=args.days,
        rows_per_day=args.rows_per_day,
        start_date=args.start_date or settings.partitions_start,
        seed=args.seed,
        progress=progress,
        application_ids=application_ids,
        outcomes=args.outcomes,
    )
    print(
        f"{backfill.n_rows} predictions on {len(backfill.days)} days "
        f"({backfill.days[0]} .. {backfill.days[-1]}) in {backfill.elapsed_s:.1f} s: "
        f"{backfill.rows_per_second:,.0f} rows/s (scoring {backfill.scoring_s:.1f} s, "
        f"writing {backfill.writing_s:.1f} s)"
    )
    if backfill.outcomes is not None:
        print(f"outcomes: {backfill.outcomes.line()}")
    return backfill


def _say_when(start_date: str | None) -> None:
    """Without --start-date every prediction is logged now: say which day that fills and when it
    can be analysed, since the daily partitions only cover days that are over."""
    if start_date:
        return
    today = dt.datetime.now(dt.UTC).date()
    print(
        f"logged at the current time: the window of {today} (UTC) can be materialized once the "
        "day is over. To place each batch on its own past day, pass --start-date (e.g. "
        "2026-11-01; over HTTP the API must run with CREDIT_DRIFT_ALLOW_REPLAY=1)"
    )
