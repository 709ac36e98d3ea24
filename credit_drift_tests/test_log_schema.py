"""The JSON log lines against their documented schema (docs/log-schema.json and .md): lines
written by a real API server (healthy and with its database down) and by a real Dagster run
with CREDIT_DRIFT_LOG_FORMAT=json. Field names are a contract with log pipelines: a field added,
renamed or dropped fails here until the schema and its page say so."""

import importlib
import json
import logging
import re
from pathlib import Path

import dagster as dg
import httpx
import jsonschema
import pytest

from credit_drift.logs import PIPELINE_LOG_FIELDS, PROJECT_LOGGER
from credit_drift.serving.app import create_app
from credit_drift.serving.request_log import api_logger
from credit_drift_tests.test_serving_support import (
    application,
    free_port,
    live_server,
    settings_for,
    trained_model,  # noqa: F401 - session fixture
    wait_until,
)

DOCS = Path(__file__).resolve().parents[1] / "docs"
SCHEMA = json.loads((DOCS / "log-schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(
    SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
)
VARIANTS = {v["title"]: v for v in SCHEMA["oneOf"]}


def check(line: str) -> dict:
    """Parse one line and validate it; returns it with the variant it matched."""
    record = json.loads(line)
    VALIDATOR.validate(record)
    matched = [
        name for name, v in VARIANTS.items() if jsonschema.Draft202012Validator(v).is_valid(record)
    ]
    assert len(matched) == 1, (matched, record)
    record["_variant"] = matched[0]
    return record


@pytest.fixture
def api_lines():
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    handler = Collect()
    logger = api_logger()  # its own handler and level first, as in the API process
    logger.addHandler(handler)
    yield lines
    logger.removeHandler(handler)


def test_schema_page_lists_exactly_the_schema_fields():
    page = (DOCS / "log-schema.md").read_text()
    sections = re.split(r"^### `([a-z_]+)`\s*$", page, flags=re.M)
    documented = {
        sections[i]: re.findall(r"^\| `([a-z_]+)` \|", sections[i + 1], flags=re.M)
        for i in range(1, len(sections), 2)
    }
    assert set(documented) == set(VARIANTS)
    for name, variant in VARIANTS.items():
        assert documented[name] == list(variant["properties"]), name
    assert list(VARIANTS["pipeline"]["properties"]) == list(PIPELINE_LOG_FIELDS)


def test_api_lines_match_the_schema(api_lines, trained_model, tmp_path, sqlite_url):  # noqa: F811
    settings = settings_for(sqlite_url, trained_model.artifacts_dir, tmp_path)
    app = create_app(settings, trained_model.artifacts)
    pool = trained_model.pool
    with live_server(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        assert client.post("/predict", json=application(pool, 0)).status_code == 200
        bad = application(pool, 1)
        bad.pop("EXT_SOURCE_2")
        assert client.post("/predict", json=bad).status_code == 422
        assert client.get("/health").status_code == 200
        assert client.get("/metrics").status_code == 200  # not logged
    records = [check(line) for line in api_lines]
    assert [r["_variant"] for r in records] == ["startup", "request", "request", "request"]
    request = records[1]
    assert (request["endpoint"], request["status"], request["n_items"]) == ("/predict", 200, 1)
    assert request["error"] is None and request["level"] == "INFO"
    rejected = records[2]
    assert rejected["status"] == 422 and rejected["level"] == "WARNING" and rejected["error"]


def test_api_lines_with_the_database_down_match_the_schema(api_lines, trained_model, tmp_path):  # noqa: F811
    url = f"postgresql+psycopg2://postgres@127.0.0.1:{free_port()}/nothing"
    settings = settings_for(url, trained_model.artifacts_dir, tmp_path)
    app = create_app(settings, trained_model.artifacts)
    with live_server(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        assert client.post("/predict", json=application(trained_model.pool, 0)).status_code == 503
        assert wait_until(
            lambda: any('"api_logs_write_failed"' in line for line in api_lines), timeout=20
        )
    variants = [check(line)["_variant"] for line in api_lines]
    assert variants[0] == "startup"
    assert "request" in variants and "api_logs_write_failed" in variants
    startup = json.loads(api_lines[0])
    assert startup["database"] == "unreachable" and startup["level"] == "WARNING"


@pytest.fixture
def restore_project_logger():
    logger = logging.getLogger(PROJECT_LOGGER)
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


def test_pipeline_run_logs_json_lines(capfd, restore_project_logger):
    from credit_drift.defs.loggers import (
        SELECT_CONSOLE_LOGGER,
        json_lines_logger,
        pipeline_loggers,
    )

    assert pipeline_loggers({"CREDIT_DRIFT_LOG_FORMAT": "json"}) == {"console": json_lines_logger}
    assert pipeline_loggers({}) == {}
    days = dg.DailyPartitionsDefinition(start_date="2026-11-01")

    @dg.asset(partitions_def=days)
    def window(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        context.log.info(f"window {context.partition_key}")
        logging.getLogger("credit_drift.alerts").warning("DRIFT ALERT window=2026-11-07")
        return dg.MaterializeResult(metadata={"n": 1})

    job_def = dg.define_asset_job("window_job", selection=[window], config=SELECT_CONSOLE_LOGGER)
    defs = dg.Definitions(
        assets=[window],
        jobs=[job_def],
        loggers=pipeline_loggers({"CREDIT_DRIFT_LOG_FORMAT": "json"}),
    )
    job = defs.resolve_job_def("window_job")
    capfd.readouterr()
    result = job.execute_in_process(
        partition_key="2026-11-07", instance=dg.DagsterInstance.ephemeral()
    )
    assert result.success
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("{")]
    records = [check(line) for line in lines]
    assert records and {r["_variant"] for r in records} == {"pipeline"}
    run_logs = [r for r in records if r["logger"] == "dagster"]
    assert {r["run_id"] for r in run_logs} == {result.run_id}
    materialized = [r for r in run_logs if r.get("dagster_event") == "ASSET_MATERIALIZATION"]
    assert len(materialized) == 1 and materialized[0]["partition"] == "2026-11-07"
    assert materialized[0]["step"] == "window"
    assert any(r["message"] == "window 2026-11-07" for r in run_logs)
    alert = [r for r in records if r["logger"] == "credit_drift.alerts"]
    assert [a["message"] for a in alert] == ["DRIFT ALERT window=2026-11-07"]
    assert alert[0]["level"] == "WARNING"
    # Nothing else on stderr in another format (no Dagster text lines).
    assert all(line.startswith("{") for line in err.splitlines() if line.strip()), err[:2000]


def test_definitions_use_the_json_logger_when_asked(monkeypatch):
    import credit_drift.definitions as definitions
    from credit_drift.defs.loggers import json_lines_logger

    monkeypatch.setenv("CREDIT_DRIFT_LOG_FORMAT", "json")
    try:
        reloaded = importlib.reload(definitions)
        job = reloaded.defs.resolve_job_def("daily_drift_job")
        assert job.loggers["console"] is json_lines_logger
    finally:
        monkeypatch.delenv("CREDIT_DRIFT_LOG_FORMAT")
        reloaded = importlib.reload(definitions)
    assert (
        reloaded.defs.resolve_job_def("daily_drift_job").loggers.get("console")
        is not json_lines_logger
    )


def test_bad_log_format_is_refused_with_the_variable_named():
    from credit_drift.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match="CREDIT_DRIFT_LOG_FORMAT"):
        Settings.from_env({"CREDIT_DRIFT_LOG_FORMAT": "xml"})
