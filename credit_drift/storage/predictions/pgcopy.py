"""PostgreSQL binary COPY, both ways: the encoder that streams a bulk insert into
`COPY predictions ... FROM STDIN (FORMAT binary)` and the parser of a `float8[]` column read back
by `COPY (...) TO STDOUT (FORMAT binary)`.

Format: https://www.postgresql.org/docs/15/sql-copy.html (Binary Format).
"""

import io
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import orjson

_PGCOPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_PGCOPY_HEADER = _PGCOPY_SIGNATURE + struct.pack(">ii", 0, 0)
_PGCOPY_TRAILER = struct.pack(">h", -1)
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01T00:00:00Z in Unix microseconds
_FLOAT8_OID = 701
_NULL_FIELD = struct.pack(">i", -1)
# Fixed-size fields first, variable-size ones after (COPY takes the columns in any order).
_COPY_COLUMNS = (
    "created_at, probability, threshold, features, request_id, feature_schema_version, "
    "categorical_values, decision, model_version, inference_time_ms, source, application_id"
)


@dataclass(frozen=True, eq=False)
class _BulkColumns:
    """The validated columns of a bulk insert: what the COPY encoder streams (SQLite's
    executemany binds the same columns)."""

    micros: np.ndarray
    matrix: np.ndarray
    categorical: Sequence[Mapping[str, str] | None] | None
    probability: np.ndarray
    decision: np.ndarray
    threshold: np.ndarray
    model_version: np.ndarray
    inference_time_ms: np.ndarray
    request_ids: Sequence[str]
    source: str
    application_ids: Sequence[str | None]


def _array_header_dtype(p: int) -> list[tuple]:
    return [
        ("ndim", ">i4"),
        ("hasnull", ">i4"),
        ("elemtype", ">i4"),
        ("dim", ">i4"),
        ("lbound", ">i4"),
        ("el", [("len", ">i4"), ("v", ">f8")], (p,)),
    ]


def _text_field(value: str) -> bytes:
    data = value.encode()
    return struct.pack(">i", len(data)) + data


def _text_or_null(value: str | None) -> bytes:
    return _NULL_FIELD if value is None else _text_field(value)


def _copy_chunks(cols: _BulkColumns, version: str, chunk_rows: int) -> Iterator[bytes]:
    n, p = cols.matrix.shape
    fixed_dtype = np.dtype(
        [
            ("nfields", ">i2"),
            ("ts_len", ">i4"),
            ("ts", ">i8"),
            ("prob_len", ">i4"),
            ("prob", ">f8"),
            ("thr_len", ">i4"),
            ("thr", ">f8"),
            ("vec_len", ">i4"),
            *_array_header_dtype(p),
        ]
    )
    width = fixed_dtype.itemsize
    tail_const = _text_field(version)
    source_field = _text_field(cols.source)
    text_cache: dict[str, bytes] = {}

    def cached(value: str) -> bytes:
        out = text_cache.get(value)
        if out is None:
            out = text_cache[value] = _text_field(str(value))
        return out

    yield _PGCOPY_HEADER
    for lo in range(0, n, chunk_rows):
        hi = min(lo + chunk_rows, n)
        rec = np.zeros(hi - lo, dtype=fixed_dtype)
        rec["nfields"] = 12
        rec["ts_len"], rec["prob_len"], rec["thr_len"] = 8, 8, 8
        rec["ts"] = cols.micros[lo:hi] - _PG_EPOCH_US
        rec["prob"] = cols.probability[lo:hi]
        rec["thr"] = cols.threshold[lo:hi]
        rec["vec_len"] = 20 + 12 * p
        rec["ndim"], rec["hasnull"], rec["elemtype"] = 1, 0, _FLOAT8_OID
        rec["dim"], rec["lbound"] = p, 1
        rec["el"]["len"] = 8
        rec["el"]["v"] = cols.matrix[lo:hi]
        fixed = rec.tobytes()
        parts: list[bytes] = []
        for k, i in enumerate(range(lo, hi)):
            parts.append(fixed[k * width : (k + 1) * width])
            parts.append(_text_field(cols.request_ids[i]))
            parts.append(tail_const)
            raw = None if cols.categorical is None else cols.categorical[i]
            if raw:
                data = b"\x01" + orjson.dumps(dict(raw))  # jsonb binary: version byte 1 + text
                parts.append(struct.pack(">i", len(data)) + data)
            else:
                parts.append(_NULL_FIELD)
            parts.append(cached(cols.decision[i]))
            parts.append(cached(cols.model_version[i]))
            itm = cols.inference_time_ms[i]
            parts.append(_NULL_FIELD if np.isnan(itm) else struct.pack(">id", 8, itm))
            parts.append(source_field)
            parts.append(_text_or_null(cols.application_ids[i]))
        yield b"".join(parts)
    yield _PGCOPY_TRAILER


class _IterReader(io.RawIOBase):
    """A file-like view of an iterator of byte strings (what psycopg2's copy_expert reads)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = memoryview(b"")

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while not self._buf:
            try:
                self._buf = memoryview(next(self._chunks))
            except StopIteration:
                return b""
        if size is None or size < 0:
            size = len(self._buf)
        out, self._buf = self._buf[:size], self._buf[size:]
        return out.tobytes()


def _parse_copy_float8_arrays(buf: memoryview, p: int, n_rows: int) -> np.ndarray | None:
    """Parse a binary COPY of one float8[] column whose rows all hold p non-NULL elements.
    Returns None when the data does not have that fixed layout."""
    if bytes(buf[:11]) != _PGCOPY_SIGNATURE:
        raise ValueError("COPY output does not start with the PGCOPY signature")
    (ext_len,) = struct.unpack(">i", buf[15:19])
    offset = 19 + ext_len
    row_dtype = np.dtype([("nfields", ">i2"), ("len", ">i4"), *_array_header_dtype(p)])
    if len(buf) - offset - 2 != n_rows * row_dtype.itemsize:
        return None
    if bytes(buf[len(buf) - 2 :]) != _PGCOPY_TRAILER:
        return None
    rec = np.frombuffer(buf, dtype=row_dtype, count=n_rows, offset=offset)
    layout_ok = (
        (rec["nfields"] == 1).all()
        and (rec["len"] == 20 + 12 * p).all()
        and (rec["ndim"] == 1).all()
        and (rec["hasnull"] == 0).all()
        and (rec["elemtype"] == _FLOAT8_OID).all()
        and (rec["dim"] == p).all()
        and (rec["el"]["len"] == 8).all()
    )
    if not layout_ok:
        return None
    return rec["el"]["v"].astype(np.float64)
