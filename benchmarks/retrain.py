"""Retraining benchmark (issue: retraining, corrections and safe promotion), in one run:

``python -m benchmarks.retrain [--base BUNDLE] [--config FILE] [--skip-sources] [--skip-fewshot] [--shots K …] [--skip-timing]``

1. **黑猫**: retrain on ``heimao/train.csv`` with its own six labels (``python -m training train
   --data … --base …``: the type head learns the new taxonomy, the other heads come from the
   base bundle) and score macro-F1 on ``heimao/dev.csv``; beside it the TF-IDF (jieba 1–2-gram)
   + logistic-regression baseline on the same split (``benchmarks/_baseline.py``).
2. **车质网**: the same with its 19 coarse categories ``投诉问题``, on a seeded stratified 80/20
   split of ``car_complaints_train.csv``.
3. **Few-shot**: 车质网 coarse categories with 8, 16 and 32 labelled examples per class (fewer
   where a class has fewer; ``--shots`` picks), five random draws each; test on the whole 20%
   split; mean ± sd. The type head is few-shot there, so training fine-tunes its own copy of the
   encoder (``FineTuneParams``): about 2–5 minutes a draw on 2 cores, plus encoding the test
   texts with it — the whole section takes about an hour.
4. **Timing**: a retrain on 5,000 complaints (黑猫 train + part of 车质网, their own labels) with
   an empty embedding cache, then again with 500 new complaints added: seconds, and how many
   texts each run encoded.

All bundles go to a temporary models folder; the serving ``models/CURRENT`` is not touched.
``--config`` trains ours with a ``TrainConfig`` JSON instead of the defaults (for example
``training/train_configs/fine_tune_type.json``, which fine-tunes the encoder for the type head
at any size: about 15 minutes for 黑猫).
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split

from benchmarks._baseline import TfidfBaseline
from benchmarks._service import ROOT


def _load(rel: str, config: str) -> list[dict]:
    from training.importers import import_file, load_import_config
    from triage.paths import shared_data_dir
    recs, _ = import_file(shared_data_dir() / rel, load_import_config(config))
    return [{"id": r["id"], "text": r["text"], "complaint_type": r["complaint_type"]} for r in recs]


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def splits(seed: int) -> dict[str, tuple[list[dict], list[dict]]]:
    heimao = (_load("heimao/train.csv", "heimao_native"), _load("heimao/dev.csv", "heimao_native"))
    car = _load("car_complaints/car_complaints_train.csv", "car_complaints_coarse")
    tr, te = train_test_split(car, test_size=0.2, random_state=seed, stratify=[r["complaint_type"] for r in car])
    return {"黑猫 (train → dev)": heimao, "车质网 coarse (80/20)": (tr, te)}


class Ours:
    """``python -m training train --data FILE --base BASE`` through the library, type head scored."""

    def __init__(self, encoder, base: Path, workdir: Path, config=None) -> None:
        self.encoder, self.base, self.workdir, self.config = encoder, base, workdir, config
        self.n = 0

    def fit_predict(self, train: list[dict], test: list[dict]) -> tuple[list[str], float]:
        pred, secs, _ = self.fit_predict_proba(train, test)
        return pred, secs

    def fit_predict_proba(self, train: list[dict], test: list[dict]) -> tuple[list[str], float, float]:
        """Predictions, training seconds, and the expected calibration error of the type head's
        probabilities on ``test`` (does the confidence say when the model is unsure?)."""
        from training.evaluate import predict_head
        from training.train import train_bundle
        from triage.bundle import load_bundle
        from triage.heads import expected_calibration_error

        self.n += 1
        data = _write(self.workdir / f"train-{self.n}.jsonl", train)
        t0 = time.perf_counter()
        result = train_bundle(self.encoder, [data], None, self.workdir / "models", config=self.config,
                              base=self.base, make_current=False, progress=False)
        secs = time.perf_counter() - t0
        model = load_bundle(result.path, self.encoder)
        classes, proba = predict_head(model, [r["text"] for r in test])
        gold = np.array([classes.index(r["complaint_type"]) if r["complaint_type"] in classes else -1 for r in test])
        ece = expected_calibration_error(proba, gold)
        return [classes[j] for j in proba.argmax(axis=1)], secs, ece


def macro_f1(test: list[dict], pred: list[str]) -> float:
    y = [r["complaint_type"] for r in test]
    return float(f1_score(y, pred, labels=sorted(set(y)), average="macro", zero_division=0))


def few_shot_draw(train: list[dict], k: int, seed: int) -> list[dict]:
    by: dict[str, list[dict]] = {}
    for r in train:
        by.setdefault(r["complaint_type"], []).append(r)
    rng = random.Random(seed)
    return [r for label in sorted(by) for r in rng.sample(by[label], min(k, len(by[label])))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.retrain", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=Path, help="base bundle for the heads the data does not label "
                        "(default models/CURRENT)")
    parser.add_argument("--config", type=Path, help="training config JSON for ours (default: built-in defaults)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--skip-sources", action="store_true")
    parser.add_argument("--skip-fewshot", action="store_true")
    parser.add_argument("--shots", type=int, nargs="+", default=[8, 16, 32], metavar="K",
                        help="examples per class in the few-shot runs (default 8 16 32)")
    parser.add_argument("--skip-timing", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "reports" / "retrain.json")
    args = parser.parse_args(argv)

    from triage.bundle import current_bundle
    from triage.config import load_config
    from triage.encoder import get_encoder
    from triage.encoder.cache import EmbeddingCache

    base = args.base or current_bundle(ROOT / "models")
    if base is None:
        parser.error("no base bundle: give --base or run scripts/serve once to build models/CURRENT")
    e5 = get_encoder("e5-small")
    encoder = EmbeddingCache(e5)
    config = load_config(args.config)
    report: dict = {"base": str(base), "config": str(args.config or "defaults"),
                    "sources": {}, "few_shot": {}, "timing": {}}
    work = Path(tempfile.mkdtemp(prefix="retrain-bench-"))
    ours = Ours(encoder, base, work, config)
    data = splits(args.seed)

    if not args.skip_sources:
        print("## Retraining on a source's own labels (macro-F1 on its held-out split)\n")
        print("| source | train | test | classes | ours | TF-IDF + LR baseline (C) | ours − baseline |")
        print("|---|---|---|---|---|---|---|")
    for name, (train, test) in ([] if args.skip_sources else data.items()):
        pred, secs = ours.fit_predict(train, test)
        f_ours = macro_f1(test, pred)
        bl = TfidfBaseline(args.seed).fit([r["text"] for r in train], [r["complaint_type"] for r in train])
        f_base = macro_f1(test, bl.predict([r["text"] for r in test]))
        n_classes = len({r["complaint_type"] for r in train})
        print(f"| {name} | {len(train)} | {len(test)} | {n_classes} | {f_ours:.3f} | {f_base:.3f} (C={bl.C_:g}) | "
              f"{100 * (f_ours - f_base):+.1f} pts |", flush=True)
        report["sources"][name] = {"train": len(train), "test": len(test), "ours": round(f_ours, 4),
                                   "baseline": round(f_base, 4), "baseline_C": bl.C_, "ours_train_seconds": round(secs, 1)}

    if not args.skip_fewshot:
        train, test = data["车质网 coarse (80/20)"]
        print("\n## Few-shot: 车质网 coarse categories, k labelled examples per class "
              f"({args.draws} draws, test on {len(test)})\n")
        print("| k per class | ours (mean ± sd) | baseline (mean ± sd) | ours − baseline | ours: ECE on test "
              "| ours: training seconds |")
        print("|---|---|---|---|---|---|")
        for k in args.shots:
            fo, fb, eces, secs = [], [], [], []
            for d in range(args.draws):
                shot = few_shot_draw(train, k, seed=1000 * k + d)
                pred, s, ece = ours.fit_predict_proba(shot, test)
                fo.append(macro_f1(test, pred))
                eces.append(ece)
                secs.append(s)
                bl = TfidfBaseline(args.seed).fit([r["text"] for r in shot], [r["complaint_type"] for r in shot])
                fb.append(macro_f1(test, bl.predict([r["text"] for r in test])))
            mo, so, mb, sb = statistics.mean(fo), statistics.stdev(fo), statistics.mean(fb), statistics.stdev(fb)
            print(f"| {k} | {mo:.3f} ± {so:.3f} | {mb:.3f} ± {sb:.3f} | {100 * (mo - mb):+.1f} pts | "
                  f"{statistics.median(eces):.3f} (median) | {statistics.median(secs):.0f} (median) |", flush=True)
            report["few_shot"][k] = {"ours": fo, "baseline": fb, "ours_ece": eces, "ours_train_seconds": secs}

    if not args.skip_timing:
        heimao_train, heimao_dev = data["黑猫 (train → dev)"]
        car_train = data["车质网 coarse (80/20)"][0]
        first = heimao_train + car_train[:5000 - len(heimao_train)]
        second = first + heimao_dev[:500]
        cold = EmbeddingCache(e5, work / "cold-cache")        # an empty cache: every text is encoded
        timer = Ours(cold, base, work, config)
        print("\n## Retrain time (2 cores; encoding through an empty embedding cache)\n")
        print("| run | records | newly encoded | seconds |")
        print("|---|---|---|---|")
        for label, records in (("first retrain", first), ("+500 new complaints", second)):
            before = cold.misses
            _, secs = timer.fit_predict(records, records[:1])
            print(f"| {label} | {len(records)} | {cold.misses - before} | {secs:.1f} |", flush=True)
            report["timing"][label] = {"records": len(records), "encoded": cold.misses - before, "seconds": round(secs, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.is_file():              # a partial run keeps the other sections' figures
        report = {**json.loads(args.out.read_text(encoding="utf-8")), **{k: v for k, v in report.items() if v}}
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"\nfigures: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
