"""Request validation by hand: the same packed matrix as `FeatureSchema.pack` on every path
(fast and slow, numeric and categorical), every problem named, and categorical features end to
end: strings or numbers accepted, an unseen category scored as missing and stored raw."""

import json

import numpy as np
import pandas as pd
import pytest

from credit_drift.features import FeatureSchema, FeatureSpec
from credit_drift.serving.validation import (
    ApplicationValidator,
    RequestRejected,
    parse_json,
)

SCHEMA = FeatureSchema(
    (
        FeatureSpec("AMT_CREDIT"),
        FeatureSpec("CONTRACT", "categorical", ("Cash loans", "Revolving loans")),
        FeatureSpec("EXT_SOURCE_2"),
        FeatureSpec("CHILDREN", "categorical", ("0", "1", "2")),
    )
)


def _validate(items, *, batch=True, replay=False):
    return ApplicationValidator(SCHEMA, allow_event_time=replay).validate(items, batch=batch)


def _same(a, b) -> None:
    np.testing.assert_array_equal(a, b)  # NaN == NaN here


@pytest.mark.parametrize(
    "items",
    [
        # fast path: every key, numbers / null / strings
        [
            {"AMT_CREDIT": 1.5, "CONTRACT": "Cash loans", "EXT_SOURCE_2": None, "CHILDREN": 1},
            {"AMT_CREDIT": 2, "CONTRACT": "Mortgage", "EXT_SOURCE_2": 0.3, "CHILDREN": "2"},
            {"AMT_CREDIT": None, "CONTRACT": None, "EXT_SOURCE_2": 0.0, "CHILDREN": 1.0},
        ],
        # another key order and a NaN read as missing
        [{"CHILDREN": None, "EXT_SOURCE_2": float("nan"), "CONTRACT": 3, "AMT_CREDIT": -0.0}],
    ],
)
def test_validated_matrix_equals_feature_schema_pack(items):
    expected_matrix, expected_raw = SCHEMA.pack([dict(i) for i in items])
    out = _validate([dict(i) for i in items])
    _same(out.matrix, expected_matrix)
    assert out.categorical == expected_raw
    assert out.event_times is None


def test_numeric_only_schema_fast_and_slow_paths_agree():
    schema = FeatureSchema.numeric(["a", "b", "c"])
    validator = ApplicationValidator(schema, allow_event_time=False)
    rows = [{"a": 1, "b": None, "c": 2.5}, {"c": 0.5, "a": -1e300, "b": 7}]
    expected, _ = schema.pack(rows)
    _same(validator.validate([dict(r) for r in rows], batch=True).matrix, expected)
    # The slow path (a different key set triggers it) gives the same numbers.
    _same(validator._slow([dict(r) for r in rows], batch=True)[0], expected)


def test_every_problem_is_named_with_its_position():
    items = [
        {"AMT_CREDIT": "12", "CONTRACT": True, "EXT_SOURCE_2": float("inf"), "CHILDREN": [1]},
        {"AMT_CREDIT": 1.0, "CONTRACT": "Cash loans", "ZZZ": 1},
    ]
    with pytest.raises(RequestRejected) as info:
        _validate(items)
    exc = info.value
    assert exc.status == 422
    found = {(e.index, e.field): e.problem for e in exc.errors}
    assert "a string" in found[(0, "AMT_CREDIT")]
    assert "boolean" in found[(0, "CONTRACT")]
    assert "infinite" in found[(0, "EXT_SOURCE_2")]
    assert "an array" in found[(0, "CHILDREN")]
    assert "unknown feature" in found[(1, "ZZZ")]
    assert "missing" in found[(1, "EXT_SOURCE_2")] and "missing" in found[(1, "CHILDREN")]
    assert exc.n_errors == len(exc.errors) == 7
    for name in ("AMT_CREDIT", "ZZZ", "EXT_SOURCE_2"):
        assert name in exc.message


def test_error_lists_are_bounded_but_counted():
    schema = FeatureSchema.numeric([f"f{i}" for i in range(50)])
    validator = ApplicationValidator(schema, allow_event_time=False, max_listed=10)
    with pytest.raises(RequestRejected) as info:
        validator.validate([{}], batch=False)
    assert len(info.value.errors) == 10 and info.value.n_errors == 50
    assert "40 more not listed" in info.value.message


def test_event_time_rules():
    row = {"AMT_CREDIT": 1.0, "CONTRACT": "x", "EXT_SOURCE_2": 0.5, "CHILDREN": 0}
    with pytest.raises(RequestRejected) as info:
        _validate([{**row, "event_time": "2026-11-01T00:00:00Z"}])
    assert info.value.status == 403 and info.value.errors[0].field == "event_time"
    out = _validate([{**row, "event_time": "2026-11-01T23:00:00-02:00"}], replay=True)
    assert out.event_times[0].isoformat() == "2026-11-02T01:00:00+00:00"
    with pytest.raises(RequestRejected, match="every application of a batch or for none"):
        _validate([{**row, "event_time": "2026-11-01T00:00:00Z"}, dict(row)], replay=True)
    with pytest.raises(RequestRejected, match="not an ISO 8601"):
        _validate([{**row, "event_time": "yesterday"}], replay=True)
    with pytest.raises(ValueError, match="reserves"):
        ApplicationValidator(FeatureSchema.numeric(["event_time"]), allow_event_time=False)


def test_parse_json_reads_what_orjson_refuses():
    assert parse_json(b'{"a": 1}') == {"a": 1}
    assert parse_json(b'{"a": NaN}')["a"] != parse_json(b'{"a": NaN}')["a"]  # NaN
    assert parse_json(b'{"a": Infinity}')["a"] == float("inf")
    assert parse_json(b'{"a": 1e999}')["a"] == float("inf")
    for bad in (b"", b"{", b"\xff"):
        with pytest.raises(RequestRejected) as info:
            parse_json(bad)
        assert info.value.status == 400


@pytest.fixture(scope="module")
def categorical_model(tmp_path_factory):
    """A tiny model with a categorical feature, trained with the project's loader and trainer."""
    from credit_drift.data.loader import load_training_data
    from credit_drift.model.train import TrainConfig, train_model

    rng = np.random.default_rng(0)
    n = 1_500
    contract = rng.choice(["Cash loans", "Revolving loans", "Car"], n)
    x = rng.normal(size=n)
    risk = x + np.where(contract == "Revolving loans", 1.5, 0.0)
    frame = pd.DataFrame(
        {
            "SK_ID_CURR": np.arange(n),
            "TARGET": (risk + rng.normal(size=n) > 1.2).astype(int),
            "X": x,
            "CONTRACT": contract,
        }
    )
    path = tmp_path_factory.mktemp("cat") / "train.csv"
    frame.to_csv(path, index=False)
    data = load_training_data(
        path, target_column="TARGET", id_column="SK_ID_CURR", categorical_columns=("CONTRACT",)
    )
    config = TrainConfig(n_estimators=30, min_child_samples=20, colsample_bytree=1.0)
    return train_model(data, seed=0, config=config)


def test_categorical_values_end_to_end(categorical_model, sqlite_url, tmp_path):
    import httpx

    from credit_drift.serving.app import create_app
    from credit_drift_tests.test_serving_support import live_server, rows, settings_for

    schema = categorical_model.schema
    assert schema.categorical_names == ["CONTRACT"]
    settings = settings_for(sqlite_url, tmp_path, tmp_path)
    app = create_app(settings, categorical_model)
    sent = [
        {"X": 0.5, "CONTRACT": "Revolving loans"},
        {"X": 0.5, "CONTRACT": "Cash loans"},
        {"X": 0.5, "CONTRACT": "Crypto loans"},  # never seen in training
        {"X": 0.5, "CONTRACT": None},
    ]
    with live_server(app) as base, httpx.Client(base_url=base) as client:
        body = client.post("/predict/batch", json=sent).json()
        number = client.post("/predict", json={"X": 0.5, "CONTRACT": 7})
        info = client.get("/model").json()
    assert number.status_code == 200
    assert info["categorical_features"] == ["CONTRACT"]
    got = [p["probability"] for p in body["predictions"]]
    expected = categorical_model.predict_proba(pd.DataFrame(sent))
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert got[0] != got[1]  # the category matters to the model
    assert got[2] == pytest.approx(got[3], rel=1e-12)  # unseen = missing for the model
    stored = rows(sqlite_url, "SELECT categorical_values FROM predictions ORDER BY id")
    values = [None if r[0] is None else json.loads(r[0]) for r in stored]
    assert values[:4] == [
        {"CONTRACT": "Revolving loans"},
        {"CONTRACT": "Cash loans"},
        {"CONTRACT": "Crypto loans"},
        None,
    ]
    assert values[4] == {"CONTRACT": "7"}


def test_split_batches_validate_like_lists_of_objects():
    rows = [
        {"AMT_CREDIT": 1.5, "CONTRACT": "Cash loans", "EXT_SOURCE_2": None, "CHILDREN": 1},
        {"AMT_CREDIT": 2, "CONTRACT": "Mortgage", "EXT_SOURCE_2": 0.3, "CHILDREN": "2"},
    ]
    columns = ["EXT_SOURCE_2", "CHILDREN", "AMT_CREDIT", "CONTRACT"]
    doc = {"columns": columns, "data": [[r[c] for c in columns] for r in rows], "index": [0, 1]}
    validator = ApplicationValidator(SCHEMA, allow_event_time=False)
    out = validator.validate_split(doc)
    expected, raw = SCHEMA.pack(rows)
    _same(out.matrix, expected)
    assert out.categorical == raw


def test_split_batches_numeric_fast_path_and_errors():
    schema = FeatureSchema.numeric(["a", "b", "c"])
    validator = ApplicationValidator(schema, allow_event_time=True)
    doc = {"columns": ["c", "a", "b"], "data": [[3, 1, None], [6.5, 4, 5]]}
    _same(validator.validate_split(doc).matrix, np.array([[1, np.nan, 3], [4, 5, 6.5]]))
    timed = {
        "columns": ["a", "event_time", "b", "c"],
        "data": [[1, "2026-11-02T00:00:00Z", 2, 3]],
    }
    out = validator.validate_split(timed)
    assert out.event_times[0].isoformat() == "2026-11-02T00:00:00+00:00"
    _same(out.matrix, np.array([[1.0, 2.0, 3.0]]))
    cases = [
        ({"columns": ["a", "b"], "data": [[1, 2]]}, "c"),
        ({"columns": ["a", "b", "c", "d"], "data": [[1, 2, 3, 4]]}, "d"),
        ({"columns": ["a", "b", "c"], "data": [[1, 2]]}, "data"),
        ({"columns": ["a", "b", "c"], "data": [[1, "x", 3]]}, "b"),
        ({"columns": ["a", "b", "c"], "data": [[1, 2, 1e400]]}, "c"),
        ({"columns": ["a", "a", "b", "c"], "data": [[1, 1, 2, 3]]}, "a"),
        ({"columns": ["a", "b", "c"], "rows": []}, "rows"),
    ]
    for doc, field in cases:
        with pytest.raises(RequestRejected) as info:
            validator.validate_split(doc)
        assert info.value.status == 422
        assert field in {e.field for e in info.value.errors}, (doc, info.value.errors)


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"a": 1.5, "b": None, "c": -2}, True),
        ([{"a": 1, "b": 2}, {"a": 3, "b": None}], True),
        ({"columns": ["a", "b"], "data": [[1, 2], [None, 3.5]], "index": [0, 1]}, True),
        ({"columns": ["a", "b"], "data": [[1, 2]], "index": ["r1"]}, True),
        ({"a": "1.5", "b": 2}, False),  # a numeric string is not a number
        ({"a": True, "b": 2}, False),
        ([{"a": 1}, {"a": "x"}], False),
        ({"columns": ["a", "b"], "data": [[1, "2"]]}, False),
        ({"columns": ["a", "event_time"], "data": [[1, "2026-11-01T00:00:00Z"]]}, False),
        ({'we"ird': 1}, False),  # an escaped quote in a name: not trusted, checked in full
        ({"is_true": 1}, False),  # "true" inside a name: not trusted, checked in full
        ([1, 2], False),
    ],
)
def test_body_has_only_numbers(doc, expected):
    from credit_drift.serving.validation import body_has_only_numbers

    body = json.dumps(doc).encode()
    assert body_has_only_numbers(body, json.loads(body)) is expected
    # Whatever the hint says, a wrong value is still refused when the hint is False.
    compact = json.dumps(doc, separators=(",", ":")).encode()
    assert body_has_only_numbers(compact, json.loads(compact)) is expected


class _CountedName(str):
    """A column name that counts its equality comparisons (a measure of the work done)."""

    comparisons = 0

    def __eq__(self, other):
        type(self).comparisons += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


@pytest.mark.parametrize("n", [500, 2_000])
def test_duplicate_columns_are_found_in_linear_work(n):
    """Finding duplicates must not compare every name with every other one: the work grows
    with the number of names, not its square (counted, not timed)."""
    validator = ApplicationValidator(FeatureSchema.numeric(["a", "b", "c"]), allow_event_time=False)
    # Equal names that are distinct objects: no lookup can short-cut on identity.
    columns = [_CountedName("a") for _ in range(n)]
    _CountedName.comparisons = 0
    with pytest.raises(RequestRejected) as info:
        validator.validate_split({"columns": columns, "data": [[]]})
    assert info.value.status == 422
    assert [e.field for e in info.value.errors] == ["a"]
    assert _CountedName.comparisons <= 4 * n, _CountedName.comparisons


def test_many_duplicate_and_unknown_columns_get_a_bounded_answer():
    validator = ApplicationValidator(FeatureSchema.numeric(["a", "b", "c"]), allow_event_time=False)
    columns = ["a"] * 40_000 + [f"x{i}" for i in range(5_000)]
    with pytest.raises(RequestRejected) as info:
        validator.validate_split({"columns": columns, "data": [[]]})
    rejected = info.value
    assert rejected.status == 422
    assert "duplicate columns: a" in rejected.message
    assert "unknown columns: x0" in rejected.message and "and 4990 more" in rejected.message
    assert len(rejected.message) < 1_000
    assert rejected.n_errors == 5_001 and len(rejected.errors) == 500


@pytest.mark.parametrize("wrapped", [[0.5], [[0.5]], [None], [[None]], []])
def test_values_wrapped_in_lists_are_refused_on_the_numbers_only_path(wrapped):
    """`[0.5]` holds no string and no boolean, so the numbers-only hint is true; when every
    feature is wrapped alike, numpy reads the rows as one more dimension instead of failing.
    The values are still not numbers and must be named, not unwrapped."""
    from credit_drift.serving.validation import body_has_only_numbers

    schema = FeatureSchema.numeric(["a", "b"])
    validator = ApplicationValidator(schema, allow_event_time=False)
    items = [{"a": wrapped, "b": wrapped}, {"a": wrapped, "b": wrapped}]
    body = json.dumps(items).encode()
    hint = body_has_only_numbers(body, json.loads(body))
    assert hint
    with pytest.raises(RequestRejected) as info:
        validator.validate([dict(i) for i in items], batch=True, numbers_only=hint)
    assert info.value.status == 422
    expected = [("a", 0), ("b", 0), ("a", 1), ("b", 1)]
    assert [(e.field, e.index) for e in info.value.errors] == expected
    split = {"columns": ["a", "b"], "data": [[wrapped, wrapped], [wrapped, wrapped]]}
    body = json.dumps(split).encode()
    with pytest.raises(RequestRejected) as info:
        validator.validate_split(split, numbers_only=body_has_only_numbers(body, split))
    assert [(e.field, e.index) for e in info.value.errors] == expected


@pytest.mark.parametrize("depth", [2_000, 100_000])
@pytest.mark.parametrize("opener", [b"[", b'{"a":'])
def test_deeply_nested_json_is_a_400(depth, opener):
    closer = b"]" if opener == b"[" else b"}"
    with pytest.raises(RequestRejected) as info:
        parse_json(opener * depth + b"1" + closer * depth)
    assert info.value.status == 400
    assert "nested too deeply" in info.value.message
