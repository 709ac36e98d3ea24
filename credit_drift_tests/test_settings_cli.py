"""Settings from the environment, and the CLI's help and user-facing errors."""

import subprocess
import sys

import pytest

from credit_drift.cli import build_parser, main
from credit_drift.settings import ENV_VARS, Settings, SettingsError, env_table_markdown


def test_defaults_are_embedded_sqlite_under_the_state_directory(tmp_path):
    s = Settings.from_env({"CREDIT_DRIFT_HOME": str(tmp_path / "state")})
    assert s.database_url == f"sqlite:///{tmp_path / 'state' / 'credit_drift.db'}"
    assert s.reports_dir == tmp_path / "state" / "reports"
    assert (s.warning_share, s.alert_share) == (0.10, 0.30)
    assert s.home.is_absolute() and s.artifacts_dir.is_absolute()


def test_bare_postgresql_url_gets_the_psycopg2_driver():
    s = Settings.from_env({"DATABASE_URL": "postgresql://u@h:5432/db"})
    assert s.database_url == "postgresql+psycopg2://u@h:5432/db"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"CREDIT_DRIFT_ALERT_SHARE": "lots"}, "CREDIT_DRIFT_ALERT_SHARE"),
        ({"CREDIT_DRIFT_WARNING_SHARE": "0.5", "CREDIT_DRIFT_ALERT_SHARE": "0.3"}, "WARNING_SHARE"),
        ({"CREDIT_DRIFT_MIN_WINDOW_ROWS": "-1"}, "CREDIT_DRIFT_MIN_WINDOW_ROWS"),
        ({"CREDIT_DRIFT_ALERT_SEVERITY": "LOUD"}, "CREDIT_DRIFT_ALERT_SEVERITY"),
    ],
)
def test_bad_settings_name_the_variable(env, named):
    with pytest.raises(SettingsError, match=named):
        Settings.from_env(env)


def test_secrets_are_not_in_the_repr():
    s = Settings.from_env({"CREDIT_DRIFT_API_KEY": "s3cret-key"})
    assert "s3cret-key" not in repr(s)


def test_env_table_lists_every_variable():
    table = env_table_markdown()
    for var in ENV_VARS:
        assert f"`{var.name}`" in table


def test_every_subcommand_has_help_text():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert {"generate-data", "train", "db", "serve", "simulate", "env"} <= set(sub.choices)
    helps = {a.dest: a.help for a in sub._choices_actions}
    assert set(helps) == set(sub.choices)
    assert all(helps.values()), helps


def test_help_runs_as_a_console_script():
    out = subprocess.run(
        [sys.executable, "-m", "credit_drift.cli", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0
    assert "generate-data" in out.stdout and "train" in out.stdout


def test_train_without_data_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CREDIT_DRIFT_TRAINING_DATA", str(tmp_path / "nope.parquet"))
    assert main(["train"]) == 2
    err = capsys.readouterr().err
    assert "nope.parquet" in err and "generate-data" in err


def test_readme_configuration_table_is_the_generated_one():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert env_table_markdown() in readme, "regenerate the README table with `credit-drift env`"
