"""The Fluentd and Vector configurations of deploy/: neither program is installable here (no
Debian or PyPI package of either; Vector's own validator, `vector validate`, ships only in its
binary), so these tests check what can be checked without them: the files parse (Fluentd's
directive syntax with a small reader below, Vector's YAML), they read the documented log fields,
their wiring is consistent, and the mapping from a request line to an `api_logs` row, applied to
lines written by a real API server, inserts into the migrated PostgreSQL table exactly the row
the API wrote itself."""

import datetime as dt
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import yaml

from credit_drift.serving.app import create_app
from credit_drift.serving.request_log import api_logger
from credit_drift.storage.schema import api_logs
from credit_drift_tests.test_serving_support import (
    application,
    live_server,
    settings_for,
    trained_model,  # noqa: F401 - session fixture
)

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
SCHEMA = json.loads((DEPLOY.parent / "docs" / "log-schema.json").read_text())
REQUEST_FIELDS = next(v for v in SCHEMA["oneOf"] if v["title"] == "request")["properties"]
API_LOG_COLUMNS = {c.name for c in api_logs.columns} - {"id"}
REQUIRED_COLUMNS = {c.name for c in api_logs.columns if not c.nullable and c.name != "id"}


# -- a reader for Fluentd's configuration syntax --------------------------------------------
@dataclass
class Directive:
    name: str
    arg: str
    params: dict[str, str] = field(default_factory=dict)
    children: list["Directive"] = field(default_factory=list)

    def child(self, name: str) -> "Directive":
        (found,) = [c for c in self.children if c.name == name]
        return found


def parse_fluentd(text: str) -> list[Directive]:
    """Directives `<name arg> ... </name>` with `key value` parameters, comments and blank
    lines skipped; raises on an unbalanced or malformed line (Fluentd's own parser would)."""
    root = Directive("root", "")
    stack = [root]
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        opening = re.fullmatch(r"<([a-z_]+)(?:\s+([^>]*))?>", line)
        closing = re.fullmatch(r"</([a-z_]+)>", line)
        if opening:
            directive = Directive(opening.group(1), (opening.group(2) or "").strip())
            stack[-1].children.append(directive)
            stack.append(directive)
        elif closing:
            if len(stack) == 1 or stack[-1].name != closing.group(1):
                raise ValueError(f"line {number}: </{closing.group(1)}> closes nothing open")
            stack.pop()
        else:
            parts = line.split(None, 1)
            if len(parts) != 2 or not re.fullmatch(r"@?[a-z_]+", parts[0]):
                raise ValueError(f"line {number}: not a 'key value' parameter: {raw!r}")
            if parts[0] in stack[-1].params:
                raise ValueError(f"line {number}: {parts[0]} set twice")
            stack[-1].params[parts[0]] = parts[1].strip()
    if len(stack) != 1:
        raise ValueError(f"<{stack[-1].name}> is never closed")
    return root.children


def _unquote(value: str) -> str:
    return value[1:-1] if value[:1] in "'\"" and value[-1:] == value[:1] else value


def _tag_matches(pattern: str, tag: str) -> bool:
    regex = re.escape(pattern).replace(r"\*\*", ".*").replace(r"\*", r"[^.]+")
    return re.fullmatch(regex, tag) is not None


@pytest.fixture(scope="module")
def fluentd() -> list[Directive]:
    return parse_fluentd((DEPLOY / "fluentd" / "fluent.conf").read_text())


def fluentd_column_mapping(fluentd) -> dict[str, str]:
    sql = next(d for d in fluentd if d.name == "match" and d.params.get("@type") == "sql")
    mapping = _unquote(sql.child("table").params["column_mapping"])
    pairs = [item.split(":") for item in mapping.split(",")]
    return {field_: column for field_, column in pairs}


def test_the_reader_refuses_broken_configurations():
    with pytest.raises(ValueError, match="never closed"):
        parse_fluentd("<source>\n  @type tail\n")
    with pytest.raises(ValueError, match="closes nothing"):
        parse_fluentd("<source>\n</match>\n")
    with pytest.raises(ValueError, match="parameter"):
        parse_fluentd("<source>\n  just-a-word\n</source>\n")


def test_fluentd_tails_the_api_json_lines(fluentd):
    (source,) = [d for d in fluentd if d.name == "source"]
    assert source.params["@type"] == "tail" and source.params["path"].endswith(".log")
    parse = source.child("parse")
    assert parse.params["@type"] == "json"
    assert parse.params["time_key"] == "ts" and "ts" in REQUEST_FIELDS
    # The time format reads the API's `ts` (Python's isoformat with a UTC offset).
    example = dt.datetime(2026, 11, 7, 8, 15, 2, 123456, tzinfo=dt.UTC).isoformat()
    ruby_to_python = parse.params["time_format"].replace("%N", "%f").replace("%:z", "%z")
    assert dt.datetime.strptime(example, ruby_to_python) == dt.datetime.fromisoformat(example)


def test_fluentd_routes_every_tag_to_an_output(fluentd):
    (source,) = [d for d in fluentd if d.name == "source"]
    router = next(d for d in fluentd if d.params.get("@type") == "rewrite_tag_filter")
    assert _tag_matches(router.arg, source.params["tag"])
    produced = [r.params["tag"] for r in router.children if r.name == "rule"]
    for rule in router.children:
        assert rule.params["key"] == "event" and "event" in REQUEST_FIELDS
    outputs = [d for d in fluentd if d.name == "match" and d is not router]
    for tag in produced:
        assert [o for o in outputs if _tag_matches(o.arg, tag)], f"no <match> for {tag}"
        # Rewritten tags must not loop back into the router.
        assert not _tag_matches(router.arg, tag)


def test_fluentd_column_mapping_fills_api_logs(fluentd):
    mapping = fluentd_column_mapping(fluentd)
    assert set(mapping) <= set(REQUEST_FIELDS), set(mapping) - set(REQUEST_FIELDS)
    assert set(mapping.values()) <= API_LOG_COLUMNS
    assert set(mapping.values()) >= REQUIRED_COLUMNS, REQUIRED_COLUMNS - set(mapping.values())
    assert len(set(mapping.values())) == len(mapping)


@pytest.fixture(scope="module")
def vector() -> dict:
    return yaml.safe_load((DEPLOY / "vector" / "vector.yaml").read_text())


def vector_mapping(vector) -> dict[str, str]:
    """{api_logs column: log field} from the remap that builds the rows (`"col": .field`)."""
    rows = next(
        t
        for t in vector["transforms"].values()
        if t["type"] == "remap" and "status_code" in t["source"]
    )
    return dict(re.findall(r'"([a-z_]+)":\s*\.([a-z_]+)', rows["source"]))


def test_vector_topology_is_consistent(vector):
    components = {**vector["sources"], **vector["transforms"], **vector["sinks"]}
    assert len(components) == sum(len(vector[k]) for k in ("sources", "transforms", "sinks"))
    for name, component in {**vector["transforms"], **vector["sinks"]}.items():
        assert component["inputs"], name
        for upstream in component["inputs"]:
            assert upstream in components and upstream not in vector["sinks"], (name, upstream)
    (source,) = vector["sources"].values()
    assert source["type"] == "file"
    sink_types = {s["type"] for s in vector["sinks"].values()}
    assert "postgres" in sink_types
    table_sink = next(s for s in vector["sinks"].values() if s["type"] == "postgres")
    assert table_sink["table"] == "api_logs"
    # The filter keeps request lines only.
    (condition,) = [t["condition"] for t in vector["transforms"].values() if t["type"] == "filter"]
    assert condition == '.event == "request"'


def test_vector_and_fluentd_map_the_same_fields(vector, fluentd):
    mapping = vector_mapping(vector)
    assert set(mapping) == {c for c in API_LOG_COLUMNS if c != "id"} >= REQUIRED_COLUMNS
    assert set(mapping.values()) <= set(REQUEST_FIELDS)
    assert {v: k for k, v in fluentd_column_mapping(fluentd).items()} == mapping


@pytest.mark.postgres
def test_mapped_request_lines_insert_the_api_own_rows(
    trained_model,  # noqa: F811
    tmp_path,
    postgres_url,
    fluentd,
):
    """Real request lines, renamed as the Fluentd configuration says and inserted the way an SQL
    output inserts them (text values, the server parsing `ts`), equal the API's own rows."""
    lines: list[str] = []
    logger = api_logger()

    class Collect(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    handler = Collect()
    logger.addHandler(handler)
    try:
        settings = settings_for(postgres_url, trained_model.artifacts_dir, tmp_path)
        app = create_app(settings, trained_model.artifacts)
        with live_server(app) as base, httpx.Client(base_url=base, timeout=30) as client:
            client.post("/predict", json=application(trained_model.pool, 0))
            bad = application(trained_model.pool, 1)
            bad.pop("EXT_SOURCE_2")
            client.post("/predict", json=bad)
            client.get("/health")
            assert app.state.api_log_writer.flush(timeout=15)
    finally:
        logger.removeHandler(handler)
    requests = [json.loads(line) for line in lines if json.loads(line).get("event") == "request"]
    assert len(requests) == 3
    mapping = fluentd_column_mapping(fluentd)
    engine = sa.create_engine(postgres_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE shipped (LIKE api_logs INCLUDING DEFAULTS)"))
            for record in requests:
                row = {column: record[field_] for field_, column in mapping.items()}
                columns = ", ".join(row)
                params = ", ".join(f":{c}" for c in row)
                conn.execute(sa.text(f"INSERT INTO shipped ({columns}) VALUES ({params})"), row)
            cols = ", ".join(sorted(mapping.values()))
            own = conn.execute(sa.text(f"SELECT {cols} FROM api_logs ORDER BY request_id")).all()
            shipped = conn.execute(sa.text(f"SELECT {cols} FROM shipped ORDER BY request_id")).all()
    finally:
        engine.dispose()
    assert len(own) == 3
    # Same rows, except latency: the line rounds it to the microsecond (3 decimals of ms).
    latency = sorted(mapping.values()).index("latency_ms")
    for a, b in zip(own, shipped, strict=True):
        assert [v for i, v in enumerate(a) if i != latency] == [
            v for i, v in enumerate(b) if i != latency
        ]
        assert a[latency] == pytest.approx(b[latency], abs=0.001)
