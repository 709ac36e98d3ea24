"""Idempotency keys of the scoring API: the first answer to a key, stored with its predictions.

`record_answer(conn, ...)` runs inside the transaction that writes the answer's predictions
(`storage.predictions` take it as `same_transaction`), so a key is stored with its rows or not
at all; the table's primary key makes a second writer of the same key fail with
`IdempotencyKeyTaken` (on PostgreSQL it first waits for the first writer's commit), and its
transaction, predictions included, rolls back. `find_answer` reads what a key was answered.
"""

import datetime as dt
import hashlib
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from credit_drift.errors import CreditDriftError
from credit_drift.storage.schema import idempotency_keys

_LOCK_NOT_AVAILABLE = "55P03"


class IdempotencyKeyTaken(CreditDriftError):
    """Another request with this key committed its answer first."""


class IdempotencyKeyBusy(CreditDriftError):
    """Another request with this key is being answered now (its transaction holds the key
    longer than this one may wait: PostgreSQL's lock_timeout)."""


@dataclass(frozen=True)
class StoredAnswer:
    endpoint: str
    body_sha256: str
    request_id: str
    response: bytes


def body_digest(endpoint: str, body: bytes) -> str:
    """What a key's request is compared on: the endpoint and the exact body bytes."""
    digest = hashlib.sha256(endpoint.encode())
    digest.update(b"\0")
    digest.update(body)
    return digest.hexdigest()


def find_answer(engine: Engine, key: str) -> StoredAnswer | None:
    t = idempotency_keys
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(t.c.endpoint, t.c.body_sha256, t.c.request_id, t.c.response).where(
                t.c.key == key
            )
        ).one_or_none()
    if row is None:
        return None
    return StoredAnswer(row.endpoint, row.body_sha256, row.request_id, row.response.encode())


def record_answer(
    conn: Connection,
    *,
    key: str,
    endpoint: str,
    body_sha256: str,
    request_id: str,
    response: bytes,
) -> None:
    """Store a key's answer in the caller's transaction; IdempotencyKeyTaken if it exists."""
    try:
        conn.execute(
            idempotency_keys.insert().values(
                key=key,
                endpoint=endpoint,
                body_sha256=body_sha256,
                request_id=request_id,
                response=response.decode(),
                created_at=dt.datetime.now(dt.UTC),
            )
        )
    except sa.exc.IntegrityError as exc:
        # The key is the only constraint this one-row insert can break.
        raise IdempotencyKeyTaken(f"idempotency key {key!r} is already answered") from exc
    except sa.exc.OperationalError as exc:
        # A lock timeout here is one client's concurrent retries, not a database outage: it
        # must not make the API answer 503 to everyone for the cool-down.
        if getattr(exc.orig, "pgcode", None) == _LOCK_NOT_AVAILABLE:
            raise IdempotencyKeyBusy(f"idempotency key {key!r} is being answered") from exc
        raise
