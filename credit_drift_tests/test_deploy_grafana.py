"""Grafana as code (deploy/grafana/): Grafana itself is not installable here, so what can be
checked without it is checked: the provisioning files load and reference each other, the
dashboards match the essentials of Grafana's dashboard schema (the CUE kind
kinds/dashboard/dashboard_kind.cue of grafana/grafana, transcribed below), and every PostgreSQL
panel's SQL runs on the migrated schema of a real PostgreSQL server, with Grafana's $__timeFilter
macro expanded as Grafana documents it, and returns the columns the panel draws. The Prometheus
panels' PromQL is evaluated by a real Prometheus in test_serving_metrics.py."""

import json
import re
from pathlib import Path

import jsonschema
import pytest
import sqlalchemy as sa
import yaml

from credit_drift_tests import dashboard_seed as seed

GRAFANA = Path(__file__).resolve().parents[1] / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "credit-drift.yaml"
PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "credit-drift.yaml"

_DATASOURCE_REF = {
    "type": "object",
    "properties": {"type": {"type": "string"}, "uid": {"type": "string"}},
    "required": ["type", "uid"],
}
_GRID_POS = {
    "type": "object",
    "properties": {
        "h": {"type": "integer", "exclusiveMinimum": 0},
        "w": {"type": "integer", "exclusiveMinimum": 0, "maximum": 24},
        "x": {"type": "integer", "minimum": 0, "maximum": 23},
        "y": {"type": "integer", "minimum": 0},
    },
    "required": ["h", "w", "x", "y"],
}
#: The fields Grafana's dashboard kind requires or constrains (a panel's `transformations`,
#: `options` and `fieldConfig` have no default there), plus `uid` (8-40 characters, so that
#: provisioning keeps the dashboard's URL) and one datasource per target.
DASHBOARD_SCHEMA = {
    "type": "object",
    "required": ["uid", "title", "schemaVersion", "panels", "time", "editable", "graphTooltip"],
    "properties": {
        "uid": {"type": "string", "minLength": 8, "maxLength": 40, "pattern": "^[a-zA-Z0-9_-]+$"},
        "title": {"type": "string", "minLength": 1},
        "schemaVersion": {"type": "integer", "minimum": 36, "maximum": 65535},
        "editable": {"type": "boolean"},
        "graphTooltip": {"enum": [0, 1, 2]},
        "timezone": {"type": "string"},
        "time": {
            "type": "object",
            "properties": {"from": {"type": "string"}, "to": {"type": "string"}},
            "required": ["from", "to"],
        },
        "tags": {"type": "array", "items": {"type": "string"}},
        "templating": {"type": "object", "properties": {"list": {"type": "array"}}},
        "annotations": {"type": "object", "properties": {"list": {"type": "array"}}},
        "panels": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": [
                    "id",
                    "type",
                    "title",
                    "gridPos",
                    "datasource",
                    "targets",
                    "options",
                    "fieldConfig",
                    "transformations",
                ],
                "properties": {
                    "id": {"type": "integer", "minimum": 0},
                    "type": {
                        "enum": ["timeseries", "table", "barchart", "stat", "heatmap", "text"]
                    },
                    "title": {"type": "string", "minLength": 1},
                    "gridPos": _GRID_POS,
                    "datasource": _DATASOURCE_REF,
                    "options": {"type": "object"},
                    "transformations": {"type": "array"},
                    "fieldConfig": {
                        "type": "object",
                        "required": ["defaults", "overrides"],
                        "properties": {
                            "defaults": {"type": "object"},
                            "overrides": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["matcher", "properties"],
                                },
                            },
                        },
                    },
                    "targets": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["refId", "datasource"],
                            "properties": {
                                "refId": {"type": "string", "minLength": 1},
                                "datasource": _DATASOURCE_REF,
                            },
                        },
                    },
                },
            },
        },
    },
}

#: The columns each PostgreSQL panel draws (a renamed or dropped column breaks the panel).
PG_PANEL_COLUMNS = {
    "Drift percentage per day": ["time", "drifted features %", "importance-weighted %"],
    "Status per day": ["day", "status", "drifted %", "drifted", "analyzed", "predictions"],
    "Drifted features per day": ["day", "drifted", "not drifted"],
    "Alerts": [
        "day",
        "kind",
        "severity",
        "drifted %",
        "top drifted features",
        "estimated AUC",
        "webhook",
        "raised",
    ],
    "API requests per hour": ["time", "2xx/3xx", "4xx rejected", "5xx errors"],
    "API latency per hour": ["time", "p50", "p95", "p99"],
    "API error rate per hour": ["time", "server errors (5xx)", "rejected (4xx)"],
    "Predictions per day and approval rate": ["time", "predictions", "approval rate"],
}


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _datasources() -> dict[str, dict]:
    doc = yaml.safe_load(DATASOURCES.read_text())
    assert doc["apiVersion"] == 1
    return {d["uid"]: d for d in doc["datasources"]}


def test_provisioning_files_load():
    sources = _datasources()
    assert {d["type"] for d in sources.values()} == {"postgres", "prometheus"}
    for source in sources.values():
        assert source["name"] and source["url"] and source["access"] == "proxy"
    postgres = next(d for d in sources.values() if d["type"] == "postgres")
    assert postgres["jsonData"]["database"] and "password" in postgres["secureJsonData"]
    providers = yaml.safe_load(PROVIDERS.read_text())
    assert providers["apiVersion"] == 1
    (provider,) = providers["providers"]
    assert provider["type"] == "file" and provider["options"]["path"].startswith("/")


def test_there_are_a_postgres_and_a_prometheus_dashboard():
    assert [p.name for p in DASHBOARDS] == [
        "credit-drift-postgres.json",
        "credit-drift-prometheus.json",
    ]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_matches_grafana_schema_essentials(path):
    dashboard = _load(path)
    jsonschema.validate(dashboard, DASHBOARD_SCHEMA)
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels), "panel ids must be unique"
    assert len({p["title"] for p in panels}) == len(panels)
    sources = _datasources()
    for panel in panels:
        for ref in [panel["datasource"], *(t["datasource"] for t in panel["targets"])]:
            assert ref["uid"] in sources, (panel["title"], ref)
            assert sources[ref["uid"]]["type"] == ref["type"], (panel["title"], ref)
        refs = [t["refId"] for t in panel["targets"]]
        assert len(set(refs)) == len(refs), panel["title"]
        g = panel["gridPos"]
        assert g["x"] + g["w"] <= 24, panel["title"]
    # No two panels overlap on the 24-column grid.
    cells = {}
    for panel in panels:
        g = panel["gridPos"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, (panel["title"], cells.get((x, y)))
                cells[(x, y)] = panel["title"]


def test_the_drift_panel_draws_the_status_thresholds():
    from credit_drift.settings import Settings

    settings = Settings.from_env({})
    panel = next(
        p
        for p in _load(GRAFANA / "dashboards" / "credit-drift-postgres.json")["panels"]
        if p["title"] == "Drift percentage per day"
    )
    steps = [s["value"] for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]]
    assert steps == [None, 100 * settings.warning_share, 100 * settings.alert_share]
    assert panel["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] != "off"


def expand_grafana_macros(sql: str, start: str, end: str) -> str:
    """Grafana's PostgreSQL $__timeFilter(column), as its documentation expands it:
    `column BETWEEN '<from, RFC 3339>' AND '<to>'`. Any other macro is refused."""
    expanded = re.sub(r"\$__timeFilter\(([^)]+)\)", rf"\1 BETWEEN '{start}' AND '{end}'", sql)
    assert "$__" not in expanded, f"unexpanded Grafana macro in:\n{sql}"
    return expanded


@pytest.mark.postgres
def test_every_postgres_panel_query_runs_on_the_migrated_schema(postgres_url):
    seed.seed(postgres_url)
    dashboard = _load(GRAFANA / "dashboards" / "credit-drift-postgres.json")
    targets = [(p["title"], t) for p in dashboard["panels"] for t in p["targets"]]
    assert {title for title, _ in targets} == set(PG_PANEL_COLUMNS)
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            for title, target in targets:
                assert target["rawQuery"] and target["format"] in ("time_series", "table")
                sql = expand_grafana_macros(
                    target["rawSql"], "2026-10-15T00:00:00Z", "2026-11-30T00:00:00Z"
                )
                result = conn.execute(sa.text(sql))
                assert list(result.keys()) == PG_PANEL_COLUMNS[title], title
                rows = result.all()
                assert rows, f"{title}: no rows on the seeded state"
                if target["format"] == "time_series":
                    times = [r[0] for r in rows]
                    assert times == sorted(times) and all(t.tzinfo for t in times), title
            # The time filter does filter: a range before the data returns nothing.
            for title, target in targets:
                sql = expand_grafana_macros(
                    target["rawSql"], "2020-01-01T00:00:00Z", "2020-01-02T00:00:00Z"
                )
                assert conn.execute(sa.text(sql)).all() == [], title
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_postgres_panels_agree_with_the_dashboard_queries(postgres_url):
    """The Grafana panels and the Streamlit dashboard read the same numbers."""
    from credit_drift.storage import dashboard_queries as q
    from credit_drift.storage.db import make_engine

    seed.seed(postgres_url)
    dashboard = _load(GRAFANA / "dashboards" / "credit-drift-postgres.json")
    by_title = {p["title"]: p["targets"][0]["rawSql"] for p in dashboard["panels"]}
    engine = make_engine(postgres_url)
    with engine.connect() as conn:
        drift = conn.execute(
            sa.text(
                expand_grafana_macros(
                    by_title["Drift percentage per day"],
                    "2026-10-01T00:00:00Z",
                    "2026-12-01T00:00:00Z",
                )
            )
        ).all()
        daily = conn.execute(
            sa.text(
                expand_grafana_macros(
                    by_title["Predictions per day and approval rate"],
                    "2026-10-01T00:00:00Z",
                    "2026-12-01T00:00:00Z",
                )
            )
        ).all()
    timeline = q.drift_timeline(engine)
    assert [r[1] for r in drift] == list(timeline["drift_percentage"])
    assert [r[0].date() for r in drift] == list(timeline["report_date"])
    decisions = q.decisions_by_day(engine)
    assert [r[1] for r in daily] == list(decisions["n_predictions"])
    assert [float(r[2]) for r in daily] == pytest.approx(list(decisions["approval_rate"]))
