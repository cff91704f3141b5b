"""Encoder benchmark: speed by batch size for every backend and precision, and what int8 costs
in quality — each in one run, side by side.

``python -m benchmarks.encoder [--sizes 1,2,4,8,16,32,64] [--texts 128] [--rounds 3]``
``python -m benchmarks.encoder --quality [--bundle DIR]``

**Speed**: real complaints from ``../shared/data`` (mixed lengths) are encoded in batches of
each size by ONNX Runtime fp32 (the default), ONNX Runtime int8 (``TRIAGE_ENCODER_PRECISION=int8``)
and torch; the encoders take turns batch size by batch size for ``--rounds`` rounds, so a busy
machine slows each alike, and the median texts per second is printed with the default's ratio
to the fastest at that size. Figures go to ``benchmarks/results/encoder_speed.json``.

**Quality** (``--quality``): the serving bundle is evaluated with the fp32 and the int8 encoder
on the project's real-data evaluations — complaint types on 黑猫 and 车质网 (as ``python -m
training report``), severity, emotion and intensity on the development set (as ``python -m
training devset``) — and similar-case P@5 through the API (as ``python -m benchmarks.retrieval``);
every head's macro-F1 and P@5 are printed for both with the difference in points, and whether
every difference is under 0.5 points (the bar for int8 to become the default). Figures go to
``benchmarks/results/encoder_int8_quality.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from benchmarks._real import real_complaints
from benchmarks._service import ROOT

RESULTS = ROOT / "benchmarks" / "results"


def speed(sizes: list[int], n_texts: int, rounds: int) -> dict:
    from triage.encoder.e5 import E5Encoder

    texts = real_complaints(n_texts, seed=3)
    encoders = {"onnx fp32 (default)": E5Encoder(backend="onnx"), "onnx int8": E5Encoder(precision="int8"),
                "torch": E5Encoder(backend="torch")}
    for enc in encoders.values():
        enc.encode(texts[:8])
    rates: dict[str, dict[int, list[float]]] = {k: {s: [] for s in sizes} for k in encoders}
    for _ in range(rounds):
        for size in sizes:
            sub = texts[:max(16, min(len(texts), 4 * size))]
            for name, enc in encoders.items():
                t0 = time.perf_counter()
                for i in range(0, len(sub), size):
                    enc.encode(sub[i:i + size])
                rates[name][size].append(len(sub) / (time.perf_counter() - t0))
    med = {k: {s: statistics.median(v) for s, v in by.items()} for k, by in rates.items()}
    chars = statistics.median(len(t) for t in texts)
    print(f"encoder texts/s by batch size; {len(texts)} real complaints (median {chars:.0f} characters); "
          f"{os.cpu_count()} cores; median of {rounds} interleaved rounds")
    print(f"{'batch':>6s}" + "".join(f"{k:>22s}" for k in encoders) + f"{'default ÷ best other':>22s}")
    for s in sizes:
        best_other = max(med[k][s] for k in encoders if k != "onnx fp32 (default)")
        print(f"{s:6d}" + "".join(f"{med[k][s]:22.1f}" for k in encoders)
              + f"{med['onnx fp32 (default)'][s] / best_other:22.2f}")
    return {"texts": len(texts), "median_chars": chars, "cores": os.cpu_count(), "rounds": rounds,
            "texts_per_s": {k: {str(s): v for s, v in by.items()} for k, by in med.items()}}


def quality(bundle: Path | None) -> dict:
    from benchmarks.retrieval import car_records
    from benchmarks.retrieval import quality as retrieval_quality
    from training.devset import evaluate_devset, load_devset
    from training.evaluate import evaluate_types
    from triage.bundle import current_bundle, load_bundle
    from triage.encoder.cache import EmbeddingCache
    from triage.encoder.e5 import E5Encoder

    served = bundle or current_bundle(ROOT / "models")
    out: dict = {"bundle": str(served)}
    cases, queries = car_records(11, 0.2)
    items, _ = load_devset()
    for precision in ("fp32", "int8"):
        model = load_bundle(served, EmbeddingCache(E5Encoder(precision=precision)))
        types = evaluate_types(model)
        dev = evaluate_devset(model, items)
        os.environ["TRIAGE_ENCODER_PRECISION"] = precision        # the service child inherits it
        p5 = retrieval_quality(bundle, cases, queries)
        out[precision] = {
            **{f"complaint_type macro-F1 ({src})": r["open"]["macro_f1"] for src, r in types.items()},
            "severity macro-F1 (devset)": dev["severity"]["macro_f1"],
            "severity model-only macro-F1 (devset)": dev["severity_model_only"]["macro_f1"],
            "emotion macro-F1 (devset)": dev["emotion"]["macro_f1"],
            "intensity Spearman (devset)": dev["intensity_spearman"],
            **{f"similar cases P@5 ({m})": v for m, v in p5.items()},
        }
        print(f"[{precision}] done", flush=True)
    os.environ.pop("TRIAGE_ENCODER_PRECISION", None)
    print(f"{'figure':44s}{'fp32':>8s}{'int8':>8s}{'points':>8s}")
    worst = 0.0
    for key, a in out["fp32"].items():
        b = out["int8"][key]
        diff = 100 * (b - a)
        worst = max(worst, abs(diff))
        print(f"{key:44s}{a:8.3f}{b:8.3f}{diff:+8.2f}")
    out["largest_change_points"] = worst
    out["int8_passes"] = worst < 0.5
    print(f"largest change {worst:.2f} points: int8 {'passes' if worst < 0.5 else 'does not pass'} the 0.5-point bar")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.encoder", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,2,4,8,16,32,64")
    parser.add_argument("--texts", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quality", action="store_true", help="int8 against fp32 on the real-data evaluations")
    parser.add_argument("--bundle", type=Path, help="bundle for --quality (default models/CURRENT)")
    args = parser.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.quality:
        out, path = quality(args.bundle), RESULTS / "encoder_int8_quality.json"
    else:
        out = speed([int(s) for s in args.sizes.split(",")], args.texts, args.rounds)
        path = RESULTS / "encoder_speed.json"
    path.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
