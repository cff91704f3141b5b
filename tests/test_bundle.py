import json
import shutil

import pytest

from triage.bundle import (SCHEMA_VERSION, current_bundle, load_bundle, read_manifest, set_current,
                           verify_bundle)
from triage.encoder.hashing import HashingEncoder
from triage.errors import BundleError


@pytest.fixture
def copy(tiny_bundle, tmp_path):
    dst = tmp_path / "models" / tiny_bundle.name
    shutil.copytree(tiny_bundle, dst)
    return dst


def test_manifest_contents(tiny_bundle):
    m = read_manifest(tiny_bundle)
    assert m["schema_version"] == SCHEMA_VERSION
    assert m["bundle_version"] == tiny_bundle.name
    assert set(m["training_data"]["label_counts"]) == {"complaint_type", "severity", "emotion", "intensity"}
    assert m["training_data"]["records"] == 200 and len(m["training_data"]["sha256"]) == 64
    assert m["libraries"]["scikit-learn"] and m["libraries"]["python"]
    assert m["encoder"]["name"] == HashingEncoder().name
    for head in ("complaint_type", "severity", "emotion", "intensity"):
        assert 0 <= m["metrics"]["cross_validated"][head]["macro_f1"] <= 1
    files = set(m["files"])
    assert {"pipeline.joblib", "cases.jsonl", "cases.npy", "report.md", "lexicons/severity_cues.tsv"} <= files
    assert all(len(h) == 64 for h in m["files"].values())


def test_round_trip_predicts_same(tiny_bundle, model):
    again = load_bundle(tiny_bundle, HashingEncoder())
    text = ["快递丢了三天没人管"]
    assert again.triage(text) == model.triage(text)


def test_tampered_file_is_refused(copy):
    with (copy / "cases.jsonl").open("a", encoding="utf-8") as fh:
        fh.write("{}\n")
    with pytest.raises(BundleError) as err:
        verify_bundle(copy)
    assert err.value.code == "BUNDLE_TAMPERED" and "cases.jsonl" in err.value.message


def test_truncated_pickle_is_refused(copy):
    p = copy / "pipeline.joblib"
    p.write_bytes(p.read_bytes()[:100])
    with pytest.raises(BundleError, match="pipeline.joblib"):
        load_bundle(copy, HashingEncoder())


def test_truncated_manifest_is_refused(copy):
    m = copy / "manifest.json"
    m.write_text(m.read_text()[:50])
    with pytest.raises(BundleError) as err:
        load_bundle(copy, HashingEncoder())
    assert err.value.code == "BUNDLE_BAD_MANIFEST" and "manifest.json" in err.value.message


def test_missing_and_extra_files_are_refused(copy):
    (copy / "stray.txt").write_text("x")
    with pytest.raises(BundleError, match="stray.txt"):
        verify_bundle(copy)
    (copy / "stray.txt").unlink()
    (copy / "cases.npy").unlink()
    with pytest.raises(BundleError, match="cases.npy"):
        verify_bundle(copy)


def test_incompatible_library_version_is_refused(copy):
    m = json.loads((copy / "manifest.json").read_text())
    m["libraries"]["scikit-learn"] = "0.1.0"
    (copy / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleError) as err:
        verify_bundle(copy)
    assert err.value.code == "BUNDLE_INCOMPATIBLE" and "scikit-learn" in err.value.message


def test_unknown_schema_is_refused(copy):
    m = json.loads((copy / "manifest.json").read_text())
    m["schema_version"] = 99
    (copy / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleError, match="schema_version"):
        verify_bundle(copy)


def test_other_encoder_is_refused(copy):
    with pytest.raises(BundleError) as err:
        load_bundle(copy, HashingEncoder(dim=32))
    assert err.value.code == "BUNDLE_ENCODER"


def test_not_a_bundle(tmp_path):
    with pytest.raises(BundleError) as err:
        load_bundle(tmp_path, HashingEncoder())
    assert err.value.code == "BUNDLE_NO_MANIFEST"


def test_never_overwritten(tiny_bundle, small_corpus, test_encoder):
    from triage.bundle import save_bundle
    with pytest.raises(BundleError) as err:
        save_bundle(tiny_bundle.parent, tiny_bundle.name, features=None, heads={}, lexicons=None, cases=None,
                    config=None, encoder=test_encoder, training_data={}, metrics={}, report_md="", created_at="")
    assert err.value.code == "BUNDLE_EXISTS"


def test_current_pointer(copy):
    models = copy.parent
    assert current_bundle(models) is None
    set_current(models, copy.name)
    assert current_bundle(models) == copy
    (models / "CURRENT").write_text("../etc")
    with pytest.raises(BundleError):
        current_bundle(models)


def test_training_is_deterministic(small_corpus, test_encoder, tmp_path, tiny_bundle):
    from training.train import train_bundle
    again = train_bundle(test_encoder, [small_corpus[0]], [small_corpus[1]], tmp_path, progress=False).path
    a, b = read_manifest(tiny_bundle), read_manifest(again)
    assert a["metrics"] == b["metrics"]
    texts = ["刹车失灵", "客服态度差，没人回复"]
    assert load_bundle(again, test_encoder).triage(texts)[0]["severity"] == \
        load_bundle(tiny_bundle, test_encoder).triage(texts)[0]["severity"]


def test_an_unfitted_head_says_so():
    import numpy as np
    from triage.errors import InputError
    from triage.heads import Head
    head = Head("severity")
    assert head.name == "severity" and not hasattr(head, "classes_")      # __init__ only stores its arguments
    with pytest.raises(InputError, match="not fitted") as exc:
        head.predict_proba(np.zeros((1, 3)))
    assert exc.value.code == "HEAD_NOT_FITTED"
