"""Logs and metrics without personal data: a marker text sent through every route that takes
text — and through a failing database write — never appears in any log record, SQL parameters
are hidden, database passwords are masked; the access log is JSON with the request id, route,
status, timing and prediction ids; ``/metrics`` has the request, prediction, review and index
series."""
from __future__ import annotations

import json
import logging
import threading

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.observe import JsonFormatter
from api.settings import Settings
from triage.bundle import load_bundle

MARKER = "秘密标记七七三一刹车失灵"


def test_no_complaint_text_or_sql_parameters_in_any_log(tiny_bundle, test_encoder, tmp_path, db_url, caplog,
                                                        monkeypatch):
    from triage import db

    monkeypatch.setattr(db, "LOCK_TIMEOUT_MS", 300)
    caplog.set_level(logging.DEBUG)                   # everything, SQLAlchemy's statement log included
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")      # (caplog restores both afterwards)
    app = create_app(Settings(models_dir=tmp_path, database_url=db_url),
                     loader=lambda s: load_bundle(tiny_bundle, test_encoder))
    with TestClient(app, raise_server_exceptions=False) as c:
        answer = c.post("/v1/triage", json={"text": MARKER, "id": "T-1", "customer_name": MARKER}).json()
        c.post("/v1/triage/batch", json={"items": [{"text": MARKER}, {"text": MARKER + "二"}]})
        c.post("/v1/similar", json={"text": MARKER})
        c.post("/v1/cases", json={"cases": [{"case_id": "mk-1", "text": MARKER, "resolution": MARKER,
                                             "response": MARKER}]})
        c.post("/v1/feedback", json={"prediction_id": answer["prediction_id"], "corrections": {"severity": "危机"},
                                     "reason": MARKER})
        c.post("/v1/triage", json={"text": MARKER * 1000})                       # refused: too long
        c.post("/v1/triage", content=('{"text": "' + MARKER + '"').encode(), headers={"content-type": "application/json"})
        release, held = threading.Event(), threading.Event()

        def hold():
            engine = db.open_engine(db_url)
            with db.writing(engine, ordered=True) as conn:
                if db.is_postgres(engine):
                    conn.exec_driver_sql("LOCK TABLE cases, predictions, feedback, case_changes IN EXCLUSIVE MODE")
                held.set()
                release.wait(30)
        t = threading.Thread(target=hold)
        t.start()
        held.wait(10)
        try:
            failed = [c.post("/v1/triage", json={"text": MARKER}),
                      c.post("/v1/cases", json={"cases": [{"case_id": "mk-2", "text": MARKER}]}),
                      c.post("/v1/feedback", json={"prediction_id": answer["prediction_id"],
                                                   "corrections": {"emotion": "angry"}, "reason": MARKER})]
        finally:
            release.set()
            t.join()
        assert [r.status_code for r in failed] == [503, 503, 503]
    assert caplog.records, "nothing was logged"
    formatter = JsonFormatter()
    for record in caplog.records:
        line = formatter.format(record)
        assert MARKER not in line and MARKER[:4] not in line, line
    sql = [r for r in caplog.records if r.name.startswith("sqlalchemy.engine")]
    assert sql and not any(MARKER in str(r.args) for r in sql)
    access = [json.loads(formatter.format(r)) for r in caplog.records if r.name == "api.access"]
    triaged = next(a for a in access if a["route"] == "/v1/triage" and a["status"] == 200)
    assert triaged["prediction_ids"] == [answer["prediction_id"]] and triaged["duration_ms"] > 0
    assert triaged["request_id"] and triaged["method"] == "POST"
    assert {a["status"] for a in access if a["route"] == "/v1/feedback"} == {201, 503}


def test_database_passwords_never_reach_the_output(tmp_path, monkeypatch, capsys):
    from api.__main__ import main
    from triage.db import mask_url

    secret_url = "postgresql+psycopg://triage:s3cret-pw@127.0.0.1:1/triage"
    assert mask_url(secret_url) == "postgresql+psycopg://triage:***@127.0.0.1:1/triage"
    monkeypatch.setenv("TRIAGE_DATABASE_URL", secret_url)
    assert main(["--port", "1"]) == 2                       # nothing listens on port 1
    assert main(["keys", "list"]) == 2
    assert main(["migrate"]) == 2
    out = capsys.readouterr()
    assert "s3cret-pw" not in out.out + out.err
    assert "triage:***@127.0.0.1:1" in out.err


def test_request_ids_are_echoed_or_made(tiny_bundle, test_encoder, tmp_path, db_url):
    app = create_app(Settings(models_dir=tmp_path, database_url=db_url),
                     loader=lambda s: load_bundle(tiny_bundle, test_encoder))
    with TestClient(app) as c:
        assert c.get("/healthz", headers={"X-Request-ID": "req-42"}).headers["x-request-id"] == "req-42"
        made = c.get("/healthz", headers={"X-Request-ID": "bad id with spaces"}).headers["x-request-id"]
        assert made != "bad id with spaces" and len(made) == 32


def test_metrics(tiny_bundle, test_encoder, tmp_path, db_url):
    app = create_app(Settings(models_dir=tmp_path, database_url=db_url),
                     loader=lambda s: load_bundle(tiny_bundle, test_encoder))
    with TestClient(app) as c:
        pid = c.post("/v1/triage", json={"text": "刹车突然失灵，差点撞上前车"}).json()["prediction_id"]
        c.post("/v1/feedback", json={"prediction_id": pid, "corrections": {"severity": "危机", "emotion": "fear"}})
        r = c.get("/metrics")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        text = r.text
    assert 'triage_request_duration_seconds_bucket{le="0.005",method="POST",route="/v1/triage",status="200"}' in text
    assert "triage_predictions_total{complaint_type=" in text and 'grade="' in text
    assert "triage_feedback_total " in text and 'triage_corrections_total{field="emotion"}' in text
    assert "triage_case_index_size " in text and "triage_case_sequence " in text and "triage_requests_in_flight " in text
    assert "刹车" not in text


@pytest.mark.parametrize("route", ["/v1/triage", "/v1/similar"])
def test_metric_labels_are_route_templates(tiny_bundle, test_encoder, tmp_path, db_url, route):
    app = create_app(Settings(models_dir=tmp_path, database_url=db_url),
                     loader=lambda s: load_bundle(tiny_bundle, test_encoder))
    with TestClient(app) as c:
        c.get("/v1/cases/some-secret-id")
        text = c.get("/metrics").text
    assert 'route="/v1/cases/{case_id}"' in text and "some-secret-id" not in text
