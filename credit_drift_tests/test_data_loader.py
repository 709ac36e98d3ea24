"""Loading the user's own training data: CSV/Parquet, numeric and categorical features, and the
errors that name the offending file and column."""

import numpy as np
import pandas as pd
import pytest

from credit_drift.data.loader import TrainingDataError, load_pool, load_training_data
from credit_drift.errors import CreditDriftError
from credit_drift.features import FeatureSchema


def _frame(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "client": np.arange(n),
            "income": rng.lognormal(11, 0.5, n),
            "age": rng.integers(20, 70, n),
            "has_car": rng.random(n) < 0.4,
            "segment": rng.choice(["retail", "sme", "premium"], n),
            "default": (rng.random(n) < 0.3).astype(int),
        }
    )


def _write(frame: pd.DataFrame, path):
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_numeric_and_declared_categorical_columns(tmp_path, suffix):
    path = _write(_frame(), tmp_path / f"train{suffix}")
    data = load_training_data(path, "default", "client", categorical_columns=["segment"])
    assert data.schema.names == ["income", "age", "has_car", "segment"]
    assert data.schema.categorical_names == ["segment"]
    assert data.schema.spec("segment").categories == ("premium", "retail", "sme")
    assert data.X["income"].dtype == np.float64
    assert set(data.X["has_car"].unique()) <= {0.0, 1.0}
    assert data.y.dtype == np.int64 and set(data.y.unique()) == {0, 1}
    assert data.ids is not None and data.ids.tolist() == list(range(40))
    assert list(data.X.columns) == data.schema.names


def test_numeric_categorical_values_become_category_strings(tmp_path):
    frame = _frame()
    frame["region"] = np.where(frame["age"] > 40, 1, 2)
    frame.loc[0, "region"] = np.nan  # read back as floats 1.0 / 2.0 / NaN
    path = _write(frame, tmp_path / "train.csv")
    data = load_training_data(path, "default", "client", ["segment", "region"])
    assert data.schema.spec("region").categories == ("1", "2")


def test_id_column_is_optional(tmp_path):
    path = _write(_frame().drop(columns="client"), tmp_path / "train.parquet")
    data = load_training_data(path, "default", "client", ["segment"])
    assert data.ids is None
    assert "client" not in data.schema.names


def test_missing_target_column_names_it_and_lists_columns(tmp_path):
    path = _write(_frame().drop(columns="default"), tmp_path / "train.csv")
    with pytest.raises(TrainingDataError) as err:
        load_training_data(path, "default", "client", ["segment"])
    message = str(err.value)
    assert "'default'" in message and "'income'" in message
    assert "CREDIT_DRIFT_TARGET_COLUMN" in message
    assert isinstance(err.value, CreditDriftError)


def test_undeclared_text_column_is_named_with_the_fix(tmp_path):
    path = _write(_frame(), tmp_path / "train.csv")
    with pytest.raises(TrainingDataError) as err:
        load_training_data(path, "default", "client")
    message = str(err.value)
    assert "'segment'" in message
    assert "CREDIT_DRIFT_CATEGORICAL_COLUMNS" in message
    assert "income" not in message.split("are not numeric")[0]


@pytest.mark.parametrize(
    ("values", "shown"),
    [([0, 1, 2] * 10, "2"), (["yes", "no"] * 15, "'yes'"), ([0.0, 0.5, 1.0] * 10, "0.5")],
)
def test_non_binary_target_says_which_values(tmp_path, values, shown):
    frame = _frame(len(values))
    frame["default"] = values
    path = _write(frame, tmp_path / "train.parquet")
    with pytest.raises(TrainingDataError, match="must be binary 0/1") as err:
        load_training_data(path, "default", "client", ["segment"])
    assert shown in str(err.value)


def test_target_with_one_class_or_missing_values(tmp_path):
    frame = _frame()
    frame["default"] = 0
    with pytest.raises(TrainingDataError, match="only the value 0"):
        load_training_data(_write(frame, tmp_path / "a.parquet"), "default", None, ["segment"])
    frame["default"] = [np.nan] + [0, 1] * 19 + [1]
    with pytest.raises(TrainingDataError, match="1 missing value"):
        load_training_data(_write(frame, tmp_path / "b.parquet"), "default", None, ["segment"])


def test_boolean_target_is_accepted(tmp_path):
    frame = _frame()
    frame["default"] = frame["default"].astype(bool)
    data = load_training_data(_write(frame, tmp_path / "t.parquet"), "default", None, ["segment"])
    assert data.y.tolist() == frame["default"].astype(int).tolist()


def test_declared_categorical_column_absent(tmp_path):
    path = _write(_frame(), tmp_path / "train.csv")
    with pytest.raises(TrainingDataError, match="'branch'"):
        load_training_data(path, "default", "client", ["segment", "branch"])


def test_infinite_values_name_the_column(tmp_path):
    frame = _frame()
    frame.loc[3, "income"] = np.inf
    with pytest.raises(TrainingDataError, match="'income' has 1 infinite"):
        load_training_data(_write(frame, tmp_path / "t.parquet"), "default", "client", ["segment"])


def test_file_level_errors(tmp_path):
    with pytest.raises(TrainingDataError, match="not found"):
        load_training_data(tmp_path / "nope.csv", "default", "client")
    (tmp_path / "data.xlsx").write_bytes(b"x")
    with pytest.raises(TrainingDataError, match="unsupported file type '.xlsx'"):
        load_training_data(tmp_path / "data.xlsx", "default", "client")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(TrainingDataError, match="empty"):
        load_training_data(tmp_path / "empty.csv", "default", "client")
    (tmp_path / "header.csv").write_text("client,income,default\n")
    with pytest.raises(TrainingDataError, match="no rows"):
        load_training_data(tmp_path / "header.csv", "default", "client")
    only = _frame()[["client", "default"]]
    with pytest.raises(TrainingDataError, match="no feature columns"):
        load_training_data(_write(only, tmp_path / "only.csv"), "default", "client")


def test_load_pool_returns_schema_order_and_checks_columns(tmp_path):
    path = _write(_frame(), tmp_path / "pool.parquet")
    schema = FeatureSchema.from_dicts(
        [
            {"name": "segment", "kind": "categorical", "categories": ["retail", "sme"]},
            {"name": "income"},
        ]
    )
    pool = load_pool(path, schema)
    assert list(pool.columns) == ["segment", "income"]
    assert pool["income"].dtype == np.float64
    # Values never seen in training are kept raw: scoring treats them as missing.
    assert "premium" in set(pool["segment"])
    wider = FeatureSchema.numeric(["income", "debt"])
    with pytest.raises(TrainingDataError, match="'debt'"):
        load_pool(path, wider)


def test_labelled_target_with_a_positive_label(tmp_path):
    frame = _frame()
    frame["default"] = np.where(frame["default"] == 1, "bad", "good")
    path = _write(frame, tmp_path / "t.csv")
    data = load_training_data(path, "default", "client", ["segment"], positive_label="bad")
    assert data.y.tolist() == (frame["default"] == "bad").astype(int).tolist()
    # Without the label, the error says how to give it.
    with pytest.raises(TrainingDataError, match="--positive-label"):
        load_training_data(path, "default", "client", ["segment"])
    with pytest.raises(TrainingDataError, match=r"'defaulted'.*values are 'bad', 'good'"):
        load_training_data(path, "default", "client", ["segment"], positive_label="defaulted")


def test_positive_label_needs_exactly_two_labels(tmp_path):
    frame = _frame(42)
    frame["default"] = ["bad", "good", "unknown"] * 14
    path = _write(frame, tmp_path / "t.parquet")
    with pytest.raises(TrainingDataError, match="exactly two labels.*3: 'bad', 'good', 'unknown'"):
        load_training_data(path, "default", "client", ["segment"], positive_label="bad")


def test_numeric_labels_with_a_positive_label(tmp_path):
    frame = _frame()
    frame["default"] = np.where(frame["default"] == 1, 2, 1)  # 1 = repaid, 2 = defaulted
    path = _write(frame, tmp_path / "t.csv")
    data = load_training_data(path, "default", "client", ["segment"], positive_label="2")
    assert data.y.tolist() == (frame["default"] == 2).astype(int).tolist()


def test_categorical_auto_takes_every_text_column(tmp_path):
    frame = _frame()
    frame["region"] = np.where(frame["age"] > 40, "north", "south")
    path = _write(frame, tmp_path / "t.csv")
    data = load_training_data(path, "default", "client", "auto")
    assert data.schema.categorical_names == ["segment", "region"]
    assert data.schema.spec("income").kind == "numeric"
    assert data.schema.spec("has_car").kind == "numeric"


def test_every_text_column_is_listed_ready_to_paste(tmp_path):
    frame = _frame()
    texts = [f"text_{i}" for i in range(12)]
    for name in texts:
        frame[name] = "x"
    path = _write(frame, tmp_path / "t.parquet")
    with pytest.raises(TrainingDataError) as err:
        load_training_data(path, "default", "client")
    message = str(err.value)
    assert "13 column(s) are not numeric" in message
    assert "CREDIT_DRIFT_CATEGORICAL_COLUMNS=segment," + ",".join(texts) + " " in message
    assert "--categorical auto" in message and "..." not in message


def test_missing_target_lists_every_column(tmp_path):
    frame = _frame()
    for i in range(20):
        frame[f"extra_{i}"] = 1.0
    path = _write(frame.drop(columns="default"), tmp_path / "t.parquet")
    with pytest.raises(TrainingDataError) as err:
        load_training_data(path, "default", "client")
    assert "'extra_19'" in str(err.value) and "..." not in str(err.value)
