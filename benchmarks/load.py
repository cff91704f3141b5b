"""Load benchmark: the real service under 1, 4, 16 and 200 concurrent clients, each sending
single complaints (``POST /v1/triage``), with micro-batching and without, beside the bare
encoder's batch throughput on the same texts — in one run.

``python -m benchmarks.load [--clients 1,4,16,200] [--requests 256] [--bundle DIR] [--window-ms 5]``

For each setting the service is started on a free loopback port in a child process (a fresh
SQLite database under a temporary folder): *batched* with the default micro-batcher
(``TRIAGE_BATCH_WINDOW_MS``), *unbatched* with ``TRIAGE_BATCH_MAX_TEXTS=1`` (every request
computed alone, as before micro-batching). Each client sends real complaints from
``../shared/data`` one after another; a level sends ``max(--requests, 2 × clients)`` requests
in all. Printed per level: successful requests per second, p50 and p99 latency of the
successful ones, and the share answered 503 (``SERVICE_OVERLOADED``). Then, with the service
stopped, the bare encoder encodes the same texts in batches of 64, and each level's throughput
is printed as a ratio to it. Figures go to ``benchmarks/results/load.json``.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks._real import real_complaints
from benchmarks._service import ROOT, running_service


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] if values else float("nan")


async def drive(base: str, texts: list[str], clients: int, total: int) -> dict:
    """``clients`` concurrent senders share ``total`` requests; each waits for its answer
    before sending the next."""
    import httpx

    latencies: list[float] = []
    codes: dict[int, int] = {}
    next_i = 0

    async def client(c: httpx.AsyncClient) -> None:
        nonlocal next_i
        while next_i < total:
            i = next_i
            next_i += 1
            t0 = time.perf_counter()
            r = await c.post(f"{base}/v1/triage", json={"text": texts[i % len(texts)], "id": str(i)})
            codes[r.status_code] = codes.get(r.status_code, 0) + 1
            if r.status_code == 200:
                latencies.append(time.perf_counter() - t0)

    # idle connections are dropped before the server's keep-alive timeout (uvicorn: 5 s) closes them
    limits = httpx.Limits(max_connections=clients + 8, max_keepalive_connections=clients + 8, keepalive_expiry=2.0)
    async with httpx.AsyncClient(timeout=600, limits=limits) as c:
        t0 = time.perf_counter()
        await asyncio.gather(*(client(c) for _ in range(clients)))
        wall = time.perf_counter() - t0
    ok = codes.get(200, 0)
    unexpected = {k: v for k, v in codes.items() if k not in (200, 503)}
    if unexpected:
        raise SystemExit(f"unexpected answers at {clients} clients: {unexpected}")
    return {"clients": clients, "requests": total, "ok": ok, "req_per_s": ok / wall,
            "p50_ms": pct(latencies, 0.5) * 1e3, "p99_ms": pct(latencies, 0.99) * 1e3,
            "share_503": codes.get(503, 0) / total, "wall_s": wall}


def run_levels(bundle: Path | None, env: dict[str, str], texts: list[str], levels: list[int], requests: int) -> list[dict]:
    import httpx

    db = Path(tempfile.mkdtemp(prefix="load-bench-")) / "triage.db"
    with running_service(bundle, {"TRIAGE_DATABASE_URL": f"sqlite:///{db}", **env}) as base:
        with httpx.Client(timeout=120) as c:
            for t in texts[:8]:                                  # warm-up
                r = c.post(f"{base}/v1/triage", json={"text": t})
                if r.status_code != 200:
                    raise SystemExit(f"warm-up answered {r.status_code}: {r.text}")
        rows = []
        for n in levels:
            rows.append(asyncio.run(drive(base, texts, n, max(requests, 2 * n))))
            print(f"  {env or 'default'}: {n} clients: {rows[-1]['req_per_s']:.1f} req/s", flush=True)
        return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default="1,4,16,200", help="concurrency levels (default 1,4,16,200)")
    parser.add_argument("--requests", type=int, default=256, help="requests per level (at least 2 per client)")
    parser.add_argument("--texts", type=int, default=256, help="distinct real complaints sent (default 256)")
    parser.add_argument("--bundle", type=Path, help="bundle to serve (default models/CURRENT)")
    parser.add_argument("--window-ms", type=float, default=None, help="TRIAGE_BATCH_WINDOW_MS (default: the service's)")
    parser.add_argument("--skip-unbatched", action="store_true", help="measure only the batched service")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "load.json")
    args = parser.parse_args(argv)
    levels = [int(x) for x in args.clients.split(",")]
    texts = real_complaints(args.texts, seed=23)

    batched_env = {} if args.window_ms is None else {"TRIAGE_BATCH_WINDOW_MS": str(args.window_ms)}
    settings = {"batched": batched_env}
    if not args.skip_unbatched:
        settings["unbatched"] = {"TRIAGE_BATCH_MAX_TEXTS": "1"}
    results = {name: run_levels(args.bundle, env, texts, levels, args.requests) for name, env in settings.items()}

    from triage.encoder import get_encoder

    enc = get_encoder()
    enc.encode(texts[:8])
    t0 = time.perf_counter()
    for i in range(0, len(texts), 64):
        enc.encode(texts[i:i + 64])
    bare = len(texts) / (time.perf_counter() - t0)

    chars = statistics.median(len(t) for t in texts)
    print(f"{len(texts)} real complaints (median {chars:.0f} characters); {os.cpu_count()} cores; one run")
    print(f"bare encoder, batches of 64: {bare:.1f} texts/s")
    print(f"{'service':10s}{'clients':>8s}{'req/s':>8s}{'× bare':>8s}{'p50 ms':>9s}{'p99 ms':>9s}{'503s':>7s}")
    for name, rows in results.items():
        for r in rows:
            r["ratio_to_bare_batch"] = r["req_per_s"] / bare
            print(f"{name:10s}{r['clients']:8d}{r['req_per_s']:8.1f}{r['ratio_to_bare_batch']:8.2f}"
                  f"{r['p50_ms']:9.0f}{r['p99_ms']:9.0f}{100 * r['share_503']:6.1f}%")
    out = {"texts": len(texts), "median_chars": chars, "cores": os.cpu_count(), "bare_batch_texts_per_s": bare,
           "levels": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
