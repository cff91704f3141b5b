"""Serving benchmark: HTTP latency and throughput beside the bare encoder, in one run.

``python -m benchmarks.latency [--n 100] [--bundle DIR] [--also DIR]`` starts the service on a
free loopback port in a child process, then on the same texts measures:

1. single-request latency through HTTP (``POST /v1/triage``, one at a time): median and p95;
2. batch throughput (``POST /v1/triage/batch`` with 64 items): texts per second;
3. the bare encoder on the same texts, in this process: one text at a time (median) and in
   batches of 64 (texts per second), on the default backend and on torch;

and prints the overhead as ratios (HTTP single median ÷ encoder single median; encoder batch
throughput ÷ HTTP batch throughput). ``--also DIR`` serves a second bundle afterwards and
measures 1–2 for it on the same texts, with the ratios to the first (for example a bundle whose
few-shot type head reads its own fine-tuned encoder, against the default one). Texts come from the project's own corpora; the server
is idle while the encoder is timed, so the two do not compete for the cores.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from pathlib import Path

from benchmarks._service import ROOT, running_service


def corpus_texts(n: int, seed: int) -> list[str]:
    texts = [json.loads(line)["text"] for f in sorted((ROOT / "corpora" / "complaints").glob("*.jsonl"))
             for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
    random.Random(seed).shuffle(texts)
    return texts[:n]


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.latency", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=128, help="number of texts (default 128)")
    parser.add_argument("--bundle", type=Path, help="bundle to serve (default models/CURRENT)")
    parser.add_argument("--also", type=Path, help="a second bundle to serve and time on the same texts")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    texts = corpus_texts(args.n, args.seed)
    version, single, batch_secs = time_service(args.bundle, texts)

    from triage.encoder.e5 import E5Encoder

    def time_encoder(enc) -> tuple[list[float], float]:
        enc.encode(texts[:5])
        one = []
        for t in texts:
            t0 = time.perf_counter()
            enc.encode([t])
            one.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for i in range(0, len(texts), 64):
            enc.encode(texts[i:i + 64])
        return one, time.perf_counter() - t0

    enc = E5Encoder()                     # the service's default backend (ONNX Runtime when installed)
    enc_single, enc_batch_secs = time_encoder(enc)
    other = None
    if enc.backend != "torch":            # the same model on torch, for the ratio
        other = time_encoder(E5Encoder(backend="torch"))

    chars = statistics.median(len(t) for t in texts)
    http_med, enc_med = statistics.median(single), statistics.median(enc_single)
    http_tps, enc_tps = len(texts) / batch_secs, len(texts) / enc_batch_secs
    print(f"bundle {version}; {len(texts)} corpus texts (median {chars:.0f} characters); "
          f"{os.cpu_count()} cores; one run, side by side")
    print(f"{'':34s}{'median ms':>10s}{'p95 ms':>10s}{'texts/s':>10s}")
    single_row("HTTP POST /v1/triage (one text)", single)
    single_row("bare encoder, one text", enc_single)
    rate_row("HTTP POST /v1/triage/batch (64)", http_tps)
    rate_row("bare encoder, batches of 64", enc_tps)
    if other is not None:
        t_med, t_tps = statistics.median(other[0]), len(texts) / other[1]
        single_row("bare encoder on torch, one text", other[0])
        rate_row("bare encoder on torch, batches of 64", t_tps)
        print(f"backend: {enc.backend} is {t_med/enc_med:.2f}x faster than torch for one text, "
              f"{enc_tps/t_tps:.2f}x in batches")
    print(f"overhead: single request = {http_med/enc_med:.2f}x the bare encode "
          f"(+{(http_med-enc_med)*1e3:.1f} ms); batch throughput = {http_tps/enc_tps:.2f}x the bare encoder's")
    if args.also:
        v2, single2, batch2 = time_service(args.also, texts)
        med2, tps2 = statistics.median(single2), len(texts) / batch2
        print(f"\nbundle {v2}, same texts, served after the first:")
        single_row("HTTP POST /v1/triage (one text)", single2)
        rate_row("HTTP POST /v1/triage/batch (64)", tps2)
        print(f"against {version}: single median {med2/http_med:.2f}x, batch throughput {tps2/http_tps:.2f}x")
    return 0


def single_row(label: str, seconds: list[float]) -> None:
    """A table row for one-text timings: median and p95 in ms, texts per second at the median."""
    med = statistics.median(seconds)
    print(f"{label:34s}{med*1e3:10.1f}{pct(seconds, .95)*1e3:10.1f}{1/med:10.1f}")


def rate_row(label: str, texts_per_second: float) -> None:
    """A table row for batch throughput (texts per second only)."""
    print(f"{label:34s}{'':10s}{'':10s}{texts_per_second:10.1f}")


def time_service(bundle: Path | None, texts: list[str]) -> tuple[str, list[float], float]:
    """Serve ``bundle``; return its version, the single-request latencies and the seconds for
    all texts in batches of 64."""
    import httpx

    with running_service(bundle) as base, httpx.Client(timeout=120) as client:
        version = client.get(f"{base}/v1/model").json()["model_version"]
        for t in texts[:5]:                                     # warm-up
            client.post(f"{base}/v1/triage", json={"text": t})
        single = []
        for t in texts:
            t0 = time.perf_counter()
            r = client.post(f"{base}/v1/triage", json={"text": t})
            single.append(time.perf_counter() - t0)
            r.raise_for_status()
        t0 = time.perf_counter()
        for i in range(0, len(texts), 64):
            client.post(f"{base}/v1/triage/batch",
                        json={"items": [{"text": t} for t in texts[i:i + 64]]}).raise_for_status()
        return version, single, time.perf_counter() - t0


if __name__ == "__main__":
    raise SystemExit(main())
