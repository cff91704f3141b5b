"""Knowledge-base management through the API: add/update/delete/search, filters, persistence
across restarts, bad input."""
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from triage.bundle import load_bundle

CASES = [
    {"case_id": "k1", "text": "刹车突然失灵，差点追尾，4S店说检测不出问题", "complaint_type": "产品质量", "severity": "危机",
     "resolution": "免费更换制动总泵并赠送保养", "response": "{customer_name}您好，已为您免费更换制动总泵。",
     "outcome": "satisfied", "industry": "auto", "metadata": {"brand": "甲", "fine": "刹车失灵"}, "date": "2025-03-01"},
    {"case_id": "k2", "text": "刹车踏板发软，高速上刹不住车，很危险", "complaint_type": "产品质量", "severity": "危机",
     "resolution": "检修后未解决，客户再次投诉", "response": "您好，我们已安排检修。", "outcome": "complained_again",
     "industry": "auto", "metadata": {"brand": "乙", "fine": "刹车失灵"}, "date": "2024-06-01"},
    {"case_id": "k3", "text": "快递显示已签收但我根本没收到包裹", "complaint_type": "物流配送", "severity": "一般",
     "resolution": "驿站找回并送货上门", "response": "您好，包裹已找回，今天送到。", "outcome": "satisfied",
     "industry": "logistics", "metadata": {"brand": "丙"}, "date": "2025-01-10"},
]


@pytest.fixture
def app_factory(tiny_bundle, test_encoder, tmp_path, db_url):
    url = db_url

    def make():
        return create_app(Settings(models_dir=tmp_path, database_url=url),
                          loader=lambda s: load_bundle(tiny_bundle, test_encoder))
    return make


@pytest.fixture
def client(app_factory):
    with TestClient(app_factory()) as c:
        yield c


def test_add_get_update_delete(client):
    r = client.post("/v1/cases", json={"cases": CASES})
    assert r.status_code == 200 and r.json()["created"] == 3 and r.json()["updated"] == 0
    assert client.get("/v1/cases/k1").json()["resolution"] == "免费更换制动总泵并赠送保养"
    changed = {**CASES[0], "resolution": "更换制动总泵，补偿500元"}
    r = client.post("/v1/cases", json={"cases": [changed]})
    assert r.json() == {"created": 0, "updated": 1, "case_ids": ["k1"], "total": r.json()["total"]}
    assert client.get("/v1/cases/k1").json()["resolution"] == "更换制动总泵，补偿500元"
    assert client.delete("/v1/cases/k1").status_code == 204
    assert client.get("/v1/cases/k1").json()["code"] == "CASE_NOT_FOUND"
    assert client.delete("/v1/cases/k1").status_code == 404
    hits = client.post("/v1/similar", json={"text": CASES[0]["text"], "k": 10}).json()["hits"]
    assert "k1" not in [h["case_id"] for h in hits]


def test_search_finds_the_case_and_suggests_its_reply(client):
    client.post("/v1/cases", json={"cases": CASES})
    body = client.post("/v1/similar", json={"text": CASES[2]["text"]}).json()
    assert body["hits"][0]["case_id"] == "k3" and body["hits"][0]["metadata"] == {"brand": "丙"}
    assert body["hits"][0]["matched"]["terms"]
    assert body["suggested_response"]["based_on"] == ["k3"]


@pytest.mark.parametrize("filters, expected", [
    ({"complaint_type": "物流配送"}, {"k3"}),
    ({"metadata": {"brand": ["甲", "乙"]}}, {"k1", "k2"}),
    ({"industry": "auto", "date_from": "2025-01-01"}, {"k1"}),
    ({"severity": "重点"}, set()),
])
def test_filters(client, filters, expected):
    client.post("/v1/cases", json={"cases": CASES})
    for text in (CASES[0]["text"], CASES[2]["text"]):
        hits = client.post("/v1/similar", json={"text": text, "k": 10, "filters": filters,
                                                 "mode": "bm25"}).json()["hits"]
        assert {h["case_id"] for h in hits} <= expected


def test_satisfied_outcome_ranks_above_repeat_complaint(client, tiny_bundle, test_encoder):
    # two cases equally similar to the query (each differs from it by one character)
    worse = {**CASES[1], "text": CASES[1]["text"] + "。", "outcome": "complained_again"}
    better = {**CASES[1], "case_id": "k2b", "text": CASES[1]["text"] + "，", "outcome": "satisfied"}
    client.post("/v1/cases", json={"cases": [worse, better]})
    hits = client.post("/v1/similar", json={"text": CASES[1]["text"] + "；", "k": 5}).json()["hits"]
    assert [h["case_id"] for h in hits[:2]] == ["k2b", "k2"]


def test_near_duplicates_are_collapsed(client):
    copy = {**CASES[2], "case_id": "k3copy", "text": " " + CASES[2]["text"].replace("包裹", "包裹 ")}
    client.post("/v1/cases", json={"cases": [CASES[2], copy]})
    hits = client.post("/v1/similar", json={"text": CASES[2]["text"], "k": 5}).json()["hits"]
    assert [h["case_id"] for h in hits].count("k3") + [h["case_id"] for h in hits].count("k3copy") == 1
    assert hits[0].get("duplicates") in (["k3"], ["k3copy"])


def test_cases_survive_a_restart(app_factory):
    with TestClient(app_factory()) as c:
        c.post("/v1/cases", json={"cases": CASES})
        c.delete("/v1/cases/k2")
    with TestClient(app_factory()) as c:                 # a new process would do the same
        assert c.get("/v1/cases/k1").status_code == 200
        assert c.get("/v1/cases/k2").status_code == 404
        assert c.post("/v1/similar", json={"text": CASES[2]["text"]}).json()["hits"][0]["case_id"] == "k3"


def test_empty_database_is_seeded_with_the_bundle_cases(client):
    assert client.get("/v1/model").json()["cases"] > 0


@pytest.mark.parametrize("body, code", [
    ({"cases": [{"case_id": "x", "text": ""}]}, "TEXT_EMPTY"),
    ({"cases": [{"case_id": "x"}]}, "FIELD_MISSING"),
    ({"cases": []}, "TOO_FEW_ITEMS"),
    ({"cases": [{"case_id": f"c{i}", "text": "文本内容"} for i in range(501)]}, "TOO_MANY_ITEMS"),
    ({"cases": [{"case_id": "x", "text": "a"}, {"case_id": "x", "text": "b"}]}, "DUPLICATE_CASE_ID"),
    ({"cases": [{"case_id": "x", "text": "文本", "outcome": "great"}]}, "INVALID_VALUE"),
    ({"cases": [{"case_id": "a b", "text": "文本"}]}, "INVALID_VALUE"),
])
def test_bad_case_batches(client, body, code):
    r = client.post("/v1/cases", json=body)
    assert r.status_code == 422 and r.json()["code"] == code, r.text
    assert client.get("/v1/cases/x").status_code == 404                 # nothing half-written


@pytest.mark.parametrize("body, code", [({"text": ""}, "TEXT_EMPTY"), ({"text": "x", "k": 0}, "INVALID_VALUE"),
                                        ({"text": "x", "filters": {"colour": "red"}}, "UNKNOWN_FIELD"),
                                        ({"text": "x", "mode": "magic"}, "INVALID_VALUE")])
def test_bad_similar_requests(client, body, code):
    r = client.post("/v1/similar", json=body)
    assert r.status_code == 422 and r.json()["code"] == code, r.text


def test_triage_fills_reply_placeholders(client):
    client.post("/v1/cases", json={"cases": CASES})
    r = client.post("/v1/triage", json={"text": CASES[0]["text"], "customer_name": "李先生"}).json()
    draft = r["suggested_response"]
    assert draft["available"] and "李先生" in draft["draft"]
