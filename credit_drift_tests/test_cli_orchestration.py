"""The CLI around the Dagster runs: plain one-line errors for every ordinary mistake in a range of
days, why an empty range is empty, `--home`, the Dagster instance it makes, and `credit-drift ui`
running Dagster from its own environment."""

import datetime as dt
import os
import sys
from pathlib import Path

import pytest

from credit_drift import orchestration
from credit_drift.cli import how_to_run, main
from credit_drift.settings import ENV_VARS, Settings

TODAY = dt.datetime.now(dt.UTC).date()


@pytest.fixture
def state(tmp_path, monkeypatch):
    """A fresh state directory as the current one (no project file, no inherited settings).
    Every setting is recorded by monkeypatch, so what `--home` exports is undone afterwards."""
    names = {v.name for v in ENV_VARS} | {"DAGSTER_HOME", "CREDIT_DRIFT_CONFIG"}
    for name in names | {n for n in os.environ if n.startswith("CREDIT_DRIFT_")}:
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CREDIT_DRIFT_HOME", str(tmp_path / "state"))
    return tmp_path / "state"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2026-11-1"], "--from '2026-11-1' is not a day: write YYYY-MM-DD"),
        (["--from", "2026-11-01", "--to", "Nov 8"], "--to 'Nov 8' is not a day"),
        (["--from", "2026-11-01'; DROP TABLE predictions; --"], "is not a day: write YYYY-MM-DD"),
        (["--from", "2026-02-30"], "'2026-02-30' is not a day"),
        (["--from", "2026-11-08", "--to", "2026-11-01"], "--to 2026-11-01 is before --from"),
        (["--from", "2026-10-31"], "before the first daily partition, 2026-11-01"),
        (["--from", TODAY.isoformat()], f"{TODAY} is today (UTC): a day's partition exists once"),
        (["--from", "2099-01-01"], "2099-01-01 is in the future (UTC)"),
        (
            ["--from", "2026-11-01", "--to", "2099-01-01"],
            f"the latest day now is {TODAY - dt.timedelta(days=1)}",
        ),
    ],
)
def test_range_mistakes_are_one_plain_line_and_exit_2(state, capsys, args, message):
    assert main(["materialize", *args]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("credit-drift: error: ") and err.count("\n") == 1, err
    assert message in err
    assert "Traceback" not in err


def test_an_empty_log_says_so_and_how_to_fill_it(state, capsys):
    assert main(["materialize", "--from", "2026-11-01", "--to", "2026-11-08"]) == 2
    err = capsys.readouterr().err
    assert "no predictions between 2026-11-01 and 2026-11-08 (UTC)" in err
    assert "the prediction log" in err and "is empty" in err
    assert "--start-date 2026-11-01" in err and err.count("\n") == 1


def _log_predictions(settings: Settings, times: list[dt.datetime]) -> None:
    import numpy as np

    from credit_drift.features import FeatureSchema
    from credit_drift.storage.db import make_engine, upgrade
    from credit_drift.storage.predictions import PredictionRow, insert_predictions

    upgrade(settings.database_url)
    schema = FeatureSchema.from_dicts([{"name": "x"}])
    rows = [
        PredictionRow(
            features=np.array([1.0]),
            categorical=None,
            probability=0.2,
            decision="APPROVED",
            threshold=0.5,
            model_version="m1",
            inference_time_ms=1.0,
            request_id=f"r{i}",
            created_at=when,
        )
        for i, when in enumerate(times)
    ]
    insert_predictions(make_engine(settings.database_url), schema, rows)


def test_a_range_without_predictions_says_where_the_log_holds_them(state, capsys):
    """What the README's old sequence did: traffic logged "now", a range in November asked."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    _log_predictions(Settings.from_env(), [now - dt.timedelta(minutes=2), now])
    assert main(["materialize", "--from", "2026-11-01", "--to", "2026-11-08"]) == 2
    err = capsys.readouterr().err
    assert (
        "no predictions between 2026-11-01 and 2026-11-08 (UTC); the log holds 2 predictions" in err
    )
    assert (
        f"from {(now - dt.timedelta(minutes=2)):%Y-%m-%d %H:%M} to {now:%Y-%m-%d %H:%M} UTC" in err
    )
    assert "without --start-date, predictions are logged at the current time" in err


def test_a_past_log_is_offered_as_the_range_to_materialize(state):
    settings = Settings.from_env()
    _log_predictions(settings, [dt.datetime(2026, 11, 3, 12, tzinfo=dt.UTC)])
    span = orchestration.log_span(settings, "2026-11-10", "2026-11-12")
    assert (span.in_range, span.total) == (0, 1)
    message = orchestration.empty_range_message(span, "2026-11-10", "2026-11-12", settings)
    assert "materialize those days instead (--from 2026-11-03 --to 2026-11-03)" in message
    assert orchestration.log_span(settings, "2026-11-01", "2026-11-03").in_range == 1


def test_status_takes_home(state, tmp_path, capsys):
    other = tmp_path / "other-state"
    other.mkdir()
    assert main(["status", "--home", str(other)]) == 0
    assert "no drift report yet in" in capsys.readouterr().out
    assert (other / "credit_drift.db").exists() and not state.exists()
    assert main(["status", "--home", str(tmp_path / "nowhere")]) == 2
    assert "--home" in capsys.readouterr().err


def test_dagster_home_disables_the_community_popup_and_keeps_users_own_config(state):
    settings = Settings.from_env()
    home = orchestration.dagster_home(settings)
    assert home == state / "dagster"
    instance = orchestration.instance_for(settings)
    assert not instance.nux_enabled  # the UI's "join the community" dialog
    # An older generated file is brought up to date; a user's own file is left alone.
    (home / "dagster.yaml").write_text(
        "# DAGSTER_HOME of credit-drift's state directory: old\ntelemetry:\n  enabled: false\n"
    )
    orchestration.dagster_home(settings)
    assert (home / "dagster.yaml").read_text() == orchestration.INSTANCE_YAML
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: true\n")
    orchestration.dagster_home(settings)
    assert (home / "dagster.yaml").read_text() == "telemetry:\n  enabled: true\n"


def test_the_checkouts_dagster_yaml_is_the_local_instance_config(tmp_path):
    """`dagster dev` run in the checkout reads ./dagster.yaml: it must be the same local SQLite
    configuration credit-drift writes into a state directory, never the production one."""
    import shutil

    import dagster as dg

    checkout = Path(__file__).resolve().parents[1] / "dagster.yaml"
    assert checkout.read_text() == orchestration.INSTANCE_YAML
    shutil.copy(checkout, tmp_path / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    assert not instance.nux_enabled
    assert "Sqlite" in type(instance.run_storage).__name__


def test_ui_runs_dg_dev_of_its_own_environment_not_the_path(state, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(
        os, "execve", lambda path, argv, env: calls.append((path, argv, env, Path.cwd()))
    )
    monkeypatch.setenv("PATH", "/nonexistent")  # no dagster on the PATH
    (state.parent / "credit-drift.toml").write_text('target_column = "risk"\n')
    assert main(["ui", "--port", "3917"]) == 0
    ((path, argv, env, cwd),) = calls
    assert path == sys.executable and argv[0] == sys.executable
    # Started in DAGSTER_HOME: Dagster warns about a dagster.yaml in any other current folder.
    assert cwd == state / "dagster"
    assert argv[1:5] == ["-m", "dagster_dg_cli.cli", "dev", "-m"]
    assert "credit_drift.definitions" in argv and "3917" in argv
    assert env["DAGSTER_HOME"] == str(state / "dagster")
    # The project file's settings go along as absolute values: Dagster's processes see them.
    assert env["CREDIT_DRIFT_TARGET_COLUMN"] == "risk"
    assert env["CREDIT_DRIFT_HOME"] == str(state)
    assert "http://127.0.0.1:3917" in capsys.readouterr().out


def test_next_commands_are_printed_the_way_the_user_can_type_them(monkeypatch):
    monkeypatch.setenv("CREDIT_DRIFT_RUN_SH", "./run.sh")
    assert how_to_run("ui", ".credit-drift/demo") == "./run.sh ui --home .credit-drift/demo"
    assert how_to_run("status") == "./run.sh cli status"
    monkeypatch.delenv("CREDIT_DRIFT_RUN_SH")
    script = Path(sys.executable).parent / "credit-drift"
    monkeypatch.setenv("PATH", str(script.parent))
    assert how_to_run("status") == "credit-drift status"
    monkeypatch.setenv("PATH", "/nonexistent")
    assert how_to_run("status").endswith(f"{script.name} status")
    assert how_to_run("status") != "credit-drift status"


def test_days_between_keeps_its_contract():
    assert orchestration.days_between("2026-11-30", "2026-12-02") == [
        "2026-11-30",
        "2026-12-01",
        "2026-12-02",
    ]
    with pytest.raises(ValueError, match="before"):
        orchestration.days_between("2026-11-02", "2026-11-01")


def test_a_failing_run_is_one_plain_line_too(state, capsys, monkeypatch):
    """No model yet: the reference profile (built first, as the instance has none) fails; the
    user reads Dagster's step error as one line, without the exception's class path."""
    monkeypatch.setenv("CREDIT_DRIFT_ARTIFACTS_DIR", str(state.parent / "no-model"))
    _log_predictions(Settings.from_env(), [dt.datetime(2026, 11, 3, 12, tzinfo=dt.UTC)])
    assert main(["materialize", "--from", "2026-11-03"]) == 2
    out, err = capsys.readouterr()
    assert out == "reference profile ... FAILED\n"
    assert err.startswith("credit-drift: error: the reference profile failed: reference_profile: ")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "credit_drift." not in err.split("failed: ", 1)[1].split(" (run ")[0][:40]


def test_runs_read_the_environment_as_it_is_now_not_as_it_was_at_import(state, monkeypatch):
    """The demo and the tests import the definitions once, then point the environment at another
    state directory: the runs must use the new one (a stale model path once failed CI when the
    checkout's own artifacts/ was empty)."""
    import credit_drift.definitions  # noqa: F401 - bound to the environment of this moment

    elsewhere = state.parent / "elsewhere-artifacts"
    monkeypatch.setenv("CREDIT_DRIFT_ARTIFACTS_DIR", str(elsewhere))
    instance = orchestration.instance_for(Settings.from_env())
    outcome = orchestration.materialize_reference(instance, raise_on_error=False)
    assert not outcome.success
    assert str(elsewhere) in outcome.error
