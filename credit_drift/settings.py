"""Every configurable value of credit-drift, read from the environment with documented defaults.

This module is the one place where defaults live: the README's configuration table mirrors
`ENV_VARS` below, and no other module reads `os.environ` for project settings.
"""

import os
from dataclasses import dataclass, field, fields
from pathlib import Path


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names the variable."""


@dataclass(frozen=True)
class EnvVar:
    name: str
    default: str
    help: str


ENV_VARS: tuple[EnvVar, ...] = (
    EnvVar(
        "CREDIT_DRIFT_HOME",
        ".credit-drift",
        "State directory: SQLite database, reports, plots, DAGSTER_HOME of the demo.",
    ),
    EnvVar(
        "DATABASE_URL",
        "sqlite:///$CREDIT_DRIFT_HOME/credit_drift.db",
        "SQLAlchemy URL of the prediction log. PostgreSQL: postgresql+psycopg2://user@host:5432/db",
    ),
    EnvVar(
        "CREDIT_DRIFT_DATA_DIR",
        "data",
        "Where generate-data writes train.parquet and pool.parquet.",
    ),
    EnvVar(
        "CREDIT_DRIFT_ARTIFACTS_DIR",
        "artifacts",
        "Where train writes the model, feature list, threshold and metrics.",
    ),
    EnvVar(
        "CREDIT_DRIFT_TRAINING_DATA",
        "$CREDIT_DRIFT_DATA_DIR/train.parquet",
        "Training set (CSV or Parquet) used by train and by the reference profile.",
    ),
    EnvVar("CREDIT_DRIFT_TARGET_COLUMN", "TARGET", "Binary target column of the training set."),
    EnvVar(
        "CREDIT_DRIFT_ID_COLUMN", "SK_ID_CURR", "Id column of the training set (not a feature)."
    ),
    EnvVar(
        "CREDIT_DRIFT_CATEGORICAL_COLUMNS",
        "",
        "Comma-separated columns to treat as categorical (string columns must be listed).",
    ),
    EnvVar("CREDIT_DRIFT_COST_FN", "10", "Business cost of a missed default (false negative)."),
    EnvVar(
        "CREDIT_DRIFT_COST_FP",
        "1",
        "Business cost of wrongly refusing a good client (false positive).",
    ),
    EnvVar(
        "CREDIT_DRIFT_TRAIN_THREADS",
        "1",
        "LightGBM training threads (1: on a busy 2-core machine 2 threads measured 5-10x slower).",
    ),
    EnvVar(
        "CREDIT_DRIFT_REPORTS_DIR",
        "$CREDIT_DRIFT_HOME/reports",
        "Evidently HTML reports and plots, one folder per day.",
    ),
    EnvVar(
        "CREDIT_DRIFT_PARTITIONS_START", "2026-11-01", "First day (UTC) of the daily partitions."
    ),
    EnvVar(
        "CREDIT_DRIFT_WARNING_SHARE",
        "0.10",
        "Drifted-feature share at or above which a window is WARNING.",
    ),
    EnvVar(
        "CREDIT_DRIFT_ALERT_SHARE", "0.30", "Drifted-feature share above which a window is ALERT."
    ),
    EnvVar(
        "CREDIT_DRIFT_MIN_WINDOW_ROWS",
        "30",
        "Fewer rows than this and the window check fails (too few for a meaningful test).",
    ),
    EnvVar(
        "CREDIT_DRIFT_POLICY",
        "default",
        "Drift decision policy: default (BH-corrected KS + effect-size floor) "
        "or notebook (KS p < 0.05).",
    ),
    EnvVar(
        "CREDIT_DRIFT_ALERT_SEVERITY",
        "ALERT",
        "Lowest window status that raises an alert: ALERT, or WARNING to be told earlier.",
    ),
    EnvVar(
        "CREDIT_DRIFT_API_KEY", "", "When set, /predict endpoints require it (Bearer or X-API-Key)."
    ),
    EnvVar(
        "CREDIT_DRIFT_ALLOW_REPLAY",
        "0",
        "1 lets /predict accept an event_time (replay of historical traffic). Never in production.",
    ),
    EnvVar(
        "CREDIT_DRIFT_ALERT_WEBHOOK_URL",
        "",
        "Slack-compatible webhook that receives ALERT notifications.",
    ),
    EnvVar(
        "CREDIT_DRIFT_DAGSTER_URL",
        "http://127.0.0.1:3000",
        "Dagster UI the dashboard links each day to (its drift_report partition and run).",
    ),
    EnvVar(
        "CREDIT_DRIFT_LOG_FORMAT",
        "text",
        "text, or json: the pipeline's and the CLI's logs as JSON lines (docs/log-schema.md).",
    ),
)


def _raw(name: str, env: dict[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    var = next(v for v in ENV_VARS if v.name == name)
    value = env.get(name, "")
    return value if value != "" else var.default


def _float(name: str, env: dict[str, str] | None) -> float:
    raw = _raw(name, env)
    try:
        return float(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r} is not a number") from exc


def _positive_int(name: str, env: dict[str, str] | None) -> int:
    raw = _raw(name, env)
    if not raw.isdigit() or int(raw) < 1:
        raise SettingsError(f"{name}={raw!r} is not a positive integer")
    return int(raw)


def _log_format(raw: str) -> str:
    value = raw.lower()
    if value not in ("text", "json"):
        raise SettingsError(f"CREDIT_DRIFT_LOG_FORMAT={raw!r} must be text or json")
    return value


def log_format(env: dict[str, str] | None = None) -> str:
    """CREDIT_DRIFT_LOG_FORMAT alone (text or json), for code that must not fail on another
    setting (the Dagster definitions read it at import)."""
    return _log_format(_raw("CREDIT_DRIFT_LOG_FORMAT", env))


def _alert_severity(raw: str) -> str:
    value = raw.upper()
    if value not in ("ALERT", "WARNING"):
        raise SettingsError(f"CREDIT_DRIFT_ALERT_SEVERITY={raw!r} must be ALERT or WARNING")
    return value


@dataclass(frozen=True)
class Settings:
    """Resolved configuration. Build with `Settings.from_env()`; tests pass overrides."""

    home: Path
    database_url: str
    data_dir: Path
    artifacts_dir: Path
    training_data: Path
    target_column: str
    id_column: str
    categorical_columns: tuple[str, ...]
    cost_fn: float
    cost_fp: float
    train_threads: int
    reports_dir: Path
    partitions_start: str
    warning_share: float
    alert_share: float
    min_window_rows: int
    policy: str = "default"
    alert_severity: str = "ALERT"
    api_key: str = field(default="", repr=False)
    allow_replay: bool = False
    alert_webhook_url: str = field(default="", repr=False)
    dagster_url: str = "http://127.0.0.1:3000"
    log_format: str = "text"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides) -> "Settings":
        # Absolute paths: Dagster runs and the API may start from another working directory.
        home = Path(_raw("CREDIT_DRIFT_HOME", env)).expanduser().resolve()
        data_dir = Path(_raw("CREDIT_DRIFT_DATA_DIR", env)).expanduser().resolve()

        def expand(value: str) -> str:
            return value.replace("$CREDIT_DRIFT_HOME", str(home)).replace(
                "$CREDIT_DRIFT_DATA_DIR", str(data_dir)
            )

        database_url = expand(_raw("DATABASE_URL", env))
        if database_url.startswith(("postgresql://", "postgres://")):
            # SQLAlchemy 2.1 maps a bare postgresql:// URL to psycopg 3, which is not installed.
            database_url = "postgresql+psycopg2://" + database_url.split("://", 1)[1]
        warning = _float("CREDIT_DRIFT_WARNING_SHARE", env)
        alert = _float("CREDIT_DRIFT_ALERT_SHARE", env)
        if not 0 <= warning <= alert <= 1:
            raise SettingsError(
                "CREDIT_DRIFT_WARNING_SHARE and CREDIT_DRIFT_ALERT_SHARE must satisfy "
                f"0 <= warning <= alert <= 1 (got {warning}, {alert})"
            )
        min_rows_raw = _raw("CREDIT_DRIFT_MIN_WINDOW_ROWS", env)
        if not min_rows_raw.isdigit():
            raise SettingsError(f"CREDIT_DRIFT_MIN_WINDOW_ROWS={min_rows_raw!r} is not an integer")
        cats = tuple(
            c.strip() for c in _raw("CREDIT_DRIFT_CATEGORICAL_COLUMNS", env).split(",") if c.strip()
        )
        values = dict(
            home=home,
            database_url=database_url,
            data_dir=data_dir,
            artifacts_dir=Path(_raw("CREDIT_DRIFT_ARTIFACTS_DIR", env)).expanduser().resolve(),
            training_data=Path(expand(_raw("CREDIT_DRIFT_TRAINING_DATA", env)))
            .expanduser()
            .resolve(),
            target_column=_raw("CREDIT_DRIFT_TARGET_COLUMN", env),
            id_column=_raw("CREDIT_DRIFT_ID_COLUMN", env),
            categorical_columns=cats,
            cost_fn=_float("CREDIT_DRIFT_COST_FN", env),
            cost_fp=_float("CREDIT_DRIFT_COST_FP", env),
            train_threads=_positive_int("CREDIT_DRIFT_TRAIN_THREADS", env),
            reports_dir=Path(expand(_raw("CREDIT_DRIFT_REPORTS_DIR", env))).expanduser().resolve(),
            partitions_start=_raw("CREDIT_DRIFT_PARTITIONS_START", env),
            warning_share=warning,
            alert_share=alert,
            min_window_rows=int(min_rows_raw),
            policy=_raw("CREDIT_DRIFT_POLICY", env),
            alert_severity=_alert_severity(_raw("CREDIT_DRIFT_ALERT_SEVERITY", env)),
            api_key=_raw("CREDIT_DRIFT_API_KEY", env),
            allow_replay=_raw("CREDIT_DRIFT_ALLOW_REPLAY", env).lower() in ("1", "true", "yes"),
            alert_webhook_url=_raw("CREDIT_DRIFT_ALERT_WEBHOOK_URL", env),
            dagster_url=_raw("CREDIT_DRIFT_DAGSTER_URL", env).rstrip("/"),
            log_format=_log_format(_raw("CREDIT_DRIFT_LOG_FORMAT", env)),
        )
        unknown = set(overrides) - {f.name for f in fields(cls)}
        if unknown:
            raise TypeError(f"unknown settings: {sorted(unknown)}")
        values.update(overrides)
        return cls(**values)


def env_table_markdown() -> str:
    """The README's configuration table, generated so that it cannot drift from the code."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    rows += [f"| `{v.name}` | `{v.default}` | {v.help} |" for v in ENV_VARS]
    return "\n".join(rows)
