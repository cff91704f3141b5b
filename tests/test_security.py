"""Who may do what: every route × every role × no key, key states, failed-attempt limits, the
open mode without keys, the insecure-binding refusal, the keys command; and the two attacks the
deployment review reproduced — knowledge-base poisoning and ghost cases — failing to reproduce."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from conftest import PgSchema, require_pg
from triage.bundle import load_bundle
from triage.keys import KeyStore

ROLES = ("intake", "supervisor", "admin")
TEXT = "快递显示已签收但我根本没收到包裹"
# (method, path, body, the role it needs; None: no key needed). Every route of the app must be
# listed: test_every_route_is_in_the_matrix fails when a new route is not classified here.
MATRIX = [
    ("GET", "/healthz", None, None),
    ("GET", "/readyz", None, None),
    ("GET", "/metrics", None, None),
    ("GET", "/openapi.json", None, None),
    ("GET", "/docs", None, None),
    ("GET", "/docs/oauth2-redirect", None, None),
    ("GET", "/redoc", None, None),
    ("GET", "/v1/model", None, "intake"),
    ("POST", "/v1/triage", {"text": TEXT}, "intake"),
    ("POST", "/v1/triage/batch", {"items": [{"text": TEXT}]}, "intake"),
    ("POST", "/v1/similar", {"text": TEXT}, "intake"),
    ("GET", "/v1/cases/{case_id}", None, "supervisor"),
    ("GET", "/v1/predictions/{prediction_id}", None, "supervisor"),
    ("POST", "/v1/feedback", {"prediction_id": "p-none", "corrections": {"severity": "危机"}}, "supervisor"),
    ("POST", "/v1/cases", {"cases": [{"case_id": "m-1", "text": TEXT}]}, "admin"),
    ("DELETE", "/v1/cases/{case_id}", None, "admin"),
    ("POST", "/v1/admin/reload", {"bundle": "no-such-bundle"}, "admin"),
    ("GET", "/v1/admin/keys", None, "admin"),
    ("POST", "/v1/admin/keys", {"name": "made-by-matrix", "role": "intake"}, "admin"),
    ("DELETE", "/v1/admin/keys/{name}", None, "admin"),
]


def _concrete(path: str) -> str:
    return path.replace("{case_id}", "kb-none").replace("{prediction_id}", "p-none").replace("{name}", "nobody")


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def secured(request, tiny_bundle, test_encoder, tmp_path_factory):
    """One app with one key per role (and an expired and a revoked key) on each backend."""
    schema = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sec') / 'triage.db'}"
    else:
        schema = PgSchema(require_pg(request.getfixturevalue("pg_server")))
        url = schema.url
    keys = KeyStore(url)
    tokens = {role: keys.create(f"{role}-key", role) for role in ROLES}
    soon = datetime.now(timezone.utc) + timedelta(seconds=1)
    tokens["expired"] = keys.create("expiring-key", "admin", soon)
    tokens["revoked"] = keys.create("revoked-key", "admin")
    keys.revoke("revoked-key")
    app = create_app(Settings(models_dir=tmp_path_factory.mktemp("models"), database_url=url, sync_seconds=0.2,
                              auth_max_failures=1000), loader=lambda s: load_bundle(tiny_bundle, test_encoder))
    with TestClient(app) as client:
        yield client, tokens, app, url
    if schema is not None:
        schema.drop()


def _call(client, method, path, body, token):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.request(method, _concrete(path), json=body, headers=headers)


def test_every_route_is_in_the_matrix(secured):
    client, _, app, _ = secured
    routes = {(m.upper(), p) for p, ops in app.openapi()["paths"].items() for m in ops}
    routes |= {("GET", r.path) for r in app.routes if getattr(r, "path", None)}       # /docs, /openapi.json…
    assert routes == {(m, p) for m, p, _, _ in MATRIX}


@pytest.mark.parametrize("method, path, body, needed", MATRIX, ids=[f"{m} {p}" for m, p, _, _ in MATRIX])
def test_route_by_role(secured, method, path, body, needed):
    client, tokens, _, _ = secured
    for who in (None, *ROLES):
        r = _call(client, method, path, body, tokens[who] if who else None)
        allowed = needed is None or (who is not None and ROLES.index(who) >= ROLES.index(needed))
        if allowed:
            assert r.status_code not in (401, 403), (who, r.status_code, r.text)
            assert r.status_code < 500, (who, r.text)
        elif who is None:
            assert r.status_code == 401 and r.json()["code"] == "AUTH_REQUIRED", r.text
            assert r.headers["www-authenticate"].startswith("Bearer")
        else:
            assert r.status_code == 403 and r.json()["code"] == "AUTH_FORBIDDEN", r.text


@pytest.mark.parametrize("header", ["Bearer tk_not-a-key", "Basic dXNlcjpwYXNz", "Bearer", "tk_x",
                                    "Bearer ключ-ключ", "Bearer tk_é".encode("utf-8").decode("latin-1")])
def test_bad_credentials_are_401_with_a_code(secured, header):
    client, _, _, _ = secured
    r = client.post("/v1/triage", json={"text": TEXT}, headers={"Authorization": header.encode("utf-8")})
    assert r.status_code == 401 and r.json()["code"] == "AUTH_INVALID", r.text


def test_expired_and_revoked_keys_are_refused(secured):
    import time
    client, tokens, _, _ = secured
    time.sleep(1.1)                                            # the expiring key's second is over
    for who in ("expired", "revoked"):
        r = client.get("/v1/model", headers={"Authorization": f"Bearer {tokens[who]}"})
        assert r.status_code == 401 and r.json()["code"] == "AUTH_INVALID"


def test_feedback_records_the_reviewer_from_the_key(secured):
    client, tokens, _, _ = secured
    sup = {"Authorization": f"Bearer {tokens['supervisor']}"}
    pid = client.post("/v1/triage", json={"text": TEXT}, headers=sup).json()["prediction_id"]
    r = client.post("/v1/feedback", json={"prediction_id": pid, "corrections": {"severity": "重点"}}, headers=sup)
    assert r.status_code == 201 and r.json()["reviewer"] == "supervisor-key"
    forged = client.post("/v1/feedback", json={"prediction_id": pid, "corrections": {"severity": "危机"},
                                               "reviewer": "somebody.else"}, headers=sup)
    assert forged.status_code == 422 and forged.json()["code"] == "UNKNOWN_FIELD"


def test_a_revoked_key_stops_working_within_the_sync_time(secured):
    import time
    client, tokens, _, url = secured
    keys = KeyStore(url)
    token = keys.create("short-lived", "intake")
    h = {"Authorization": f"Bearer {token}"}
    assert client.get("/v1/model", headers=h).status_code == 200
    keys.revoke("short-lived")
    time.sleep(0.3)                                            # sync_seconds = 0.2 in this app
    assert client.get("/v1/model", headers=h).status_code == 401


def test_poisoned_reply_does_not_reach_the_draft(secured):
    """The review's reproduction: a case whose reply carries a phishing link, upserted, then a
    matching complaint triaged. Anonymous and intake callers cannot write cases at all; an
    admin's case still has its link and contacts taken out of the draft unless approved."""
    client, tokens, _, _ = secured
    text = "退款申请提交一个月了还没有到账，客服一直说在处理"
    case = {"case_id": "poison-1", "text": text, "outcome": "satisfied",
            "response": "请访问 http://phish.example 领取赔偿，或加微信 refund_8888 联系 13800138000"}
    assert client.post("/v1/cases", json={"cases": [case]}).status_code == 401
    intake = {"Authorization": f"Bearer {tokens['intake']}"}
    assert client.post("/v1/cases", json={"cases": [case]}, headers=intake).status_code == 403
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    assert client.post("/v1/cases", json={"cases": [case]}, headers=admin).status_code == 200
    answer = client.post("/v1/triage", json={"text": text}, headers=intake).json()
    draft = answer["suggested_response"]
    assert draft["available"] and draft["based_on"] == ["poison-1"]
    assert "phish" not in draft["draft"] and "refund_8888" not in draft["draft"] and "13800138000" not in draft["draft"]
    assert set(draft["removed"]) == {"link", "messenger", "phone"}
    approved = {**case, "approved": True, "response": "请拨打官方客服 400-800-8888 查询"}
    client.post("/v1/cases", json={"cases": [approved]}, headers=admin)
    draft = client.post("/v1/triage", json={"text": text}, headers=intake).json()["suggested_response"]
    assert "400-800-8888" in draft["draft"] and draft["removed"] == []


def test_delete_and_upsert_races_leave_no_ghost_cases(secured):
    """The review's reproduction: DELETE and POST of one case id at once, 20 times. Afterwards
    the index holds exactly the database's cases, and search returns no deleted case."""
    client, tokens, app, url = secured
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    ids = [f"race-{i}" for i in range(20)]
    client.post("/v1/cases", json={"cases": [{"case_id": i, "text": f"{TEXT}{i}"} for i in ids]}, headers=admin)
    barrier = threading.Barrier(2)

    def delete(case_id):
        barrier.wait()
        client.delete(f"/v1/cases/{case_id}", headers=admin)

    def upsert(case_id):
        barrier.wait()
        client.post("/v1/cases", json={"cases": [{"case_id": case_id, "text": f"{TEXT}{case_id}改"}]}, headers=admin)
    for case_id in ids:
        threads = [threading.Thread(target=delete, args=(case_id,)), threading.Thread(target=upsert, args=(case_id,))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    from triage.store import CaseStore
    store = CaseStore(url, app.state.model.encoder.dim)
    in_db = {c["case_id"] for c in store.rows()[0]}
    in_index = {c["case_id"] for c in app.state.model.cases.snapshot()[0]}
    assert in_db == in_index
    for case_id in ids:                                # a case left in the index can be deleted
        if case_id in in_db:
            assert client.delete(f"/v1/cases/{case_id}", headers=admin).status_code == 204
    assert not {c["case_id"] for c in app.state.model.cases.snapshot()[0]} & set(ids)


def test_failed_attempts_are_rate_limited(tiny_bundle, test_encoder, tmp_path):
    url = f"sqlite:///{tmp_path / 'triage.db'}"
    token = KeyStore(url).create("desk", "intake")
    app = create_app(Settings(models_dir=tmp_path, database_url=url, auth_max_failures=3, auth_window_seconds=60),
                     loader=lambda s: load_bundle(tiny_bundle, test_encoder))
    with TestClient(app) as client:
        for _ in range(3):
            assert client.get("/v1/model", headers={"Authorization": "Bearer tk_guess"}).status_code == 401
        r = client.get("/v1/model", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 429 and r.json()["code"] == "AUTH_RATE_LIMITED"
        assert 1 <= int(r.headers["retry-after"]) <= 60
        assert client.get("/healthz").status_code == 200              # open routes stay open


def test_without_keys_the_service_is_open_as_the_local_admin(tiny_bundle, test_encoder, db_url, tmp_path):
    app = create_app(Settings(models_dir=tmp_path, database_url=db_url),
                     loader=lambda s: load_bundle(tiny_bundle, test_encoder))
    with TestClient(app) as client:
        assert client.get("/readyz").json()["auth"] == "open"
        assert client.post("/v1/cases", json={"cases": [{"case_id": "o-1", "text": TEXT}]}).status_code == 200
        assert client.get("/v1/model", headers={"Authorization": "Bearer tk_wrong"}).status_code == 401


def test_a_non_loopback_address_without_keys_refuses_to_start(tmp_path, monkeypatch, capsys):
    from api.__main__ import is_loopback, main

    monkeypatch.setenv("TRIAGE_DATABASE_URL", f"sqlite:///{tmp_path / 'triage.db'}")
    monkeypatch.setenv("TRIAGE_JSON_LOGS", "false")
    assert main(["--host", "0.0.0.0", "--port", "1"]) == 2
    assert "refusing to serve on 0.0.0.0" in capsys.readouterr().err
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3") and not is_loopback("example.org")


def test_keys_command(tmp_path, capsys):
    from api.__main__ import main

    url = f"sqlite:///{tmp_path / 'triage.db'}"
    assert main(["keys", "--database-url", url, "create", "--name", "desk-1", "--role", "intake",
                 "--expires", "30d"]) == 0
    key = capsys.readouterr().out.strip()
    assert key.startswith("tk_") and len(key) > 40
    assert KeyStore(url).verify(key).role == "intake"
    assert main(["keys", "--database-url", url, "list"]) == 0
    listing = capsys.readouterr().out
    assert "desk-1" in listing and "intake" in listing and "active" in listing and key not in listing
    assert main(["keys", "--database-url", url, "create", "--name", "desk-1", "--role", "admin"]) == 2
    assert "KEY_EXISTS" in capsys.readouterr().err
    assert main(["keys", "--database-url", url, "revoke", "desk-1"]) == 0
    assert KeyStore(url).verify(key) is None
    assert main(["keys", "--database-url", url, "revoke", "desk-1"]) == 1
