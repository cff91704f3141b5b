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

**Latency** (in process, the encode excluded): the same cases' vectors and tokens, repeated
with small vector noise (synthetic duplicates) to 1k, 10k and 100k cases; median and p95 of
``HybridIndex.search`` over the held-out queries, hybrid mode, k = 5.
"""
from __future__ import annotations

import argparse
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


def quality(bundle: Path | None, cases: list[dict], queries: list[dict]) -> None:
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


def latency(cases: list[dict], queries: list[dict], sizes: list[int], seed: int) -> None:
    from triage.encoder import get_encoder
    from triage.encoder.cache import EmbeddingCache
    from triage.retrieval import HybridIndex, RetrievalParams
    from triage.segment import Segmenter

    enc = EmbeddingCache(get_encoder())
    case_emb = enc.encode([c["text"] for c in cases], "passage")
    q_texts = [q["text"] for q in queries][:200]
    q_emb = enc.encode(q_texts, "query")
    rng = np.random.default_rng(seed)
    seg = Segmenter()
    print(f"search latency, hybrid, k=5, encode excluded; {len(q_texts)} queries; {os.cpu_count()} cores")
    print(f"{'cases':>8s}{'median ms':>11s}{'p95 ms':>9s}{'build s':>9s}")
    for n in sizes:
        reps = -(-n // len(cases))
        big = [{**cases[i % len(cases)], "case_id": f"s{i}"} for i in range(n)]
        emb = np.concatenate([case_emb] * reps)[:n]
        noise = rng.normal(0, 0.01, emb.shape).astype(np.float32)
        emb = emb + noise * (np.arange(n) >= len(cases))[:, None]
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        index = HybridIndex(seg, emb.shape[1], RetrievalParams())
        t0 = time.perf_counter()
        index.upsert(big, emb)
        index.search(q_texts[0], q_emb[0], 5)                 # builds BM25
        build = time.perf_counter() - t0
        times = []
        for t, v in zip(q_texts, q_emb):
            s = time.perf_counter()
            index.search(t, v, 5)
            times.append(time.perf_counter() - s)
        times.sort()
        print(f"{n:8d}{statistics.median(times) * 1e3:11.2f}{times[int(0.95 * (len(times) - 1))] * 1e3:9.2f}{build:9.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.retrieval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path)
    parser.add_argument("--queries", type=float, default=0.2, help="share of records held out as queries")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--tuning-split", action="store_true",
                        help="score the split the retrieval parameters were tuned on (not the benchmark's queries)")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    args = parser.parse_args(argv)
    cases, queries = car_records(args.seed, args.queries, args.tuning_split)
    if not args.skip_quality:
        quality(args.bundle, cases, queries)
    if not args.skip_latency:
        latency(cases, queries, [int(s) for s in args.sizes.split(",")], args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
