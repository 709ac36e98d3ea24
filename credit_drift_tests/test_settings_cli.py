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


# -- the project file ---------------------------------------------------------------------------
def test_project_file_sets_values_and_the_environment_overrides_it(tmp_path):
    (tmp_path / "credit-drift.toml").write_text(
        'training_data = "loans.csv"\n'
        'target_column = "risk"\n'
        'positive_label = "bad"\n'
        'categorical_columns = ["segment", "region"]\n'
        "alert_share = 0.4\n"
        "allow_replay = true\n"
    )
    s = Settings.from_env({}, cwd=tmp_path)
    assert s.project_file == tmp_path / "credit-drift.toml"
    # Relative paths in the file are relative to the file, not to the current directory.
    assert s.training_data == tmp_path / "loans.csv"
    assert (s.target_column, s.positive_label) == ("risk", "bad")
    assert s.categorical_columns == ("segment", "region")
    assert s.alert_share == 0.4 and s.allow_replay
    assert s.warning_share == 0.10  # not in the file: the default
    env = {"CREDIT_DRIFT_TARGET_COLUMN": "TARGET", "CREDIT_DRIFT_ALERT_SHARE": "0.5"}
    s = Settings.from_env(env, cwd=tmp_path)
    assert (s.target_column, s.alert_share, s.positive_label) == ("TARGET", 0.5, "bad")


def test_pyproject_table_and_explicit_config_file(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.credit-drift]\ncategorical_columns = "auto"\n'
    )
    assert Settings.from_env({}, cwd=tmp_path).categorical_columns == "auto"
    other = tmp_path / "elsewhere.toml"
    other.write_text('target_column = "y"\n')
    s = Settings.from_env({"CREDIT_DRIFT_CONFIG": str(other)}, cwd=tmp_path)
    assert s.target_column == "y" and s.categorical_columns == ()
    # A pyproject.toml without the table is no project file.
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert Settings.from_env({}, cwd=tmp_path).project_file is None


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('target_colum = "y"\n', "unknown setting 'target_colum'"),
        ("alert_share = [1, 2]\n", "alert_share must be"),
        (
            'alert_share = "lots"\n',
            r"alert_share \(in .*credit-drift.toml\)='lots' is not a number",
        ),
        ("not toml at all\n", "is not valid TOML"),
    ],
)
def test_project_file_mistakes_name_the_key_and_the_file(tmp_path, text, named):
    (tmp_path / "credit-drift.toml").write_text(text)
    with pytest.raises(SettingsError, match=named):
        Settings.from_env({}, cwd=tmp_path)


def test_missing_explicit_config_file_is_named(tmp_path):
    with pytest.raises(SettingsError, match="CREDIT_DRIFT_CONFIG='nope.toml': no such file"):
        Settings.from_env({"CREDIT_DRIFT_CONFIG": "nope.toml"}, cwd=tmp_path)


def test_environment_of_settings_reproduces_them_from_any_directory(tmp_path):
    (tmp_path / "credit-drift.toml").write_text(
        'home = "state"\ncategorical_columns = "auto"\npositive_label = "bad"\ncost_fn = 7.5\n'
    )
    s = Settings.from_env({}, cwd=tmp_path)
    elsewhere = tmp_path / "other"
    elsewhere.mkdir()
    assert Settings.from_env(s.environment(), cwd=elsewhere) == Settings.from_env(
        s.environment(), cwd=elsewhere
    )
    again = Settings.from_env(s.environment(), cwd=elsewhere)
    assert again.home == tmp_path / "state"
    assert again.categorical_columns == "auto" and again.positive_label == "bad"
    assert again.cost_fn == 7.5 and again.database_url == s.database_url


def test_env_current_shows_each_value_and_its_source(tmp_path, monkeypatch, capsys):
    (tmp_path / "credit-drift.toml").write_text('target_column = "risk"\napi_key = "s3cret"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CREDIT_DRIFT_POLICY", "notebook")
    assert main(["env", "--current"]) == 0
    out = capsys.readouterr().out
    assert f"project file: {tmp_path / 'credit-drift.toml'}" in out
    assert f"CREDIT_DRIFT_TARGET_COLUMN=risk  ({tmp_path / 'credit-drift.toml'})" in out
    assert "CREDIT_DRIFT_POLICY=notebook  (environment)" in out
    assert "CREDIT_DRIFT_COST_FN=10  (default)" in out
    assert "s3cret" not in out


@pytest.mark.parametrize("reader", ["head -1", "true"])
def test_env_into_a_closed_pipe_is_quiet(reader):
    # `credit-drift env | head`: the reader may be gone before the table is written (`true`
    # always is): no BrokenPipeError, no traceback, exit code 0.
    out = subprocess.run(
        [
            "bash",
            "-c",
            f"{sys.executable} -m credit_drift.cli env | {reader}; echo ${{PIPESTATUS[0]}} >&2",
        ],
        capture_output=True,
        text=True,
    )
    assert out.stderr == "0\n"
    assert out.stdout == (
        "| variable | project file key | default | meaning |\n" if reader != "true" else ""
    )


def test_train_on_labelled_data_with_text_columns_from_a_project_file(
    tmp_path, monkeypatch, capsys
):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(3)
    n = 400
    income = rng.lognormal(10, 0.5, n)
    pd.DataFrame(
        {
            "income": income,
            "segment": rng.choice(["retail", "sme"], n),
            "risk": np.where(rng.random(n) < 0.3 + 0.2 * (income < 20_000), "bad", "good"),
        }
    ).to_csv(tmp_path / "loans.csv", index=False)
    (tmp_path / "credit-drift.toml").write_text(
        'training_data = "loans.csv"\ntarget_column = "risk"\npositive_label = "bad"\n'
        'categorical_columns = "auto"\nartifacts_dir = "model"\n'
    )
    monkeypatch.chdir(tmp_path)
    for name in ("CREDIT_DRIFT_TRAINING_DATA", "CREDIT_DRIFT_ARTIFACTS_DIR"):
        monkeypatch.delenv(name, raising=False)
    assert main(["train", "--trees", "5", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "400 rows, 2 features (1 categorical)" in out
    assert "no id column 'SK_ID_CURR'" in out
    assert (tmp_path / "model" / "model.txt").exists()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql+psycopg2://u:s3cret@h:5432/db", "postgresql+psycopg2://u:***@h:5432/db"),
        (
            "postgresql+psycopg2://u@h/db?password=s3cret&sslmode=require",
            "postgresql+psycopg2://u@h/db?password=***&sslmode=require",
        ),
        (
            "postgresql+psycopg2://h/db?sslmode=require&PassWord=s3cret&sslpassword=s3cret",
            "postgresql+psycopg2://h/db?sslmode=require&PassWord=***&sslpassword=***",
        ),
        ("postgresql+psycopg2://u:p@ss:s3cret@h/db", "postgresql+psycopg2://u:***@h/db"),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
    ],
)
def test_redact_url_hides_every_password(url, expected):
    from credit_drift.settings import redact_url

    assert redact_url(url) == expected
    assert "s3cret" not in redact_url(url)


def test_the_api_key_is_never_taken_on_the_command_line(tmp_path, monkeypatch, capsys):
    """A key in argv is visible to every user through ps: `--api-key` is refused with what to
    do instead; `--api-key-file` and CREDIT_DRIFT_API_KEY are read."""
    from credit_drift.simulator.sender import api_key_from_args

    parser = build_parser()
    monkeypatch.setenv("CREDIT_DRIFT_HOME", str(tmp_path / "home"))
    assert main(["simulate", "--api-key", "s3cret", "--url", "http://127.0.0.1:9"]) != 0
    err = capsys.readouterr().err
    assert "--api-key-file" in err and "CREDIT_DRIFT_API_KEY" in err and "s3cret" not in err
    key_file = tmp_path / "key"
    key_file.write_text("from-a-file\n")
    args = parser.parse_args(["simulate", "--api-key-file", str(key_file)])
    settings = Settings.from_env({"CREDIT_DRIFT_API_KEY": "from-env"})
    assert api_key_from_args(args, settings) == "from-a-file"
    args = parser.parse_args(["simulate"])
    assert api_key_from_args(args, settings) == "from-env"
