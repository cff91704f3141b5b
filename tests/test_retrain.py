"""Retraining: heads without labels come from --base, a new taxonomy is just new labels,
feedback becomes records, only new texts are encoded, every bundle has its evaluation report;
promotion gate, history and rollback; reloading the served bundle without a restart."""
import json
import threading

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from training import promote as promo
from training.__main__ import main as training_main
from training.train import choose_crisis_threshold, head_weights, read_jsonl, record_weights, train_bundle
from triage.bundle import current_bundle, load_bundle, set_current
from triage.encoder.cache import EmbeddingCache
from triage.errors import DataError


def _write(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture
def new_taxonomy(small_corpus, tmp_path):
    """The small corpus relabelled with a two-class taxonomy and no other labels."""
    recs = read_jsonl([small_corpus[0]])
    out = [{"id": r["id"], "text": r["text"], "complaint_type": "车辆" if r.get("industry") == "auto" else "非车辆"}
           for r in recs]
    return _write(tmp_path / "taxonomy.jsonl", out)


def test_heads_without_labels_come_from_the_base(tiny_bundle, test_encoder, new_taxonomy, tmp_path):
    out = tmp_path / "models"
    result = train_bundle(test_encoder, [new_taxonomy], None, out, base=tiny_bundle, progress=False,
                          cache_dir=tmp_path / "cache")
    base = load_bundle(tiny_bundle, test_encoder)
    model = load_bundle(result.path, test_encoder)
    assert sorted(model.heads["complaint_type"].classes_) == ["车辆", "非车辆"]
    for head in ("severity", "emotion", "intensity"):
        assert list(model.heads[head].classes_) == list(base.heads[head].classes_)
        assert result.metrics["cross_validated"][head]["from_base"] == tiny_bundle.name
    answer = model.triage(["刹车突然失灵，差点撞车"])[0]
    assert answer["complaint_type"]["label"] in ("车辆", "非车辆") and answer["severity"]["label"] in ("一般", "重点", "危机")
    assert len(model.cases) == len(base.cases)                  # the base's knowledge base
    manifest = json.loads((result.path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["training_data"]["base"] == tiny_bundle.name
    assert result.made_current                                  # the first bundle of a folder
    base_rule = json.loads((tiny_bundle / "manifest.json").read_text(encoding="utf-8"))["config"]["severity_rule"]
    assert manifest["config"]["severity_rule"] == base_rule     # the base head keeps its operating point


def test_a_missing_head_without_base_is_a_clear_error(test_encoder, new_taxonomy, tmp_path):
    with pytest.raises(DataError) as exc:
        train_bundle(test_encoder, [new_taxonomy], None, tmp_path / "m", progress=False, cache_dir=tmp_path / "c")
    assert exc.value.code == "HEAD_NO_LABELS" and "severity" in exc.value.message and "--base" in exc.value.message


def test_bad_label_values_stop_the_run(test_encoder, tmp_path):
    data = _write(tmp_path / "bad.jsonl", [{"id": "x1", "text": "一条投诉", "complaint_type": "其他", "severity": "紧急",
                                            "emotion": "angry", "intensity": 1}])
    with pytest.raises(DataError) as exc:
        train_bundle(test_encoder, [data], [], tmp_path / "m", progress=False, cache_dir=tmp_path / "c")
    assert exc.value.code == "DATA_BAD_LABEL" and "x1" in exc.value.message and "紧急" in exc.value.message


def test_a_retrain_encodes_only_new_texts(test_encoder, small_corpus, tmp_path):
    recs = read_jsonl([small_corpus[0]])
    first = _write(tmp_path / "first.jsonl", recs[:150])
    both = _write(tmp_path / "both.jsonl", recs)
    cache = EmbeddingCache(test_encoder, tmp_path / "cache")
    train_bundle(cache, [first], [small_corpus[1]], tmp_path / "m", progress=False)
    before = cache.misses
    train_bundle(cache, [both], [small_corpus[1]], tmp_path / "m", progress=False)
    assert cache.misses - before == len(recs) - 150


def test_the_crisis_threshold_is_the_largest_meeting_the_recall_target():
    from triage.config import SeverityRule
    from triage.lexicon import Match
    y = ["危机"] * 10 + ["重点"] * 10
    p_crisis = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05] + [0.3] * 10
    proba = np.array([[1 - p, p] for p in p_crisis])
    no_cues = [[] for _ in y]
    rule = SeverityRule(target_recall=0.8)
    assert choose_crisis_threshold(y, proba, ["重点", "危机"], no_cues, rule) == 0.2      # 8 of 10 reach 0.2
    # an asserted crisis cue already catches the two lowest: the threshold can rise
    forced = [[Match("刹车失灵", 0, 4, "safety", 1.0, "asserted", "危机")]] * 2
    cues = no_cues[:8] + forced + no_cues[10:]
    assert choose_crisis_threshold(y, proba, ["重点", "危机"], cues, rule) == 0.4
    assert choose_crisis_threshold(y, proba, ["重点", "危机"], no_cues, SeverityRule(target_recall=None)) == 0.35


def test_every_bundle_has_an_evaluation_report(tiny_bundle):
    manifest = json.loads((tiny_bundle / "manifest.json").read_text(encoding="utf-8"))
    crisis = manifest["metrics"]["crisis"]
    assert 0 <= crisis["served"]["recall"] <= 1 and crisis["support"] > 0
    for head, m in manifest["metrics"]["cross_validated"].items():
        assert set(m["per_class"]) == set(m["confusion"]["labels"]) and 0 <= m["ece"] <= 1
    report = (tiny_bundle / "report.md").read_text(encoding="utf-8")
    assert report.index("危机 recall") < report.index("Cross-validated")
    assert "## severity" in report and "Confusion" in report


# ---------------------------------------------------------------- promotion gate and rollback
def _fake_eval(scores):
    """evaluate_model stand-in: scores[bundle name] -> (crisis recall, severity macro-F1)."""
    def evaluate(model, records, batch=32):
        recall, f1 = scores[model]
        return {"n": 1, "crisis": {"recall": recall, "precision": 1.0, "support": 1},
                "heads": {"severity": {"n": 1, "macro_f1": f1, "accuracy": f1, "labels": ["一般", "重点", "危机"]}}}
    return evaluate


@pytest.fixture
def three_bundles(tiny_bundle, tmp_path):
    import shutil
    models = tmp_path / "models"
    models.mkdir()
    names = []
    for n in ("a", "b", "c"):
        name = f"{tiny_bundle.name}-{n}"
        shutil.copytree(tiny_bundle, models / name)
        path = models / name / "manifest.json"          # not hashed: a copy may take its folder's name
        path.write_text(json.dumps({**json.loads(path.read_text(encoding="utf-8")), "bundle_version": name}),
                        encoding="utf-8")
        names.append(name)
    set_current(models, names[0])
    return models, names


def test_the_gate_refuses_a_crisis_recall_drop_or_a_big_f1_drop(three_bundles, monkeypatch):
    models, (a, b, c) = three_bundles
    monkeypatch.setattr(promo, "evaluate_model", _fake_eval({a: (0.90, 0.70), b: (0.88, 0.80), c: (0.90, 0.685)}))
    lines = []
    assert not promo.promote(models / b, models, lambda p: p.name, [], "eval", out=lines.append)
    assert "危机 recall drops from 0.900 to 0.880" in lines[-1]
    assert not promo.promote(models / c, models, lambda p: p.name, [], "eval", out=lines.append)
    assert "severity macro-F1 drops by 1.5 points" in lines[-1]
    assert current_bundle(models).name == a
    assert [e["action"] for e in promo.read_history(models)] == ["refused", "refused"]


def test_promote_then_rollback(three_bundles, monkeypatch):
    models, (a, b, c) = three_bundles
    monkeypatch.setattr(promo, "evaluate_model", _fake_eval({a: (0.90, 0.70), b: (0.92, 0.695), c: (0.95, 0.75)}))
    assert promo.promote(models / b, models, lambda p: p.name, [], "eval", out=lambda s: None)   # −0.5 pt is allowed
    assert promo.promote(models / c, models, lambda p: p.name, [], "eval", out=lambda s: None)
    assert current_bundle(models).name == c
    assert promo.rollback(models, out=lambda s: None) == b
    assert promo.rollback(models, out=lambda s: None) == a
    with pytest.raises(DataError) as exc:
        promo.rollback(models, out=lambda s: None)
    assert exc.value.code == "ROLLBACK_NO_HISTORY"


def test_promote_command_refuses_a_bundle_outside_the_models_folder(tiny_bundle, tmp_path, capsys):
    assert training_main(["promote", str(tiny_bundle), "--models-dir", str(tmp_path), "--eval",
                          str(tmp_path / "none.jsonl"), "--encoder", "hashing-test"]) == 2
    assert "error:" in capsys.readouterr().err


# ---------------------------------------------------------------- reload without restart
@pytest.fixture
def served(three_bundles, test_encoder, tmp_path):
    models, names = three_bundles
    settings = Settings(models_dir=models, database_url=f"sqlite:///{tmp_path / 'db.sqlite'}", encoder="hashing-test")
    from triage.keys import KeyStore
    keys = KeyStore(settings.database_url)
    tokens = {"admin": keys.create("ops", "admin"), "intake": keys.create("desk", "intake")}
    return create_app(settings, loader=lambda s: load_bundle(current_bundle(models), test_encoder)), models, names, tokens


def test_reload_swaps_the_bundle_without_failing_requests(served):
    app, models, (a, b, c), tokens = served
    auth = {"Authorization": f"Bearer {tokens['admin']}"}
    desk = {"Authorization": f"Bearer {tokens['intake']}"}
    with TestClient(app, headers=desk) as client:
        assert client.get("/v1/model").json()["model_version"] == a
        assert client.post("/v1/admin/reload", headers={"Authorization": ""}).status_code == 401
        assert client.post("/v1/admin/reload").status_code == 403
        set_current(models, b)
        errors, stop = [], threading.Event()

        def hammer():
            while not stop.is_set():
                r = client.post("/v1/triage", json={"text": "快递丢了，客服不理人"})
                if r.status_code != 200:
                    errors.append(r.status_code)
        t = threading.Thread(target=hammer)
        t.start()
        r = client.post("/v1/admin/reload", headers=auth)
        stop.set()
        t.join()
        assert r.status_code == 200, r.text
        assert {k: r.json()[k] for k in ("model_version", "previous_version", "changed")} == \
            {"model_version": b, "previous_version": a, "changed": True}
        assert errors == []
        assert client.post("/v1/triage", json={"text": "快递丢了"}).json()["model_version"] == b
        bad = client.post("/v1/admin/reload", headers=auth, json={"bundle": "no-such-bundle"})
        assert bad.status_code == 409 and bad.json()["code"] == "BUNDLE_NOT_FOUND"
        assert client.get("/v1/model").json()["model_version"] == b       # still serving b


def test_the_watcher_follows_models_current(three_bundles, test_encoder, tmp_path):
    import time
    models, (a, b, c) = three_bundles
    settings = Settings(models_dir=models, database_url=f"sqlite:///{tmp_path / 'db.sqlite'}", encoder="hashing-test",
                        watch_current_seconds=0.1)
    app = create_app(settings, loader=lambda s: load_bundle(current_bundle(models), test_encoder))
    with TestClient(app) as client:
        set_current(models, c)
        deadline = time.monotonic() + 20
        while client.get("/v1/model").json()["model_version"] != c and time.monotonic() < deadline:
            time.sleep(0.1)
        assert client.get("/v1/model").json()["model_version"] == c


def test_train_command_learns_from_feedback(tiny_bundle, tmp_path, monkeypatch, capsys):
    from triage.store import PredictionLog

    monkeypatch.setenv("TRIAGE_CACHE_DIR", str(tmp_path / "cache"))
    url = f"sqlite:///{tmp_path / 'fb.db'}"
    log = PredictionLog(url)
    texts = [f"刹车在高速上突然失灵，第{i}次差点出事" for i in range(6)] + [f"快递晚到了{i}天，问一下进度" for i in range(6)]
    ids = log.record([{"id": None}] * len(texts), texts, model_version="v0")
    for pid, text in zip(ids, texts):
        log.add_feedback(pid, {"severity": "危机" if "刹车" in text else "一般"}, "supervisor")
    out = tmp_path / "models"
    assert training_main(["train", "--feedback", "--base", str(tiny_bundle), "--database-url", url,
                          "--encoder", "hashing-test", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "12 corrections of 12 predictions; 12 usable" in printed
    manifest = json.loads((current_bundle(out) / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["training_data"]["label_counts"]["severity"] == {"一般": 6, "危机": 6}
    assert manifest["metrics"]["cross_validated"]["complaint_type"]["from_base"] == tiny_bundle.name
    # feedback alone: one kind of record, so nothing is weighted, and the source is named as it is
    assert "weighted" not in manifest["training_data"]
    assert {"path": "feedback", "records": 12} in manifest["training_data"]["files"]


def test_a_base_fitted_on_another_encoder_is_refused(tiny_bundle, new_taxonomy, tmp_path):
    from triage.encoder.hashing import HashingEncoder
    from triage.errors import BundleError

    with pytest.raises(BundleError, match="this run has") as err:
        train_bundle(HashingEncoder(dim=32), [new_taxonomy], None, tmp_path / "m", base=tiny_bundle,
                     progress=False, cache_dir=tmp_path / "c")
    assert err.value.code == "BUNDLE_ENCODER"


def test_a_few_shot_taxonomy_trains_with_prototypes_and_serves(tiny_bundle, test_encoder, small_corpus, tmp_path):
    """Eight examples per class: the trainer hands the type head the embedding block and the
    class names' vectors; whatever mix cross-validation picks, the bundle loads and answers."""
    from triage.heads import Head

    by_industry: dict[str, list[dict]] = {}
    for r in read_jsonl([small_corpus[0]]):
        by_industry.setdefault(r["industry"], []).append(r)
    shot = [{"id": r["id"], "text": r["text"], "complaint_type": f"{industry}类"}
            for industry, recs in sorted(by_industry.items()) if len(recs) >= 8 for r in recs[:8]]
    labels = sorted({r["complaint_type"] for r in shot})
    assert len(labels) >= 3 and Head.few_shot([r["complaint_type"] for r in shot])
    cache = EmbeddingCache(test_encoder, tmp_path / "cache")
    result = train_bundle(cache, [_write(tmp_path / "shot.jsonl", shot)], None, tmp_path / "m", base=tiny_bundle,
                          progress=False)
    assert cache.misses == len(shot) + len(labels)               # the texts, then the class names
    head = load_bundle(result.path, test_encoder).heads["complaint_type"]
    blend = result.metrics["cross_validated"]["complaint_type"].get("prototype_blend")
    assert (blend is None) == (head.blend_ is None)
    report = (result.path / "report.md").read_text(encoding="utf-8")
    assert ("complaint_type is few-shot" in report) == (blend is not None)
    answer = load_bundle(result.path, test_encoder).triage(["快递三天没动，客服也不回"])[0]
    assert list(head.classes_) == labels and answer["complaint_type"]["label"] in labels


def test_the_report_says_when_a_head_blends_prototypes(tiny_bundle):
    from training.train import render_report

    manifest = json.loads((tiny_bundle / "manifest.json").read_text(encoding="utf-8"))
    metrics = json.loads(json.dumps(manifest["metrics"]))
    metrics["cross_validated"]["complaint_type"]["prototype_blend"] = {"label_weight": 0.3, "linear_share": 0.4}
    text = render_report("v", manifest["training_data"], metrics)
    assert "complaint_type is few-shot: its scores blend the linear head (40%) with class prototypes (60%; " \
           "class-name share 30%)" in text
    for m in metrics["cross_validated"].values():
        m.pop("prototype_blend", None)
    assert "is few-shot" not in render_report("v", manifest["training_data"], metrics)


def test_records_beside_the_data_files_weigh_more_in_every_head(test_encoder, small_corpus, tmp_path):
    w = record_weights(3, 2, 2.0)
    assert w.tolist() == [1, 1, 1, 2, 2]
    assert np.allclose(head_weights(w, [0, 3]), [2 / 3, 4 / 3])      # a head's rows average 1
    assert head_weights(w, [0, 1]) is None                           # one kind: exactly unweighted
    assert record_weights(0, 4, 2.0).tolist() == [1] * 4 and record_weights(4, 0, 2.0).tolist() == [1] * 4
    recs = read_jsonl([small_corpus[0]])
    data = _write(tmp_path / "data.jsonl", recs[:150])
    result = train_bundle(test_encoder, [data], [small_corpus[1]], tmp_path / "m", progress=False,
                          cache_dir=tmp_path / "c", extra_records=recs[150:170], extra_source="annotations")
    manifest = json.loads((result.path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["training_data"]["weighted"] == {"records": 20, "source": "annotations", "weight": 2.0}
    assert "The 20 records from annotations weigh 2× a record of the data files" in \
        (result.path / "report.md").read_text(encoding="utf-8")
