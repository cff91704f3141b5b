"""Few-shot heads fine-tune their own copy of the encoder: the loss, the trainer's choice, the
bundle's weights file, serving with a second encode, carrying it over a retrain, refusals."""
import json

import numpy as np
import pytest

from training.finetune import supervised_contrastive_loss
from training.train import read_jsonl, train_bundle
from triage.config import FineTuneParams, TrainConfig
from triage.errors import BundleError, EncoderError


def _write(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def test_the_contrastive_loss_rewards_classes_that_cluster():
    torch = pytest.importorskip("torch")
    y = torch.tensor([0, 0, 1, 1])
    clustered = torch.nn.functional.normalize(torch.tensor([[1.0, 0.1], [1.0, -0.1], [0.1, 1.0], [-0.1, 1.0]]), dim=1)
    mixed = clustered[[0, 2, 1, 3]]
    good, bad = (float(supervised_contrastive_loss(z, y, 0.1)) for z in (clustered, mixed))
    assert np.isfinite(good) and good < bad
    assert supervised_contrastive_loss(clustered, torch.tensor([0, 1, 2, 3]), 0.1) is None   # no pairs


def test_fine_tuning_settings_are_validated():
    with pytest.raises(ValueError):
        FineTuneParams(max_steps=0)
    with pytest.raises(ValueError):
        FineTuneParams(views=0)                       # at least the batch itself
    with pytest.raises(ValueError):
        FineTuneParams(shuffle=True)                  # unknown settings are refused
    assert TrainConfig().fine_tune.heads == ["complaint_type"] and TrainConfig().fine_tune.views == 2


def test_missing_weights_are_a_clear_error(tmp_path):
    from triage.encoder.finetuned import FineTunedEncoder

    with pytest.raises(EncoderError) as err:
        FineTunedEncoder(tmp_path / "nope.safetensors")
    assert err.value.code == "ENCODER_FT_MISSING" and "nope.safetensors" in err.value.message


def test_an_encoder_that_cannot_be_fine_tuned_keeps_frozen_embeddings(test_encoder, small_corpus, tmp_path, capsys):
    from triage.encoder.finetuned import fine_tunable

    assert fine_tunable(test_encoder) is None
    result = train_bundle(test_encoder, [small_corpus[0]], [small_corpus[1]], tmp_path / "m", progress=True,
                          cache_dir=tmp_path / "c")
    assert "complaint_type: few-shot; the encoder hashing-test" in capsys.readouterr().err
    manifest = json.loads((result.path / "manifest.json").read_text(encoding="utf-8"))
    assert "head_encoders" not in manifest and not (result.path / "encoders").exists()


@pytest.mark.slow
def test_a_few_shot_head_serves_with_its_fine_tuned_encoder(e5_encoder, small_corpus, tmp_path):
    """The small corpus has ~18 texts per complaint type: few-shot, so the type head gets its own
    fine-tuned encoder (two short steps here), stored in the bundle and used when serving."""
    from training.finetune import fine_tune_encoder
    from triage.bundle import load_bundle, load_head_encoders
    from triage.encoder.cache import EmbeddingCache
    from triage.encoder.hashing import HashingEncoder

    config = TrainConfig(fine_tune=FineTuneParams(max_steps=2, batch_size=16, max_tokens=32))
    cache = EmbeddingCache(e5_encoder, tmp_path / "cache")
    result = train_bundle(cache, [small_corpus[0]], [small_corpus[1]], tmp_path / "m", config=config, progress=False)
    manifest = json.loads((result.path / "manifest.json").read_text(encoding="utf-8"))
    entry = manifest["head_encoders"]["complaint_type"]
    assert entry["steps"] == 2 and entry["params"]["views"] == 2 and entry["file"] in manifest["files"] and list(manifest["head_encoders"]) == [
        "complaint_type"]
    assert "complaint_type reads its own copy of the encoder" in (result.path / "report.md").read_text(encoding="utf-8")

    model = load_bundle(result.path, e5_encoder)
    own = model.head_encoders["complaint_type"]
    texts = ["刹车突然失灵，差点撞上前车", "快递三天没动，客服也不回"]
    base_vec, own_vec = e5_encoder.encode(texts), own.encode(texts)
    assert np.allclose(np.linalg.norm(own_vec, axis=1), 1, atol=1e-5)
    assert (np.sum(base_vec * own_vec, axis=1) < 0.9999).all()          # fine-tuning moved the vectors
    # the type head reads the fine-tuned embedding; the other heads the shared one
    fb, head = model.features["complaint_type"], model.heads["complaint_type"]
    signals = model.lexicons.signals(model.read(texts))
    served = model.predict_proba(texts)
    assert np.allclose(served["complaint_type"][1], head.predict_proba(fb.transform(texts, own_vec, signals)))
    assert np.allclose(served["severity"][1], model.heads["severity"].predict_proba(
        model.features["severity"].transform(texts, base_vec, signals)))
    assert model.triage(texts)[0]["complaint_type"]["label"] in head.classes_

    # a retrain that labels only severity takes the type head, and its encoder, from the base
    sev = [{"id": r["id"], "text": r["text"], "severity": r["severity"]} for r in read_jsonl([small_corpus[0]])]
    again = train_bundle(cache, [_write(tmp_path / "sev.jsonl", sev)], None, tmp_path / "m", base=result.path,
                         config=config, progress=False)
    m2 = json.loads((again.path / "manifest.json").read_text(encoding="utf-8"))
    assert m2["files"][entry["file"]] == manifest["files"][entry["file"]]
    assert m2["head_encoders"]["complaint_type"]["from_base"] == result.path.name
    assert load_bundle(again.path, e5_encoder).head_encoders["complaint_type"].name == own.name

    with pytest.raises(BundleError) as err:               # a service on another encoder cannot host it
        load_head_encoders(result.path, manifest, HashingEncoder())
    assert err.value.code == "BUNDLE_ENCODER"

    # deterministic under the seed
    shot = read_jsonl([small_corpus[0]])[::8]           # 25 texts, several types
    files = []
    for n in (1, 2):
        files.append(tmp_path / f"w{n}.safetensors")
        fine_tune_encoder(e5_encoder.model_dir, [r["text"] for r in shot], [r["complaint_type"] for r in shot],
                          config.fine_tune, 7, files[-1])
    assert files[0].read_bytes() == files[1].read_bytes()
