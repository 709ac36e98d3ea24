"""Drift scenarios as data, and the seeded traffic they produce.

A scenario is a list of batches, each with a drift kind, an intensity and optionally a day and a
size. It is written as JSON (shipped ones live in `simulator/scenarios/*.json`; `notebook` is the
default, the reference notebook's 8 batches)::

    {"name": "notebook",
     "description": "...",
     "batches": [{"kind": "clean"}, {"kind": "gradual", "intensity": 0.1},
                 {"kind": "sudden", "intensity": 0.7, "day": 7, "size": 200}]}

``day`` is either a number of days after the start date or an ISO date (``"2026-11-08"``);
without it, batch i is placed ``i`` batch intervals after the start date. A generic kind
(``shift``, ``scale``, ``category_mix``, ``missing``) also takes ``columns`` (a list of names)
or ``column_share`` (a fixed random share of the columns it applies to). `plan_traffic` turns a
scenario and the unseen pool into batches of drifted applications; same pool, scenario and seed,
same traffic, row for row.

Outcomes (`simulator.outcomes`): a batch's ``concept_shift`` (a number added to the log-odds of
default of every applicant of the batch, default 0; a downturn is positive: the same applicant
defaults more often) changes what happens after the decision, not what the model sees; the
scenario's ``maturity_days`` (default `DEFAULT_MATURITY_DAYS`) is how long after its scoring an
application's outcome is observed.
"""

import datetime as dt
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from credit_drift.errors import CreditDriftError
from credit_drift.simulator.drift import (
    DEFAULT_DRIFT_CONFIG,
    DRIFT_KINDS,
    GENERIC_KINDS,
    ColumnStats,
    DriftConfig,
    DriftError,
    apply_drift,
    check_intensity,
)

SCENARIOS_DIR = Path(__file__).resolve().parent / "scenarios"
DEFAULT_SCENARIO = "notebook"
DEFAULT_BATCH_SIZE = 50
DEFAULT_SEED = 42
DEFAULT_INTERVAL = dt.timedelta(days=1)
#: Days between an application's scoring and the observation of its outcome, when a scenario
#: does not say.
DEFAULT_MATURITY_DAYS = 30.0
#: The largest concept shift a batch may ask for (log-odds; 5 multiplies the odds by 148).
MAX_CONCEPT_SHIFT = 5.0

_BATCH_KEYS = {
    "kind",
    "intensity",
    "day",
    "size",
    "label",
    "columns",
    "column_share",
    "concept_shift",
    "segment",
}


class ScenarioError(CreditDriftError, ValueError):
    """A scenario file or a traffic request is invalid; the message names the bad field."""


@dataclass(frozen=True)
class BatchSpec:
    """One batch of a scenario. `day`: days after the start date (int) or an absolute date;
    `size`: applications in this batch (default: the run's batch size)."""

    kind: str
    intensity: float = 0.0
    day: int | dt.date | None = None
    size: int | None = None
    label: str | None = None
    #: Generic kinds only: the columns to drift, or a share of the eligible ones.
    columns: tuple[str, ...] | None = None
    column_share: float | None = None
    #: Added to every applicant's log-odds of default when the simulator draws outcomes (a
    #: concept drift: the model's inputs do not change, the outcomes do).
    concept_shift: float = 0.0
    #: Only the rows of one segment drift: {"column": name, "value": v} (v compared as text:
    #: 1, 1.0 and "1" are one value); the other rows of the batch stay clean.
    segment: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        shift = self.concept_shift
        if (
            isinstance(shift, bool)
            or not isinstance(shift, int | float)
            or not abs(shift) <= MAX_CONCEPT_SHIFT
        ):
            raise ScenarioError(
                f"concept_shift {shift!r} must be a number of log-odds between "
                f"-{MAX_CONCEPT_SHIFT:g} and {MAX_CONCEPT_SHIFT:g}"
            )
        object.__setattr__(self, "concept_shift", float(shift))
        try:
            object.__setattr__(self, "intensity", check_intensity(self.kind, self.intensity))
        except DriftError as exc:
            raise ScenarioError(str(exc)) from None
        if self.columns is not None or self.column_share is not None:
            if self.kind not in GENERIC_KINDS:
                raise ScenarioError(
                    f"{self.kind}: columns and column_share apply to {', '.join(GENERIC_KINDS)}"
                )
            if self.columns is not None and self.column_share is not None:
                raise ScenarioError("give either columns or column_share, not both")
        if self.columns is not None:
            if isinstance(self.columns, str) or not all(isinstance(c, str) for c in self.columns):
                raise ScenarioError(f"columns {self.columns!r} must be a list of column names")
            object.__setattr__(self, "columns", tuple(self.columns))
        if self.column_share is not None:
            share = self.column_share
            if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share <= 1:
                raise ScenarioError(f"column_share {share!r} must be a number in (0, 1]")
        if isinstance(self.day, bool) or (isinstance(self.day, int) and self.day < 0):
            raise ScenarioError(f"day {self.day!r} must be a non-negative number of days")
        if self.size is not None and (isinstance(self.size, bool) or self.size < 1):
            raise ScenarioError(f"size {self.size!r} must be a positive number of applications")
        if self.segment is not None:
            seg = self.segment
            if (
                not isinstance(seg, Mapping)
                or set(seg) != {"column", "value"}
                or not isinstance(seg["column"], str)
            ):
                raise ScenarioError(
                    f"segment {seg!r} must be an object with 'column' (a name) and 'value'"
                )
            object.__setattr__(self, "segment", dict(seg))

    @property
    def name(self) -> str:
        if self.label:
            return self.label
        name = "clean" if self.kind == "clean" else f"{self.kind} {self.intensity:g}"
        return f"{name}, concept {self.concept_shift:+g}" if self.concept_shift else name

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind != "clean":
            out["intensity"] = self.intensity
        if self.day is not None:
            out["day"] = self.day if isinstance(self.day, int) else self.day.isoformat()
        if self.size is not None:
            out["size"] = self.size
        if self.label is not None:
            out["label"] = self.label
        if self.columns is not None:
            out["columns"] = list(self.columns)
        if self.column_share is not None:
            out["column_share"] = self.column_share
        if self.concept_shift:
            out["concept_shift"] = self.concept_shift
        if self.segment is not None:
            out["segment"] = dict(self.segment)
        return out

    def drift(
        self,
        frame: pd.DataFrame,
        rng: np.random.Generator,
        config: DriftConfig = DEFAULT_DRIFT_CONFIG,
        stats: ColumnStats | None = None,
    ) -> pd.DataFrame:
        """`frame` with this batch's drift applied (`stats`: the population's, for the generic
        kinds); with a `segment`, to that segment's rows only."""

        def drift(part: pd.DataFrame) -> pd.DataFrame:
            return apply_drift(
                part,
                self.kind,
                self.intensity,
                rng,
                config,
                columns=self.columns,
                column_share=self.column_share,
                stats=stats,
            )

        if self.segment is None:
            return drift(frame)
        rows = segment_rows(frame, self.segment["column"], self.segment["value"])
        out = frame.copy()
        drifted = drift(frame.loc[rows])
        for column in out.columns:
            if not drifted[column].equals(frame.loc[rows, column]):
                new = drifted[column].to_numpy()
                try:
                    dtype = np.result_type(out[column].dtype, new.dtype)
                except TypeError:
                    dtype = np.dtype(object)
                values = out[column].to_numpy(dtype=dtype, copy=True)
                values[rows] = new
                out[column] = values
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "batch") -> "BatchSpec":
        if not isinstance(data, Mapping):
            raise ScenarioError(f"{where}: expected an object, got {type(data).__name__}")
        unknown = sorted(set(data) - _BATCH_KEYS)
        if unknown:
            raise ScenarioError(f"{where}: unknown keys {unknown}; allowed: {sorted(_BATCH_KEYS)}")
        if "kind" not in data:
            raise ScenarioError(f"{where}: missing 'kind' (one of {', '.join(DRIFT_KINDS)})")
        day = data.get("day")
        if isinstance(day, str):
            try:
                day = dt.date.fromisoformat(day)
            except ValueError:
                raise ScenarioError(f"{where}: day {day!r} is not an ISO date") from None
        elif day is not None and not isinstance(day, int):
            raise ScenarioError(f"{where}: day {day!r} must be an integer or an ISO date")
        size = data.get("size")
        if size is not None and not isinstance(size, int):
            raise ScenarioError(f"{where}: size {size!r} must be an integer")
        try:
            return cls(
                segment=data.get("segment"),
                kind=str(data["kind"]),
                intensity=data.get("intensity", 0.0),
                day=day,
                size=size,
                label=data.get("label"),
                columns=data.get("columns"),
                column_share=data.get("column_share"),
                concept_shift=data.get("concept_shift", 0.0),
            )
        except ScenarioError as exc:
            raise ScenarioError(f"{where}: {exc}") from None


def segment_rows(frame: pd.DataFrame, column: str, value: Any) -> np.ndarray:
    """Boolean mask of the rows whose `column` equals `value` (numbers compared as numbers,
    anything else as text)."""
    if column not in frame.columns:
        raise ScenarioError(f"segment column {column!r} is not in the traffic's columns")
    col = frame[column]
    if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
        try:
            target = float(value)
        except (TypeError, ValueError):
            raise ScenarioError(
                f"segment column {column!r} is numeric; value {value!r} is not a number"
            ) from None
        return col.to_numpy(np.float64, na_value=np.nan) == target
    return (
        col.astype(object).map(lambda v: None if pd.isna(v) else str(v)) == str(value)
    ).to_numpy()


@dataclass(frozen=True)
class Scenario:
    name: str
    batches: tuple[BatchSpec, ...]
    description: str = ""
    #: Days from an application's scoring to the observation of its outcome.
    maturity_days: float = DEFAULT_MATURITY_DAYS

    def __post_init__(self) -> None:
        if not self.batches:
            raise ScenarioError(f"scenario {self.name!r} has no batches")
        days = self.maturity_days
        if isinstance(days, bool) or not isinstance(days, int | float) or not 0 <= days <= 3660:
            raise ScenarioError(
                f"maturity_days {days!r} must be a number of days between 0 and 3660"
            )
        object.__setattr__(self, "maturity_days", float(days))

    def __len__(self) -> int:
        return len(self.batches)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "maturity_days": self.maturity_days,
            "batches": [b.to_dict() for b in self.batches],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: Any, default_name: str = "custom") -> "Scenario":
        if isinstance(data, list):
            data = {"batches": data}
        if not isinstance(data, Mapping):
            raise ScenarioError("a scenario is a JSON object with 'batches' (or a list of batches)")
        unknown = sorted(set(data) - {"name", "description", "batches", "maturity_days"})
        if unknown:
            raise ScenarioError(f"scenario: unknown keys {unknown}")
        batches = data.get("batches")
        if not isinstance(batches, list) or not batches:
            raise ScenarioError("scenario: 'batches' must be a non-empty list")
        return cls(
            name=str(data.get("name", default_name)),
            description=str(data.get("description", "")),
            batches=tuple(BatchSpec.from_dict(b, f"batch {i + 1}") for i, b in enumerate(batches)),
            maturity_days=data.get("maturity_days", DEFAULT_MATURITY_DAYS),
        )

    @classmethod
    def constant(cls, kind: str, n_batches: int, intensity: float = 0.0) -> "Scenario":
        """`n_batches` batches of one kind (e.g. a clean baseline)."""
        return cls(
            name=f"{kind}-{intensity:g}x{n_batches}",
            batches=tuple(BatchSpec(kind, intensity) for _ in range(n_batches)),
        )


def available_scenarios() -> list[str]:
    """Names of the scenarios shipped with the package."""
    return sorted(p.stem for p in SCENARIOS_DIR.glob("*.json"))


def load_scenario(name_or_path: str | Path = DEFAULT_SCENARIO) -> Scenario:
    """A shipped scenario by name (`notebook`), or a JSON file by path."""
    path = Path(name_or_path)
    if not path.is_file():
        shipped = SCENARIOS_DIR / f"{name_or_path}.json"
        if not shipped.is_file():
            raise ScenarioError(
                f"scenario {str(name_or_path)!r} is neither a file nor a shipped scenario "
                f"({', '.join(available_scenarios())})"
            )
        path = shipped
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"scenario file {path}: invalid JSON: {exc}") from None
    try:
        return Scenario.from_dict(data, default_name=path.stem)
    except ScenarioError as exc:
        raise ScenarioError(f"scenario file {path}: {exc}") from None


def default_scenario() -> Scenario:
    return load_scenario(DEFAULT_SCENARIO)


# -- time -------------------------------------------------------------------------------------
_INTERVAL_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([dhms])\s*$")
_UNIT_SECONDS = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}


def parse_interval(text: str | dt.timedelta) -> dt.timedelta:
    """'1d', '12h', '30m', '45s' -> timedelta (must be positive)."""
    if isinstance(text, dt.timedelta):
        value = text
    else:
        match = _INTERVAL_RE.match(str(text))
        if not match:
            raise ScenarioError(f"batch interval {text!r}: write a number and d, h, m or s (1d)")
        value = dt.timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])
    if value <= dt.timedelta(0):
        raise ScenarioError(f"batch interval {text!r} must be positive")
    return value


def parse_start(value: str | dt.date | dt.datetime | None) -> dt.datetime | None:
    """'2026-11-01' (midnight UTC) or an ISO datetime (naive = UTC) -> aware UTC datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, dt.date):
        parsed = dt.datetime(value.year, value.month, value.day)
    else:
        try:
            parsed = dt.datetime.fromisoformat(str(value))
        except ValueError:
            raise ScenarioError(f"start date {value!r} is not an ISO date (2026-11-01)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def spread_times(start: dt.datetime, end: dt.datetime, n: int) -> list[dt.datetime]:
    """n instants evenly spread over [start, end) (midpoints of n equal slots)."""
    step = (end - start) / max(n, 1)
    return [start + step * (k + 0.5) for k in range(n)]


# -- traffic ----------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class TrafficBatch:
    """One batch of simulated traffic: drifted applications and, when placed in time, the
    [start, end) window its event times are spread over."""

    index: int
    spec: BatchSpec
    frame: pd.DataFrame
    pool_rows: np.ndarray
    start: dt.datetime | None = None
    end: dt.datetime | None = None

    def __len__(self) -> int:
        return len(self.frame)

    def event_times(self) -> list[dt.datetime] | None:
        if self.start is None or self.end is None:
            return None
        return spread_times(self.start, self.end, len(self.frame))


def _batch_window(
    index: int, spec: BatchSpec, start: dt.datetime | None, interval: dt.timedelta
) -> tuple[dt.datetime | None, dt.datetime | None]:
    if isinstance(spec.day, dt.date):
        begin = dt.datetime(spec.day.year, spec.day.month, spec.day.day, tzinfo=dt.UTC)
        return begin, begin + interval
    if start is None:
        if spec.day is not None:
            raise ScenarioError(
                f"batch {index + 1} has day {spec.day} (days after the start date): give a "
                "start date"
            )
        return None, None
    begin = start + (dt.timedelta(days=spec.day) if spec.day is not None else interval * index)
    return begin, begin + interval


class PoolSampler:
    """Draws pool rows without replacement, reshuffling when the pool is exhausted."""

    def __init__(self, n_pool: int, rng: np.random.Generator) -> None:
        if n_pool < 1:
            raise ScenarioError("the pool of unseen applications is empty")
        self._n = n_pool
        self._rng = rng
        self._order = rng.permutation(n_pool)
        self._pos = 0

    def take(self, k: int) -> np.ndarray:
        parts = []
        while k > 0:
            if self._pos == self._n:
                self._order = self._rng.permutation(self._n)
                self._pos = 0
            step = min(k, self._n - self._pos)
            parts.append(self._order[self._pos : self._pos + step])
            self._pos += step
            k -= step
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def population_stats(pool: pd.DataFrame, specs: Sequence[BatchSpec]) -> ColumnStats | None:
    """The pool's `ColumnStats` when a batch has a generic kind (their spread is the pool's,
    the population the traffic is drawn from), else None."""
    return ColumnStats.of(pool) if any(s.kind in GENERIC_KINDS for s in specs) else None


def inert_batches(
    pool: pd.DataFrame,
    scenario: Scenario,
    config: DriftConfig = DEFAULT_DRIFT_CONFIG,
    *,
    sample_rows: int = 200,
) -> list[int]:
    """Indices of the scenario's drift batches that would change nothing in this pool's data
    (e.g. a Home-Credit kind on another schema): each is tried on a sample of the pool."""
    sample = pool.iloc[:sample_rows].reset_index(drop=True)
    stats = population_stats(pool, scenario.batches)
    inert = []
    for i, spec in enumerate(scenario.batches):
        if spec.kind == "clean" or spec.intensity == 0 or sample.empty:
            continue
        try:
            drifted = spec.drift(sample, np.random.default_rng(i), config, stats)
        except DriftError as exc:
            raise ScenarioError(f"batch {i + 1} ({spec.name}): {exc}") from None
        if drifted.equals(sample):
            inert.append(i)
    return inert


def selected_batches(scenario: Scenario, n_batches: int | None) -> tuple[BatchSpec, ...]:
    if n_batches is None:
        return scenario.batches
    if n_batches < 1:
        raise ScenarioError(f"n_batches must be positive, got {n_batches}")
    if n_batches > len(scenario):
        raise ScenarioError(
            f"scenario {scenario.name!r} has {len(scenario)} batches; {n_batches} were asked for "
            "(write a scenario file with more batches)"
        )
    return scenario.batches[:n_batches]


def iter_traffic(
    pool: pd.DataFrame,
    scenario: Scenario,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    n_batches: int | None = None,
    seed: int = DEFAULT_SEED,
    start: dt.datetime | str | None = None,
    interval: dt.timedelta | str = DEFAULT_INTERVAL,
    config: DriftConfig = DEFAULT_DRIFT_CONFIG,
) -> Iterator[TrafficBatch]:
    """Yield the scenario's batches one at a time (see `plan_traffic`)."""
    if batch_size < 1:
        raise ScenarioError(f"batch size must be positive, got {batch_size}")
    specs = selected_batches(scenario, n_batches)
    start_at = parse_start(start)
    step = parse_interval(interval)
    sampler = PoolSampler(len(pool), np.random.default_rng([seed, 0]))
    stats = population_stats(pool, specs)
    for i, spec in enumerate(specs):
        rows = sampler.take(spec.size or batch_size)
        clean = pool.iloc[rows].reset_index(drop=True)
        # Each batch has its own stream: batch i's drift does not depend on the others.
        rng = np.random.default_rng([seed, i + 1])
        try:
            frame = spec.drift(clean, rng, config, stats)
        except DriftError as exc:
            raise ScenarioError(f"batch {i + 1} ({spec.name}): {exc}") from None
        begin, end = _batch_window(i, spec, start_at, step)
        yield TrafficBatch(index=i, spec=spec, frame=frame, pool_rows=rows, start=begin, end=end)


def plan_traffic(
    pool: pd.DataFrame,
    scenario: Scenario,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    n_batches: int | None = None,
    seed: int = DEFAULT_SEED,
    start: dt.datetime | str | None = None,
    interval: dt.timedelta | str = DEFAULT_INTERVAL,
    config: DriftConfig = DEFAULT_DRIFT_CONFIG,
) -> list[TrafficBatch]:
    """The scenario's traffic: for each batch, `batch_size` (or the batch's own `size`)
    applications drawn from `pool` without replacement (the pool is reshuffled when it runs
    out), with the batch's drift applied. With `start`, batch i covers
    [start + i * interval, + interval) (or its own `day`); its event times are spread evenly
    over that window. Deterministic in (pool, scenario, sizes, seed)."""
    return list(
        iter_traffic(
            pool,
            scenario,
            batch_size=batch_size,
            n_batches=n_batches,
            seed=seed,
            start=start,
            interval=interval,
            config=config,
        )
    )


def batch_labels(batches: Sequence[BatchSpec]) -> list[str]:
    return [b.name for b in batches]
