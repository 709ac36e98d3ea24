"""Application ids on /predict and /predict/batch, and `POST /outcomes`, through real HTTP on
SQLite and PostgreSQL: ids stored with the predictions, outcomes linked to them, resends
unchanged, updates kept as history, unknown ids kept and counted, bad rows named, the API key,
Idempotency-Key and a 503 when the database is down."""

import datetime as dt

import httpx
import pytest
from sqlalchemy.engine import make_url

from credit_drift.serving.app import create_app
from credit_drift.serving.config import ServingConfig
from credit_drift.storage.db import make_engine
from credit_drift.storage.outcomes import read_cohort, read_outcome_history
from credit_drift_tests.test_serving_api import flush, make_client  # noqa: F401 - fixture
from credit_drift_tests.test_serving_support import (
    API_KEY,
    application,
    count,
    free_port,
    live_server,
    rows,
    settings_for,
    trained_model,  # noqa: F401 - session fixture
)


def _ids(db_url: str) -> list:
    return [
        r.application_id for r in rows(db_url, "SELECT application_id FROM predictions ORDER BY id")
    ]


def test_application_ids_are_stored_with_the_predictions(db_url, make_client, trained_model):  # noqa: F811
    pool = trained_model.pool
    client = make_client(db_url)
    single = client.post("/predict", json={**application(pool, 0), "application_id": "100002"})
    assert single.status_code == 200, single.text
    batch = [
        {**application(pool, 1), "application_id": 100003},  # an integer id: stored as text
        {**application(pool, 2), "application_id": None},
        application(pool, 3),
    ]
    assert client.post("/predict/batch", json=batch).status_code == 200
    names = trained_model.artifacts.schema.names
    split = {
        "columns": ["application_id", *names],
        "data": [["A-5", *application(pool, 5).values()], [None, *application(pool, 6).values()]],
    }
    assert client.post("/predict/batch", json=split).status_code == 200
    assert _ids(db_url) == ["100002", "100003", None, None, "A-5", None]
    # The id does not change the score.
    plain = client.post("/predict", json=application(pool, 0)).json()
    assert plain["probability"] == single.json()["probability"]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "application_id is empty"),
        ("x" * 129, "129 characters, at most 128"),
        ("a\u0000b", "NUL"),
        (True, "must be a string, got bool"),
        ([1], "must be a string, got list"),
        (1.5, "must be a string, got float"),
    ],
)
def test_a_bad_application_id_is_a_422_naming_it(
    sqlite_url,
    make_client,  # noqa: F811
    trained_model,  # noqa: F811
    value,
    problem,
):
    client = make_client(sqlite_url)
    app = {**application(trained_model.pool), "application_id": value}
    response = client.post("/predict", json=app)
    assert response.status_code == 422
    body = response.json()
    assert "application_id" in body["detail"] and problem in body["detail"]
    assert body["errors"][0]["field"] == "application_id"
    batch = [application(trained_model.pool, 1), app]
    response = client.post("/predict/batch", json=batch)
    assert response.status_code == 422
    assert response.json()["errors"][0] == {
        "field": "application_id",
        "problem": response.json()["errors"][0]["problem"],
        "index": 1,
    }
    assert count(sqlite_url, "predictions") == 0


OBSERVED = "2027-03-01T00:00:00Z"


def test_outcomes_link_to_predictions_resend_update_and_unknown(db_url, make_client, trained_model):  # noqa: F811
    pool = trained_model.pool
    client = make_client(db_url)
    batch = [{**application(pool, i), "application_id": f"A{i}"} for i in range(3)]
    assert client.post("/predict/batch", json=batch).status_code == 200
    body = {
        "outcomes": [
            {"application_id": "A0", "outcome": 1, "observed_at": OBSERVED},
            {"application_id": "A1", "outcome": 0, "observed_at": "2027-03-02"},
            {"application_id": "ghost", "outcome": 1, "observed_at": OBSERVED},
        ]
    }
    first = client.post("/outcomes", json=body)
    assert first.status_code == 200, first.text
    answer = first.json()
    assert {k: answer[k] for k in ("n_outcomes", "inserted", "unchanged", "updated")} == {
        "n_outcomes": 3,
        "inserted": 3,
        "unchanged": 0,
        "updated": 0,
    }
    assert answer["unknown_ids"] == 1 and answer["conflicts"] == []

    again = client.post("/outcomes", json=body).json()
    assert (again["inserted"], again["unchanged"], again["updated"]) == (0, 3, 0)
    assert count(db_url, "outcomes") == 3

    # One object instead of a list; a changed outcome is an update, the old one kept.
    changed = {"application_id": "A0", "outcome": 0, "observed_at": "2027-03-05T12:00:00+01:00"}
    update = client.post("/outcomes", json=changed).json()
    assert (update["inserted"], update["updated"]) == (0, 1)
    engine = make_engine(db_url)
    assert read_outcome_history(engine, "A0")["outcome"].tolist() == [1, 0]
    refused = client.post(
        "/outcomes", json={"outcomes": [{**changed, "outcome": 1}], "update": False}
    ).json()
    assert refused["conflicts"] == ["A0"] and refused["updated"] == 0

    day = rows(db_url, "SELECT created_at FROM predictions")[0].created_at
    day = day.date() if isinstance(day, dt.datetime) else dt.date.fromisoformat(day[:10])
    cohort = read_cohort(engine, day).set_index("application_id")
    assert cohort.loc["A0", "outcome"] == 0.0
    assert cohort.loc["A1", "outcome"] == 0.0
    assert cohort.loc["A1", "observed_at"].isoformat() == "2027-03-02T00:00:00+00:00"
    assert cohort["outcome"].isna().sum() == 1  # A2: no outcome yet


@pytest.mark.parametrize(
    ("body", "status", "needle", "index"),
    [
        (
            {"outcomes": [{"application_id": "A", "outcome": 2, "observed_at": OBSERVED}]},
            422,
            "outcome 0: outcome: must be 0 (repaid) or 1 (default), got 2",
            0,
        ),
        (
            {"outcomes": [{"application_id": "A", "outcome": "bad", "observed_at": OBSERVED}]},
            422,
            'got "bad"',
            0,
        ),
        ({"outcomes": [{"application_id": "A", "outcome": 1}]}, 422, "observed_at: missing", 0),
        (
            {"application_id": "A", "outcome": 1, "observed_at": "2027-03-01T00:00:00"},
            422,
            "no time zone",
            None,
        ),
        (
            {"application_id": "A", "outcome": 1, "observed_at": "yesterday"},
            422,
            "not an ISO 8601",
            None,
        ),
        (
            {"application_id": "", "outcome": 1, "observed_at": OBSERVED},
            422,
            "application_id is empty",
            None,
        ),
        (
            {"application_id": "A", "outcome": 1, "observed_at": OBSERVED, "x": 1},
            422,
            "unknown field",
            None,
        ),
        (
            {"application_id": "A", "outcome": 1, "observed_at": "2027" * 10_000},
            422,
            "(40000 characters) is not an ISO 8601 time",
            None,
        ),
        ({"outcomes": []}, 422, "empty 'outcomes'", None),
        ({"outcomes": {"application_id": "A"}}, 422, "must be a list", None),
        ({"outcomes": [], "extra": 1}, 422, "unknown keys: extra", None),
        (
            {
                "outcomes": [{"application_id": "A", "outcome": 1, "observed_at": OBSERVED}],
                "update": "no",
            },
            422,
            "'update' must be true or false",
            None,
        ),
        ([1, 2], 422, "expected {", None),
        (
            {
                "outcomes": [
                    {"application_id": "A", "outcome": 1, "observed_at": OBSERVED},
                    {"application_id": "A", "outcome": 0, "observed_at": OBSERVED},
                ]
            },
            422,
            "outcome row 1 (application_id 'A'): the same application_id has another outcome",
            None,
        ),
        (
            {
                "outcomes": [
                    {"application_id": str(i), "outcome": 1, "observed_at": OBSERVED}
                    for i in range(4)
                ]
            },
            413,
            "4 outcomes exceed the limit of 3",
            None,
        ),
    ],
)
def test_bad_outcomes_are_refused_naming_the_field_and_row(
    sqlite_url,
    make_client,  # noqa: F811
    body,
    status,
    needle,
    index,
):
    client = make_client(sqlite_url, ServingConfig(max_outcomes=3))
    response = client.post("/outcomes", json=body)
    assert response.status_code == status, response.text
    assert needle in response.json()["detail"]
    if index is not None:
        assert response.json()["errors"][0]["index"] == index
    assert count(sqlite_url, "outcomes") == 0


def test_outcomes_need_the_api_key_and_replay_with_an_idempotency_key(
    db_url,
    make_client,  # noqa: F811
):
    client = make_client(db_url, api_key=API_KEY)
    body = {"application_id": "A", "outcome": 1, "observed_at": OBSERVED}
    assert client.post("/outcomes", json=body).status_code == 401
    auth = {"X-API-Key": API_KEY}
    keyed = {**auth, "Idempotency-Key": "k-1"}
    first = client.post("/outcomes", json=body, headers=keyed)
    assert first.status_code == 200 and first.json()["inserted"] == 1
    replay = client.post("/outcomes", json=body, headers=keyed)
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.json() == first.json()  # the first answer, not "unchanged"
    other = client.post("/outcomes", json={**body, "outcome": 0}, headers=keyed)
    assert other.status_code == 409
    assert count(db_url, "outcomes") == 1
    assert count(db_url, "idempotency_keys") == 1
    flush(client)
    logged = rows(db_url, "SELECT endpoint, status_code, n_items FROM api_logs ORDER BY id")
    assert [(r.endpoint, r.status_code) for r in logged] == [
        ("/outcomes", 401),
        ("/outcomes", 200),
        ("/outcomes", 200),
        ("/outcomes", 409),
    ]
    assert logged[1].n_items == 1


def test_openapi_documents_outcomes(sqlite_url, make_client):  # noqa: F811
    client = make_client(sqlite_url, api_key=API_KEY)
    doc = client.get("/openapi.json").json()
    post = doc["paths"]["/outcomes"]["post"]
    assert {"200", "401", "413", "422", "503"} <= set(post["responses"])
    assert post["security"]
    content = post["requestBody"]["content"]["application/json"]
    example = content["example"]
    answer = client.post("/outcomes", json=example, headers={"X-API-Key": API_KEY})
    assert answer.status_code == 200 and answer.json()["unknown_ids"] == 1
    application_schema = doc["components"]["schemas"]["Application"]
    assert "application_id" in application_schema["properties"]
    for name, field in doc["components"]["schemas"]["OutcomesResponse"]["properties"].items():
        assert field.get("description"), name


@pytest.mark.postgres
def test_outcomes_answer_503_when_the_database_is_down(postgres_url, trained_model, tmp_path):  # noqa: F811
    dead = make_url(postgres_url).set(port=free_port()).render_as_string(hide_password=False)
    settings = settings_for(dead, trained_model.artifacts_dir, tmp_path)
    config = ServingConfig(database_retry_seconds=0.3, startup_database_seconds=1.0)
    app = create_app(settings, trained_model.artifacts, config=config)
    with live_server(app) as base, httpx.Client(base_url=base, timeout=15) as client:
        body = {"application_id": "A", "outcome": 1, "observed_at": OBSERVED}
        response = client.post("/outcomes", json=body)
        assert response.status_code == 503, response.text
        assert "no outcome was recorded" in response.json()["detail"]
        assert response.headers["retry-after"]
