"""Similar-case retrieval benchmark: quality through the API, search latency at scale.

``python -m benchmarks.retrieval [--bundle DIR] [--queries 0.2] [--tuning-split] [--skip-quality] [--skip-latency]``

**Quality** (through HTTP, like a caller): 车质网 complaints from ``../shared/data`` are loaded
as cases with their fine label ``问题类型`` in ``metadata`` (records labelled 其他 left out);
a held-out part (``--queries``, seeded) is used as queries. A hit is relevant when its fine label
equals the query's. The service starts on a fresh database; the bundle's seed cases are deleted
first, so only the 车质网 cases are searched. Precision@5 and MRR@10 are printed for BM25 alone,
dense alone and the hybrid, in one run. ``--tuning-split`` scores the split the fusion
parameters were tuned on instead (500 of the cases as queries against the other cases; the
benchmark's queries play no part in it).

**Latency** (in process, the encode excluded): the same cases' texts repeated to 10k, 100k and
1M cases, each copy with a distinct vector mixed from two real ones (``synthetic_vectors``); for each size the
median time of the dense candidates (exact scan below ``exact_below``, the HNSW graph above),
of a plain exact scan, the candidates' recall@100 against the exact top 100, and median and p95
of the whole ``HybridIndex.search`` (hybrid mode, k = 5). Before that, hybrid P@5 in process on
the real cases with the graph forced on against the exact scan. Figures go to
``benchmarks/results/retrieval_latency.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._service import ROOT, running_service
MODES = ("bm25", "dense", "hybrid")


TUNING_SEED, TUNING_QUERIES = 2026, 500


def car_records(seed: int, query_share: float, tuning: bool = False) -> tuple[list[dict], list[dict]]:
    """(cases, queries). ``tuning``: the split the retrieval parameters were tuned on instead —
    ``TUNING_QUERIES`` of the benchmark's cases (drawn with ``TUNING_SEED``) as queries against
    the benchmark's other cases, so the benchmark's own queries are never used for tuning."""
    from training.importers import import_file, load_import_config
    from triage.paths import shared_data_dir

    recs, _ = import_file(shared_data_dir() / "car_complaints/car_complaints_train.csv",
                          load_import_config("car_complaints"))
    recs = [r for r in recs if r.get("metadata", {}).get("fine_type") not in (None, "", "其他")]
    random.Random(seed).shuffle(recs)
    n_q = int(len(recs) * query_share)
    queries, cases = recs[:n_q], recs[n_q:]
    if tuning:
        order = np.random.default_rng(TUNING_SEED).permutation(len(cases))
        queries, cases = [cases[i] for i in order[:TUNING_QUERIES]], [cases[i] for i in order[TUNING_QUERIES:]]
    case_labels = {r["metadata"]["fine_type"] for r in cases}
    queries = [q for q in queries if q["metadata"]["fine_type"] in case_labels]
    as_case = [{"case_id": f"car-{r['id']}", "text": r["text"], "complaint_type": r["complaint_type"],
                "industry": "auto", "metadata": {"fine_type": r["metadata"]["fine_type"],
                                                 "brand": r["metadata"].get("brand", "")}} for r in cases]
    return as_case, queries


def quality(bundle: Path | None, cases: list[dict], queries: list[dict]) -> dict[str, float]:
    """P@5 and MRR@10 through the API for each mode (printed); returns P@5 by mode."""
    import httpx

    from triage.bundle import current_bundle, read_manifest
    db = Path(tempfile.mkdtemp(prefix="retrieval-bench-")) / "kb.db"
    served = bundle or current_bundle(ROOT / "models")
    seeded = [line.split('"case_id": "')[1].split('"')[0]
              for line in (Path(served) / "cases.jsonl").read_text(encoding="utf-8").splitlines() if line]
    with running_service(bundle, {"TRIAGE_DATABASE_URL": f"sqlite:///{db}"}) as base, \
            httpx.Client(timeout=300) as c:
        for cid in seeded:
            c.delete(f"{base}/v1/cases/{cid}")
        t0 = time.perf_counter()
        for i in range(0, len(cases), 500):
            c.post(f"{base}/v1/cases", json={"cases": cases[i:i + 500]}).raise_for_status()
        load_s = time.perf_counter() - t0
        scores = {m: {"p5": [], "rr": []} for m in MODES}
        for q in queries:
            want = q["metadata"]["fine_type"]
            for mode in MODES:
                hits = c.post(f"{base}/v1/similar", json={"text": q["text"], "k": 10, "mode": mode}).json()["hits"]
                rel = [h["metadata"]["fine_type"] == want for h in hits]
                scores[mode]["p5"].append(sum(rel[:5]) / 5)
                scores[mode]["rr"].append(next((1 / (i + 1) for i, r in enumerate(rel[:10]) if r), 0.0))
    version = read_manifest(served)["bundle_version"]
    print(f"quality through the API — bundle {version}; {len(cases)} 车质网 cases loaded in {load_s:.0f}s, "
          f"{len(queries)} held-out queries; relevant = same fine label (问题类型)")
    print(f"{'mode':8s}{'P@5':>8s}{'MRR@10':>8s}")
    for mode in MODES:
        print(f"{mode:8s}{np.mean(scores[mode]['p5']):8.3f}{np.mean(scores[mode]['rr']):8.3f}")
    best = max(np.mean(scores["bm25"]["p5"]), np.mean(scores["dense"]["p5"]))
    print(f"hybrid − best single P@5: {100 * (np.mean(scores['hybrid']['p5']) - best):+.1f} points")
    return {mode: float(np.mean(scores[mode]["p5"])) for mode in MODES}


class _MemoSegmenter:
    """The project's segmenter, remembering each text's words: the scaled-up knowledge bases
    repeat the same texts, and segmenting a million of them would time jieba, not the search."""

    def __init__(self) -> None:
        from triage.segment import Segmenter

        self._seg, self._memo = Segmenter(), {}
        self.words = self._seg.words

    def cut(self, text: str) -> list[str]:
        if text not in self._memo:
            self._memo[text] = self._seg.cut(text)
        return self._memo[text]


def synthetic_vectors(real: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` unit vectors: the real ones first, then for row i the real vector ``i mod len(real)``
    mixed with a random other real vector (weight 0 to 0.5) and a little noise. Every row is
    distinct and lies among real complaints, so the exact top 100 is well defined (plain
    noisy copies of a few thousand vectors would tie by the hundred)."""
    out = np.empty((n, real.shape[1]), dtype=np.float32)
    for start in range(0, n, 100_000):
        idx = np.arange(start, min(n, start + 100_000))
        base = real[idx % len(real)]
        other = real[rng.integers(0, len(real), len(idx))]
        mix = (rng.random(len(idx)) * 0.5 * (idx >= len(real))).astype(np.float32)[:, None]
        noise = rng.normal(0, 0.01, base.shape).astype(np.float32) * (idx >= len(real))[:, None]
        v = base + mix * other + noise
        out[idx] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def latency(cases: list[dict], queries: list[dict], sizes: list[int], seed: int) -> dict:
    """Search latency at each size, with the dense side's recall@100 against the exact scan
    and in-process P@5 with the graph against without it on the real cases."""
    from triage.encoder import get_encoder
    from triage.encoder.cache import EmbeddingCache
    from triage.retrieval import HybridIndex, RetrievalParams

    enc = EmbeddingCache(get_encoder())
    case_emb = enc.encode([c["text"] for c in cases], "passage")
    q_texts = [q["text"] for q in queries][:200]
    q_emb = enc.encode(q_texts, "query").astype(np.float32)
    rng = np.random.default_rng(seed)
    seg = _MemoSegmenter()
    out: dict = {"queries": len(q_texts), "cores": os.cpu_count(), "sizes": []}

    # quality with and without the graph, in process, on the real cases (hybrid, duplicates collapsed)
    labels = [q["metadata"]["fine_type"] for q in queries][:200]
    p5 = {}
    for name, params in (("exact", RetrievalParams()), ("hnsw", RetrievalParams(exact_below=0))):
        index = HybridIndex(seg, case_emb.shape[1], params)
        index.upsert(cases, case_emb)
        p5[name] = float(np.mean([sum(h["metadata"]["fine_type"] == want for h in index.search(t, v, 5)) / 5
                                  for t, v, want in zip(q_texts, q_emb, labels)]))
    print(f"in-process hybrid P@5 on the {len(cases)} real cases: exact dense scan {p5['exact']:.3f}, "
          f"HNSW candidates {p5['hnsw']:.3f} ({100 * (p5['hnsw'] - p5['exact']):+.1f} points)")
    out["p5_real_cases"] = p5

    print(f"search latency, k=5, encode excluded; {len(q_texts)} queries; {os.cpu_count()} cores; "
          "recall@100 = the dense candidates' share of the exact top 100")
    print(f"{'cases':>9s}{'dense':>7s}{'dense ms':>10s}{'exact ms':>10s}{'recall@100':>11s}"
          f"{'hybrid ms':>10s}{'p95 ms':>8s}{'build s':>9s}")
    for n in sizes:
        reps = -(-n // len(cases))
        big = [{**cases[i % len(cases)], "case_id": f"s{i}"} for i in range(n)]
        emb = synthetic_vectors(case_emb, n, rng)
        index = HybridIndex(seg, emb.shape[1], RetrievalParams(candidates=100))
        t0 = time.perf_counter()
        for i in range(0, n, 100_000):                     # in slices, as a bulk import adds them
            index.upsert(big[i:i + 100_000], emb[i:i + 100_000])
        index.search(q_texts[0], q_emb[0], 5)                 # builds BM25
        build = time.perf_counter() - t0
        dense_t, exact_t, recall, times = [], [], [], []
        for t, v in zip(q_texts, q_emb):
            s = time.perf_counter()
            rows, _ = index._dense_candidates(v, None)
            dense_t.append(time.perf_counter() - s)
            s = time.perf_counter()
            scores = index._emb @ v
            truth = np.argpartition(-scores, 99)[:100]
            exact_t.append(time.perf_counter() - s)
            recall.append(len(set(rows.tolist()) & set(truth.tolist())) / 100)
            s = time.perf_counter()
            index.search(t, v, 5)
            times.append(time.perf_counter() - s)
        times.sort()
        kind = "hnsw" if index._ann is not None else "exact"
        row = {"cases": n, "dense": kind, "dense_median_ms": statistics.median(dense_t) * 1e3,
               "exact_median_ms": statistics.median(exact_t) * 1e3, "recall_at_100": float(np.mean(recall)),
               "hybrid_median_ms": statistics.median(times) * 1e3,
               "hybrid_p95_ms": times[int(0.95 * (len(times) - 1))] * 1e3, "build_s": build}
        out["sizes"].append(row)
        print(f"{n:9d}{kind:>7s}{row['dense_median_ms']:10.2f}{row['exact_median_ms']:10.2f}"
              f"{row['recall_at_100']:11.3f}{row['hybrid_median_ms']:10.2f}{row['hybrid_p95_ms']:8.2f}{build:9.1f}",
              flush=True)
        del index, big, emb
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.retrieval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path)
    parser.add_argument("--queries", type=float, default=0.2, help="share of records held out as queries")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "retrieval_latency.json",
                        help="where the latency figures are written as JSON")
    parser.add_argument("--tuning-split", action="store_true",
                        help="score the split the retrieval parameters were tuned on (not the benchmark's queries)")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    args = parser.parse_args(argv)
    cases, queries = car_records(args.seed, args.queries, args.tuning_split)
    if not args.skip_quality:
        quality(args.bundle, cases, queries)
    if not args.skip_latency:
        figures = latency(cases, queries, [int(s) for s in args.sizes.split(",")], args.seed)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
        print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
