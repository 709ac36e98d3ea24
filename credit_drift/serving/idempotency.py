"""Idempotent retries of `POST /predict` and `POST /predict/batch`: the `Idempotency-Key` header.

A client that timed out does not know whether its prediction was logged. Sent again with the same
key and the same body, the request gets the first answer back (same request id, probability,
time stamp) and no second row; with the same key and another body (or endpoint), 409. The first
answer is stored with its predictions in one transaction (`storage.idempotency`), so a key never
has an answer without its rows, and two concurrent requests with one key log one set of rows:
the second one's write fails on the key, rolls back, and returns what the first stored.
Requests without the header behave as before.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from credit_drift.serving.service import ScoredBatch, ScoringService
from credit_drift.serving.validation import RequestRejected
from credit_drift.storage.idempotency import body_digest, find_answer, record_answer

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 128
# Visible ASCII: what a UUID, a ULID or any client's request id is made of; nothing that could
# carry a NUL or a control character into the database or the log.
_KEY = re.compile(rf"[\x21-\x7e]{{1,{MAX_KEY_LENGTH}}}")
DESCRIPTION = (
    "Optional client key (1-128 visible ASCII characters, e.g. a UUID) that makes a retry "
    "safe: the same key with the same body returns the first answer without logging a second "
    "prediction (header `Idempotent-Replayed: true`); the same key with another body or "
    "endpoint is refused with 409."
)


@dataclass(frozen=True)
class KeyedRequest:
    key: str
    endpoint: str
    body_sha256: str

    @classmethod
    def of(cls, key: str | None, endpoint: str, body: bytes) -> "KeyedRequest | None":
        if key is None:
            return None
        if not _KEY.fullmatch(key):
            raise RequestRejected(
                400,
                f"{HEADER} must be 1 to {MAX_KEY_LENGTH} visible ASCII characters (e.g. a UUID)",
            )
        return cls(key, endpoint, body_digest(endpoint, body))

    def previous_answer(self, service: ScoringService) -> bytes | None:
        """The stored answer to this key, None if it has none; 409 if the key was used for
        another request."""
        stored = service.gate.run(lambda engine: find_answer(engine, self.key))
        if stored is None:
            return None
        if stored.body_sha256 != self.body_sha256:
            raise RequestRejected(
                409,
                f"this {HEADER} was already used for a different request (another body or "
                "endpoint); send a new key for a new request",
            )
        return stored.response

    def keeper(
        self, request_id: str, render: Callable[[ScoredBatch], bytes]
    ) -> Callable[[Connection, ScoredBatch], None]:
        """What `ScoringService.score_and_log` runs in the transaction of the predictions."""

        def keep(conn: Connection, scored: ScoredBatch) -> None:
            record_answer(
                conn,
                key=self.key,
                endpoint=self.endpoint,
                body_sha256=self.body_sha256,
                request_id=request_id,
                response=render(scored),
            )

        return keep
