"""Request validation of the scoring API: JSON applications -> the packed feature matrix.

Validating 419 fields with a pydantic model per request costs milliseconds; here a request is
checked against the model's `FeatureSchema` by hand, with a vectorized fast path for the common
case (exactly the schema's keys, numbers or null) and a slow path that only runs to name every
offending field. Rules:

- every model feature must be present (``null`` means missing: LightGBM handles it), and no
  other key is allowed (except ``event_time``, see below);
- a numeric feature takes a JSON number or ``null``; strings, booleans, lists and objects are
  non-numeric; ``Infinity`` / ``1e999`` are refused; ``NaN`` (not valid JSON, but what Python's
  ``json.dumps`` writes for a missing float) is read as missing;
- a categorical feature takes a string, a finite number or ``null``; a category never seen in
  training is accepted (the model treats it as missing) and its raw value is stored;
- ``event_time`` (ISO 8601 with a time zone) places a replayed prediction in the past; it is
  refused unless the server runs with replay allowed;
- ``application_id`` (optional, per application: a non-empty string of at most 128 characters
  without NUL, or an integer, stored as its decimal text; ``null`` = none) is stored with the
  prediction and links it to the application's outcome.

The output matches `FeatureSchema.pack` exactly (tested), so storage keeps what it expects.
"""

import collections
import datetime as dt
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np
import orjson

from credit_drift.features import FeatureSchema, category_text
from credit_drift.storage.outcomes import (
    OutcomeRow,
    OutcomeValidationError,
    check_application_id,
)

EVENT_TIME_FIELD = "event_time"
APPLICATION_ID_FIELD = "application_id"
# Request fields that are not model features (a model may not have a feature of these names).
RESERVED_FIELDS = (EVENT_TIME_FIELD, APPLICATION_ID_FIELD)

_NUMBER_TYPES = frozenset({float, int, type(None)})


@dataclass(frozen=True)
class FieldError:
    """One problem with one field; `index` is the application's position in a batch."""

    field: str
    problem: str
    index: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"field": self.field, "problem": self.problem}
        if self.index is not None:
            out["index"] = self.index
        return out


class RequestRejected(Exception):
    """A request the API refuses: HTTP status, a message naming the problem, field errors."""

    def __init__(
        self, status: int, message: str, errors: Sequence[FieldError] = (), n_errors: int = 0
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = list(errors)
        self.n_errors = n_errors or len(self.errors)


@dataclass(frozen=True, eq=False)
class ValidatedApplications:
    """matrix: float64 (n, p) in schema order (`FeatureSchema.pack` layout); categorical: raw
    categorical strings per row (None when the schema has no categorical feature);
    event_times: aware UTC datetimes per row, or None when no row carried one;
    application_ids: one id (or None) per row, or None when no row carried one."""

    matrix: np.ndarray
    categorical: list[dict[str, str] | None]
    event_times: list[dt.datetime] | None
    application_ids: list[str | None] | None = None

    def __len__(self) -> int:
        return self.matrix.shape[0]


def parse_json(body: bytes) -> Any:
    """orjson first; when it refuses the body, the standard library names what is wrong (and
    reads NaN / Infinity / 1e999 so that the validator can name the field that holds them)."""
    if not body:
        raise RequestRejected(400, "empty request body: send a JSON document")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "recursion" in str(exc).lower():
            raise _too_deep() from None
    try:
        return json.loads(body, parse_constant=float)
    except RecursionError:
        raise _too_deep() from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestRejected(400, f"request body is not valid JSON: {exc}") from None


def _too_deep() -> RequestRejected:
    # A valid request nests three levels at most (a split batch: object, rows, values); the
    # decoders stop far deeper than that (orjson at 1024), before the stack does.
    return RequestRejected(
        400,
        "request body is nested too deeply: an application is a flat JSON object of feature "
        "name to value (a batch: an array of them, or the split layout)",
    )


def body_has_only_numbers(body: bytes, doc: Any) -> bool:
    """True when the raw JSON `body` of a decoded request `doc` (an application, a list of
    them, or a split batch) holds no string and no boolean VALUE, so the per-value type check
    can be skipped: every double quote then belongs to a key or a column name (two each) and
    no `true` / `false` token occurs. Cheap byte scans; False (check everything) whenever in
    doubt, e.g. a name containing an escaped quote or the letters "true"."""
    if b'\\"' in body or b"true" in body or b"false" in body:
        return False
    if isinstance(doc, dict) and "data" in doc:
        columns = doc.get("columns")
        index = doc.get("index") or []
        if not isinstance(columns, list) or not isinstance(index, list):
            return False
        names = len(doc) + len(columns) + sum(isinstance(i, str) for i in index)
    elif isinstance(doc, dict):
        names = len(doc)
    elif isinstance(doc, list) and all(isinstance(item, dict) for item in doc):
        names = sum(map(len, doc))
    else:
        return False
    return body.count(b'"') == 2 * names


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"non-numeric value {json.dumps(value)} (a boolean)"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"non-numeric value {json.dumps(shown)} (a string)"
    if isinstance(value, float) and math.isinf(value):
        return f"infinite value {value}: send a finite number, or null for missing"
    return f"non-numeric value of type {type(value).__name__}"


class ApplicationValidator:
    """Checks applications against one schema; build once per model."""

    def __init__(self, schema: FeatureSchema, *, allow_event_time: bool, max_listed: int = 500):
        for reserved in RESERVED_FIELDS:
            if reserved in schema.names:
                raise ValueError(
                    f"the model has a feature named {reserved!r}, a name the API reserves "
                    "for a request field: rename the feature"
                )
        self.schema = schema
        self.allow_event_time = allow_event_time
        self.max_listed = max_listed
        self.names = schema.names
        self.p = len(self.names)
        self._keys = frozenset(self.names)
        self._kinds = {f.name: f.kind for f in schema.features}
        self._num_pos = np.array(
            [j for j, f in enumerate(schema.features) if f.kind == "numeric"], dtype=np.intp
        )
        self._cat_pos = [j for j, f in enumerate(schema.features) if f.kind == "categorical"]
        self._cat_names = [self.names[j] for j in self._cat_pos]
        self._codes = {
            f.name: {c: float(i) for i, c in enumerate(f.categories)}
            for f in schema.features
            if f.kind == "categorical"
        }
        num_names = [self.names[j] for j in self._num_pos]
        self._num_getter = _getter(num_names)
        self._all_numeric = not self._cat_pos

    # -- public ------------------------------------------------------------------------------
    def validate(
        self, items: Sequence[Any], *, batch: bool, numbers_only: bool = False
    ) -> ValidatedApplications:
        """Validate decoded applications; raises `RequestRejected` (422 naming every bad field,
        403 for a forbidden event_time)."""
        application_ids = self._pop_application_ids(items, batch)
        event_times = self._pop_event_times(items, batch)
        fast = self._fast(items, numbers_only and event_times is None)
        if fast is not None:
            matrix, cats = fast
        else:
            matrix, cats = self._slow(items, batch)
        return ValidatedApplications(matrix, cats, event_times, application_ids)

    def validate_split(
        self, doc: dict[str, Any], *, numbers_only: bool = False
    ) -> ValidatedApplications:
        """Validate a batch in the split layout: {"columns": [...], "data": [[...], ...]}
        (what `DataFrame.to_json(orient="split")` writes; "index" is ignored). About five
        times smaller than a list of objects and much faster to read: one row is one JSON
        array in `columns` order. `event_time` may be one of the columns."""
        unknown = sorted(set(doc) - {"columns", "data", "index"})
        if unknown:
            raise RequestRejected(
                422,
                f"unknown keys {unknown} in a split batch: expected 'columns' and 'data'",
                [FieldError(k, "unknown key of a split batch") for k in unknown],
            )
        columns, data = doc.get("columns"), doc.get("data")
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise RequestRejected(
                422, "'columns' must be a list of feature names", [FieldError("columns", "bad")]
            )
        if len(columns) > self.p + len(RESERVED_FIELDS):
            # More names than the model has features (and event_time): some are duplicates or
            # unknown. Named from a Counter, in one pass: the work stays linear in the body.
            counts = collections.Counter(columns)
            dupes = sorted(c for c, k in counts.items() if k > 1)
            unknown_columns = sorted(set(counts) - self._keys - set(RESERVED_FIELDS))
            errors = [FieldError(c, "duplicate column") for c in dupes] + [
                FieldError(c, "unknown feature: the model has no feature of this name")
                for c in unknown_columns
            ]
            raise RequestRejected(
                422,
                f"{len(columns)} columns for a model of {self.p} features: "
                + "; ".join(
                    part
                    for part in (
                        _named("duplicate columns", dupes),
                        _named("unknown columns", unknown_columns),
                    )
                    if part
                ),
                errors[: self.max_listed],
                len(errors),
            )
        if len(set(columns)) != len(columns):
            counts = collections.Counter(columns)
            dupes = sorted(c for c, k in counts.items() if k > 1)
            raise RequestRejected(
                422,
                _named("duplicate columns", dupes),
                [FieldError(c, "duplicate column") for c in dupes[: self.max_listed]],
                len(dupes),
            )
        if not isinstance(data, list):
            raise RequestRejected(
                422, "'data' must be a list of rows", [FieldError("data", "not a list")]
            )
        width = len(columns)
        ragged = [i for i, row in enumerate(data) if not isinstance(row, list) or len(row) != width]
        if ragged:
            errors = [FieldError("data", f"row is not a list of {width} values", i) for i in ragged]
            raise RequestRejected(
                422,
                f"{len(ragged)} row(s) of 'data' are not lists of {width} values (one per "
                f"column), e.g. row {ragged[0]}",
                errors[: self.max_listed],
                len(errors),
            )
        application_ids = None
        if APPLICATION_ID_FIELD in columns:
            k = columns.index(APPLICATION_ID_FIELD)
            application_ids = self._check_application_ids([row[k] for row in data], batch=True)
            columns = columns[:k] + columns[k + 1 :]
            data = [row[:k] + row[k + 1 :] for row in data]
        event_times = None
        if EVENT_TIME_FIELD in columns:
            k = columns.index(EVENT_TIME_FIELD)
            event_times = self._check_event_times([row[k] for row in data], batch=True)
            columns = columns[:k] + columns[k + 1 :]
            data = [row[:k] + row[k + 1 :] for row in data]
        if self._all_numeric and set(columns) == self._keys:
            fast = self._fast_rows(data, columns, numbers_only)
            if fast is not None:
                return ValidatedApplications(fast, [None] * len(data), event_times, application_ids)
        items = [dict(zip(columns, row, strict=True)) for row in data]
        matrix, cats = self._fast(items) or self._slow(items, batch=True)
        return ValidatedApplications(matrix, cats, event_times, application_ids)

    # -- application_id ------------------------------------------------------------------------
    def _pop_application_ids(self, items: Sequence[Any], batch: bool) -> list[str | None] | None:
        if not any(isinstance(item, dict) and APPLICATION_ID_FIELD in item for item in items):
            return None
        raw = [
            item.pop(APPLICATION_ID_FIELD, None) if isinstance(item, dict) else None
            for item in items
        ]
        return self._check_application_ids(raw, batch=batch)

    def _check_application_ids(self, raw: list[Any], *, batch: bool) -> list[str | None]:
        out: list[str | None] = []
        errors: list[FieldError] = []
        n_errors = 0
        for i, value in enumerate(raw):
            if value is None:
                out.append(None)
                continue
            if isinstance(value, int) and not isinstance(value, bool):
                value = str(value)
            try:
                out.append(check_application_id(value, APPLICATION_ID_FIELD))
            except OutcomeValidationError as exc:
                n_errors += 1
                problem = str(exc).removeprefix(f"{APPLICATION_ID_FIELD}: ")
                if len(errors) < self.max_listed:
                    errors.append(FieldError(APPLICATION_ID_FIELD, problem, i if batch else None))
        if n_errors:
            where = f" (application {errors[0].index})" if batch else ""
            raise RequestRejected(
                422,
                f"invalid {APPLICATION_ID_FIELD}{where}: {errors[0].problem}",
                errors,
                n_errors,
            )
        return out

    # -- event_time ----------------------------------------------------------------------------
    def _pop_event_times(self, items: Sequence[Any], batch: bool) -> list[dt.datetime] | None:
        if not any(isinstance(item, dict) and EVENT_TIME_FIELD in item for item in items):
            return None
        raw = [
            item.pop(EVENT_TIME_FIELD, None) if isinstance(item, dict) else None for item in items
        ]
        return self._check_event_times(raw, batch=batch)

    def _check_event_times(self, raw: list[Any], *, batch: bool) -> list[dt.datetime]:
        if not self.allow_event_time:
            raise RequestRejected(
                403,
                f"{EVENT_TIME_FIELD} is refused: this server does not accept replayed event times "
                "(start it with CREDIT_DRIFT_ALLOW_REPLAY=1 to replay historical traffic)",
                [FieldError(EVENT_TIME_FIELD, "replay not allowed on this server")],
            )
        if any(v is None for v in raw):
            raise RequestRejected(
                422,
                f"{EVENT_TIME_FIELD} must be given for every application of a batch or for none",
                [
                    FieldError(EVENT_TIME_FIELD, "missing", i)
                    for i, v in enumerate(raw)
                    if v is None
                ],
            )
        out: list[dt.datetime] = []
        errors: list[FieldError] = []
        for i, value in enumerate(raw):
            parsed = _parse_event_time(value)
            if isinstance(parsed, str):
                errors.append(FieldError(EVENT_TIME_FIELD, parsed, i if batch else None))
            else:
                out.append(parsed)
        if errors:
            raise RequestRejected(422, f"invalid {EVENT_TIME_FIELD}: {errors[0].problem}", errors)
        return out

    def _fast_rows(
        self, rows: list[list[Any]], columns: list[str], numbers_only: bool = False
    ) -> np.ndarray | None:
        """Rows of numbers / null in `columns` order -> matrix in schema order, or None.
        `numbers_only`: the raw body is known to hold no string or boolean value
        (`body_has_only_numbers`), so the per-value type check is skipped."""
        if not numbers_only and not set(map(type, chain.from_iterable(rows))) <= _NUMBER_TYPES:
            return None
        try:
            values = np.array(rows, dtype=np.float64)
        except (OverflowError, ValueError, TypeError):
            return None
        # A value wrapped in a list ([0.5], [[0.5]], [null]) adds a dimension instead of
        # failing the conversion: only the exact (rows, columns) shape is numbers and nulls.
        if values.shape != (len(rows), len(columns)) or np.isinf(values).any():
            return None
        if columns == self.names:
            return values
        position = {name: j for j, name in enumerate(columns)}
        return values[:, [position[name] for name in self.names]]

    # -- fast path -------------------------------------------------------------------------------
    def _fast(
        self, items: Sequence[Any], numbers_only: bool = False
    ) -> tuple[np.ndarray, list] | None:
        keys = self._keys
        for item in items:
            if not isinstance(item, dict) or item.keys() != keys:
                return None
        if self._all_numeric:
            names = self.names
            # Clients that serialize a frame send the keys in one order: read the values
            # without one hash lookup per feature.
            if all(list(item) == names for item in items):
                rows = [list(item.values()) for item in items]
            else:
                rows = [self._num_getter(item) for item in items]
            matrix = self._fast_rows(rows, names, numbers_only)
            return None if matrix is None else (matrix, [None] * len(items))
        rows = [self._num_getter(item) for item in items]
        if not set(map(type, chain.from_iterable(rows))) <= _NUMBER_TYPES:
            return None
        try:
            numeric = np.array(rows, dtype=np.float64).reshape(len(items), len(self._num_pos))
        except (OverflowError, ValueError, TypeError):
            return None
        if np.isinf(numeric).any():
            return None
        if self._all_numeric:
            return numeric, [None] * len(items)
        matrix = np.empty((len(items), self.p), dtype=np.float64)
        matrix[:, self._num_pos] = numeric
        cats: list[dict[str, str] | None] = []
        for i, item in enumerate(items):
            raw: dict[str, str] = {}
            for j, name in zip(self._cat_pos, self._cat_names, strict=True):
                value = item[name]
                if value is None or (isinstance(value, float) and math.isnan(value)):
                    matrix[i, j] = np.nan
                    continue
                if isinstance(value, bool) or not isinstance(value, str | int | float):
                    return None
                if isinstance(value, float) and math.isinf(value):
                    return None
                text = category_text(value)
                raw[name] = text
                matrix[i, j] = self._codes[name].get(text, np.nan)
            cats.append(raw)
        return matrix, cats

    # -- slow path: name every problem -----------------------------------------------------------
    def _slow(self, items: Sequence[Any], batch: bool) -> tuple[np.ndarray, list]:
        errors: list[FieldError] = []
        n_errors = 0
        matrix = np.full((len(items), self.p), np.nan, dtype=np.float64)
        cats: list[dict[str, str] | None] = []
        index_of = {name: j for j, name in enumerate(self.names)}

        def add(field: str, problem: str, i: int) -> None:
            nonlocal n_errors
            n_errors += 1
            if len(errors) < self.max_listed:
                errors.append(FieldError(field, problem, i if batch else None))

        for i, item in enumerate(items):
            if not isinstance(item, dict):
                add(
                    "(application)",
                    f"expected a JSON object of feature name to value, got {_json_type(item)}",
                    i,
                )
                cats.append(None)
                continue
            for name in self.names:
                if name not in item:
                    add(name, "missing model feature (send null for a missing value)", i)
            raw: dict[str, str] = {}
            for name, value in item.items():
                j = index_of.get(name)
                if j is None:
                    add(name, "unknown feature: the model has no feature of this name", i)
                    continue
                if value is None:
                    continue
                if self._kinds[name] == "numeric":
                    if isinstance(value, bool) or not isinstance(value, int | float):
                        add(name, _describe(value), i)
                        continue
                    try:
                        number = float(value)
                    except OverflowError:
                        add(name, "number too large for a 64-bit float", i)
                        continue
                    if math.isinf(number):
                        add(name, _describe(number), i)
                        continue
                    matrix[i, j] = number
                else:
                    if isinstance(value, float) and math.isnan(value):
                        continue
                    if isinstance(value, bool) or not isinstance(value, str | int | float):
                        add(
                            name,
                            f"a categorical value must be a string or a number, got "
                            f"{_json_type(value)}",
                            i,
                        )
                        continue
                    if isinstance(value, float) and math.isinf(value):
                        add(name, _describe(value), i)
                        continue
                    text = category_text(value)
                    raw[name] = text
                    matrix[i, j] = self._codes[name].get(text, np.nan)
            cats.append(raw if self._cat_pos else None)
        if n_errors:
            raise RequestRejected(422, _summary(errors, n_errors), errors, n_errors)
        return matrix, cats


def _getter(names: Sequence[str]):
    if not names:
        return lambda item: ()
    if len(names) == 1:
        name = names[0]
        return lambda item: (item[name],)
    return itemgetter(*names)


def _shown(name: str, limit: int = 60) -> str:
    return name if len(name) <= limit else name[: limit - 3] + "..."


def _named(what: str, names: Sequence[str], limit: int = 10) -> str:
    """ "what: a, b and 3 more": a message of bounded length whatever the client sent."""
    if not names:
        return ""
    shown = ", ".join(_shown(n) for n in names[:limit])
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return f"{what}: {shown}{more}"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__


def _parse_event_time(value: Any) -> dt.datetime | str:
    if not isinstance(value, str):
        return f"expected an ISO 8601 string with a time zone, got {_json_type(value)}"
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return f"{value!r} is not an ISO 8601 datetime"
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        return f"{value!r} has no time zone (add Z or +00:00)"
    return parsed.astimezone(dt.UTC)


def _summary(errors: Sequence[FieldError], n_errors: int) -> str:
    groups: dict[str, dict[str, None]] = {}
    for e in errors:
        key = (
            "missing features"
            if e.problem.startswith("missing")
            else "unknown features"
            if e.problem.startswith("unknown")
            else "invalid values"
        )
        groups.setdefault(key, {})[e.field] = None  # a dict: ordered and linear
    parts = []
    for key, fields in groups.items():
        names = list(fields)
        shown = ", ".join(_shown(f) for f in names[:10]) + (
            f" and {len(names) - 10} more" if len(names) > 10 else ""
        )
        parts.append(f"{key}: {shown}")
    if n_errors > len(errors):
        parts.append(f"{n_errors - len(errors)} more not listed")
    return f"{n_errors} invalid field(s): " + "; ".join(parts)


# -- POST /outcomes ------------------------------------------------------------------------------
OUTCOME_FIELDS = ("application_id", "outcome", "observed_at")


@dataclass(frozen=True)
class ValidatedOutcomes:
    rows: list[OutcomeRow]
    update: bool


def parse_observed_at(value: Any) -> dt.datetime | str:
    """An ISO 8601 datetime with a time zone, or a date (midnight UTC); else the problem."""
    if isinstance(value, str) and len(value) > 64:
        # An ISO 8601 time is at most 32 characters: do not echo a long string back.
        return f"{json.dumps(value[:40])}... ({len(value)} characters) is not an ISO 8601 time"
    if isinstance(value, str) and len(value) == 10:
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            return f"{value!r} is not an ISO 8601 date"
        return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    return _parse_event_time(value)


def validate_outcomes(doc: Any, *, max_rows: int, max_listed: int = 500) -> ValidatedOutcomes:
    """`{"outcomes": [{application_id, outcome, observed_at}, ...], "update": true}` or one
    such object -> OutcomeRows (source 'api'); RequestRejected naming every bad field and row
    (422), or 413 beyond `max_rows`."""
    if isinstance(doc, dict) and "outcomes" in doc:
        unknown = sorted(set(doc) - {"outcomes", "update"})
        if unknown:
            raise RequestRejected(
                422,
                _named("unknown keys", unknown) + ": expected 'outcomes' and 'update'",
                [FieldError(k, "unknown key") for k in unknown[:max_listed]],
            )
        update = doc.get("update", True)
        if not isinstance(update, bool):
            raise RequestRejected(
                422, "'update' must be true or false", [FieldError("update", "not a boolean")]
            )
        items, batch = doc["outcomes"], True
        if not isinstance(items, list):
            raise RequestRejected(
                422,
                "'outcomes' must be a list of outcome objects",
                [FieldError("outcomes", f"expected an array, got {_json_type(items)}")],
            )
    elif isinstance(doc, dict):
        items, batch, update = [doc], False, True
    else:
        raise RequestRejected(
            422,
            'expected {"outcomes": [{"application_id": ..., "outcome": 0 or 1, "observed_at": '
            f"...}}, ...]}} or one outcome object, got {_json_type(doc)}",
        )
    if not items:
        raise RequestRejected(422, "empty 'outcomes': send at least one outcome")
    if len(items) > max_rows:
        raise RequestRejected(
            413, f"{len(items)} outcomes exceed the limit of {max_rows} per request"
        )
    errors: list[FieldError] = []
    n_errors = 0

    def add(field: str, problem: str, i: int) -> None:
        nonlocal n_errors
        n_errors += 1
        if len(errors) < max_listed:
            errors.append(FieldError(field, problem, i if batch else None))

    rows: list[OutcomeRow] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            add("(outcome)", f"expected an object, got {_json_type(item)}", i)
            continue
        for name in sorted(set(item) - set(OUTCOME_FIELDS)):
            add(_shown(name), "unknown field of an outcome", i)
        for name in OUTCOME_FIELDS:
            if name not in item:
                add(name, "missing", i)
        app_id, outcome, observed = (item.get(n) for n in OUTCOME_FIELDS)
        if isinstance(app_id, int) and not isinstance(app_id, bool):
            app_id = str(app_id)
        if "application_id" in item:
            try:
                check_application_id(app_id, APPLICATION_ID_FIELD)
            except OutcomeValidationError as exc:
                add(APPLICATION_ID_FIELD, str(exc).removeprefix(f"{APPLICATION_ID_FIELD}: "), i)
        if "outcome" in item:
            if isinstance(outcome, int | float) and not isinstance(outcome, bool):
                outcome = int(outcome) if outcome in (0, 1) else outcome
            if not isinstance(outcome, int) or isinstance(outcome, bool) or outcome not in (0, 1):
                shown = json.dumps(outcome, default=str)[:60]
                add("outcome", f"must be 0 (repaid) or 1 (default), got {shown}", i)
        when = parse_observed_at(observed) if "observed_at" in item else "missing"
        if isinstance(when, str):
            if "observed_at" in item:
                add("observed_at", when, i)
            continue
        if len(errors) == 0 and n_errors == 0:
            rows.append(OutcomeRow(app_id, outcome, when, "api"))
    if n_errors:
        first = errors[0]
        where = f"outcome {first.index}: " if first.index is not None else ""
        more = f" ({n_errors} invalid field(s) in all)" if n_errors > 1 else ""
        raise RequestRejected(422, f"{where}{first.field}: {first.problem}{more}", errors, n_errors)
    return ValidatedOutcomes(rows, update)
