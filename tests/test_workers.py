"""Several workers that agree, and durability under kill -9, with the service running as real
processes (``python -m api``) on the tiny bundle: a case added through one worker is found
through another within 2 s, a reload is followed by every worker within 2 s, 20 DELETE/upsert
races through different workers leave the database and every index equal, and every write the
service acknowledged before a kill -9 is there after a restart."""
from __future__ import annotations

import threading
import time

import httpx
import pytest

from conftest import PgSchema, require_pg
from service import Service, bundle_copies
from triage.keys import KeyStore
from triage.store import CaseStore

TEXT = "快递显示已签收但我根本没收到包裹，客服一直推脱"
BOUND = 2.0                                  # TRIAGE_SYNC_SECONDS's default


def _until(check, timeout: float = BOUND + 1.0, every: float = 0.02) -> float:
    """Seconds until ``check()`` is true (fails after ``timeout``)."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            pytest.fail(f"not true within {timeout} s")
        time.sleep(every)
    return time.monotonic() - start


def _found(url: str, token: str, case_id: str) -> bool:
    r = httpx.post(url + "/v1/similar", json={"text": TEXT + case_id, "k": 5, "mode": "bm25",
                                              "filters": {"metadata": {"tag": case_id}}},
                   headers={"Authorization": f"Bearer {token}"}, timeout=10)
    r.raise_for_status()
    return any(h["case_id"] == case_id for h in r.json()["hits"])


@pytest.fixture
def pg_url(pg_server):
    schema = PgSchema(require_pg(pg_server))
    yield schema.url
    schema.drop()


@pytest.mark.postgres
def test_two_workers_on_postgresql_agree(pg_url, tiny_bundle, tmp_path):
    models = bundle_copies(tiny_bundle, tmp_path / "models", ["bundle-a", "bundle-b"])
    token = KeyStore(pg_url).create("ops", "admin")
    auth = {"Authorization": f"Bearer {token}"}
    one, two = (Service(pg_url, models, tmp_path / f"w{i}.log") for i in (1, 2))
    try:
        for s in (one, two):
            assert s.wait_ready()["bundle"] == "bundle-a"
        # a case added through one worker is found through the other
        r = httpx.post(one.url + "/v1/cases", json={"cases": [{"case_id": "agree-1", "text": TEXT + "agree-1",
                                                               "metadata": {"tag": "agree-1"}}]}, headers=auth)
        assert r.status_code == 200
        assert _found(one.url, token, "agree-1")                       # at once on the worker that wrote it
        seen = _until(lambda: _found(two.url, token, "agree-1"))
        assert seen <= BOUND
        # after a reload through one worker, both serve the new bundle
        r = httpx.post(one.url + "/v1/admin/reload", json={"bundle": "bundle-b"}, headers=auth, timeout=60)
        assert r.status_code == 200 and r.json()["model_version"] == "bundle-b"
        assert httpx.get(one.url + "/readyz").json()["bundle"] == "bundle-b"
        followed = _until(lambda: httpx.get(two.url + "/readyz").json()["bundle"] == "bundle-b")
        assert followed <= BOUND
        print(f"\ncase through worker 1 found through worker 2 after {seen:.3f} s; "
              f"reload followed by worker 2 after {followed:.3f} s")
        decision = httpx.get(two.url + "/readyz").json()["bundle_decision"]
        assert decision == httpx.get(one.url + "/readyz").json()["bundle_decision"] is not None
        # 20 DELETE/upsert races, each through a different worker
        ids = [f"race-{i}" for i in range(20)]
        httpx.post(one.url + "/v1/cases", json={"cases": [{"case_id": i, "text": TEXT + i, "metadata": {"tag": i}}
                                                          for i in ids]}, headers=auth, timeout=60)
        for case_id in ids:
            barrier = threading.Barrier(2)

            def delete():
                barrier.wait()
                httpx.delete(f"{one.url}/v1/cases/{case_id}", headers=auth, timeout=60)

            def upsert():
                barrier.wait()
                httpx.post(two.url + "/v1/cases", json={"cases": [{"case_id": case_id, "text": TEXT + case_id + "改",
                                                                   "metadata": {"tag": case_id}}]},
                           headers=auth, timeout=60)
            threads = [threading.Thread(target=delete), threading.Thread(target=upsert)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        store = CaseStore(pg_url, 1)
        in_db = {c for c in ids if store.get(c) is not None}
        last = store.last_seq()
        for s in (one, two):
            _until(lambda: httpx.get(s.url + "/readyz").json()["case_sequence"] == last)
            ready = httpx.get(s.url + "/readyz").json()
            assert ready["cases"] == store.count()
            assert {c for c in ids if _found(s.url, token, c)} == in_db
        print(f"20 races: {len(in_db)} cases left in the database, the same in both indexes")
    finally:
        one.stop()
        two.stop()
    _no_text_in_logs(tmp_path)


def test_the_workers_flag_runs_several_processes(db_url, tiny_bundle, tmp_path):
    service = Service(db_url, tmp_path, tmp_path / "w.log", workers=2, bundle=tiny_bundle)
    try:
        service.wait_ready()
        for _ in range(4):
            assert httpx.post(service.url + "/v1/triage", json={"text": TEXT}, timeout=30).status_code == 200
        metrics = httpx.get(service.url + "/metrics").text
        assert metrics.count("triage_case_index_size{pid=") == 2           # one series per worker
        assert "triage_predictions_total{" in metrics
    finally:
        service.stop()


def test_acknowledged_writes_survive_kill_9(db_url, tiny_bundle, tmp_path):
    """Feedback, case and triage writes run from several threads while the service is killed
    with SIGKILL; after a restart every write that had been answered 2xx is there."""
    token = KeyStore(db_url).create("ops", "admin")
    auth = {"Authorization": f"Bearer {token}"}
    service = Service(db_url, tmp_path, tmp_path / "k1.log", bundle=tiny_bundle)
    service.wait_ready()
    seeds = [httpx.post(service.url + "/v1/triage", json={"text": TEXT}, headers=auth, timeout=30).json()
             ["prediction_id"] for _ in range(3)]
    acked = {"prediction": [], "feedback": [], "case": []}
    stop = threading.Event()
    lock = threading.Lock()

    def triage_writer():
        while not stop.is_set():
            try:
                r = httpx.post(service.url + "/v1/triage", json={"text": TEXT}, headers=auth, timeout=10)
            except httpx.HTTPError:
                return
            if r.status_code == 200:
                with lock:
                    acked["prediction"].append(r.json()["prediction_id"])

    def feedback_writer():
        i = 0
        while not stop.is_set():
            i += 1
            try:
                r = httpx.post(service.url + "/v1/feedback", json={"prediction_id": seeds[i % 3],
                                                                  "corrections": {"intensity": i % 5}},
                               headers=auth, timeout=10)
            except httpx.HTTPError:
                return
            if r.status_code == 201:
                with lock:
                    acked["feedback"].append((seeds[i % 3], r.json()["feedback_id"]))

    def case_writer(prefix):
        i = 0
        while not stop.is_set():
            i += 1
            case_id = f"{prefix}-{i}"
            try:
                r = httpx.post(service.url + "/v1/cases", json={"cases": [{"case_id": case_id, "text": TEXT + case_id,
                                                                          "metadata": {"tag": case_id}}]},
                               headers=auth, timeout=10)
            except httpx.HTTPError:
                return
            if r.status_code == 200:
                with lock:
                    acked["case"].append(case_id)

    threads = [threading.Thread(target=f, args=a) for f, a in
               ((triage_writer, ()), (feedback_writer, ()), (case_writer, ("ka",)), (case_writer, ("kb",)))]
    for t in threads:
        t.start()
    time.sleep(3)
    service.kill()                                       # in the middle of the writes
    stop.set()
    for t in threads:
        t.join(30)
    assert all(acked.values()), {k: len(v) for k, v in acked.items()}
    print(f"\nacknowledged before kill -9: {({k: len(v) for k, v in acked.items()})}")
    again = Service(db_url, tmp_path, tmp_path / "k2.log", bundle=tiny_bundle)
    try:
        again.wait_ready()
        with httpx.Client(base_url=again.url, headers=auth, timeout=30) as c:
            for pid in acked["prediction"]:
                assert c.get(f"/v1/predictions/{pid}").status_code == 200, pid
            stored = {f["feedback_id"] for pid in seeds for f in c.get(f"/v1/predictions/{pid}").json()["feedback"]}
            assert {fid for _, fid in acked["feedback"]} <= stored
            for case_id in acked["case"]:
                assert c.get(f"/v1/cases/{case_id}").status_code == 200, case_id
            for case_id in acked["case"][-3:]:
                assert _found(again.url, token, case_id)
    finally:
        again.stop()
    _no_text_in_logs(tmp_path)


def _no_text_in_logs(folder) -> None:
    """The services' logs of the whole run hold no complaint text (and they did log)."""
    logs = "".join(p.read_text(encoding="utf-8", errors="replace") for p in folder.glob("*.log"))
    assert '"logger": "api.access"' in logs
    assert TEXT not in logs and TEXT[:6] not in logs
