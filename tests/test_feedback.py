"""Prediction records and supervisors' feedback through the API: ids on every answer, stored
corrections next to the unchanged prediction, durability across a restart, retention, bad input,
and corrections turned into training records."""
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from triage.bundle import load_bundle
from triage.store import PredictionLog

TEXT = "刹车突然失灵，差点追尾，4S店说检测不出问题"


@pytest.fixture
def url(db_url):
    return db_url


@pytest.fixture
def app_factory(tiny_bundle, test_encoder, tmp_path, url):
    def make(**settings):
        return create_app(Settings(models_dir=tmp_path, database_url=url, **settings),
                          loader=lambda s: load_bundle(tiny_bundle, test_encoder))
    return make


def test_every_answer_is_recorded_with_an_id(app_factory):
    with TestClient(app_factory()) as c:
        one = c.post("/v1/triage", json={"text": TEXT, "id": "T-1", "channel": "phone"}).json()
        batch = c.post("/v1/triage/batch", json={"items": [{"text": TEXT}, {"text": "快递三天没到"}]}).json()["results"]
        ids = [one["prediction_id"]] + [r["prediction_id"] for r in batch]
        assert len(set(ids)) == 3 and all(i.startswith("p-") for i in ids)
        rec = c.get(f"/v1/predictions/{one['prediction_id']}").json()
        assert rec["request_id"] == "T-1" and rec["channel"] == "phone" and rec["text"] == TEXT
        assert rec["model_version"] == one["model_version"]
        assert rec["prediction"]["severity"]["label"] == one["severity"]["label"] and rec["feedback"] == []


def test_feedback_is_kept_beside_the_prediction_and_survives_a_restart(app_factory):
    with TestClient(app_factory()) as c:
        answer = c.post("/v1/triage", json={"text": TEXT}).json()
        pid = answer["prediction_id"]
        r = c.post("/v1/feedback", json={"prediction_id": pid, "corrections": {"severity": "危机", "intensity": 1},
                                         "reason": "行驶中刹车失灵"})
        assert r.status_code == 201
        body = r.json()
        assert body["corrections"] == {"severity": "危机", "intensity": 1}
        assert body["prediction"]["severity"]["label"] == answer["severity"]["label"]    # unchanged
        c.post("/v1/feedback", json={"prediction_id": pid, "corrections": {"complaint_type": "售后维修"}})
    with TestClient(app_factory()) as c:                       # a new process on the same database
        rec = c.get(f"/v1/predictions/{pid}").json()
        assert [f["reviewer"] for f in rec["feedback"]] == ["local", "local"]     # the caller, never the body
        assert rec["prediction"]["severity"]["label"] == answer["severity"]["label"]


@pytest.mark.parametrize("body,status,code", [
    ({"prediction_id": "p-nope", "corrections": {"severity": "危机"}}, 404, "PREDICTION_NOT_FOUND"),
    ({"prediction_id": "PID", "corrections": {}}, 422, "FEEDBACK_EMPTY"),
    ({"prediction_id": "PID", "corrections": {"severity": "紧急"}}, 422, "INVALID_VALUE"),
    ({"prediction_id": "PID", "corrections": {"intensity": 7}}, 422, "INVALID_VALUE"),
    ({"prediction_id": "PID", "corrections": {"mood": "angry"}}, 422, "UNKNOWN_FIELD"),
    ({"prediction_id": "PID", "corrections": {"severity": "危机"}, "reviewer": "a"}, 422, "UNKNOWN_FIELD"),
    ({"prediction_id": "PID"}, 422, "FIELD_MISSING"),
])
def test_bad_feedback_is_refused_clearly(app_factory, body, status, code):
    with TestClient(app_factory()) as c:
        pid = c.post("/v1/triage", json={"text": TEXT}).json()["prediction_id"]
        body = {**body, "prediction_id": pid if body["prediction_id"] == "PID" else body["prediction_id"]}
        r = c.post("/v1/feedback", json=body)
        assert r.status_code == status and r.json()["code"] == code and r.json()["message"]
        assert c.get(f"/v1/predictions/{pid}").json()["feedback"] == []
        assert c.get("/v1/predictions/p-unknown").json()["code"] == "PREDICTION_NOT_FOUND"


def test_retention_blanks_old_texts_but_feedback_keeps_its_copy(url):
    log = PredictionLog(url, retention_days=30)
    old, new = log.record([{"id": "a"}, {"id": "b"}], ["旧的投诉文本", "新的投诉文本"], model_version="v1")
    log.add_feedback(old, {"severity": "重点"}, "rev")
    assert log.purge_texts(now=datetime.now(timezone.utc) + timedelta(days=31)) == 2
    assert log.get(old)["text"] is None and log.get(old)["text_sha256"]
    records, stats = log.training_records()
    assert records == [{"id": f"fb-{old}", "severity": "重点", "text": "旧的投诉文本"}]
    assert stats == {"feedback": 1, "predictions": 1, "usable": 1, "skipped_no_text": 0}


def test_zero_retention_stores_no_text_and_feedback_cannot_train(url):
    log = PredictionLog(url, retention_days=0)
    (pid,) = log.record([{"id": None}], ["不保存的文本"], model_version="v1")
    assert log.get(pid)["text"] is None
    log.add_feedback(pid, {"emotion": "angry"}, "rev")
    records, stats = log.training_records()
    assert records == [] and stats["skipped_no_text"] == 1


def test_later_corrections_of_a_field_win(url):
    log = PredictionLog(url)
    (pid,) = log.record([{"id": None}], ["一条投诉"], model_version="v1")
    log.add_feedback(pid, {"severity": "重点", "emotion": "sad"}, "a")
    log.add_feedback(pid, {"severity": "危机"}, "b")
    records, _ = log.training_records()
    assert records == [{"id": f"fb-{pid}", "severity": "危机", "emotion": "sad", "text": "一条投诉"}]


def test_a_database_failure_is_a_clear_503_not_a_lost_answer(app_factory, monkeypatch):
    from sqlalchemy.exc import OperationalError

    def broken(*a, **k):
        raise OperationalError("INSERT", {}, Exception("database is locked"))
    with TestClient(app_factory()) as c:
        pid = c.post("/v1/triage", json={"text": TEXT}).json()["prediction_id"]
        monkeypatch.setattr(PredictionLog, "record", broken)
        monkeypatch.setattr(PredictionLog, "add_feedback", broken)
        r = c.post("/v1/triage", json={"text": TEXT})
        assert r.status_code == 503 and r.json()["code"] == "PREDICTION_STORE_UNAVAILABLE"
        r = c.post("/v1/feedback", json={"prediction_id": pid, "corrections": {"severity": "危机"}})
        assert r.status_code == 503 and r.json()["code"] == "FEEDBACK_STORE_UNAVAILABLE"
