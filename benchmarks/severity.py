"""Severity on real complaints, per source: the development set and leave-one-source-out.

``python -m benchmarks.severity [--config FILE] [--skip-loso] [--out benchmarks/results/severity.json]``

1. **Development set** (``corpora/devsets``: 600 complaints drawn at random, 200 per source):
   a bundle trained the default way — the corpus plus every training annotation — serves each
   complaint; per source and in all: 危机 recall and precision of the served (crisis-first)
   grade, severity macro-F1, the confusion matrix, intensity Spearman ρ. This is the split the
   severity layer's choices were made on.
2. **Leave one source out**: for each source (黑猫, 车质网, government messages), a bundle
   trained on the corpus and the annotations of the *other* two sources (development rows
   included) serves that source's randomly drawn training annotations, which no choice looked
   at. The crisis threshold of each bundle is set, as always, from its own training rows.

Figures are printed and written to ``--out``. Needs ``../shared/data``; takes about a quarter of
an hour on 2 cores (four bundles; embeddings are cached across runs).
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from scipy.stats import spearmanr

from triage.paths import ROOT
from triage.vocab import GRADES

GROUPS = ("黑猫", "车质网", "government")


def _metrics(gold: list[str], pred: list[str], intensity_gold: list[int], intensity_pred: list[float]) -> dict:
    from training.evaluate import classification_metrics, confusion

    m = classification_metrics(gold, pred, list(GRADES))
    crisis = m["per_class"]["危机"]
    rho = spearmanr(intensity_gold, intensity_pred).statistic if len(set(intensity_gold)) > 1 else float("nan")
    return {"n": len(gold), "crisis_support": gold.count("危机"), "crisis_recall": crisis["recall"],
            "crisis_precision": crisis["precision"], "macro_f1": m["macro_f1"], "accuracy": m["accuracy"],
            "intensity_spearman": round(float(rho), 4), "confusion": confusion(gold, pred, list(GRADES))}


def evaluate(model, items) -> dict:
    """Served severity and intensity of ``model`` on annotated items, per source group and in all."""
    from training.evaluate import triage_all

    answers = triage_all(model, [it.text for it in items])
    out = {}
    for group in (*GROUPS, "all"):
        idx = [k for k, it in enumerate(items) if group == "all" or it.group == group]
        if idx:
            out[group] = _metrics([items[k].severity for k in idx], [answers[k]["severity"]["label"] for k in idx],
                                  [items[k].intensity for k in idx], [answers[k]["intensity"]["score"] for k in idx])
    return out


def _records(items) -> list[dict]:
    recs = []
    for it in items:
        rec = {"id": f"ann:{it.source}:{it.key}", "text": it.text, "severity": it.severity,
               "emotion": it.emotion, "intensity": it.intensity}
        if it.sampling != "random":
            rec["sampling"] = it.sampling
        recs.append(rec)
    return recs


def _train(records: list[dict], config, out: Path):
    from training.train import DEFAULT_CASES, DEFAULT_DATA, train_bundle
    from triage.bundle import load_bundle

    t0 = time.perf_counter()
    result = train_bundle(_encoder(), DEFAULT_DATA, DEFAULT_CASES, out, config, make_current=False, progress=False,
                          extra_records=records, extra_source="annotations")
    return load_bundle(result.path, _encoder()), round(time.perf_counter() - t0, 1), result.metrics.get("crisis", {})


_ENC = []


def _encoder():
    if not _ENC:
        from triage.encoder import get_encoder
        from triage.encoder.cache import EmbeddingCache
        _ENC.append(EmbeddingCache(get_encoder("e5-small")))
    return _ENC[0]


def render(result: dict) -> str:
    lines = []
    for section, parts in result["sections"].items():
        lines += ["", f"## {section}", "", "| source | n | 危机 | recall | precision | macro-F1 | intensity ρ |",
                  "|---|---|---|---|---|---|---|"]
        for group, m in parts.items():
            lines.append(f"| {group} | {m['n']} | {m['crisis_support']} | {m['crisis_recall']:.3f} | "
                         f"{m['crisis_precision']:.3f} | {m['macro_f1']:.3f} | {m['intensity_spearman']:.3f} |")
        for group, m in parts.items():
            c = m["confusion"]
            lines += ["", f"{section}, {group}: annotated (rows) against served (columns)", "",
                      "| | " + " | ".join(c["pred"]) + " |", "|---" * (len(c["pred"]) + 1) + "|"]
            lines += [f"| {t} | " + " | ".join(map(str, row)) + " |" for t, row in zip(c["true"], c["matrix"])]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from training.devset import ANNOTATIONS, DEVSET, annotated_records, load_devset
    from triage.config import load_config

    parser = argparse.ArgumentParser(prog="python -m benchmarks.severity", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, help="training config JSON (default: built-in defaults)")
    parser.add_argument("--skip-loso", action="store_true", help="only the development set")
    parser.add_argument("--skip-dev", action="store_true", help="only leave-one-source-out")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "severity.json")
    args = parser.parse_args(argv)
    config = load_config(args.config)

    sources: dict = {}
    dev, problems = load_devset(DEVSET, sources=sources)
    train_items, more = load_devset(ANNOTATIONS, sources=sources)
    for p in problems + more:
        print(f"warning: {p}")
    result: dict = {"config": str(args.config) if args.config else "defaults", "sections": {}, "seconds": {}}
    with tempfile.TemporaryDirectory(prefix="bench-severity-") as tmp:
        if not args.skip_dev:
            records, line = annotated_records()
            print(f"development set: training on the corpus and {line}")
            model, secs, crisis = _train(records, config, Path(tmp) / "dev")
            result["seconds"]["development"] = secs
            result["training_crisis_oof"] = crisis
            result["sections"]["development set"] = evaluate(model, dev)
            print(render({"sections": {"development set": result["sections"]["development set"]}}))
        if not args.skip_loso:
            loso = {}
            for group in GROUPS:
                keep = [it for it in dev + train_items if it.group != group]
                test = [it for it in train_items if it.group == group and it.sampling == "random"]
                print(f"leave out {group}: training on the corpus and {len(keep)} annotations of the other sources; "
                      f"testing on {len(test)} random {group} annotations")
                model, secs, _ = _train(_records(keep), config, Path(tmp) / f"loso-{group}")
                result["seconds"][f"loso {group}"] = secs
                loso[group] = evaluate(model, test)[group]
            result["sections"]["leave one source out"] = loso
            print(render({"sections": {"leave one source out": loso}}))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
