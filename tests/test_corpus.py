"""The project's own corpora: schema, label minimums, no shared sentence skeletons."""
import json

from triage.vocab import DEFAULT_TYPES, GRADES
from pathlib import Path

from training import corpus_check

ROOT = Path(__file__).resolve().parents[1]


def test_labelled_corpus_is_valid_and_meets_minimums():
    files = sorted((ROOT / "corpora" / "complaints").glob("*.jsonl"))
    problems = corpus_check.check(files)
    assert problems == []


def test_records_kept_aside_are_valid_and_copy_nothing():
    files = sorted((ROOT / "corpora" / "complaints").glob("*.jsonl"))
    aside = sorted((ROOT / "corpora" / "complaints_aside").glob("*.jsonl"))
    assert len(aside) == 4
    assert corpus_check.check(files + aside) == []          # valid, and no near-copies across both


def test_near_duplicate_detector_catches_a_slot_substitution():
    skeleton = "上个月在贵店买的{}用了不到三天就彻底坏了，联系客服一直推脱说要等厂家检测，我要求全额退货并赔偿来回路费"
    recs = [{"id": "a", "text": skeleton.format("空调")},
            {"id": "b", "text": skeleton.format("冰箱")},
            {"id": "c", "text": "快递员把包裹扔在门口，下雨全湿了"}]
    assert [(a, b) for a, b, _ in corpus_check.near_duplicates(recs)] == [("a", "b")]


def test_knowledge_base_cases():
    cases = [json.loads(line) for f in sorted((ROOT / "corpora" / "kb").glob("*.jsonl"))
             for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(cases) >= 300
    assert len({c["case_id"] for c in cases}) == len(cases)
    for c in cases:
        assert c["complaint_type"] in DEFAULT_TYPES and c["severity"] in GRADES
        assert c["outcome"] in ("satisfied", "not_satisfied", "complained_again")
        assert c["text"] and c["resolution"] and c["response"] and c.get("finding")
    assert {c["complaint_type"] for c in cases} == set(DEFAULT_TYPES)
    assert {c["severity"] for c in cases} == set(GRADES)
    for c in cases:
        c["id"] = c["case_id"]
    assert corpus_check.near_duplicates(cases) == []


def test_dictionary_and_lexicons_are_well_formed():
    lines = [ln.split() for ln in (ROOT / "corpora" / "dict" / "domain_dict.txt").read_text(encoding="utf-8").splitlines()
             if ln.strip()]
    assert len(lines) >= 500 and all(len(p) == 3 and p[1].isdigit() for p in lines)
    assert len({p[0] for p in lines}) == len(lines)
    from triage.lexicon import Lexicons
    lex = Lexicons()
    assert len(lex.cues) >= 200 and len(lex.emotion) >= 300 and lex.degree and lex.negators and lex.hypothetical
