"""What happened to the simulated applications after their decision: each one's default, drawn
from the generator's own risk model, observed some days later.

The generator draws `TARGET` as Bernoulli(sigmoid(`risk_logit`(features))). The simulator draws
each sent application's outcome the same way, from the features **as sent** (after the batch's
covariate drift: an older, more indebted applicant is riskier by the same rule), plus the
batch's `concept_shift` added to the log-odds (a downturn: the same applicant defaults more
often, which no feature shows). So a covariate drift moves the features and the default rate
together, and a model that learned the rule stays calibrated; a concept shift moves the default
rate alone.

Seeded: batch i of a run with seed s draws from its own stream `(s, i + 1, OUTCOME_STREAM)`, apart
from the drift's `(s, i + 1)`: same traffic and seed, same outcomes, and a concept shift uses the
same uniforms (an applicant who defaults without it also defaults with it).

Timing: an outcome is observed `Scenario.maturity_days` after its application was scored.
`deliver_outcomes` writes, through `storage.outcomes.record_outcomes` (source 'simulator'), only
the outcomes already observed at `as_of` (default: now); the others are counted as pending and
not written (a row in `outcomes` means the outcome is known; writing a future one would let a
day look matured before it is). Run the same traffic again later (same seed) to deliver them:
outcomes already written come back `unchanged`.
"""

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from credit_drift.errors import CreditDriftError
from credit_drift.simulator.scenario import Scenario, TrafficBatch

#: The tag of the outcome streams: batch i of seed s draws from default_rng([s, i + 1, 7]).
OUTCOME_STREAM = 7
#: `storage.outcomes` source of the simulator's outcomes.
SOURCE = "simulator"


class OutcomeSimulationError(CreditDriftError, ValueError):
    """The simulator cannot draw outcomes for this traffic (e.g. a pool without the generator's
    columns); the message says what is missing."""


@dataclass(frozen=True, eq=False)
class BatchOutcomes:
    """The outcomes of one batch of traffic, row for row with the batch's applications."""

    index: int
    application_id: np.ndarray  # str
    default_probability: np.ndarray  # the risk model's, concept shift included
    outcome: np.ndarray  # int 0/1
    predicted_at: np.ndarray  # datetime64[us] (UTC)
    observed_at: np.ndarray  # datetime64[us] (UTC)
    concept_shift: float

    def __len__(self) -> int:
        return len(self.outcome)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "application_id": self.application_id,
                "default_probability": self.default_probability,
                "outcome": self.outcome,
                "predicted_at": self.predicted_at,
                "observed_at": self.observed_at,
            }
        )


def default_probability(frame: pd.DataFrame, concept_shift: float = 0.0) -> np.ndarray:
    """sigmoid(risk_logit(frame) + concept_shift): the generator's probability of default for
    these applications (features as sent), shifted by the concept drift."""
    from credit_drift.data.generator import risk_logit

    try:
        logit = risk_logit(frame)
    except KeyError as exc:
        raise OutcomeSimulationError(
            f"the applications lack the column {exc.args[0]!r} of the generator's risk model: "
            "simulated outcomes need traffic drawn from the synthetic data (credit-drift "
            "generate-data)"
        ) from None
    return expit(logit + float(concept_shift))


def draw_outcomes(
    frame: pd.DataFrame, rng: np.random.Generator, concept_shift: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """(probability, outcome): each application defaults with its `default_probability`."""
    probability = default_probability(frame, concept_shift)
    return probability, (rng.random(len(probability)) < probability).astype(np.int64)


def outcome_rng(seed: int, batch_index: int) -> np.random.Generator:
    return np.random.default_rng([seed, batch_index + 1, OUTCOME_STREAM])


def _utc_us(times: Sequence[dt.datetime]) -> np.ndarray:
    return np.array(
        [t.astimezone(dt.UTC).replace(tzinfo=None) for t in times], dtype="datetime64[us]"
    )


def outcomes_of_batch(
    batch: TrafficBatch,
    application_ids: pd.Series | Sequence[Any],
    *,
    seed: int,
    maturity_days: float,
    now: dt.datetime | None = None,
) -> BatchOutcomes:
    """The outcomes of `batch`. application_ids: the id of every pool row (aligned with the
    pool the batch was drawn from; the batch's rows are `batch.pool_rows`). A batch not placed
    in time was scored at `now`."""
    ids = np.asarray(application_ids, dtype=object)[batch.pool_rows]
    times = batch.event_times()
    if times is None:
        times = [now or dt.datetime.now(dt.UTC)] * len(batch)
    return outcomes_of_rows(
        batch.index,
        batch.frame,
        ids,
        _utc_us(times),
        rng=outcome_rng(seed, batch.index),
        concept_shift=batch.spec.concept_shift,
        maturity_days=maturity_days,
    )


def outcomes_of_rows(
    index: int,
    frame: pd.DataFrame,
    application_ids: Sequence[Any] | np.ndarray,
    predicted_at: np.ndarray,
    *,
    rng: np.random.Generator,
    concept_shift: float,
    maturity_days: float,
) -> BatchOutcomes:
    """The outcomes of applications `frame` (as sent) scored at `predicted_at` (datetime64,
    UTC), observed `maturity_days` later. Every application needs an id to link its outcome."""
    ids = np.asarray(application_ids, dtype=object)
    if len(ids) != len(frame) or any(i is None for i in ids):
        raise OutcomeSimulationError(
            "simulated outcomes need an application id for every application (the pool's id "
            "column, e.g. SK_ID_CURR)"
        )
    probability, outcome = draw_outcomes(frame, rng, concept_shift)
    predicted = np.asarray(predicted_at, dtype="datetime64[us]")
    delay = np.timedelta64(int(round(maturity_days * 86_400_000_000)), "us")
    return BatchOutcomes(
        index=index,
        application_id=np.array([str(i) for i in ids], dtype=object),
        default_probability=probability,
        outcome=outcome,
        predicted_at=predicted,
        observed_at=predicted + delay,
        concept_shift=float(concept_shift),
    )


def simulate_outcomes(
    pool: pd.DataFrame,
    application_ids: pd.Series | Sequence[Any],
    scenario: Scenario,
    *,
    seed: int,
    now: dt.datetime | None = None,
    **traffic: Any,
) -> list[BatchOutcomes]:
    """The outcomes of the traffic `iter_traffic(pool, scenario, seed=seed, **traffic)` sends
    (the same batches, row for row: plan the traffic and its outcomes with the same arguments)."""
    from credit_drift.simulator.scenario import iter_traffic

    if len(application_ids) != len(pool):
        raise OutcomeSimulationError(
            f"{len(application_ids)} application ids for a pool of {len(pool)} rows"
        )
    return [
        outcomes_of_batch(
            batch, application_ids, seed=seed, maturity_days=scenario.maturity_days, now=now
        )
        for batch in iter_traffic(pool, scenario, seed=seed, **traffic)
    ]


@dataclass(frozen=True)
class OutcomeDelivery:
    """What `deliver_outcomes` did: outcomes written (the storage summary's counts) and those
    not observed yet at `as_of` (not written)."""

    as_of: dt.datetime
    n_observed: int
    n_pending: int
    summary: Any  # storage.outcomes.OutcomeWriteSummary, or None when nothing was observed

    def __add__(self, other: "OutcomeDelivery") -> "OutcomeDelivery":
        """Two deliveries' counts together (chunk after chunk)."""
        a, b = self.summary, other.summary
        if a is None or b is None:
            summary = a if b is None else b
        else:
            summary = type(a)(
                inserted=a.inserted + b.inserted,
                unchanged=a.unchanged + b.unchanged,
                updated=a.updated + b.updated,
                unknown_ids=a.unknown_ids + b.unknown_ids,
                conflicts=[*a.conflicts, *b.conflicts],
            )
        return OutcomeDelivery(
            max(self.as_of, other.as_of),
            self.n_observed + other.n_observed,
            self.n_pending + other.n_pending,
            summary,
        )

    def line(self) -> str:
        s = self.summary
        written = (
            f"{s.inserted} new, {s.unchanged} unchanged, {s.updated} updated"
            if s is not None
            else "none written"
        )
        return (
            f"{self.n_observed} outcome(s) observed by {self.as_of:%Y-%m-%d %H:%M} UTC "
            f"({written}); {self.n_pending} not observed yet (not written)"
        )


def deliver_outcomes(
    engine: Any, batches: Iterable[BatchOutcomes], *, as_of: dt.datetime | None = None
) -> OutcomeDelivery:
    """Write the outcomes observed at or before `as_of` (default now) with source 'simulator';
    count the others as pending."""
    from credit_drift.storage.outcomes import OutcomeRow, record_outcomes

    as_of, due, pending = observed_by(batches, as_of)
    rows = [OutcomeRow(app_id, outcome, when, SOURCE) for app_id, outcome, when in due]
    summary = record_outcomes(engine, rows) if rows else None
    return OutcomeDelivery(as_of, len(rows), pending, summary)


def observed_by(
    batches: Iterable[BatchOutcomes], as_of: dt.datetime | None = None
) -> tuple[dt.datetime, list[tuple[str, int, dt.datetime]], int]:
    """(as_of in UTC, the (application id, outcome, observed_at) observed at or before it, the
    number of the others): what may be recorded now (default as_of: now)."""
    as_of = (as_of or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    cutoff = np.datetime64(as_of.replace(tzinfo=None), "us")
    due_rows: list[tuple[str, int, dt.datetime]] = []
    pending = 0
    for b in batches:
        due = b.observed_at <= cutoff
        pending += int((~due).sum())
        for app_id, outcome, observed in zip(
            b.application_id[due], b.outcome[due], b.observed_at[due], strict=True
        ):
            when = observed.astype("datetime64[us]").item().replace(tzinfo=dt.UTC)
            due_rows.append((str(app_id), int(outcome), when))
    return as_of, due_rows, pending
