"""Validate the project's labelled-complaint corpus.

Checks every record against ``corpora/SCHEMA.md``, the label minimums, and that no two
records are near copies (character 5-gram Jaccard similarity above a threshold).
"""
from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Iterable

from triage.vocab import DEFAULT_TYPES, EMOTIONS, GRADES

INDUSTRIES = ("ecommerce", "food_delivery", "logistics", "telecom", "banking", "insurance",
              "auto", "appliance", "travel", "education", "utilities", "property",
              "healthcare", "government", "food")
CHANNELS = ("phone", "wechat", "email", "app", "ticket_12315", "ticket_12345", "weibo")
REQUIRED = ("id", "text", "complaint_type", "severity", "emotion", "intensity", "industry", "channel")

MINIMUMS = {"records": 1200, "per_type": 80, "危机": 150, "重点": 300,
            "per_emotion": 40, "per_intensity": 40}


def load_records(paths: Iterable[Path]) -> tuple[list[dict], list[str]]:
    """Read JSONL files; return (records, problems). Each record gets ``_where`` = file:line."""
    records: list[dict] = []
    problems: list[str] = []
    for path in paths:
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            where = f"{path.name}:{lineno}"
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(f"{where}: invalid JSON ({exc.msg})")
                continue
            if not isinstance(rec, dict):
                problems.append(f"{where}: expected a JSON object, got {type(rec).__name__}")
                continue
            rec["_where"] = where
            records.append(rec)
    return records, problems


def validate_record(rec: dict) -> list[str]:
    where = rec.get("_where", "?")
    out = [f"{where}: missing field {f!r}" for f in REQUIRED if f not in rec]
    if out:
        return out
    text = rec["text"]
    if not isinstance(text, str) or not (10 <= len(text) <= 800):
        out.append(f"{where}: text must be a string of 10–800 characters, got length "
                   f"{len(text) if isinstance(text, str) else type(text).__name__}")
    for field, allowed in (("complaint_type", DEFAULT_TYPES), ("severity", GRADES),
                           ("emotion", EMOTIONS), ("industry", INDUSTRIES), ("channel", CHANNELS)):
        if rec[field] not in allowed:
            out.append(f"{where}: {field} must be one of {allowed}, got {rec[field]!r}")
    if not isinstance(rec["intensity"], int) or isinstance(rec["intensity"], bool) \
            or not 0 <= rec["intensity"] <= 4:
        out.append(f"{where}: intensity must be an integer 0–4, got {rec['intensity']!r}")
    return out


def char_ngrams(text: str, n: int = 5) -> set[str]:
    text = "".join(text.split())
    return {text[i:i + n] for i in range(max(1, len(text) - n + 1))}


def near_duplicates(records: list[dict], threshold: float = 0.5, n: int = 5) -> list[tuple[str, str, float]]:
    """Pairs of record ids whose character n-gram Jaccard similarity exceeds ``threshold``.

    Uses an inverted index over n-grams so only pairs sharing at least one n-gram are scored.
    """
    grams = [char_ngrams(r["text"], n) for r in records]
    index: dict[str, list[int]] = {}
    for i, g in enumerate(grams):
        for gram in g:
            index.setdefault(gram, []).append(i)
    pairs: list[tuple[str, str, float]] = []
    for i, g in enumerate(grams):
        shared: Counter[int] = Counter()
        for gram in g:
            for j in index[gram]:
                if j > i:
                    shared[j] += 1
        for j, inter in shared.items():
            union = len(g) + len(grams[j]) - inter
            sim = inter / union if union else 0.0
            if sim > threshold:
                pairs.append((records[i]["id"], records[j]["id"], round(sim, 3)))
    return pairs


def check(paths: Iterable[Path], minimums: dict | None = None) -> list[str]:
    """Return a list of human-readable problems (empty when the corpus is valid)."""
    minimums = MINIMUMS if minimums is None else minimums
    records, problems = load_records(paths)
    for rec in records:
        problems.extend(validate_record(rec))
    ids = Counter(r.get("id") for r in records)
    problems.extend(f"duplicate id {i!r} ({c} records)" for i, c in ids.items() if c > 1)
    problems.extend(f"near-duplicate texts {a} ~ {b} (5-gram Jaccard {s})"
                    for a, b, s in near_duplicates([r for r in records if isinstance(r.get("text"), str)]))
    if minimums:
        counts = summarise(records)
        if len(records) < minimums["records"]:
            problems.append(f"need at least {minimums['records']} records, have {len(records)}")
        for t in DEFAULT_TYPES:
            if counts["complaint_type"][t] < minimums["per_type"]:
                problems.append(f"type {t}: need {minimums['per_type']}, have {counts['complaint_type'][t]}")
        for grade in ("危机", "重点"):
            if counts["severity"][grade] < minimums[grade]:
                problems.append(f"severity {grade}: need {minimums[grade]}, have {counts['severity'][grade]}")
        for e in EMOTIONS:
            if counts["emotion"][e] < minimums["per_emotion"]:
                problems.append(f"emotion {e}: need {minimums['per_emotion']}, have {counts['emotion'][e]}")
        for lvl in range(5):
            if counts["intensity"][lvl] < minimums["per_intensity"]:
                problems.append(f"intensity {lvl}: need {minimums['per_intensity']}, have {counts['intensity'][lvl]}")
    return problems


def summarise(records: list[dict]) -> dict[str, Counter]:
    return {f: Counter(r.get(f) for r in records)
            for f in ("complaint_type", "severity", "emotion", "intensity", "industry", "channel")}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    paths = [Path(a) for a in args] or sorted(Path("corpora/complaints").glob("*.jsonl"))
    no_minimums = False
    if paths and str(paths[0]) == "--no-minimums":
        no_minimums, paths = True, paths[1:]
    records, _ = load_records(paths)
    problems = check(paths, minimums={} if no_minimums else None)
    for field, counter in summarise(records).items():
        print(f"{field}: " + ", ".join(f"{k}={v}" for k, v in sorted(counter.items(), key=lambda kv: str(kv[0]))))
    print(f"{len(records)} records in {len(paths)} files; {len(problems)} problems")
    for p in problems:
        print("  " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
