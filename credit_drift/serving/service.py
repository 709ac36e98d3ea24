"""Scoring and logging predictions, independent of HTTP.

`ScoringService` is what the API calls for every request and what the simulator's replay mode
calls without HTTP: validate (or pack) applications, score them with the loaded model, write one
`predictions` row per prediction through `credit_drift.storage.predictions`, and only then hand
the answers back. A decision is never returned without its log row: if the write fails, the
caller gets an exception, not a decision.

Scoring goes through `ModelArtifacts.predict_matrix` on the packed float matrix the validator
builds (categorical features already as their training-category codes, NaN when unseen), not
through `predict_proba`, which would rebuild a 419-column DataFrame per request. A test checks
both give the same probabilities.
"""

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection, Engine

from credit_drift.serving.config import ServingConfig
from credit_drift.serving.database import DatabaseGate
from credit_drift.serving.group_commit import GroupCommit
from credit_drift.serving.validation import ApplicationValidator, ValidatedApplications
from credit_drift.storage.predictions import bulk_insert_predictions


@dataclass(frozen=True, eq=False)
class ScoredBatch:
    """Answers for the applications of one request, already logged."""

    request_ids: list[str]
    probability: np.ndarray
    decision: np.ndarray
    created_at: list[dt.datetime]
    inference_time_ms: float  # validation + packing + scoring of the whole request
    source: str

    def __len__(self) -> int:
        return len(self.request_ids)

    @property
    def per_row_ms(self) -> float:
        return self.inference_time_ms / max(len(self.request_ids), 1)


@dataclass(frozen=True, eq=False)
class _Rows:
    """One request's predictions waiting for their (group) commit."""

    matrix: np.ndarray
    categorical: Sequence[dict[str, str] | None] | None
    probability: np.ndarray
    decision: np.ndarray
    request_ids: list[str]
    created_at: list[dt.datetime]
    per_row_ms: float
    source: str
    hook: Callable[[Connection], None] | None
    application_ids: Sequence[str | int | None] | None = None


class ScoringService:
    """The loaded model, its validator and the prediction log of one API process."""

    def __init__(
        self,
        artifacts: Any,
        database_url: str,
        *,
        config: ServingConfig | None = None,
        allow_event_time: bool = False,
    ) -> None:
        self.config = config or ServingConfig()
        self.artifacts = artifacts
        self.schema = artifacts.schema
        self.booster = artifacts.booster
        self.threshold = float(artifacts.threshold)
        self.model_version = str(artifacts.version)
        n_model = self.booster.num_feature()
        if n_model != len(self.schema):
            raise ValueError(
                f"model has {n_model} features but its feature schema lists {len(self.schema)}"
            )
        self.validator = ApplicationValidator(
            self.schema,
            allow_event_time=allow_event_time,
            max_listed=self.config.max_listed_errors,
        )
        self.gate = DatabaseGate(
            database_url,
            self.schema,
            self.config.database_retry_seconds,
            timeout_seconds=self.config.database_timeout_seconds,
            synchronous_commit=self.config.postgres_synchronous_commit,
            ready_cache_seconds=self.config.ready_cache_seconds,
        )

        self.group_commit: GroupCommit[_Rows] = GroupCommit(
            self.gate, self._write_rows, max_rows=self.config.group_commit_max_rows
        )

    # -- scoring -----------------------------------------------------------------------------
    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """Probabilities of default for a packed matrix (schema order)."""
        threads = (
            self.config.batch_threads
            if matrix.shape[0] >= self.config.batch_threads_min_rows
            else self.config.single_row_threads
        )
        return self.artifacts.predict_matrix(matrix, num_threads=threads)

    def decide(self, proba: np.ndarray) -> np.ndarray:
        return np.asarray(self.artifacts.decide(proba), dtype=object)

    # -- the API path ------------------------------------------------------------------------
    def validate(
        self, items: Sequence[Any] | dict, *, batch: bool, numbers_only: bool = False
    ) -> ValidatedApplications:
        if isinstance(items, dict):
            return self.validator.validate_split(items, numbers_only=numbers_only)
        return self.validator.validate(items, batch=batch, numbers_only=numbers_only)

    def score_and_log(
        self,
        items: Sequence[Any] | dict,
        *,
        request_id: str,
        batch: bool,
        numbers_only: bool = False,
        same_transaction: "Callable[[Connection, ScoredBatch], None] | None" = None,
    ) -> ScoredBatch:
        """Validate decoded JSON applications (a list of objects, or a split-layout batch
        `{"columns", "data"}`), score them, log them; raises RequestRejected (bad input) or
        DatabaseUnavailable (nothing logged, nothing answered). `same_transaction(conn,
        answers)` runs in the transaction that logs them (see `log`)."""
        scored, rows = self._score(items, request_id, batch, numbers_only, same_transaction)
        self.group_commit.commit(rows, len(scored), key=rows.source)
        return scored

    async def score_and_log_async(self, item: Any, *, request_id: str) -> ScoredBatch:
        """`score_and_log` of one application for a caller on an event loop: validated and
        scored on the loop (a fraction of a millisecond), its log row awaited in the group
        commit without a thread of its own."""
        scored, rows = self._score([item], request_id, False, False, None)
        await self.group_commit.commit_async(rows, len(scored), key=rows.source)
        return scored

    def _score(
        self,
        items: Sequence[Any] | dict,
        request_id: str,
        batch: bool,
        numbers_only: bool,
        same_transaction: "Callable[[Connection, ScoredBatch], None] | None",
    ) -> "tuple[ScoredBatch, _Rows]":
        t0 = time.perf_counter()
        valid = self.validate(items, batch=batch, numbers_only=numbers_only)
        proba = self.predict(valid.matrix)
        elapsed_ms = (time.perf_counter() - t0) * 1000.0
        ids = [request_id] if not batch else [f"{request_id}-{k}" for k in range(len(valid))]
        return self._rows(
            valid.matrix,
            valid.categorical,
            proba,
            ids,
            valid.event_times,
            elapsed_ms,
            source="api" if valid.event_times is None else "replay",
            same_transaction=same_transaction,
            application_ids=valid.application_ids,
        )

    # -- logging (shared with the simulator's replay mode) --------------------------------------
    def log(
        self,
        matrix: np.ndarray,
        categorical: Sequence[dict[str, str] | None] | None,
        proba: np.ndarray,
        request_ids: Sequence[str],
        created_at: Sequence[dt.datetime] | None,
        inference_time_ms: float,
        *,
        source: str = "api",
        same_transaction: "Callable[[Connection, ScoredBatch], None] | None" = None,
        application_ids: Sequence[str | int | None] | None = None,
    ) -> ScoredBatch:
        """Write one `predictions` row per row of `matrix` (one transaction, shared with
        concurrent requests: `serving.group_commit`); `created_at` None means now (UTC);
        `application_ids`: one id (or None) per row, or None. `same_transaction(conn, answers)`
        runs first in that transaction with the answers about to be returned (the API stores an
        idempotency key's answer there); if it raises, nothing is logged."""
        scored, rows = self._rows(
            matrix,
            categorical,
            proba,
            request_ids,
            created_at,
            inference_time_ms,
            source=source,
            same_transaction=same_transaction,
            application_ids=application_ids,
        )
        # Committed with the rows of concurrent requests, in one transaction (group commit).
        self.group_commit.commit(rows, len(scored), key=source)
        return scored

    def _rows(
        self,
        matrix: np.ndarray,
        categorical: Sequence[dict[str, str] | None] | None,
        proba: np.ndarray,
        request_ids: Sequence[str],
        created_at: Sequence[dt.datetime] | None,
        inference_time_ms: float,
        *,
        source: str,
        same_transaction: "Callable[[Connection, ScoredBatch], None] | None",
        application_ids: Sequence[str | int | None] | None,
    ) -> "tuple[ScoredBatch, _Rows]":
        """The answers and the rows to log of `log`'s arguments."""
        n = matrix.shape[0]
        decision = self.decide(proba)
        per_row = inference_time_ms / max(n, 1)
        stamps: list[dt.datetime]
        if created_at is None:
            now = dt.datetime.now(dt.UTC)
            stamps = [now] * n
        else:
            stamps = list(created_at)
        cats = categorical if categorical is not None and any(categorical) else None
        scored = ScoredBatch(
            request_ids=list(request_ids),
            probability=proba,
            decision=decision,
            created_at=stamps,
            inference_time_ms=inference_time_ms,
            source=source,
        )
        hook = None if same_transaction is None else (lambda conn: same_transaction(conn, scored))
        ids = scored.request_ids
        rows = _Rows(
            matrix, cats, proba, decision, ids, stamps, per_row, source, hook, application_ids
        )
        return scored, rows

    def _write_rows(
        self, engine: Engine, groups: Sequence["_Rows"], before_commit: Callable[[], None]
    ) -> None:
        """Write the rows of one or more requests in one transaction (a group commit), running
        each request's `same_transaction` hook in it first and `before_commit` last."""
        first = groups[0]
        if len(groups) == 1:
            matrix, proba, decision = first.matrix, first.probability, first.decision
        else:
            matrix = np.vstack([g.matrix for g in groups])
            proba = np.concatenate([g.probability for g in groups])
            decision = np.concatenate([g.decision for g in groups])
        categorical = None
        if any(g.categorical is not None for g in groups):
            categorical = [c for g in groups for c in (g.categorical or [None] * g.matrix.shape[0])]
        hooks = [g.hook for g in groups if g.hook is not None]
        application_ids = None
        if any(g.application_ids is not None for g in groups):
            application_ids = [
                a for g in groups for a in (g.application_ids or [None] * g.matrix.shape[0])
            ]

        def same_transaction(conn: Connection) -> None:
            for hook in hooks:
                hook(conn)

        bulk_insert_predictions(
            engine,
            self.schema,
            created_at=[t for g in groups for t in g.created_at],
            matrix=matrix,
            categorical=categorical,
            probability=proba,
            decision=decision,
            threshold=self.threshold,
            model_version=self.model_version,
            inference_time_ms=np.concatenate(
                [np.full(g.matrix.shape[0], g.per_row_ms) for g in groups]
            ),
            request_ids=[r for g in groups for r in g.request_ids],
            application_ids=application_ids,
            source=first.source,
            same_transaction=same_transaction if hooks else None,
            before_commit=before_commit,
        )

    def score_frame(
        self,
        frame: pd.DataFrame,
        *,
        request_ids: Sequence[str],
        created_at: Sequence[dt.datetime] | None,
        source: str = "replay",
        application_ids: Sequence[str | int | None] | None = None,
    ) -> ScoredBatch:
        """Score and log a DataFrame of applications (the replay mode: no HTTP, no JSON)."""
        t0 = time.perf_counter()
        matrix, raw = self.schema.pack_frame(frame)
        proba = self.predict(matrix)
        elapsed_ms = (time.perf_counter() - t0) * 1000.0
        return self.log(
            matrix,
            raw,
            proba,
            request_ids,
            created_at,
            elapsed_ms,
            source=source,
            application_ids=application_ids,
        )
