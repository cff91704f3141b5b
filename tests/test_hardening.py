"""The deployment review's findings, each failing to reproduce: no plain-text 500 for lone
surrogates, deep JSON or a locked database; bounded bodies, batches and case fields; NFKC case
ids; ``Allow`` on 405; reload errors without server paths; idempotent writes; migrations."""
from __future__ import annotations

import json
import threading

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from triage.bundle import load_bundle

TEXT = "刹车突然失灵，差点追尾，4S店说检测不出问题"
JSON = {"content-type": "application/json"}


@pytest.fixture
def make_app(tiny_bundle, test_encoder, tmp_path, db_url):
    def make(**settings):
        return create_app(Settings(models_dir=tmp_path, database_url=db_url, **settings),
                          loader=lambda s: load_bundle(tiny_bundle, test_encoder))
    return make


@pytest.fixture
def client(make_app):
    with TestClient(make_app(max_batch_chars=400, max_case_field_chars=100, max_body_bytes=20_000)) as c:
        yield c


@pytest.mark.parametrize("path, body", [
    ("/v1/triage", b'{"text": "\\ud800"}'),
    ("/v1/triage", b'{"text": "ok", "id": "\\udfff"}'),
    ("/v1/triage/batch", b'{"items": [{"text": "ok"}, {"text": "a\\ud800b"}]}'),
    ("/v1/similar", b'{"text": "\\ud83d"}'),
    ("/v1/cases", b'{"cases": [{"case_id": "s1", "text": "ok", "resolution": "\\ud800"}]}'),
    ("/v1/cases", b'{"cases": [{"case_id": "s1", "text": "ok", "metadata": {"k\\ud800": 1}}]}'),
    ("/v1/feedback", b'{"prediction_id": "p-x", "corrections": {"severity": "\\udc00"}}'),
    ("/v1/triage", b'{"text": "ok\\u0000"}'),
    ("/v1/cases", b'{"cases": [{"case_id": "s1", "text": "ok", "response": "a\\u0000b"}]}'),
])
def test_a_lone_surrogate_anywhere_is_text_invalid(client, path, body):
    r = client.post(path, content=body, headers=JSON)
    assert r.status_code == 422 and r.json()["code"] == "TEXT_INVALID", r.text


def test_a_surrogate_pair_is_an_ordinary_character(client):
    r = client.post("/v1/triage", content='{"text": "太生气了\\ud83d\\ude21"}'.encode(), headers=JSON)
    assert r.status_code == 200


@pytest.mark.parametrize("depth", [40, 500, 5000])
def test_deeply_nested_json_is_invalid_json(client, depth):
    body = '{"text": ' + "[" * depth + "]" * depth + "}"
    r = client.post("/v1/triage", content=body, headers=JSON)
    assert r.status_code == 400 and r.json()["code"] == "INVALID_JSON", r.text


@pytest.mark.parametrize("body", [b"\xff\xfe{}", b'{"text": "\xed\xa0\x80"}', b'{"text": "x"'])
def test_undecodable_bodies_are_invalid_json(client, body):
    r = client.post("/v1/triage", content=body, headers=JSON)
    assert r.status_code == 400 and r.json()["code"] == "INVALID_JSON", r.text


@pytest.mark.parametrize("text", ["\u200b\u200c\u200d", "\ufeff\u2060", " \u3000\t", "\x01\x02\x7f"])
def test_invisible_only_texts_are_empty(client, text):
    r = client.post("/v1/triage", json={"text": text})
    assert r.status_code == 422 and r.json()["code"] == "TEXT_EMPTY"


def test_a_body_over_the_limit_is_refused_before_it_is_read(client):
    big = json.dumps({"text": "好" * 30_000}).encode()
    r = client.post("/v1/triage", content=big, headers=JSON)
    assert r.status_code == 413 and r.json()["code"] == "BODY_TOO_LARGE"

    def chunks():                                           # no Content-Length: counted as it arrives
        yield b'{"text": "'
        for _ in range(100):
            yield "好".encode() * 100
        yield b'"}'
    r = client.post("/v1/triage", content=chunks(), headers=JSON)
    assert r.status_code == 413 and r.json()["code"] == "BODY_TOO_LARGE"


def test_batch_characters_and_case_fields_are_capped(client):
    r = client.post("/v1/triage/batch", json={"items": [{"text": "长" * 250}, {"text": "长" * 200}]})
    assert r.status_code == 413 and r.json()["code"] == "TOO_MANY_CHARS"
    r = client.post("/v1/cases", json={"cases": [{"case_id": "c1", "text": "长" * 250},
                                                 {"case_id": "c2", "text": "长" * 200}]})
    assert r.status_code == 413 and r.json()["code"] == "TOO_MANY_CHARS"
    for field, value in (("resolution", "很" * 101), ("response", "很" * 101), ("finding", "很" * 101),
                         ("metadata", {"note": "很" * 100})):
        r = client.post("/v1/cases", json={"cases": [{"case_id": "c1", "text": TEXT, field: value}]})
        assert r.status_code == 413 and r.json()["code"] == "FIELD_TOO_LONG", (field, r.text)
    assert client.get("/v1/cases/c1").status_code == 404


def test_case_ids_are_nfkc_normalised(client):
    r = client.post("/v1/cases", json={"cases": [{"case_id": "ｋｂ-ａ-０００１", "text": TEXT}]})
    assert r.json()["case_ids"] == ["kb-a-0001"]
    assert client.get("/v1/cases/kb-a-0001").json()["case_id"] == "kb-a-0001"
    assert client.get("/v1/cases/ｋｂ-a-0001").json()["case_id"] == "kb-a-0001"
    r = client.post("/v1/cases", json={"cases": [{"case_id": "kb-a-0001", "text": TEXT},
                                                 {"case_id": "ｋｂ-a-0001", "text": TEXT}]})
    assert r.status_code == 422 and r.json()["code"] == "DUPLICATE_CASE_ID"
    assert client.delete("/v1/cases/ｋｂ-a-0001").status_code == 204
    assert client.get("/v1/cases/kb-a-0001").status_code == 404


@pytest.mark.parametrize("method, path, allow", [
    ("DELETE", "/v1/triage", "POST"),
    ("GET", "/v1/feedback", "POST"),
    ("PUT", "/v1/cases/kb-1", "DELETE, GET, HEAD"),
    ("PATCH", "/healthz", "GET, HEAD"),
])
def test_405_says_what_is_allowed(client, method, path, allow):
    r = client.request(method, path)
    assert r.status_code == 405 and r.json()["code"] == "METHOD_NOT_ALLOWED"
    assert r.headers["allow"] == allow


def test_reload_errors_name_bundles_not_server_folders(make_app, tmp_path):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "manifest.json").write_text("{not json", encoding="utf-8")
    with TestClient(make_app()) as c:
        for name in ("broken", "missing-bundle"):
            r = c.post("/v1/admin/reload", json={"bundle": name})
            assert r.status_code == 409, r.text
            assert str(tmp_path) not in r.text and "/tmp" not in r.text, r.text
        for name in ("..", ".", "a/b"):
            assert c.post("/v1/admin/reload", json={"bundle": name}).status_code == 422


def test_a_locked_database_is_a_503_with_a_code(make_app, db_url, monkeypatch):
    """Another connection holds the write lock: every write answers 503 with a code within the
    lock timeout, nothing is half-written, and the service serves again once it is released."""
    from triage import db

    monkeypatch.setattr(db, "LOCK_TIMEOUT_MS", 300)
    with TestClient(make_app()) as c:
        pid = c.post("/v1/triage", json={"text": TEXT}).json()["prediction_id"]
        c.post("/v1/cases", json={"cases": [{"case_id": "locked-1", "text": TEXT}]})
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
        assert held.wait(10)
        try:
            checks = [(c.post("/v1/cases", json={"cases": [{"case_id": "locked-2", "text": TEXT}]}),
                       "CASE_STORE_UNAVAILABLE"),
                      (c.delete("/v1/cases/locked-1"), "CASE_STORE_UNAVAILABLE"),
                      (c.post("/v1/triage", json={"text": TEXT}), "PREDICTION_STORE_UNAVAILABLE"),
                      (c.post("/v1/feedback", json={"prediction_id": pid, "corrections": {"severity": "危机"}}),
                       "FEEDBACK_STORE_UNAVAILABLE")]
        finally:
            release.set()
            t.join()
        for r, code in checks:
            assert r.status_code == 503 and r.json()["code"] == code, r.text
        assert c.get("/v1/cases/locked-2").status_code == 404 and c.get("/v1/cases/locked-1").status_code == 200
        assert c.get(f"/v1/predictions/{pid}").json()["feedback"] == []
        assert c.post("/v1/triage", json={"text": TEXT}).status_code == 200


# ---------------------------------------------------------------- Idempotency-Key
def test_a_retried_feedback_is_not_duplicated(client):
    pid = client.post("/v1/triage", json={"text": TEXT}).json()["prediction_id"]
    body = {"prediction_id": pid, "corrections": {"severity": "危机"}, "reason": "高速上"}
    key = {"Idempotency-Key": "fb-7f3a"}
    first = client.post("/v1/feedback", json=body, headers=key)
    again = client.post("/v1/feedback", json=body, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert len(client.get(f"/v1/predictions/{pid}").json()["feedback"]) == 1
    other = client.post("/v1/feedback", json={**body, "reason": "另一个"}, headers=key)
    assert other.status_code == 422 and other.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert client.post("/v1/feedback", json=body, headers={"Idempotency-Key": "a b"}).json()["code"] == \
        "IDEMPOTENCY_KEY_INVALID"
    assert len(client.get(f"/v1/predictions/{pid}").json()["feedback"]) == 1


def test_concurrent_retries_with_one_key_write_once(client):
    pid = client.post("/v1/triage", json={"text": TEXT}).json()["prediction_id"]
    body = {"prediction_id": pid, "corrections": {"emotion": "fear"}}
    barrier, answers = threading.Barrier(4), []

    def send():
        barrier.wait()
        answers.append(client.post("/v1/feedback", json=body, headers={"Idempotency-Key": "same-key"}))
    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status_code for r in answers] == [201] * 4
    assert len({r.json()["feedback_id"] for r in answers}) == 1
    assert len(client.get(f"/v1/predictions/{pid}").json()["feedback"]) == 1


def test_case_writes_are_idempotent(client):
    case = {"case_id": "idem-1", "text": TEXT}
    key = {"Idempotency-Key": "cases-1"}
    first = client.post("/v1/cases", json={"cases": [case]}, headers=key).json()
    assert first["created"] == 1
    again = client.post("/v1/cases", json={"cases": [case]}, headers=key)
    assert again.json()["created"] == 1 and again.headers["idempotent-replayed"] == "true"
    gone = client.delete("/v1/cases/idem-1", headers={"Idempotency-Key": "del-1"})
    replay = client.delete("/v1/cases/idem-1", headers={"Idempotency-Key": "del-1"})
    assert gone.status_code == replay.status_code == 204 and replay.headers["idempotent-replayed"] == "true"
    assert client.delete("/v1/cases/idem-1").status_code == 404


def test_keys_are_per_caller(make_app, db_url):
    from triage.keys import KeyStore
    keys = KeyStore(db_url)
    a, b = keys.create("sup-a", "supervisor"), keys.create("sup-b", "supervisor")
    with TestClient(make_app()) as c:
        pid = c.post("/v1/triage", json={"text": TEXT}, headers={"Authorization": f"Bearer {a}"}).json()["prediction_id"]
        for token in (a, b):
            r = c.post("/v1/feedback", json={"prediction_id": pid, "corrections": {"severity": "重点"}},
                       headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "k1"})
            assert r.status_code == 201 and "idempotent-replayed" not in r.headers
        reviewers = [f["reviewer"] for f in c.get(f"/v1/predictions/{pid}",
                                                   headers={"Authorization": f"Bearer {a}"}).json()["feedback"]]
        assert sorted(reviewers) == ["sup-a", "sup-b"]


# ---------------------------------------------------------------- migrations
def test_migrations_reach_head_on_a_fresh_database(db_url):
    from sqlalchemy import inspect

    from triage.db import migrate, open_engine
    engine = open_engine(db_url)
    assert migrate(engine) == "0002"                          # again: nothing to do
    tables = set(inspect(engine).get_table_names())
    assert {"cases", "case_changes", "bundle_decisions", "api_keys", "idempotency", "predictions",
            "feedback", "alembic_version"} <= tables


def test_a_database_made_before_migrations_is_upgraded_in_place(tmp_path):
    """The earlier service created its tables without Alembic: they are kept with their rows,
    and every existing case gets a change-log entry, so workers index it."""
    import sqlite3

    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    con.executescript("""
        CREATE TABLE cases (case_id VARCHAR(200) PRIMARY KEY, data TEXT NOT NULL, embedding BLOB NOT NULL,
                            updated_at DATETIME NOT NULL);
        CREATE TABLE predictions (prediction_id VARCHAR(40) PRIMARY KEY, created_at DATETIME NOT NULL,
            model_version VARCHAR(100) NOT NULL, request_id VARCHAR(200), channel VARCHAR(50), text TEXT,
            text_sha256 VARCHAR(64) NOT NULL, answer TEXT NOT NULL);
        CREATE INDEX ix_predictions_created_at ON predictions (created_at);
        CREATE TABLE feedback (feedback_id VARCHAR(40) PRIMARY KEY, prediction_id VARCHAR(40) NOT NULL,
            created_at DATETIME NOT NULL, reviewer VARCHAR(200) NOT NULL, reason TEXT, corrections TEXT NOT NULL,
            text TEXT);
        INSERT INTO cases VALUES ('old-1', '{"case_id": "old-1", "text": "旧案例"}', x'0000803f', '2026-01-01');
        INSERT INTO predictions VALUES ('p-old', '2026-01-01', 'v0', NULL, NULL, '旧投诉', 'abc', '{}');
    """)
    con.commit()
    con.close()
    from triage.store import CaseStore, PredictionLog
    store = CaseStore(f"sqlite:///{path}", 1)
    assert store.get("old-1")["text"] == "旧案例"
    assert store.changes_since(0) == [(1, "old-1")]
    assert PredictionLog(f"sqlite:///{path}").get("p-old")["text"] == "旧投诉"


def test_the_alembic_command_upgrades_the_configured_database(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    out = subprocess.run([sys.executable, "-m", "alembic", "-c", str(root / "alembic.ini"), "upgrade", "head"],
                         cwd=root, env={"PATH": "/usr/bin:/bin", "TRIAGE_DATABASE_URL": url}, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    import sqlite3
    assert sqlite3.connect(tmp_path / "cli.db").execute("SELECT version_num FROM alembic_version").fetchone() == ("0002",)


def test_the_migrations_build_the_schema_the_code_uses(db_url):
    """triage/schema.py (what the code reads and writes) and migrations/ (what makes the tables)
    describe the same tables: a new table or column needs both."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from triage.db import open_engine
    from triage.schema import metadata

    with open_engine(db_url).connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
