"""Bulk triage benchmark: Ray Data (local mode) against the single-process path, in one run.

``python -m benchmarks.bulk [--n 200000] [--distinct 4000] [--bundle DIR]``

Writes ``--n`` real complaints from ``../shared/data`` (``--distinct`` different ones, repeated
in order) as JSONL to a temporary folder, then runs, each as its own command:

1. ``python -m triage predict`` (one process);
2. ``python -m triage predict --engine ray --workers 1``;
3. ``python -m triage predict --engine ray --workers 2``;

and prints texts per second, wall time and peak memory (the largest sum of resident memory
over the command's process tree — for Ray the driver, raylet, object store and workers —
sampled every 0.2 s), and whether each Ray output equals the single-process output byte for
byte. From the 1- and 2-worker times it fits ``T(k) = S + W / k`` (``S``: the serial part —
start-up, Ray's start, reading and numbering the input, writing the output on the driver;
``W``: the triage work shared among ``k`` workers) and prints the estimate for N machines of
this machine's core count. Figures go to ``benchmarks/results/bulk.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks._real import real_complaints
from benchmarks._service import ROOT


def tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and every process below it (from /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
            rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo += children.get(p, [])
    return total


def timed(cmd: list[str]) -> dict:
    """Run ``cmd``; its wall time, exit status and peak process-tree memory."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    peak = [0]

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], tree_rss(proc.pid))
            time.sleep(0.2)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - t0
    sampler.join()
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-3000:]}")
    return {"wall_s": wall, "peak_rss_mb": peak[0] / 2**20, "rc": proc.returncode}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bulk", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200_000, help="complaints to triage (default 200,000)")
    parser.add_argument("--distinct", type=int, default=4000, help="different complaints, repeated to --n")
    parser.add_argument("--bundle", type=Path, help="bundle (default models/CURRENT)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bulk.json")
    args = parser.parse_args(argv)

    texts = real_complaints(args.distinct, seed=31)
    tmp = Path(tempfile.mkdtemp(prefix="bulk-bench-"))
    src = tmp / "in.jsonl"
    with src.open("w", encoding="utf-8") as fh:
        for i in range(args.n):
            fh.write(json.dumps({"id": f"c{i}", "text": texts[i % len(texts)]}, ensure_ascii=False) + "\n")
    base = [sys.executable, "-m", "triage", "predict", "--input", str(src)]
    if args.bundle:
        base += ["--bundle", str(args.bundle)]
    runs = {"single process": (base + ["--output", str(tmp / "local.jsonl")], tmp / "local.jsonl"),
            "ray, 1 worker": (base + ["--output", str(tmp / "ray1.jsonl"), "--engine", "ray", "--workers", "1"],
                              tmp / "ray1.jsonl"),
            "ray, 2 workers": (base + ["--output", str(tmp / "ray2.jsonl"), "--engine", "ray", "--workers", "2"],
                               tmp / "ray2.jsonl")}
    results = {}
    for name, (cmd, _) in runs.items():
        results[name] = timed(cmd)
        results[name]["texts_per_s"] = args.n / results[name]["wall_s"]
        print(f"{name}: {results[name]['texts_per_s']:.1f} texts/s", flush=True)
    reference = (tmp / "local.jsonl").read_bytes()
    for name, (_, out) in runs.items():
        results[name]["identical_to_single_process"] = out.read_bytes() == reference
    t1, t2 = results["ray, 1 worker"]["wall_s"], results["ray, 2 workers"]["wall_s"]
    work = 2 * (t1 - t2)                  # T(1) = S + W, T(2) = S + W/2
    serial = t1 - work
    cores = os.cpu_count() or 1
    estimate = {str(m): args.n / (serial + work / (m * cores)) for m in (1, 2, 4, 8, 16)}
    print(f"\n{args.n} real complaints ({len(texts)} distinct, repeated); {cores} cores; one run")
    print(f"{'path':18s}{'texts/s':>9s}{'wall s':>9s}{'peak MB':>9s}{'same answers':>14s}")
    for name, r in results.items():
        print(f"{name:18s}{r['texts_per_s']:9.1f}{r['wall_s']:9.0f}{r['peak_rss_mb']:9.0f}"
              f"{str(r['identical_to_single_process']):>14s}")
    print(f"fit T(k) = S + W/k from 1 and 2 workers: serial S = {serial:.0f} s, parallel work W = {work:.0f} s "
          f"({args.n / max(work, 1e-9):.1f} texts/s per worker)")
    print("estimate for N machines of this size (one worker per core): "
          + ", ".join(f"N={m}: {v:.0f} texts/s" for m, v in estimate.items()))
    out = {"n": args.n, "distinct": len(texts), "cores": cores, "runs": results,
           "fit": {"serial_s": serial, "parallel_work_s": work}, "estimate_texts_per_s_by_machines": estimate}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
