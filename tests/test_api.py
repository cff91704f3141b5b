import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings


@pytest.fixture
def client(model, tmp_path, db_url):
    app = create_app(Settings(models_dir=tmp_path, max_text_chars=300, database_url=db_url), loader=lambda s: model)
    with TestClient(app) as c:
        yield c


CRISIS = "刹车突然失灵，差点撞上前车，4S店说检测不出问题"


def test_triage_returns_full_answer(client):
    r = client.post("/v1/triage", json={"text": CRISIS, "id": "T-9", "channel": "phone", "customer_id": "C1"})
    assert r.status_code == 200
    body = r.json()
    assert body["id"] == "T-9" and body["severity"]["label"] == "危机"
    assert {"complaint_type", "type_candidates", "emotion", "intensity", "similar_cases", "needs_review",
            "model_version", "evidence"} <= set(body)


def test_batch_keeps_order(client):
    items = [{"text": t, "id": str(i)} for i, t in enumerate(["快递丢了", CRISIS, "客服不回复"])]
    r = client.post("/v1/triage/batch", json={"items": items})
    assert r.status_code == 200
    assert [x["id"] for x in r.json()["results"]] == ["0", "1", "2"]


@pytest.mark.parametrize("body, status, code", [
    ({}, 422, "FIELD_MISSING"),
    ({"text": ""}, 422, "TEXT_EMPTY"),
    ({"text": "   "}, 422, "TEXT_EMPTY"),
    ({"text": 123}, 422, "FIELD_NOT_STRING"),
    ({"text": None}, 422, "FIELD_NOT_STRING"),
    ({"text": "好" * 301}, 413, "TEXT_TOO_LONG"),
    ({"text": "ok", "colour": "red"}, 422, "UNKNOWN_FIELD"),
    ([1, 2], 422, "BODY_NOT_OBJECT"),
])
def test_bad_single_requests(client, body, status, code):
    r = client.post("/v1/triage", json=body)
    assert r.status_code == status, r.text
    assert r.json()["code"] == code and r.json()["message"]


def test_invalid_json(client):
    r = client.post("/v1/triage", content=b'{"text": "x"', headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["code"] == "INVALID_JSON"


@pytest.mark.parametrize("items, status, code", [
    ([{"text": "a"}] * 65, 422, "TOO_MANY_ITEMS"),
    ([], 422, "TOO_FEW_ITEMS"),
    ([{"text": "ok"}, {"text": ""}], 422, "TEXT_EMPTY"),
    ([{"text": "ok"}, {"text": "长" * 301}], 413, "TEXT_TOO_LONG"),
])
def test_bad_batches(client, items, status, code):
    r = client.post("/v1/triage/batch", json={"items": items})
    assert r.status_code == status, r.text
    assert r.json()["code"] == code


def test_service_keeps_serving_after_errors(client):
    for _ in range(3):
        client.post("/v1/triage", content=b"nonsense", headers={"content-type": "application/json"})
        client.post("/v1/triage", json={"text": ""})
    assert client.post("/v1/triage", json={"text": CRISIS}).status_code == 200


def test_meta_endpoints(client, model):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["model_version"] == model.version
    info = client.get("/v1/model").json()
    assert info["model_version"] == model.version
    assert set(info["labels"]["severity"]) == {"一般", "重点", "危机"}
    assert info["metrics"]["cross_validated"]["severity"]["macro_f1"] >= 0
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert "/v1/triage" in spec["paths"] and "/v1/triage/batch" in spec["paths"]


def test_unknown_route_and_method(client):
    assert client.get("/v1/nope").json()["code"] == "NOT_FOUND"
    assert client.get("/v1/triage").json()["code"] == "METHOD_NOT_ALLOWED"


def test_not_ready_before_model(tmp_path):
    app = create_app(Settings(models_dir=tmp_path))
    c = TestClient(app)  # lifespan not started: no model
    assert c.get("/readyz").status_code == 503
    r = c.post("/v1/triage", json={"text": "x"})
    assert r.status_code == 503 and r.json()["code"] == "MODEL_NOT_READY"


def test_missing_bundle_refuses_to_start_and_names_the_command(tmp_path):
    """The service never trains: without models/CURRENT it refuses and says how to make one."""
    from triage.errors import BundleError
    app = create_app(Settings(models_dir=tmp_path, encoder="hashing-test"))
    with pytest.raises(BundleError, match=r"CURRENT.*python -m training train"):
        with TestClient(app):
            pass
    assert not (tmp_path / "CURRENT").exists()
