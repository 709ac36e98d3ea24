"""Every configurable value of credit-drift, with documented defaults, read from the environment
and from an optional project file.

This module is the one place where defaults live: the README's configuration table is generated
from `ENV_VARS` below, and no other module reads `os.environ` for project settings.

Where a value comes from, first match wins: the environment variable (when set and not empty),
then the project file, then the default. The project file is the TOML file named by
CREDIT_DRIFT_CONFIG, else `credit-drift.toml` in the current directory, else the
`[tool.credit-drift]` table of `pyproject.toml` in the current directory. Its keys are the
variables' names in lower case without the `CREDIT_DRIFT_` prefix (`training_data`,
`target_column`, `database_url`...); relative paths in it are relative to the file.
"""

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from credit_drift.errors import CreditDriftError
from credit_drift.stats.presets import POLICY_PRESETS


class SettingsError(CreditDriftError, ValueError):
    """A setting has a value that cannot be used; the message names the variable."""


@dataclass(frozen=True)
class EnvVar:
    name: str
    default: str
    help: str
    #: A filesystem path: a relative value in the project file is relative to the file.
    is_path: bool = False

    @property
    def key(self) -> str:
        """The key of this setting in the project file."""
        return self.name.removeprefix("CREDIT_DRIFT_").lower()


#: Names the project file explicitly (it is itself never read from the project file).
CONFIG_VAR = "CREDIT_DRIFT_CONFIG"
PROJECT_FILE = "credit-drift.toml"
PYPROJECT_TABLE = "credit-drift"


ENV_VARS: tuple[EnvVar, ...] = (
    EnvVar(
        "CREDIT_DRIFT_HOME",
        ".credit-drift",
        "State directory: SQLite database, reports, plots, Dagster's DAGSTER_HOME.",
        is_path=True,
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
        is_path=True,
    ),
    EnvVar(
        "CREDIT_DRIFT_ARTIFACTS_DIR",
        "artifacts",
        "Where train writes the model, feature list, threshold and metrics.",
        is_path=True,
    ),
    EnvVar(
        "CREDIT_DRIFT_TRAINING_DATA",
        "$CREDIT_DRIFT_DATA_DIR/train.parquet",
        "Training set (CSV or Parquet) used by train and by the reference profile.",
        is_path=True,
    ),
    EnvVar(
        "CREDIT_DRIFT_TARGET_COLUMN",
        "TARGET",
        "Target column of the training set: 0/1 (1 = default), or labels with POSITIVE_LABEL.",
    ),
    EnvVar(
        "CREDIT_DRIFT_POSITIVE_LABEL",
        "",
        "The target's value that means default when the target holds labels (e.g. bad); "
        "empty: the target is 0/1.",
    ),
    EnvVar(
        "CREDIT_DRIFT_ID_COLUMN",
        "SK_ID_CURR",
        "Id column of the training set, not a feature. Optional: ignored if the file has none.",
    ),
    EnvVar(
        "CREDIT_DRIFT_CATEGORICAL_COLUMNS",
        "",
        "Comma-separated categorical columns, or auto: every non-numeric column. A string "
        "column that is not categorical stops training.",
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
        is_path=True,
    ),
    EnvVar(
        "CREDIT_DRIFT_IO_BASE",
        "$CREDIT_DRIFT_HOME/io",
        "Where the daily assets keep each day's data between steps: a folder, or an fsspec URL "
        "(s3://, gs://, az://) that every process running them can reach.",
        is_path=True,
    ),
    EnvVar(
        "CREDIT_DRIFT_PARTITIONS_START", "2026-11-01", "First day (UTC) of the daily partitions."
    ),
    EnvVar(
        "CREDIT_DRIFT_BACKFILL_DAYS_PER_RUN",
        "7",
        "Days a backfill puts in one Dagster run (fewer runs to start; each run holds that many "
        "days of predictions in memory).",
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
        "CREDIT_DRIFT_EVIDENCE_DAYS",
        "7",
        "Days the evidence-across-days detector (drift_evidence) accumulates, the day judged "
        "included.",
    ),
    EnvVar(
        "CREDIT_DRIFT_EVIDENCE_ALLOWANCE",
        "0.005",
        "KS statistic per day, above a clean window's noise, that drift_evidence never "
        "accumulates (smaller shifts are ignored however long they last).",
    ),
    EnvVar(
        "CREDIT_DRIFT_EVIDENCE_THRESHOLD",
        "0.05",
        "Accumulated KS excess at which drift_evidence flags a feature; the share of flagged "
        "features gets the WARNING / ALERT shares.",
    ),
    EnvVar(
        "CREDIT_DRIFT_OUTCOME_HORIZON_DAYS",
        "30",
        "Days after its scoring day by which a cohort's outcomes count as matured "
        "(realized_performance: immature / partial before, mature after); the days within it "
        "(plus 7) are measured again once a day.",
    ),
    EnvVar(
        "CREDIT_DRIFT_MIN_ESTIMATED_AUC",
        "0.6",
        "estimated_performance is ALERT (and its check fails) when the day's label-free "
        "estimated AUC is below this (0.6 = a Gini of 0.2); 0 disables the bound.",
    ),
    EnvVar(
        "CREDIT_DRIFT_SEGMENTS",
        "",
        "Comma-separated segment columns tested on their own by segment_drift: score_band (the "
        "probability cut at CREDIT_DRIFT_SCORE_BANDS) or a model feature with at most 20 values "
        "(a categorical feature, a flag). Empty: no segments. Changing it needs the "
        "reference_profile re-materialized.",
    ),
    EnvVar(
        "CREDIT_DRIFT_SCORE_BANDS",
        "0.05,0.1,0.2",
        "Probability edges of the score_band segments: [0, 0.05), [0.05, 0.1), ..., [0.2, 1].",
    ),
    EnvVar(
        "CREDIT_DRIFT_SEGMENT_MIN_ROWS",
        "100",
        "Fewest rows, in the day and in the training set, for a segment to be tested; smaller "
        "segments are reported TOO_SMALL, never OK.",
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
        "CREDIT_DRIFT_DB_TIMEOUT_S",
        "2",
        "Longest the API waits on its database per request (connect, pool, statement): past it "
        "the request answers 503 and /health/ready says not ready.",
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
        "CREDIT_DRIFT_EXECUTOR",
        "in_process",
        "How the Dagster jobs run their steps: in_process (in the run's process), or celery "
        "(on dagster-celery workers through CREDIT_DRIFT_CELERY_BROKER; the stack sets it).",
    ),
    EnvVar(
        "CREDIT_DRIFT_CELERY_BROKER",
        "",
        "Broker URL of the celery executor (redis://host:port/db); required with "
        "CREDIT_DRIFT_EXECUTOR=celery. Its results go to the same redis.",
    ),
    EnvVar(
        "DAGSTER_PG_URL",
        "",
        "PostgreSQL URL (postgresql+psycopg2://) of the production Dagster instance's storage "
        "(deploy/dagster.yaml, ./run.sh stack up).",
    ),
    EnvVar(
        "CREDIT_DRIFT_LOG_FORMAT",
        "text",
        "text, or json: the pipeline's and the CLI's logs as JSON lines (docs/log-schema.md).",
    ),
)


_BY_NAME = {v.name: v for v in ENV_VARS}
_BY_KEY = {v.key: v for v in ENV_VARS}
#: `CREDIT_DRIFT_CATEGORICAL_COLUMNS=auto`: every column that is not numeric is categorical.
CATEGORICAL_AUTO = "auto"


def find_project_file(env: Mapping[str, str], cwd: Path) -> Path | None:
    """The project file in use: CREDIT_DRIFT_CONFIG, else ./credit-drift.toml, else
    ./pyproject.toml when it has a [tool.credit-drift] table, else None."""
    explicit = env.get(CONFIG_VAR, "")
    if explicit:
        path = Path(explicit).expanduser()
        path = path if path.is_absolute() else cwd / path
        if not path.is_file():
            raise SettingsError(f"{CONFIG_VAR}={explicit!r}: no such file")
        return path.resolve()
    own = cwd / PROJECT_FILE
    if own.is_file():
        return own.resolve()
    pyproject = cwd / "pyproject.toml"
    if pyproject.is_file() and PYPROJECT_TABLE in _load_toml(pyproject).get("tool", {}):
        return pyproject.resolve()
    return None


def _load_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path} is not valid TOML: {exc}") from None


def read_project_file(path: Path) -> dict[str, str]:
    """The settings of a project file, as {variable name: raw string value}."""
    doc = _load_toml(path)
    if path.name == "pyproject.toml":
        doc = doc.get("tool", {}).get(PYPROJECT_TABLE, {})
    values: dict[str, str] = {}
    for key, value in doc.items():
        var = _BY_KEY.get(key)
        if var is None:
            raise SettingsError(
                f"{path}: unknown setting {key!r}; known settings: {', '.join(sorted(_BY_KEY))}"
            )
        if isinstance(value, bool):
            text = "1" if value else "0"
        elif isinstance(value, int | float | str):
            text = str(value)
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            text = ",".join(value)
        else:
            raise SettingsError(
                f"{path}: {key} must be a string, a number, a boolean or a list of strings"
            )
        if var.is_path and text and not text.startswith("$"):
            # Relative to the file, so that the same file works from any directory.
            text = str((path.parent / Path(text).expanduser()).resolve())
        values[var.name] = text
    return values


@dataclass(frozen=True)
class RawSettings:
    """The raw text of every setting and where it came from (environment, project file or
    default). `Settings.from_env` parses these; `credit-drift env --current` shows them."""

    env: Mapping[str, str]
    project_file: Path | None
    file_values: Mapping[str, str]

    @classmethod
    def read(cls, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> "RawSettings":
        env = os.environ if env is None else env
        path = find_project_file(env, Path.cwd() if cwd is None else cwd)
        return cls(env, path, read_project_file(path) if path else {})

    def __call__(self, name: str) -> str:
        value = self.env.get(name, "")
        if value != "":
            return value
        return self.file_values.get(name, _BY_NAME[name].default)

    def source(self, name: str) -> str:
        if self.env.get(name, "") != "":
            return "environment"
        if name in self.file_values:
            return str(self.project_file)
        return "default"

    def where(self, name: str) -> str:
        """How to name a setting in an error message: as the user wrote it."""
        if self.env.get(name, "") == "" and name in self.file_values:
            return f"{_BY_NAME[name].key} (in {self.project_file})"
        return name


def _float(name: str, raw: RawSettings) -> float:
    value = raw(name)
    try:
        return float(value)
    except ValueError as exc:
        raise SettingsError(f"{raw.where(name)}={value!r} is not a number") from exc


def _non_negative(name: str, raw: RawSettings) -> float:
    value = _float(name, raw)
    if not value >= 0 or value == float("inf"):
        raise SettingsError(f"{raw.where(name)}={raw(name)!r} must be a finite number >= 0")
    return value


def _positive(name: str, raw: RawSettings) -> float:
    value = _non_negative(name, raw)
    if value == 0:
        raise SettingsError(f"{raw.where(name)}={raw(name)!r} must be > 0")
    return value


def _log_format(value: str, where: str = "CREDIT_DRIFT_LOG_FORMAT") -> str:
    if value.lower() not in ("text", "json"):
        raise SettingsError(f"{where}={value!r} must be text or json")
    return value.lower()


def log_format(env: Mapping[str, str] | None = None) -> str:
    """CREDIT_DRIFT_LOG_FORMAT alone (text or json), for code that must not fail on another
    setting (the Dagster definitions read it at import)."""
    raw = RawSettings.read(env, None)
    return _log_format(raw("CREDIT_DRIFT_LOG_FORMAT"), raw.where("CREDIT_DRIFT_LOG_FORMAT"))


#: The executors a job may run on (CREDIT_DRIFT_EXECUTOR).
EXECUTORS = ("in_process", "celery")


@dataclass(frozen=True)
class ExecutorSettings:
    kind: str
    broker: str = field(default="", repr=False)


def executor_settings(env: Mapping[str, str] | None = None) -> ExecutorSettings:
    """CREDIT_DRIFT_EXECUTOR and its broker alone, for the Dagster definitions, which read them
    at import (every process of a deployment loads the definitions with the same environment:
    the code server, the run workers and the celery workers)."""
    raw = RawSettings.read(env, None)
    kind = raw("CREDIT_DRIFT_EXECUTOR").strip().lower().replace("-", "_")
    if kind not in EXECUTORS:
        raise SettingsError(
            f"{raw.where('CREDIT_DRIFT_EXECUTOR')}={raw('CREDIT_DRIFT_EXECUTOR')!r} must be "
            f"{' or '.join(EXECUTORS)}"
        )
    broker = raw("CREDIT_DRIFT_CELERY_BROKER").strip()
    if kind == "celery" and not broker:
        raise SettingsError(
            "CREDIT_DRIFT_EXECUTOR=celery needs CREDIT_DRIFT_CELERY_BROKER (e.g. "
            "redis://127.0.0.1:6380/0): ./run.sh stack up sets both"
        )
    return ExecutorSettings(kind, broker)


def _min_auc(raw: RawSettings) -> float:
    name = "CREDIT_DRIFT_MIN_ESTIMATED_AUC"
    value = _non_negative(name, raw)
    if value > 1:
        raise SettingsError(f"{raw.where(name)}={raw(name)!r} must be an AUC, within [0, 1]")
    return value


def _positive_int(name: str, raw: RawSettings) -> int:
    value = raw(name)
    if not value.isdigit() or int(value) < 1:
        raise SettingsError(f"{raw.where(name)}={value!r} is not a positive integer")
    return int(value)


def _categorical(raw: RawSettings) -> tuple[str, ...] | str:
    value = raw("CREDIT_DRIFT_CATEGORICAL_COLUMNS")
    if value.strip().lower() == CATEGORICAL_AUTO:
        return CATEGORICAL_AUTO
    return tuple(c.strip() for c in value.split(",") if c.strip())


def _names(name: str, raw: RawSettings) -> tuple[str, ...]:
    names = tuple(c.strip() for c in raw(name).split(",") if c.strip())
    if len(set(names)) != len(names):
        raise SettingsError(f"{raw.where(name)}={raw(name)!r} names a column twice")
    return names


def _score_bands(raw: RawSettings) -> tuple[float, ...]:
    name = "CREDIT_DRIFT_SCORE_BANDS"
    try:
        edges = tuple(float(e) for e in raw(name).split(",") if e.strip())
    except ValueError:
        raise SettingsError(f"{raw.where(name)}={raw(name)!r} is not a list of numbers") from None
    if not edges or any(not 0 < e < 1 for e in edges) or sorted(set(edges)) != list(edges):
        raise SettingsError(
            f"{raw.where(name)}={raw(name)!r}: need strictly increasing probabilities in (0, 1)"
        )
    return edges


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
    #: Column names, or CATEGORICAL_AUTO (every non-numeric column).
    categorical_columns: tuple[str, ...] | str
    cost_fn: float
    cost_fp: float
    train_threads: int
    reports_dir: Path
    io_base: str
    partitions_start: str
    backfill_days_per_run: int
    warning_share: float
    alert_share: float
    min_window_rows: int
    evidence_days: int = 7
    evidence_allowance: float = 0.005
    evidence_threshold: float = 0.05
    outcome_horizon_days: float = 30.0
    min_estimated_auc: float = 0.6
    segments: tuple[str, ...] = ()
    score_bands: tuple[float, ...] = (0.05, 0.1, 0.2)
    segment_min_rows: int = 100
    policy: str = "default"
    alert_severity: str = "ALERT"
    api_key: str = field(default="", repr=False)
    allow_replay: bool = False
    db_timeout_s: float = 2.0
    alert_webhook_url: str = field(default="", repr=False)
    dagster_url: str = "http://127.0.0.1:3000"
    log_format: str = "text"
    positive_label: str = ""
    project_file: Path | None = None

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, cwd: Path | None = None, **overrides
    ) -> "Settings":
        """Settings from `env` (default: the process environment) and the project file found
        from `cwd` (default: the current directory); `overrides` replace fields."""
        raw = RawSettings.read(env, cwd)
        # Absolute paths: Dagster runs and the API may start from another working directory.
        home = Path(raw("CREDIT_DRIFT_HOME")).expanduser().resolve()
        data_dir = Path(raw("CREDIT_DRIFT_DATA_DIR")).expanduser().resolve()

        def expand(value: str) -> str:
            return value.replace("$CREDIT_DRIFT_HOME", str(home)).replace(
                "$CREDIT_DRIFT_DATA_DIR", str(data_dir)
            )

        database_url = normalize_database_url(expand(raw("DATABASE_URL")))
        warning = _float("CREDIT_DRIFT_WARNING_SHARE", raw)
        alert = _float("CREDIT_DRIFT_ALERT_SHARE", raw)
        if not 0 <= warning <= alert <= 1:
            raise SettingsError(
                "CREDIT_DRIFT_WARNING_SHARE and CREDIT_DRIFT_ALERT_SHARE must satisfy "
                f"0 <= warning <= alert <= 1 (got {warning}, {alert})"
            )
        min_rows_raw = raw("CREDIT_DRIFT_MIN_WINDOW_ROWS")
        if not min_rows_raw.isdigit():
            raise SettingsError(
                f"{raw.where('CREDIT_DRIFT_MIN_WINDOW_ROWS')}={min_rows_raw!r} is not an integer"
            )
        severity = raw("CREDIT_DRIFT_ALERT_SEVERITY")
        if severity.upper() not in ("ALERT", "WARNING"):
            raise SettingsError(
                f"{raw.where('CREDIT_DRIFT_ALERT_SEVERITY')}={severity!r} must be ALERT or WARNING"
            )
        values = dict(
            home=home,
            database_url=database_url,
            data_dir=data_dir,
            artifacts_dir=Path(raw("CREDIT_DRIFT_ARTIFACTS_DIR")).expanduser().resolve(),
            training_data=Path(expand(raw("CREDIT_DRIFT_TRAINING_DATA"))).expanduser().resolve(),
            target_column=raw("CREDIT_DRIFT_TARGET_COLUMN"),
            positive_label=raw("CREDIT_DRIFT_POSITIVE_LABEL"),
            id_column=raw("CREDIT_DRIFT_ID_COLUMN"),
            categorical_columns=_categorical(raw),
            cost_fn=_float("CREDIT_DRIFT_COST_FN", raw),
            cost_fp=_float("CREDIT_DRIFT_COST_FP", raw),
            train_threads=_positive_int("CREDIT_DRIFT_TRAIN_THREADS", raw),
            reports_dir=Path(expand(raw("CREDIT_DRIFT_REPORTS_DIR"))).expanduser().resolve(),
            io_base=_io_base(expand(raw("CREDIT_DRIFT_IO_BASE"))),
            partitions_start=raw("CREDIT_DRIFT_PARTITIONS_START"),
            backfill_days_per_run=_positive_int("CREDIT_DRIFT_BACKFILL_DAYS_PER_RUN", raw),
            warning_share=warning,
            alert_share=alert,
            min_window_rows=int(min_rows_raw),
            evidence_days=_positive_int("CREDIT_DRIFT_EVIDENCE_DAYS", raw),
            evidence_allowance=_non_negative("CREDIT_DRIFT_EVIDENCE_ALLOWANCE", raw),
            evidence_threshold=_positive("CREDIT_DRIFT_EVIDENCE_THRESHOLD", raw),
            outcome_horizon_days=_positive("CREDIT_DRIFT_OUTCOME_HORIZON_DAYS", raw),
            min_estimated_auc=_min_auc(raw),
            segments=_names("CREDIT_DRIFT_SEGMENTS", raw),
            score_bands=_score_bands(raw),
            segment_min_rows=_positive_int("CREDIT_DRIFT_SEGMENT_MIN_ROWS", raw),
            policy=_policy_name(raw),
            alert_severity=severity.upper(),
            api_key=raw("CREDIT_DRIFT_API_KEY"),
            allow_replay=raw("CREDIT_DRIFT_ALLOW_REPLAY").lower() in ("1", "true", "yes"),
            db_timeout_s=_db_timeout(raw),
            alert_webhook_url=raw("CREDIT_DRIFT_ALERT_WEBHOOK_URL"),
            dagster_url=raw("CREDIT_DRIFT_DAGSTER_URL").rstrip("/"),
            log_format=_log_format(
                raw("CREDIT_DRIFT_LOG_FORMAT"), raw.where("CREDIT_DRIFT_LOG_FORMAT")
            ),
            project_file=raw.project_file,
        )
        unknown = set(overrides) - {f.name for f in fields(cls)}
        if unknown:
            raise TypeError(f"unknown settings: {sorted(unknown)}")
        values.update(overrides)
        return cls(**values)

    def environment(self) -> dict[str, str]:
        """Environment variables that reproduce these settings in another process, whatever
        its working directory (absolute paths; the project file is already applied)."""
        categorical = self.categorical_columns
        return {
            "CREDIT_DRIFT_HOME": str(self.home),
            "DATABASE_URL": self.database_url,
            "CREDIT_DRIFT_DATA_DIR": str(self.data_dir),
            "CREDIT_DRIFT_ARTIFACTS_DIR": str(self.artifacts_dir),
            "CREDIT_DRIFT_TRAINING_DATA": str(self.training_data),
            "CREDIT_DRIFT_TARGET_COLUMN": self.target_column,
            "CREDIT_DRIFT_POSITIVE_LABEL": self.positive_label,
            "CREDIT_DRIFT_ID_COLUMN": self.id_column,
            "CREDIT_DRIFT_CATEGORICAL_COLUMNS": (
                categorical if isinstance(categorical, str) else ",".join(categorical)
            ),
            "CREDIT_DRIFT_COST_FN": repr(self.cost_fn),
            "CREDIT_DRIFT_COST_FP": repr(self.cost_fp),
            "CREDIT_DRIFT_TRAIN_THREADS": str(self.train_threads),
            "CREDIT_DRIFT_REPORTS_DIR": str(self.reports_dir),
            "CREDIT_DRIFT_IO_BASE": self.io_base,
            "CREDIT_DRIFT_PARTITIONS_START": self.partitions_start,
            "CREDIT_DRIFT_BACKFILL_DAYS_PER_RUN": str(self.backfill_days_per_run),
            "CREDIT_DRIFT_WARNING_SHARE": repr(self.warning_share),
            "CREDIT_DRIFT_ALERT_SHARE": repr(self.alert_share),
            "CREDIT_DRIFT_MIN_WINDOW_ROWS": str(self.min_window_rows),
            "CREDIT_DRIFT_EVIDENCE_DAYS": str(self.evidence_days),
            "CREDIT_DRIFT_EVIDENCE_ALLOWANCE": repr(self.evidence_allowance),
            "CREDIT_DRIFT_EVIDENCE_THRESHOLD": repr(self.evidence_threshold),
            "CREDIT_DRIFT_OUTCOME_HORIZON_DAYS": repr(self.outcome_horizon_days),
            "CREDIT_DRIFT_MIN_ESTIMATED_AUC": repr(self.min_estimated_auc),
            "CREDIT_DRIFT_SEGMENTS": ",".join(self.segments),
            "CREDIT_DRIFT_SCORE_BANDS": ",".join(repr(e) for e in self.score_bands),
            "CREDIT_DRIFT_SEGMENT_MIN_ROWS": str(self.segment_min_rows),
            "CREDIT_DRIFT_POLICY": self.policy,
            "CREDIT_DRIFT_ALERT_SEVERITY": self.alert_severity,
            "CREDIT_DRIFT_API_KEY": self.api_key,
            "CREDIT_DRIFT_ALLOW_REPLAY": "1" if self.allow_replay else "0",
            "CREDIT_DRIFT_DB_TIMEOUT_S": repr(self.db_timeout_s),
            "CREDIT_DRIFT_ALERT_WEBHOOK_URL": self.alert_webhook_url,
            "CREDIT_DRIFT_DAGSTER_URL": self.dagster_url,
            "CREDIT_DRIFT_LOG_FORMAT": self.log_format,
        }


def normalize_database_url(url: str) -> str:
    """A bare postgresql:// (or postgres://) URL made explicit about its driver: SQLAlchemy 2.1
    maps the bare form to psycopg 3, and psycopg2 is the one driver installed."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg2://" + url.split("://", 1)[1]
    return url


def _db_timeout(raw: "RawSettings") -> float:
    value = _float("CREDIT_DRIFT_DB_TIMEOUT_S", raw)
    # Below ~0.1 s a healthy database under load would be reported down; libpq's own connect
    # timeout cannot go under 2 s anyway (the API's deadline then ends the wait).
    if not 0.1 <= value <= 600:
        raise SettingsError(
            f"{raw.where('CREDIT_DRIFT_DB_TIMEOUT_S')}={value!r} must be between 0.1 and 600 "
            "seconds"
        )
    return value


def _policy_name(raw: "RawSettings") -> str:
    value = raw("CREDIT_DRIFT_POLICY")
    if value not in POLICY_PRESETS:
        raise SettingsError(
            f"{raw.where('CREDIT_DRIFT_POLICY')}={value!r} is not a drift policy; use one of "
            f"{', '.join(POLICY_PRESETS)}"
        )
    return value


def _io_base(value: str) -> str:
    """A folder (made absolute) or a URL with a scheme (kept as is)."""
    if "://" in value:
        return value
    return str(Path(value).expanduser().resolve())


#: Query parameters of a database URL that carry a secret (libpq and the drivers accept a
#: password there as well as in the user-info part).
_SECRET_QUERY_KEYS = frozenset(
    {"password", "passwd", "pwd", "sslpassword", "sslkey_password", "token", "secret", "api_key"}
)


def redact_url(url: str) -> str:
    """A database URL fit to print: its password (if any) replaced by ***, in the user-info part
    and in query parameters such as `?password=...`."""
    if "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    if "@" in rest:
        creds, rest = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        prefix = f"{user}:***@" if ":" in creds else f"{creds}@"
    else:
        prefix = ""
    where, sep, query = rest.partition("?")
    if query:
        params = []
        for part in query.split("&"):
            key, eq, _value = part.partition("=")
            secret = key.strip().lower() in _SECRET_QUERY_KEYS
            params.append(f"{key}=***" if secret and eq else part)
        query = "&".join(params)
    return f"{scheme}://{prefix}{where}{sep}{query}"


def env_table_markdown() -> str:
    """The README's configuration table, generated so that it cannot drift from the code."""
    rows = ["| variable | project file key | default | meaning |", "|---|---|---|---|"]
    rows += [f"| `{v.name}` | `{v.key}` | `{v.default}` | {v.help} |" for v in ENV_VARS]
    return "\n".join(rows)
