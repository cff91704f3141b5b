import json
from pathlib import Path

import numpy as np
import pytest

from triage.encoder.hashing import HashingEncoder
from triage.retrieval import Filters, HybridIndex, RetrievalParams
from triage.segment import Segmenter

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def kb():
    cases = [json.loads(line) for f in sorted((ROOT / "corpora" / "kb").glob("*.jsonl"))
             for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
    enc = HashingEncoder()
    return cases, enc, enc.encode([c["text"] for c in cases], "passage")


@pytest.fixture(scope="module")
def segmenter():
    return Segmenter()


def make(segmenter, kb, **params):
    cases, enc, emb = kb
    index = HybridIndex(segmenter, enc.dim, RetrievalParams(**{"min_similarity": 0.0, **params}))
    index.upsert(cases, emb)
    return index


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_a_case_finds_itself(segmenter, kb, mode):
    cases, enc, _ = kb
    index = make(segmenter, kb)
    for case in cases[:20]:
        hits = index.search(case["text"], enc.encode([case["text"]])[0], 3, mode=mode)
        assert hits[0]["case_id"] == case["case_id"], mode


def test_ann_dense_scan_agrees_with_the_exact_scan(segmenter, kb):
    cases, enc, _ = kb
    exact = make(segmenter, kb)
    staged = make(segmenter, kb, exact_below=0, ann_candidates=20)
    agree = 0
    for case in cases[:30]:
        v = enc.encode([case["text"][:20]])[0]
        a = [h["case_id"] for h in exact.search(case["text"][:20], v, 5, mode="dense")]
        b = [h["case_id"] for h in staged.search(case["text"][:20], v, 5, mode="dense")]
        agree += a[0] == b[0]
    assert agree >= 27


def test_bm25_prefers_more_and_rarer_matching_terms(segmenter):
    enc = HashingEncoder()
    cases = [{"case_id": "a", "text": "刹车失灵 差点撞车"}, {"case_id": "b", "text": "刹车 很软"},
             {"case_id": "c", "text": "快递丢件"}, {"case_id": "d", "text": "快递延误 刹车"}]
    index = HybridIndex(segmenter, enc.dim, RetrievalParams(min_similarity=-1))
    index.upsert(cases, enc.encode([c["text"] for c in cases]))
    hits = index.search("刹车失灵", enc.encode(["刹车失灵"])[0], 4, mode="bm25")
    assert [h["case_id"] for h in hits] == ["a"]                 # 刹车失灵 is one dictionary word
    hits = index.search("刹车", enc.encode(["刹车"])[0], 4, mode="bm25")
    assert [h["case_id"] for h in hits] == ["b", "d"]            # the shorter case scores higher
    assert hits[0]["bm25_score"] > hits[1]["bm25_score"] > 0


def test_bm25_query_terms_weigh_by_domain_dictionary_and_repetition():
    enc = HashingEncoder()
    seg = Segmenter(user_dict=None, dict_text="刹车失灵 10 n\n")
    cases = [{"case_id": "x", "text": "刹车失灵 今天"}, {"case_id": "y", "text": "异响 今天"},
             {"case_id": "z", "text": "快递 丢件"}]

    def scores(query, **params):
        index = HybridIndex(seg, enc.dim, RetrievalParams(min_similarity=-1, **params))
        index.upsert(cases, enc.encode([c["text"] for c in cases]))
        hits = index.search(query, enc.encode([query])[0], 3, mode="bm25")
        return {h["case_id"]: h["bm25_score"] for h in hits}

    plain = scores("刹车失灵 异响", bm25_domain_weight=1.0)
    assert plain["x"] == plain["y"] > 0 and "z" not in plain
    domain = scores("刹车失灵 异响", bm25_domain_weight=2.0)
    assert domain["x"] == pytest.approx(2 * domain["y"], rel=1e-3) and domain["y"] == plain["y"]
    repeated = scores("异响 异响 刹车失灵", bm25_domain_weight=1.0, bm25_query_tf=1.0)
    assert repeated["y"] == pytest.approx(2 * repeated["x"], rel=1e-3)
    once = scores("异响 异响 刹车失灵", bm25_domain_weight=1.0, bm25_query_tf=0.0)
    assert once["y"] == once["x"]
    assert seg.words == frozenset({"刹车失灵"})


def test_filters_updates_and_deletes(segmenter, kb):
    cases, enc, _ = kb
    index = make(segmenter, kb)
    target = next(c for c in cases if c["severity"] == "危机")
    v = enc.encode([target["text"]])[0]
    assert all(h["severity"] == "一般" for h in index.search(target["text"], v, 10, Filters(severity="一般")))
    index.upsert([{**target, "resolution": "新的处理结果"}], enc.encode([target["text"]], "passage"))
    assert index.search(target["text"], v, 1)[0]["resolution"] == "新的处理结果"
    assert index.remove(target["case_id"]) and not index.remove(target["case_id"])
    assert target["case_id"] not in [h["case_id"] for h in index.search(target["text"], v, 10)]
    assert len(index) == len(cases) - 1


def test_relevance_floor_means_nothing_rather_than_noise(segmenter, kb):
    _, enc, _ = kb
    index = make(segmenter, kb, min_similarity=0.99)
    assert index.search("完全无关的一句话", enc.encode(["完全无关的一句话"])[0], 5) == []


def test_mismatched_embeddings_are_refused(segmenter):
    from triage.errors import InputError
    index = HybridIndex(segmenter, 8)
    with pytest.raises(InputError):
        index.upsert([{"case_id": "a", "text": "x"}], np.zeros((2, 8), np.float32))


def test_a_case_whose_neighbours_also_match_outranks_an_isolated_one(segmenter):
    """Neighbourhood smoothing: ``a`` and ``b`` match the query equally in words and in meaning,
    but only ``b``'s nearest cases (n1, n2) are on topic; ``a``'s (g1, g2) are not."""
    v = {"a": [0.8, 0.6, 0, 0], "b": [0.8, 0, 0.6, 0], "g1": [0.3, 0.954, 0, 0], "g2": [0.3, 0.9, 0, 0.316],
         "n1": [0.75, 0, 0.5, 0.433], "n2": [0.75, 0, 0.5, -0.433]}
    texts = {"a": "刹车失灵 一", "b": "刹车失灵 二", "g1": "快递 丢件", "g2": "快递 延误", "n1": "刹车 异响", "n2": "刹车 发软"}
    cases = [{"case_id": k, "text": texts[k]} for k in v]
    emb = np.array([v[k] for k in v], dtype=np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    query = np.array([1, 0, 0, 0], dtype=np.float32)

    def ranking(**params):
        index = HybridIndex(segmenter, 4, RetrievalParams(min_similarity=-1, **params))
        index.upsert(cases, emb)
        return [h["case_id"] for h in index.search("刹车失灵", query, 6)]

    assert ranking(smooth_neighbours=0)[:2] == ["a", "b"]      # a tie on both channels: insertion order
    smoothed = ranking(smooth_neighbours=2)
    assert smoothed[0] == "b" and smoothed.index("a") > smoothed.index("n1")   # the on-topic group first
    assert ranking(smooth_neighbours=2, smooth_weight=0)[:2] == ["a", "b"]


def test_smoothed_scores_stay_between_0_and_1_and_copies_are_not_corroboration(segmenter):
    enc = HashingEncoder()
    texts = ["刹车失灵 差点撞车", "刹车失灵 差点撞车。", "刹车 很软", "快递丢件", "快递延误 刹车"]
    cases = [{"case_id": f"c{i}", "text": t} for i, t in enumerate(texts)]
    emb = enc.encode(texts)
    emb[1] = emb[0]                                   # c1 is a copy of c0
    index = HybridIndex(segmenter, enc.dim, RetrievalParams(min_similarity=-1, smooth_neighbours=4))
    index.upsert(cases, emb)
    hits = index.search("刹车失灵", enc.encode(["刹车失灵"])[0], 5)
    assert all(0 <= h["score"] <= 1 for h in hits)
    ids = [h["case_id"] for h in hits]
    assert "c0" in ids and "c1" not in ids               # the copy is folded into c0
    copy_free = index._linear_fusion([0, 2, 3, 4], enc.encode(["刹车失灵"])[0], index._bm25_scores(["刹车失灵"]))
    with_copy = index._linear_fusion([0, 1, 2, 3, 4], enc.encode(["刹车失灵"])[0], index._bm25_scores(["刹车失灵"]))
    assert with_copy[0] == pytest.approx(copy_free[0])   # the copy is not among c0's neighbours


def test_cases_of_the_type_the_best_candidates_share_rank_first(segmenter):
    """Type agreement: ``x``, ``y`` and ``u`` tie on both channels, but most of the best
    candidates (m1, m2) are of ``y``'s complaint type; the untyped ``u`` gets the average
    agreement, between the two."""
    v = {"x": [0.8, 0.6, 0, 0, 0, 0], "y": [0.8, 0, 0.6, 0, 0, 0], "u": [0.8, 0, 0, 0.6, 0, 0],
         "m1": [0.9, 0, 0, 0, 0.436, 0], "m2": [0.9, 0, 0, 0, 0, 0.436], "m3": [0.9, 0, 0, 0, 0.308, -0.308]}
    types = {"x": "虚假宣传", "y": "产品质量", "m1": "产品质量", "m2": "产品质量", "m3": "虚假宣传"}
    texts = {"x": "刹车失灵 甲", "y": "刹车失灵 乙", "u": "刹车失灵 丙",
             "m1": "刹车失灵 丁", "m2": "刹车失灵 戊", "m3": "刹车失灵 己"}
    cases = [{"case_id": k, "text": texts[k], **({"complaint_type": types[k]} if k in types else {})} for k in v]
    emb = np.array([v[k] for k in v], dtype=np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    query = np.array([1, 0, 0, 0, 0, 0], dtype=np.float32)

    def ranking(**params):
        index = HybridIndex(segmenter, 6, RetrievalParams(min_similarity=-1, smooth_neighbours=0, **params))
        index.upsert(cases, emb)
        hits = index.search("刹车失灵", query, 6)
        assert all(0 <= h["score"] <= 1 for h in hits) and {h["case_id"] for h in hits[:3]} == {"m1", "m2", "m3"}
        return {h["case_id"]: h["score"] for h in hits[3:]}

    for off in (ranking(type_top=0), ranking(type_top=3, type_weight=0)):
        assert off["x"] == off["y"] == off["u"]                     # a three-way tie on both channels
    on = ranking(type_top=3, type_weight=0.2)                        # two of the best three are 产品质量
    assert on["y"] > on["u"] > on["x"]


def test_type_agreement_shares(segmenter):
    index = HybridIndex(segmenter, 2, RetrievalParams(type_top=3))
    index.upsert([{"case_id": c, "text": c, **({"complaint_type": t} if t else {})}
                  for c, t in (("a", "甲"), ("b", "乙"), ("c", ""), ("d", "甲"))], np.eye(2, dtype=np.float32)[[0, 1, 0, 1]])
    agree = index._type_agreement(np.arange(4), np.array([0.5, 0.3, 0.2, 0.1]))
    # the best three are a (甲, 0.5), b (乙, 0.3), c (untyped, left out): shares 甲 0.625, 乙 0.375
    assert agree == pytest.approx([0.625, 0.375, 0.625 ** 2 + 0.375 ** 2, 0.625])
    assert not index._type_agreement(np.array([2]), np.array([1.0])).any()   # no typed case: no signal


def test_ann_graph_follows_upserts_and_deletes():
    """Past exact_below the graph answers the dense side: a new case is found at once, a changed
    vector moves its case, a deleted case is gone, and a filter still sees only its rows."""
    rng = np.random.default_rng(3)
    vecs = rng.normal(size=(400, 32)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    cases = [{"case_id": f"c{i}", "text": f"案例{i}", "industry": "auto" if i % 4 else "bank"} for i in range(400)]
    index = HybridIndex(Segmenter(), 32, RetrievalParams(exact_below=100, ann_candidates=20, candidates=10,
                                                         min_similarity=-1))
    index.upsert(cases[:300], vecs[:300])
    assert index._ann is not None and len(index._ann) == 300

    def nearest(v, **kw):
        return index.search("", v, 1, mode="dense", **kw)[0]["case_id"]

    assert [nearest(vecs[i]) for i in range(0, 300, 7)] == [f"c{i}" for i in range(0, 300, 7)]
    index.upsert(cases[300:], vecs[300:])                        # added past the threshold
    assert len(index._ann) == 400 and nearest(vecs[350]) == "c350"
    index.upsert([cases[5]], vecs[390:391])                        # c5 now sits where c390 is
    top = index.search("", vecs[390], 2, mode="dense")[0]           # the same vector: one hit, one duplicate
    assert {top["case_id"], *top["duplicates"]} == {"c5", "c390"}
    assert nearest(vecs[5]) != "c5"
    assert index.remove("c390") and len(index._ann) == 399
    assert nearest(vecs[390]) == "c5"
    bank = Filters(industry="bank")                                 # every fourth case: a narrow filter
    hits = index.search("", vecs[1], 5, mode="dense", filters=bank)
    assert hits and all(h["industry"] == "bank" for h in hits)
    live = [c for c in cases if c["case_id"] != "c390"]
    live_vecs = np.delete(vecs, 390, axis=0)
    for _ in range(3):                                              # every case changed three times
        index.upsert(live, live_vecs)
    assert len(index._ann) == 399 and not index._ann.worn()        # rebuilt when retired nodes outnumbered live ones
    assert nearest(vecs[77]) == "c77"
