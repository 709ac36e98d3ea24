"""`credit-drift outcomes load` and `outcomes unknown` on SQLite and PostgreSQL: CSV and Parquet,
0/1 and text labels, observation times, a reload changes nothing, a changed file is an update,
unknown ids kept and listed, every bad row named with its value."""

import datetime as dt
import re

import numpy as np
import pandas as pd
import pytest

from credit_drift.cli import main
from credit_drift.features import FeatureSchema, FeatureSpec
from credit_drift.pipeline.outcome_file import OutcomeFileError, read_outcome_file
from credit_drift.storage.db import make_engine, upgrade
from credit_drift.storage.outcomes import read_cohort, read_outcome_history
from credit_drift.storage.predictions import PredictionRow, insert_predictions
from credit_drift_tests.test_cli_orchestration import state  # noqa: F401 - fixture

DAY = dt.date(2026, 11, 2)
SCHEMA = FeatureSchema((FeatureSpec("AMT_CREDIT"),))


@pytest.fixture
def database(db_url, state, monkeypatch):  # noqa: F811
    """`db_url` as the CLI's DATABASE_URL (in a fresh state directory, no other inherited
    setting), with three logged predictions of applications 100001-100003 on DAY."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    upgrade(db_url)
    start = dt.datetime(DAY.year, DAY.month, DAY.day, tzinfo=dt.UTC)
    insert_predictions(
        make_engine(db_url),
        SCHEMA,
        [
            PredictionRow(
                created_at=start + dt.timedelta(hours=i),
                request_id=f"r{i}",
                features=np.array([float(i)]),
                categorical=None,
                probability=0.1 * (i + 1),
                decision="APPROVED",
                threshold=0.5,
                model_version="m",
                inference_time_ms=None,
                application_id=str(100_001 + i),
            )
            for i in range(3)
        ],
    )
    return db_url


def test_load_csv_with_text_labels_then_reload_and_update(database, tmp_path, capsys):
    path = tmp_path / "outcomes.csv"
    pd.DataFrame(
        {
            "SK_ID_CURR": [100001, 100002, 999999],
            "STATUS": ["bad", "good", "good"],
            "CLOSED": ["2027-02-01", "2027-02-03T10:00:00+02:00", "2027-02-04"],
        }
    ).to_csv(path, index=False)
    args = [
        "outcomes",
        "load",
        str(path),
        "--id-column",
        "SK_ID_CURR",
        "--label-column",
        "STATUS",
        "--observed-at-column",
        "CLOSED",
        "--positive-label",
        "bad",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "3 outcome(s) read" in out and "3 new, 0 updated" in out
    assert "1 application id(s) match no logged prediction" in out

    engine = make_engine(database)
    cohort = read_cohort(engine, DAY).set_index("application_id")
    assert cohort.loc["100001", "outcome"] == 1.0
    assert cohort.loc["100002", "outcome"] == 0.0
    assert cohort.loc["100002", "observed_at"] == pd.Timestamp("2027-02-03T08:00:00Z")
    assert cohort.loc["100001", "observed_at"] == pd.Timestamp("2027-02-01T00:00:00Z")
    assert np.isnan(cohort.loc["100003", "outcome"])

    assert main(args) == 0  # the same file again
    assert "0 new, 0 updated (the previous outcome kept as history), 3 unchanged" in (
        capsys.readouterr().out
    )

    # The bureau corrects one outcome: an update, the first one kept.
    pd.DataFrame({"SK_ID_CURR": [100002], "STATUS": ["bad"], "CLOSED": ["2027-03-01"]}).to_csv(
        path, index=False
    )
    assert main([*args, "--no-update"]) == 0
    assert "NOT changed (--no-update): 100002" in capsys.readouterr().out
    assert main(args) == 0
    assert "0 new, 1 updated" in capsys.readouterr().out
    assert read_outcome_history(engine, "100002")["outcome"].tolist() == [0, 1]

    assert main(["outcomes", "unknown"]) == 0
    out = capsys.readouterr().out
    assert "1 current outcome(s)" in out and "999999" in out


def test_load_parquet_with_0_1_labels_observed_now(database, tmp_path, capsys):
    path = tmp_path / "outcomes.parquet"
    pd.DataFrame({"id": ["100003", "100001"], "TARGET": [1, 0]}).to_parquet(path)
    before = dt.datetime.now(dt.UTC)
    assert (
        main(["outcomes", "load", str(path), "--id-column", "id", "--label-column", "TARGET"]) == 0
    )
    assert "2 new" in capsys.readouterr().out
    cohort = read_cohort(make_engine(database), DAY).set_index("application_id")
    assert cohort.loc["100003", "outcome"] == 1.0
    assert cohort.loc["100001", "observed_at"] >= pd.Timestamp(before)


@pytest.mark.parametrize(
    ("frame", "options", "message"),
    [
        ({"id": [1, 2], "y": [0, 2]}, [], "label column 'y': row 1 holds 2; an outcome is 0"),
        ({"id": [1, 2], "y": ["good", "bad"]}, [], "row 0 holds 'good'; .* --positive-label"),
        (
            {"id": [1, 2, 3], "y": ["good", "bad", "unknown"]},
            ["--positive-label", "bad"],
            "row 2 holds 'unknown', a third label",
        ),
        ({"id": [1, 2], "y": [0, None]}, [], "label column 'y': row 1 has no label"),
        ({"id": [1, None], "y": [0, 1]}, [], "id column 'id': row 1 has no id"),
        ({"id": [1.5, 2], "y": [0, 1]}, [], "row 0 holds 1.5, not an integer id"),
        (
            {"id": [1, 2], "y": [0, 1], "t": ["2027-01-01", "soon"]},
            ["--observed-at-column", "t"],
            "observed-at column 't': row 1 holds 'soon'",
        ),
        ({"id": [1], "y": [0], "t": [5]}, ["--observed-at-column", "t"], "row 0 holds 5"),
        ({"ID": [1], "y": [0]}, [], r"no column 'id' \(--id-column\); the file has: ID, y"),
    ],
)
def test_bad_files_name_the_row_and_value(database, tmp_path, capsys, frame, options, message):
    path = tmp_path / "bad.csv"
    pd.DataFrame(frame).to_csv(path, index=False)
    args = ["outcomes", "load", str(path), "--id-column", "id", "--label-column", "y", *options]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    with make_engine(database).connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM outcomes").scalar_one() == 0


def test_read_outcome_file_refuses_a_missing_file(tmp_path):
    with pytest.raises(OutcomeFileError, match="outcome file .* not found"):
        read_outcome_file(tmp_path / "nope.csv", id_column="id", label_column="y")
    (tmp_path / "x.txt").write_text("id,y\n1,0\n")
    with pytest.raises(OutcomeFileError, match="unsupported file type"):
        read_outcome_file(tmp_path / "x.txt", id_column="id", label_column="y")
