"""The scoring API through its HTTP interface, on SQLite and PostgreSQL: one `predictions` row
per answered prediction and none for rejected ones, an `api_logs` row for every request, bad
input named field by field, the API key, replayed event times, and the OpenAPI document."""

import contextlib
import datetime as dt
import json
import logging

import httpx
import numpy as np
import pytest

from credit_drift.serving.app import create_app
from credit_drift.serving.config import ServingConfig
from credit_drift.serving.request_log import LOGGER_NAME
from credit_drift_tests.test_serving_support import (
    API_KEY,
    application,
    count,
    live_server,
    rows,
    settings_for,
    trained_model,  # noqa: F401 - session fixture
    utc_day,
)


# Tests request the database fixture BEFORE make_client: fixtures are torn down in reverse,
# so the servers stop (flushing their api_logs) before the PostgreSQL schema is dropped.
@pytest.fixture
def make_client(trained_model, tmp_path):  # noqa: F811
    """Serve an app on a database URL (with settings overrides) with a real uvicorn on a free
    loopback port; returns an httpx client for it (`client.app` is the app)."""
    with contextlib.ExitStack() as stack:

        def make(url: str, config: ServingConfig | None = None, **overrides) -> httpx.Client:
            settings = settings_for(url, trained_model.artifacts_dir, tmp_path, **overrides)
            app = create_app(settings, trained_model.artifacts, config=config)
            base = stack.enter_context(live_server(app))
            client = stack.enter_context(httpx.Client(base_url=base, timeout=30))
            client.app = app
            return client

        yield make


def flush(client) -> None:
    assert client.app.state.api_log_writer.flush(timeout=15)


@pytest.fixture
def captured_log():
    """The JSON log lines of the API logger."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    handler = Collect()
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(handler)
    yield lines
    logger.removeHandler(handler)


def test_every_answer_is_logged_and_rejected_requests_are_not(
    db_url,
    make_client,
    trained_model,  # noqa: F811
):
    client = make_client(db_url)
    pool = trained_model.pool
    answers = [client.post("/predict", json=application(pool, i)).json() for i in range(3)]
    batch = client.post("/predict/batch", json=[application(pool, i) for i in range(3, 7)])
    assert batch.status_code == 200
    bad = application(pool, 0)
    bad.pop("EXT_SOURCE_2")
    rejected = client.post("/predict", json=bad)
    assert rejected.status_code == 422

    body = batch.json()
    assert body["n_predictions"] == 4
    answers += body["predictions"]
    assert count(db_url, "predictions") == 7
    stored = dict(
        (r.request_id, r)
        for r in rows(
            db_url,
            "SELECT request_id, probability, decision, threshold, model_version, source, "
            "inference_time_ms, created_at FROM predictions",
        )
    )
    artifacts = trained_model.artifacts
    for a in answers:
        row = stored[a["request_id"]]
        assert row.probability == pytest.approx(a["probability"], abs=1e-15)
        assert row.decision == a["decision"]
        refused = a["probability"] >= artifacts.threshold
        assert a["decision"] == ("REFUSED" if refused else "APPROVED")
        assert row.threshold == a["threshold"] == pytest.approx(artifacts.threshold)
        assert row.model_version == a["model_version"] == artifacts.version
        assert row.source == "api"
        assert row.inference_time_ms >= 0
        assert set(a) >= {"probability", "decision", "threshold", "model_version", "request_id"}
    assert rejected.json()["request_id"] not in stored

    flush(client)
    logs = rows(db_url, "SELECT endpoint, status_code, error, n_items FROM api_logs ORDER BY id")
    statuses = [(r.endpoint, r.status_code) for r in logs]
    assert statuses.count(("/predict", 200)) == 3
    assert ("/predict/batch", 200) in statuses
    failed = [r for r in logs if r.status_code == 422]
    assert len(failed) == 1 and "EXT_SOURCE_2" in failed[0].error
    assert [r.n_items for r in logs if r.endpoint == "/predict/batch"] == [4]


def test_the_stored_features_are_the_request_values(sqlite_url, make_client, trained_model):  # noqa: F811
    from credit_drift.storage.db import make_engine
    from credit_drift.storage.predictions import read_predictions

    client = make_client(sqlite_url)
    sent = [application(trained_model.pool, i) for i in range(5)]
    assert client.post("/predict/batch", json=sent).status_code == 200
    schema = trained_model.artifacts.schema
    window = read_predictions(
        make_engine(sqlite_url),
        schema,
        dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
        dt.datetime(2100, 1, 1, tzinfo=dt.UTC),
    )
    expected = np.array([[np.nan if r[n] is None else r[n] for n in schema.names] for r in sent])
    np.testing.assert_array_equal(window.features.to_numpy(dtype=float), expected)


def test_scores_equal_the_models_own_predict_proba(sqlite_url, make_client, trained_model):  # noqa: F811
    client = make_client(sqlite_url)
    pool = trained_model.pool.iloc[:50]
    body = client.post("/predict/batch", json=[application(pool, i) for i in range(50)]).json()
    got = np.array([p["probability"] for p in body["predictions"]])
    np.testing.assert_allclose(got, trained_model.artifacts.predict_proba(pool), rtol=1e-12)
    single = client.post("/predict", json=application(pool, 3)).json()
    assert single["probability"] == pytest.approx(got[3], rel=1e-12)


def test_null_means_missing(sqlite_url, make_client, trained_model):  # noqa: F811
    client = make_client(sqlite_url)
    empty = {name: None for name in trained_model.artifacts.schema.names}
    response = client.post("/predict", json=empty)
    assert response.status_code == 200
    assert 0.0 <= response.json()["probability"] <= 1.0
    nan_text = json.dumps({**application(trained_model.pool), "EXT_SOURCE_1": float("nan")})
    assert client.post("/predict", content=nan_text).status_code == 200


def _bad_bodies(pool):
    base = application(pool, 0)
    missing = dict(base)
    missing.pop("AMT_CREDIT")
    unknown = {**base, "FAVOURITE_COLOUR": 3}
    text = {**base, "AMT_ANNUITY": "12000"}
    boolean = {**base, "FLAG_OWN_CAR": True}
    infinite = json.dumps({**base, "AMT_GOODS_PRICE": float("inf")})
    overflow = json.dumps({**base, "DAYS_BIRTH": "@"}).replace('"@"', "1e999")
    return [
        ("/predict", missing, 422, "AMT_CREDIT", "missing"),
        ("/predict", unknown, 422, "FAVOURITE_COLOUR", "unknown"),
        ("/predict", text, 422, "AMT_ANNUITY", "non-numeric"),
        ("/predict", boolean, 422, "FLAG_OWN_CAR", "boolean"),
        ("/predict", infinite, 422, "AMT_GOODS_PRICE", "infinite"),
        ("/predict", overflow, 422, "DAYS_BIRTH", "infinite"),
        ("/predict/batch", [base, missing], 422, "AMT_CREDIT", "missing"),
        ("/predict", [base], 422, "application", "JSON object"),
        ("/predict/batch", base, 422, "applications", "JSON array"),
        ("/predict/batch", [base] * 4, 413, "batch of 4 applications", "limit of 3"),
        ("/predict", "{not json", 400, "JSON", "not valid JSON"),
        ("/predict", "x" * 200_000, 413, "request body", "limit of 100000 bytes"),
    ]


def test_each_kind_of_bad_input_gets_a_4xx_naming_the_field(
    sqlite_url,
    make_client,
    trained_model,  # noqa: F811
):
    config = ServingConfig(max_batch_size=3, max_body_bytes=100_000)
    client = make_client(sqlite_url, config=config)
    cases = _bad_bodies(trained_model.pool)
    for path, body, status, field, words in cases:
        content = body if isinstance(body, str) else json.dumps(body)
        response = client.post(path, content=content, headers={"content-type": "application/json"})
        assert response.status_code == status, (path, field, response.text)
        answer = response.json()
        text = answer["detail"] + json.dumps(answer["errors"])
        assert field in text and words in text, (field, words, text)
        if answer["errors"]:
            assert any(e["field"] == field for e in answer["errors"]) or status != 422
    batch_error = client.post(
        "/predict/batch", json=[application(trained_model.pool, 0), {"AMT_CREDIT": 1.0}]
    ).json()
    assert {e["index"] for e in batch_error["errors"]} == {1}
    assert count(sqlite_url, "predictions") == 0
    flush(client)
    assert count(sqlite_url, "api_logs", "WHERE status_code >= 400") == len(cases) + 1


def test_unknown_paths_and_methods_are_logged_too(sqlite_url, make_client):
    client = make_client(sqlite_url)
    assert client.get("/nope").status_code == 404
    assert client.get("/predict").status_code == 405
    flush(client)
    assert {(r.endpoint, r.status_code) for r in rows(sqlite_url, "SELECT * FROM api_logs")} >= {
        ("/nope", 404),
        ("/predict", 405),
    }


def test_api_key(db_url, make_client, trained_model, captured_log):  # noqa: F811
    client = make_client(db_url, api_key=API_KEY)
    app = application(trained_model.pool)
    assert client.post("/predict", json=app).status_code == 401
    assert client.post("/predict", json=app, headers={"X-API-Key": "wrong"}).status_code == 401
    wrong_bearer = {"Authorization": "Bearer " + API_KEY[:-1]}
    assert client.post("/predict/batch", json=[app], headers=wrong_bearer).status_code == 401
    assert client.get("/model").status_code == 401
    ok_bearer = client.post("/predict", json=app, headers={"Authorization": f"Bearer {API_KEY}"})
    ok_header = client.post("/predict/batch", json=[app], headers={"X-API-Key": API_KEY})
    assert ok_bearer.status_code == ok_header.status_code == 200
    assert client.get("/model", headers={"X-API-Key": API_KEY}).status_code == 200
    assert client.get("/health").status_code == 200
    assert count(db_url, "predictions") == 2
    flush(client)
    stored = rows(db_url, "SELECT * FROM api_logs")
    assert sum(r.status_code == 401 for r in stored) == 4
    everything = "\n".join(captured_log) + "\n".join(str(tuple(r)) for r in stored)
    assert "401" in everything and API_KEY not in everything and API_KEY[:-1] not in everything


def test_event_time_is_refused_unless_replay_is_allowed(db_url, make_client, trained_model):  # noqa: F811
    app = {**application(trained_model.pool), "event_time": "2026-11-03T10:00:00Z"}
    live = make_client(db_url)
    refused = live.post("/predict", json=app)
    assert refused.status_code == 403 and "event_time" in refused.json()["detail"]
    assert "CREDIT_DRIFT_ALLOW_REPLAY" in refused.json()["detail"]
    assert count(db_url, "predictions") == 0

    replay = make_client(db_url, allow_replay=True)
    assert replay.post("/predict", json=app).status_code == 200
    batch = [
        {**application(trained_model.pool, i), "event_time": f"2026-11-0{i + 4}T23:59:59+00:00"}
        for i in range(3)
    ]
    assert replay.post("/predict/batch", json=batch).status_code == 200
    stored = rows(db_url, "SELECT created_at, source FROM predictions ORDER BY id")
    assert [utc_day(r.created_at).isoformat() for r in stored] == [
        "2026-11-03",
        "2026-11-04",
        "2026-11-05",
        "2026-11-06",
    ]
    assert {r.source for r in stored} == {"replay"}
    naive = {**application(trained_model.pool), "event_time": "2026-11-03T10:00:00"}
    response = replay.post("/predict", json=naive)
    assert response.status_code == 422 and "time zone" in response.json()["detail"]


def test_health_and_model(sqlite_url, make_client, trained_model):  # noqa: F811
    client = make_client(sqlite_url)
    health = client.get("/health").json()
    assert health == {
        "status": "ok",
        "model_loaded": True,
        "model_version": trained_model.artifacts.version,
        "database": "reachable",
        "database_error": None,
    }
    info = client.get("/model").json()
    schema = trained_model.artifacts.schema
    assert info["n_features"] == len(schema) == 419
    assert info["features"] == schema.names
    assert info["threshold"] == pytest.approx(trained_model.artifacts.threshold)
    assert info["metrics"]["auc"] == pytest.approx(trained_model.artifacts.metrics["auc"])


def test_openapi_documents_every_field(sqlite_url, make_client, trained_model):  # noqa: F811
    doc = make_client(sqlite_url).get("/openapi.json").json()
    assert "SplitBatch" in doc["components"]["schemas"]
    schemas = doc["components"]["schemas"]
    application_schema = schemas["Application"]
    assert set(trained_model.artifacts.schema.names) <= set(application_schema["properties"])
    assert application_schema["additionalProperties"] is False
    for model in ("PredictionResponse", "BatchPredictionResponse", "ErrorResponse"):
        for name, field in schemas[model]["properties"].items():
            assert field.get("description"), f"{model}.{name} is undocumented"
    predict = doc["paths"]["/predict"]["post"]
    assert predict["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/Application"
    )
    assert {"200", "401", "413", "422", "503"} <= set(predict["responses"])
    # POST /predict is served without FastAPI's routing; its declaration documents it as before.
    assert predict["operationId"] == "predict_predict_post"
    assert predict["summary"] == "Score one application and log it"
    assert [(p["name"], p["in"]) for p in predict["parameters"]] == [("Idempotency-Key", "header")]
    assert predict["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/PredictionResponse"
    )
    # The documented example is a valid request.
    example = predict["requestBody"]["content"]["application/json"]["example"]
    assert set(example) == set(trained_model.artifacts.schema.names)
    client = make_client(sqlite_url)
    assert client.post("/predict", json=example).status_code == 200


def test_an_unexpected_error_is_a_logged_500_without_a_prediction(
    sqlite_url,
    make_client,
    trained_model,  # noqa: F811
    captured_log,
):
    client = make_client(sqlite_url)

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    # The prediction's log write fails with an error that is not an outage.
    client.app.state.service.group_commit.write = broken
    response = client.post("/predict", json=application(trained_model.pool))
    assert response.status_code == 500
    assert response.json()["request_id"] == response.headers["x-request-id"]
    assert count(sqlite_url, "predictions") == 0
    flush(client)
    (row,) = rows(sqlite_url, "SELECT status_code, error FROM api_logs WHERE endpoint = '/predict'")
    assert row.status_code == 500 and "disk on fire" in row.error
    assert any('"status":500' in line for line in captured_log)


def test_postgres_asynchronous_commit_is_scoped_to_the_api(postgres_url, trained_model):  # noqa: F811
    from credit_drift.serving.service import ScoringService
    from credit_drift.storage.db import make_engine

    durable = ScoringService(trained_model.artifacts, postgres_url)
    fast = ScoringService(
        trained_model.artifacts,
        postgres_url,
        config=ServingConfig(postgres_synchronous_commit=False),
    )
    with fast.gate.engine.begin() as conn:
        assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "off"
    for engine in (durable.gate.engine, make_engine(postgres_url)):
        with engine.begin() as conn:
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"


def test_concurrent_requests_get_their_own_answers(sqlite_url, make_client, trained_model):  # noqa: F811
    from concurrent.futures import ThreadPoolExecutor

    client = make_client(sqlite_url)
    pool = trained_model.pool.iloc[:40]
    expected = trained_model.artifacts.predict_proba(pool)

    def one(i: int) -> float:
        if i % 4 == 0:  # batches and single rows mixed, on several connections at once
            body = client.post("/predict/batch", json=[application(pool, i)]).json()
            return body["predictions"][0]["probability"]
        return client.post("/predict", json=application(pool, i)).json()["probability"]

    with ThreadPoolExecutor(max_workers=8) as executor:
        got = list(executor.map(one, range(len(pool))))
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert count(sqlite_url, "predictions") == len(pool)


def test_hostile_bodies_get_a_bounded_4xx(sqlite_url, make_client, trained_model):  # noqa: F811
    """Through HTTP: 40,000 duplicate column names (160 KB), JSON nested 100,000 deep, and every
    value wrapped in a list each get a clear 4xx, not a minute of CPU, a 500 or a prediction."""
    client = make_client(sqlite_url)
    dupes = client.post("/predict/batch", json={"columns": ["a"] * 40_000, "data": [[]]})
    assert dupes.status_code == 422
    assert "duplicate columns: a" in dupes.json()["detail"]
    assert len(dupes.text) < 2_000
    deep = b"[" * 100_000 + b"]" * 100_000
    for path in ("/predict", "/predict/batch"):
        nested = client.post(path, content=deep, headers={"content-type": "application/json"})
        assert nested.status_code == 400 and "nested too deeply" in nested.json()["detail"]
    good = application(trained_model.pool, 0)
    for wrapped in ([0.5], [[0.5]], [None]):
        item = {name: wrapped for name in good}
        single = client.post("/predict", json=item)
        assert single.status_code == 422, single.text
        assert {e["field"] for e in single.json()["errors"]} == set(good)
        split = client.post(
            "/predict/batch", json={"columns": list(good), "data": [list(item.values())]}
        )
        assert split.status_code == 422, split.text
    assert count(sqlite_url, "predictions") == 0


def test_single_predictions_answer_alike_on_the_event_loop_and_in_the_thread_pool(
    db_url,
    make_client,
    trained_model,  # noqa: F811
):
    """`POST /predict` scores a small body on the event loop (`loop_body_bytes`); a larger one,
    one with an Idempotency-Key, or every one when `loop_body_bytes` is 0, in the thread pool.
    Both give the same answer and the same logged row."""
    on_loop = make_client(db_url)
    in_pool = make_client(db_url, config=ServingConfig(loop_body_bytes=0))
    awaited: list[int] = []
    for client in (on_loop, in_pool):
        group_commit = client.app.state.service.group_commit
        commit_async = group_commit.commit_async

        async def spy(*args, _commit=commit_async, _client=client, **kwargs):
            awaited.append(id(_client))
            await _commit(*args, **kwargs)

        group_commit.commit_async = spy
    limit = on_loop.app.state.service.config.loop_body_bytes
    answers = {}
    for k in range(3):
        body = json.dumps(application(trained_model.pool, k)).encode()
        padded = body + b" " * (limit + 1 - len(body))  # still one valid application
        for name, client, content, headers in (
            ("loop", on_loop, body, {}),
            ("large", on_loop, padded, {}),
            ("keyed", on_loop, body, {"Idempotency-Key": f"key-{k}"}),
            ("pool", in_pool, body, {}),
        ):
            response = client.post(
                "/predict", content=content, headers={"Content-Type": "application/json", **headers}
            )
            assert response.status_code == 200, (name, response.text)
            answers[name, k] = response.json()
    # Only the small unkeyed bodies of the default app awaited their commit on the loop.
    assert awaited == [id(on_loop)] * 3
    stored = {
        r.request_id: r
        for r in rows(db_url, "SELECT request_id, probability, decision FROM predictions")
    }
    assert len(stored) == 12
    for k in range(3):
        first = answers["loop", k]
        for name in ("large", "keyed", "pool"):
            other = answers[name, k]
            assert other["request_id"] != first["request_id"]
            for field in ("probability", "decision", "threshold", "model_version"):
                assert other[field] == first[field], (name, field)
        for name in ("loop", "large", "keyed", "pool"):
            row = stored[answers[name, k]["request_id"]]
            assert row.probability == first["probability"] and row.decision == first["decision"]


def test_predict_answers_alike_past_the_router_and_through_it(
    sqlite_url,
    trained_model,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    """`POST /predict` skips FastAPI's router (`routers.predict.PredictFastPath`): every kind
    of answer it gives is the one the router gives (status, headers, body but its request id
    and times), and other methods and paths still take the router."""
    from starlette.routing import Router

    from credit_drift.serving.routers.predict import PredictFastPath

    entered: list[str] = []
    router_call = Router.__call__

    async def counting(self, scope, receive, send):
        if scope["type"] == "http":
            entered.append(f"{scope['method']} {scope['path']}")
        await router_call(self, scope, receive, send)

    monkeypatch.setattr(Router, "__call__", counting)
    good = json.dumps(application(trained_model.pool, 0)).encode()
    missing = application(trained_model.pool, 1)
    missing.pop("EXT_SOURCE_2")
    json_type = {"Content-Type": "application/json"}
    cases = [
        ("POST", "/predict", good, json_type),
        ("POST", "/predict", b'{"AMT_CREDIT": ', json_type),
        ("POST", "/predict", json.dumps(missing).encode(), json_type),
        ("POST", "/predict", b"[1, 2]", json_type),
        ("POST", "/predict", good, {**json_type, "X-API-Key": "wrong"}),
        ("POST", "/predict", b"{" + b" " * 60_000 + b"}", json_type),
        ("POST", "/predict", good, {**json_type, "Idempotency-Key": "key-{fast}"}),
        ("POST", "/predict", good, json_type),
        ("GET", "/predict", b"", {}),
        ("POST", "/predict/", good, json_type),
    ]
    answers = {}
    for fast in (True, False):
        settings = settings_for(
            sqlite_url, trained_model.artifacts_dir, tmp_path / str(fast), api_key=API_KEY
        )
        config = ServingConfig(max_body_bytes=50_000)
        app = create_app(settings, trained_model.artifacts, config=config)
        if not fast:  # before the first request builds the middleware stack
            app.user_middleware = [m for m in app.user_middleware if m.cls is not PredictFastPath]
        entered.clear()
        with live_server(app) as base, httpx.Client(base_url=base, timeout=30) as client:
            for k, (method, path, body, headers) in enumerate(cases):
                if k == 1:  # an API key from here on, except where a case sends a wrong one
                    client.headers["X-API-Key"] = API_KEY
                headers = {name: value.format(fast=fast) for name, value in headers.items()}
                response = client.request(method, path, content=body, headers=headers)
                content = response.json() if response.content else None
                for volatile in ("request_id", "created_at", "inference_time_ms"):
                    if isinstance(content, dict):
                        content.pop(volatile, None)
                answers[fast, k] = (
                    response.status_code,
                    sorted(
                        (name, value.replace(base, ""))
                        for name, value in response.headers.items()
                        if name not in ("x-request-id", "date", "content-length")
                    ),
                    content,
                )
        routed = list(entered)
        if fast:
            assert routed == ["GET /predict", "POST /predict/"], routed
        else:
            assert routed.count("POST /predict") == len(cases) - 2
    statuses = [answers[True, k][0] for k in range(len(cases))]
    assert statuses == [401, 400, 422, 422, 401, 413, 200, 200, 405, 307], statuses
    for k in range(len(cases)):
        assert answers[True, k] == answers[False, k], cases[k][:2]
