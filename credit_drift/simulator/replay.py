"""Writing simulated traffic straight into the prediction log, without HTTP.

Two modes, both scoring with the real model and writing through the same storage code as the API
(`serving.service.ScoringService` -> `storage.predictions`):

- `replay`: the scenario's batches, scored and logged batch by batch with the event times of
  their day (`source = 'replay'`). What `credit-drift simulate --mode replay` runs: the way to
  place traffic on past days without opening the live API to forged times.
- `bulk_backfill`: large volumes for benchmarks (e.g. 100,000 predictions a day for 30 days),
  drawn and drifted in chunks, scored in batches and written with
  `storage.predictions.bulk_insert_predictions` (binary COPY on PostgreSQL), `created_at`
  spread evenly across each day (`source = 'bulk'`).
"""

import datetime as dt
import functools
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from credit_drift.errors import CreditDriftError
from credit_drift.simulator.drift import DEFAULT_DRIFT_CONFIG, DriftConfig
from credit_drift.simulator.outcomes import (
    OUTCOME_STREAM,
    OutcomeDelivery,
    outcomes_of_batch,
    outcomes_of_rows,
)
from credit_drift.simulator.scenario import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_INTERVAL,
    DEFAULT_SEED,
    PoolSampler,
    Scenario,
    ScenarioError,
    TrafficBatch,
    iter_traffic,
    load_scenario,
    parse_start,
    population_stats,
    selected_batches,
)

#: Rows drawn, drifted, scored and written at a time by `bulk_backfill` (bounds memory: about
#: 3.4 KB per row at 419 features, several copies in flight).
DEFAULT_BULK_CHUNK_ROWS = 20_000


class SimulatorError(CreditDriftError, RuntimeError):
    """The simulator cannot run as asked (pool, API, database); the message says why."""


@dataclass(frozen=True)
class BatchOutcome:
    """What one batch of simulated traffic produced."""

    index: int
    name: str
    kind: str
    intensity: float
    start: dt.datetime | None
    n_sent: int
    n_logged: int
    n_failed: int
    refused_share: float
    mean_probability: float

    @classmethod
    def of(
        cls, batch: TrafficBatch, n_sent: int, n_failed: int, probabilities, decisions
    ) -> "BatchOutcome":
        """The outcome of `batch` from the answers that came back (refusal share and mean
        probability NaN when none did)."""
        probabilities = np.asarray(probabilities, dtype=np.float64)
        decisions = np.asarray(decisions, dtype=object)
        return cls(
            index=batch.index,
            name=batch.spec.name,
            kind=batch.spec.kind,
            intensity=batch.spec.intensity,
            start=batch.start,
            n_sent=n_sent,
            n_logged=len(probabilities),
            n_failed=n_failed,
            refused_share=float(np.mean(decisions == "REFUSED")) if decisions.size else np.nan,
            mean_probability=float(probabilities.mean()) if probabilities.size else np.nan,
        )


@dataclass(frozen=True)
class SimulationSummary:
    mode: str
    scenario: str
    batches: tuple[BatchOutcome, ...]
    elapsed_s: float
    #: What the simulated outcomes delivery did (`simulator.outcomes.OutcomeDelivery`), when
    #: outcomes were asked for.
    outcomes: Any = None

    @property
    def n_logged(self) -> int:
        return sum(b.n_logged for b in self.batches)

    @property
    def n_failed(self) -> int:
        return sum(b.n_failed for b in self.batches)

    def table(self) -> str:
        """A plain-text table, one line per batch."""
        lines = [
            f"{'batch':>5}  {'drift':<22}{'day (UTC)':<12}{'logged':>8}{'failed':>8}"
            f"{'refused':>9}{'mean p':>8}"
        ]
        for b in self.batches:
            day = b.start.date().isoformat() if b.start else "now"
            lines.append(
                f"{b.index + 1:>5}  {b.name:<22}{day:<12}{b.n_logged:>8}{b.n_failed:>8}"
                f"{b.refused_share:>9.1%}{b.mean_probability:>8.3f}"
            )
        lines.append(
            f"{self.n_logged} predictions logged, {self.n_failed} failed, "
            f"in {self.elapsed_s:.1f} s ({self.mode})"
        )
        if self.outcomes is not None:
            lines.append(f"outcomes: {self.outcomes.line()}")
        return "\n".join(lines)


def read_pool(path: str | Path, feature_names: Sequence[str]) -> pd.DataFrame:
    """The unseen applications (Parquet or CSV), restricted to the model's features in order."""
    path = Path(path)
    if not path.is_file():
        raise SimulatorError(
            f"pool of unseen applications {path} does not exist: run `credit-drift "
            "generate-data` (it writes data/pool.parquet) or pass --pool"
        )
    frame = pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    missing = [n for n in feature_names if n not in frame.columns]
    if missing:
        raise SimulatorError(
            f"pool {path} lacks {len(missing)} model feature(s): {', '.join(missing[:10])}"
        )
    if frame.empty:
        raise SimulatorError(f"pool {path} has no rows")
    return frame.loc[:, list(feature_names)].reset_index(drop=True)


def _service(artifacts: Any, database_url: str):
    from credit_drift.serving.config import ServingConfig
    from credit_drift.serving.service import ScoringService

    # No per-call deadline: a bulk chunk of thousands of rows may take longer than a request.
    config = ServingConfig(database_timeout_seconds=None)
    return ScoringService(artifacts, database_url, config=config, allow_event_time=True)


def _progress(total: int, enabled: bool, unit: str):
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, disable=not enabled, dynamic_ncols=True)


def replay(
    *,
    database_url: str,
    artifacts: Any,
    pool: pd.DataFrame,
    scenario: Scenario | str = "notebook",
    batch_size: int = DEFAULT_BATCH_SIZE,
    n_batches: int | None = None,
    seed: int = DEFAULT_SEED,
    start_date: str | dt.date | dt.datetime | None = None,
    batch_interval: str | dt.timedelta = DEFAULT_INTERVAL,
    config: DriftConfig = DEFAULT_DRIFT_CONFIG,
    progress: bool = True,
    application_ids: Sequence[str | None] | np.ndarray | None = None,
    outcomes: bool = False,
) -> SimulationSummary:
    """Score and log the scenario's traffic directly (no HTTP), each batch on its own day
    when `start_date` is given (otherwise at the current time). `application_ids`: one id per
    pool row (`load_pool_ids`), logged with the predictions drawn from that row. `outcomes`:
    also draw each application's outcome (`simulator.outcomes`) and record those observed by
    now (source 'simulator'; the others are counted as pending, not written)."""
    scenario = load_scenario(scenario) if isinstance(scenario, str | Path) else scenario
    ids_of = pool_application_ids(application_ids, len(pool))
    _check_outcome_ids(outcomes, application_ids)
    drawn = []
    service = _service(artifacts, database_url)
    run_id = uuid.uuid4().hex[:12]
    specs = selected_batches(scenario, n_batches)
    total = sum(s.size or batch_size for s in specs)
    results: list[BatchOutcome] = []
    t0 = time.perf_counter()
    with _progress(total, progress, "app") as bar:
        for batch in iter_traffic(
            pool,
            scenario,
            batch_size=batch_size,
            n_batches=n_batches,
            seed=seed,
            start=start_date,
            interval=batch_interval,
            config=config,
        ):
            bar.set_description(f"batch {batch.index + 1}/{len(specs)} {batch.spec.name}")
            ids = [f"replay-{run_id}-{batch.index}-{k}" for k in range(len(batch))]
            scored = service.score_frame(
                batch.frame[service.schema.names],
                request_ids=ids,
                created_at=batch.event_times(),
                source="replay",
                application_ids=ids_of(batch.pool_rows),
            )
            results.append(
                BatchOutcome.of(batch, len(batch), 0, scored.probability, scored.decision)
            )
            if outcomes:
                drawn.append(
                    outcomes_of_batch(
                        batch, application_ids, seed=seed, maturity_days=scenario.maturity_days
                    )
                )
            bar.update(len(batch))
    delivery = _deliver(service, drawn) if outcomes else None
    return SimulationSummary(
        "replay", scenario.name, tuple(results), time.perf_counter() - t0, delivery
    )


def _check_outcome_ids(outcomes: bool, application_ids) -> None:
    if outcomes and application_ids is None:
        raise SimulatorError(
            "simulated outcomes are linked to predictions by application id: the pool has no "
            "id column (CREDIT_DRIFT_ID_COLUMN)"
        )


def _deliver(service, drawn):
    return service.gate.run(functools.partial(_deliver_with, drawn))


def _deliver_with(drawn, engine):
    from credit_drift.simulator.outcomes import deliver_outcomes

    return deliver_outcomes(engine, drawn)


@dataclass(frozen=True)
class BackfillSummary:
    days: tuple[str, ...]
    rows_per_day: int
    n_rows: int
    elapsed_s: float
    scoring_s: float
    writing_s: float
    #: The simulated outcomes delivery (`OutcomeDelivery`), when outcomes were asked for.
    outcomes: OutcomeDelivery | None = None

    @property
    def rows_per_second(self) -> float:
        return self.n_rows / self.elapsed_s if self.elapsed_s > 0 else float("nan")


def pool_application_ids(
    application_ids: Sequence[str | None] | np.ndarray | None, n_pool: int
) -> Callable[[np.ndarray], list | None]:
    """rows of the pool -> their application ids (None when the pool has none)."""
    if application_ids is None:
        return lambda rows: None
    ids = np.asarray(application_ids, dtype=object)
    if ids.shape != (n_pool,):
        raise SimulatorError(
            f"application_ids has {ids.size} values for a pool of {n_pool} applications"
        )
    return lambda rows: ids[rows].tolist()


def _bulk_write(
    schema, service, created, matrix, cats, proba, decision, ids, app_ids, engine
) -> int:
    from credit_drift.storage.predictions import bulk_insert_predictions

    return bulk_insert_predictions(
        engine,
        schema,
        created_at=created,
        matrix=matrix,
        categorical=cats,
        probability=proba,
        decision=decision,
        threshold=service.threshold,
        model_version=service.model_version,
        request_ids=ids,
        application_ids=app_ids,
        source="bulk",
    )


def bulk_backfill(
    *,
    database_url: str,
    artifacts: Any,
    pool: pd.DataFrame,
    scenario: Scenario | str | None = None,
    days: int | None = None,
    rows_per_day: int = 100_000,
    start_date: str | dt.date | dt.datetime = "2026-11-01",
    seed: int = DEFAULT_SEED,
    chunk_rows: int = DEFAULT_BULK_CHUNK_ROWS,
    config: DriftConfig = DEFAULT_DRIFT_CONFIG,
    progress: bool = True,
    application_ids: Sequence[str | None] | np.ndarray | None = None,
    outcomes: bool = False,
) -> BackfillSummary:
    """Fill `days` consecutive UTC days from `start_date` with `rows_per_day` scored
    predictions each. Day i follows the scenario's batch i (default: every day clean); each
    day's rows are drawn from the pool (reshuffled when exhausted), drifted chunk by chunk,
    scored with the model and bulk-inserted, `created_at` evenly spread over the day.
    `application_ids`: one id per pool row, logged with the predictions drawn from it.
    `outcomes`: also draw each row's outcome and record those observed by now (as `replay`),
    chunk by chunk (chunk `lo` of day i draws from the stream (seed, i + 1, lo, 7))."""
    _check_outcome_ids(outcomes, application_ids)
    delivery: OutcomeDelivery | None = None
    if rows_per_day < 1 or chunk_rows < 1:
        raise ScenarioError("rows_per_day and chunk_rows must be positive")
    if scenario is None:
        scenario = Scenario.constant("clean", days or 1)
    elif isinstance(scenario, str | Path):
        scenario = load_scenario(scenario)
    specs = selected_batches(scenario, days)
    start = parse_start(start_date)
    if start is None:
        raise ScenarioError("bulk_backfill needs a start date")
    service = _service(artifacts, database_url)
    schema, names = service.schema, service.schema.names
    frame_pool = pool.loc[:, names]
    ids_of = pool_application_ids(application_ids, len(frame_pool))
    sampler = PoolSampler(len(frame_pool), np.random.default_rng([seed, 0]))
    stats = population_stats(frame_pool, specs)
    run_id = uuid.uuid4().hex[:12]
    scoring_s = writing_s = 0.0
    day_keys: list[str] = []
    t0 = time.perf_counter()
    step_us = 86_400_000_000 / rows_per_day
    with _progress(len(specs) * rows_per_day, progress, "row") as bar:
        for i, spec in enumerate(specs):
            if isinstance(spec.day, dt.date):
                day_start = dt.datetime(spec.day.year, spec.day.month, spec.day.day)
            else:
                offset = spec.day if spec.day is not None else i
                day_start = start.replace(tzinfo=None) + dt.timedelta(days=offset)
            day_keys.append(day_start.date().isoformat())
            bar.set_description(f"day {day_keys[-1]} {spec.name}")
            base = np.datetime64(day_start, "us")
            for lo in range(0, rows_per_day, chunk_rows):
                hi = min(lo + chunk_rows, rows_per_day)
                rng = np.random.default_rng([seed, i + 1, lo])
                rows = sampler.take(hi - lo)
                chunk = frame_pool.iloc[rows].reset_index(drop=True)
                chunk = spec.drift(chunk, rng, config, stats)
                t1 = time.perf_counter()
                matrix, raw = schema.pack_frame(chunk)
                proba = service.predict(matrix)
                decision = service.decide(proba)
                scoring_s += time.perf_counter() - t1
                offsets = ((np.arange(lo, hi) + 0.5) * step_us).astype(np.int64)
                created = base + offsets.astype("timedelta64[us]")
                cats = raw if any(r for r in raw) else None
                t2 = time.perf_counter()
                ids = [f"bulk-{run_id}-{i}-{k}" for k in range(lo, hi)]
                service.gate.run(
                    functools.partial(
                        _bulk_write,
                        schema,
                        service,
                        created,
                        matrix,
                        cats,
                        proba,
                        decision,
                        ids,
                        ids_of(rows),
                    )
                )
                writing_s += time.perf_counter() - t2
                if outcomes:
                    drawn = outcomes_of_rows(
                        i,
                        chunk,
                        ids_of(rows),
                        created,
                        rng=np.random.default_rng([seed, i + 1, lo, OUTCOME_STREAM]),
                        concept_shift=spec.concept_shift,
                        maturity_days=scenario.maturity_days,
                    )
                    done = _deliver(service, [drawn])
                    delivery = done if delivery is None else delivery + done
                bar.update(hi - lo)
    return BackfillSummary(
        days=tuple(day_keys),
        rows_per_day=rows_per_day,
        n_rows=rows_per_day * len(specs),
        elapsed_s=time.perf_counter() - t0,
        scoring_s=scoring_s,
        writing_s=writing_s,
        outcomes=delivery,
    )
