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


def test_two_stage_dense_scan_agrees_with_the_exact_scan(segmenter, kb):
    cases, enc, _ = kb
    exact = make(segmenter, kb)
    staged = make(segmenter, kb, exact_below=0, reduced_dims=64, rerank=100)
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
