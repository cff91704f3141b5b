import pytest

from triage.errors import InputError
from triage.vocab import EMOTIONS, GRADES


class CountingEncoder:
    def __init__(self, inner):
        self.inner, self.calls = inner, []
        self.name, self.dim = inner.name, inner.dim

    def encode(self, texts, kind="query"):
        self.calls.append((len(texts), kind))
        return self.inner.encode(texts, kind)


def test_answer_has_the_promised_shape(model):
    r = model.triage(["刹车突然失灵，差点撞上前车，4S店说检测不出问题"], ["T-1"])[0]
    assert r["id"] == "T-1"
    assert set(r) >= {"complaint_type", "type_candidates", "severity", "emotion", "intensity",
                      "similar_cases", "evidence", "needs_review", "model_version"}
    assert len(r["type_candidates"]) == 3 and r["type_candidates"][0] == r["complaint_type"]
    assert r["severity"]["label"] in GRADES and set(r["severity"]["scores"]) == set(GRADES)
    assert abs(sum(r["severity"]["scores"].values()) - 1) < 1e-3
    assert r["emotion"]["label"] in EMOTIONS and set(r["emotion"]["scores"]) == set(EMOTIONS)
    assert 0 <= r["intensity"]["score"] <= 1 and r["intensity"]["level"] in range(5)
    assert isinstance(r["needs_review"], bool) and r["model_version"] == model.version


def test_strong_crisis_cue_gives_crisis_even_with_a_weak_model(model):
    r = model.triage(["刹车突然失灵，差点撞上前车，4S店说检测不出问题"])[0]
    assert r["severity"]["label"] == "危机"
    assert any(e["signal"] == "safety" for e in r["evidence"]["severity"])


def test_evidence_offsets_point_into_the_original_text(model):
    text = "ＡＢＣ先生反映：刹车失灵了！客服态度极差，我非常失望😡"
    r = model.triage([text])[0]
    for items in r["evidence"].values():
        for e in items:
            assert text[e["start"]:e["end"]] == e["text"]


def test_one_encode_per_batch(model):
    counting = CountingEncoder(model.encoder)
    model.encoder = counting
    out = model.triage(["快递丢了", "催收打电话给我父母", "刹车失灵"])
    assert len(out) == 3 and counting.calls == [(3, "query")]


def test_results_keep_input_order(model):
    texts = ["快递丢了", "刹车突然失灵，差点撞上前车", "催收打电话骚扰我的同事"]
    batch = model.triage(texts, ["a", "b", "c"])
    assert [r["id"] for r in batch] == ["a", "b", "c"]
    for t, r in zip(texts, batch):
        single = model.triage([t])[0]
        assert single["severity"]["scores"] == pytest.approx(r["severity"]["scores"], abs=1e-4)


@pytest.mark.parametrize("texts, code", [([""], "TEXT_EMPTY"), (["  "], "TEXT_EMPTY"), ([3], "TEXT_NOT_STRING"),
                                         (["长" * 6000], "TEXT_TOO_LONG")])
def test_bad_input_raises_with_code(model, texts, code):
    with pytest.raises(InputError) as err:
        model.triage(texts)
    assert err.value.code == code


def test_a_bare_string_is_refused(model):
    with pytest.raises(InputError):
        model.triage("刹车失灵")


def test_similar_cases_carry_resolutions_and_a_reply_draft(model):
    case, _ = model.cases.snapshot()
    target = case[0]
    r = model.triage([target["text"]], contexts=[{"customer_name": "王女士"}])[0]
    top = r["similar_cases"][0]
    assert top["case_id"] == target["case_id"] and top["resolution"] == target["resolution"]
    assert top["dense_score"] >= model.config.similar_min_score and top["matched"]["terms"]
    draft = r["suggested_response"]
    assert draft["available"] and draft["based_on"][0] in {h["case_id"] for h in r["similar_cases"]}
    assert "{customer_name}" not in draft["draft"]


def test_nothing_similar_says_so(model):
    r = model.triage(["zzzz qqqq 1234"])[0]
    assert r["similar_cases"] == [] and r["suggested_response"]["available"] is False


def test_calibration_uses_only_the_representative_rows():
    """Rows picked because a model was unsure of them (here: label noise) train the head but do
    not soften every answer's confidence: the temperature comes from the other rows."""
    import numpy as np

    from triage.errors import InputError
    from triage.heads import Head

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 5))
    y = np.where(X[:, 0] > 0, "a", "b")
    noisy = np.arange(400) >= 300
    y[noisy] = rng.choice(["a", "b"], size=100)               # the hard, "uncertain" rows
    everything = Head("t", seed=1).fit(X, y)
    representative = Head("t", seed=1).fit(X, y, calibration=~noisy)
    assert representative.cv_metrics_["calibration_rows"] == 300
    assert representative.temperature_ < everything.temperature_   # sharper on ordinary rows
    with pytest.raises(InputError, match="calibration mask"):
        Head("t").fit(X, y, calibration=[True] * 10)


def test_sample_weights_decide_between_conflicting_labels():
    """Two sources label the same kind of text differently; the weighted one wins, in the
    out-of-fold predictions and in the final model. Bad weights are refused by name."""
    import numpy as np

    from triage.errors import InputError
    from triage.heads import Head

    rng = np.random.default_rng(3)
    X = np.column_stack([rng.normal(size=(300, 3)), (np.arange(300) >= 200).astype(float)])
    y = np.where(X[:, 0] > 0, "a", "b")
    y[200:] = np.where(np.arange(100) % 2 == 0, "a", "b")  # the disputed rows (x3 = 1): half say "b"…
    says_b = (np.arange(300) >= 200) & (y == "b")
    w = np.where(says_b, 5.0, 1.0)                         # …and those are the trusted ones
    probe = np.column_stack([rng.normal(scale=0.1, size=(50, 3)), np.ones(50)])
    share_b = lambda h: float((h.classes_[h.predict_proba(probe).argmax(axis=1)] == "b").mean())
    plain, weighted = Head("t", seed=1).fit(X, y), Head("t", seed=1).fit(X, y, sample_weight=w)
    assert share_b(plain) < 0.5 < share_b(weighted)
    assert weighted.cv_metrics_["n"] == 300                # metrics still count each row once
    for bad in ([1.0] * 10, np.where(says_b, 0.0, 1.0), np.full(300, np.nan)):
        with pytest.raises(InputError, match="sample_weight must be 300 positive finite numbers"):
            Head("t").fit(X, y, sample_weight=bad)


def _few_shot_problem(seed: int, per_class: int, n_classes: int = 8, dim: int = 16, n_lex: int = 300):
    """Classes are directions in an embedding block; the lexical block is noise a linear model
    can overfit, and the class names' embeddings point exactly at the classes."""
    import numpy as np
    import scipy.sparse as sp

    centres = np.linalg.qr(np.random.default_rng(100).normal(size=(dim, dim)))[0][:n_classes]
    rng = np.random.default_rng(seed)
    y_idx = np.repeat(np.arange(n_classes), per_class)
    emb = centres[y_idx] + rng.normal(scale=0.35, size=(len(y_idx), dim))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    lexical = sp.random(len(y_idx), n_lex, density=0.05, random_state=seed, format="csr") * 3
    X = sp.hstack([lexical, sp.csr_matrix(emb * 2.0)], format="csr")
    names = {f"c{k}": centres[k] for k in range(n_classes)}
    return X, np.array([f"c{k}" for k in y_idx]), names


def test_a_few_shot_head_blends_in_class_prototypes():
    import pickle

    import numpy as np

    from triage.config import HeadParams
    from triage.heads import DenseBlock, Head

    X, y, names = _few_shot_problem(0, per_class=8)
    dense = DenseBlock(300, 316, 2.0, names)
    assert Head.few_shot(y) and not Head.few_shot(y, HeadParams(few_shot_median=4))
    head = Head("t", seed=1).fit(X, y, dense=dense)
    blend = head.cv_metrics_["prototype_blend"]
    assert blend["label_weight"] > 0 and blend["linear_share"] < 1
    linear = Head("t", seed=1).fit(X, y)                     # no embedding block given: linear only
    assert linear.blend_ is None and "prototype_blend" not in linear.cv_metrics_
    assert head.cv_metrics_["macro_f1"] > linear.cv_metrics_["macro_f1"]
    X_new, y_new, _ = _few_shot_problem(1, per_class=20)     # the same classes, new examples
    X_new = X_new[:, :316]
    p = head.predict_proba(X_new)
    assert p.shape == (160, 8) and np.allclose(p.sum(axis=1), 1)
    acc = lambda h: float((h.classes_[h.predict_proba(X_new).argmax(axis=1)] == y_new).mean())
    assert acc(head) > acc(linear) and acc(head) > 0.8
    again = pickle.loads(pickle.dumps(head))                 # what a bundle stores
    assert np.allclose(again.predict_proba(X_new), p)


def test_a_head_with_many_examples_per_class_stays_linear():
    from triage.heads import DenseBlock, Head

    X, y, names = _few_shot_problem(0, per_class=80)
    head = Head("t", seed=1).fit(X, y, dense=DenseBlock(300, 316, 2.0, names))
    assert not Head.few_shot(y) and head.blend_ is None


@pytest.mark.parametrize("text", ["外卖骑手两个小时都没送到，打电话也不接！！退款231元到现在没到账",
                                  "刹车突然失灵，差点撞上前车，4S店说检测不出问题。。。"])
def test_type_evidence_is_whole_words_never_punctuation_or_bare_digits(model, text):
    [r] = model.triage([text])
    doc = model.read([text])[0]
    bounds = {s for _, s, _ in doc.tokens} | {e for _, _, e in doc.tokens}
    for ev in r["evidence"]["complaint_type"]:
        assert ev["signal"] == "type_phrase" and len(ev["text"]) >= 2
        assert ev["start"] in bounds and ev["end"] in bounds                 # whole jieba words
        assert any(ch.isalpha() for ch in ev["text"]), ev                    # not punctuation or digits alone
        assert text[ev["start"]:ev["end"]] == ev["text"]
