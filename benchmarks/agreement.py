"""How quickly several workers agree: two replicas of the service on one database, a case
written through one and searched for through the other, and reloads made through one and
followed by the other.

    python -m benchmarks.agreement [--database-url URL] [--cases 30] [--reloads 6] [--bundle DIR]

Runs on PostgreSQL (the local test server by default, in a schema of its own that is dropped
afterwards: followers wake on ``NOTIFY``) and on SQLite (followers poll every
``TRIAGE_SYNC_SECONDS`` / 4), side by side, and prints per database the median, 95th percentile
and maximum of: a case's delay until the other replica finds it, and a reload's delay until the
other replica serves the new bundle (that includes loading it). Without ``--bundle`` a small
bundle is trained on the hashing encoder first (the delays do not depend on the encoder; a
reload of a real bundle adds its load time). Figures go to ``benchmarks/results/agreement.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from benchmarks._service import ROOT, free_port

RESULTS = ROOT / "benchmarks" / "results" / "agreement.json"
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TEXT = "快递显示已签收但我根本没收到包裹，客服一直推脱"


def _tiny_bundle(folder: Path) -> Path:
    from triage.encoder.hashing import HashingEncoder
    from training.train import train_bundle

    corpus = folder / "corpus"
    corpus.mkdir()
    for name, files, per in (("complaints.jsonl", ["au", "ec", "fi", "ts", "tu"], 40), ("cases.jsonl", None, 30)):
        paths = sorted((ROOT / "corpora" / "kb").glob("*.jsonl")) if files is None else \
            [ROOT / "corpora" / "complaints" / f"{s}.jsonl" for s in files]
        lines = [ln for p in paths for ln in p.read_text(encoding="utf-8").splitlines()[:per] if ln.strip()]
        (corpus / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return train_bundle(HashingEncoder(), [corpus / "complaints.jsonl"], [corpus / "cases.jsonl"], folder / "built",
                        progress=False, cache_dir=folder / "cache").path


def _models(bundle: Path, folder: Path) -> Path:
    models = folder / "models"
    models.mkdir()
    for name in ("bundle-a", "bundle-b"):
        shutil.copytree(bundle, models / name)
        manifest = models / name / "manifest.json"          # not hashed: a copy may take its folder's name
        manifest.write_text(json.dumps({**json.loads(manifest.read_text(encoding="utf-8")), "bundle_version": name}),
                            encoding="utf-8")
    (models / "CURRENT").write_text("bundle-a\n", encoding="utf-8")
    return models


def _start(url: str, models: Path, encoder: str, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "TRIAGE_DATABASE_URL": url, "TRIAGE_MODELS_DIR": str(models), "TRIAGE_ENCODER": encoder}
    env.pop("TRIAGE_BUNDLE", None)
    proc = subprocess.Popen([sys.executable, "-m", "api", "--port", str(port), "--log-level", "warning"], cwd=ROOT,
                            env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while True:
        try:
            if httpx.get(base + "/readyz", timeout=5).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"a replica did not become ready; see {log}")
        time.sleep(0.3)


def _wait(check, timeout: float = 30.0) -> float:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise SystemExit(f"no agreement within {timeout} s")
        time.sleep(0.005)
    return time.monotonic() - start


def _stats(xs: list[float]) -> dict:
    xs = sorted(xs)
    return {"n": len(xs), "median_s": round(statistics.median(xs), 4),
            "p95_s": round(xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))], 4), "max_s": round(xs[-1], 4)}


def measure(url: str, models: Path, encoder: str, n_cases: int, n_reloads: int, folder: Path, label: str) -> dict:
    (one, a), (two, b) = (_start(url, models, encoder, folder / f"{label}-{i}.log") for i in (1, 2))
    try:
        with httpx.Client(timeout=120) as c:
            case_delays = []
            for i in range(n_cases):
                case_id = f"bench-{label}-{i}"
                r = c.post(a + "/v1/cases", json={"cases": [{"case_id": case_id, "text": f"{TEXT}{i}",
                                                             "metadata": {"tag": case_id}}]})
                r.raise_for_status()
                query = {"text": f"{TEXT}{i}", "k": 1, "mode": "bm25", "filters": {"metadata": {"tag": case_id}}}
                case_delays.append(_wait(lambda: bool(c.post(b + "/v1/similar", json=query).json()["hits"])))
            reload_delays = []
            for i in range(n_reloads):
                target = ("bundle-b", "bundle-a")[i % 2]
                c.post(a + "/v1/admin/reload", json={"bundle": target}).raise_for_status()
                reload_delays.append(_wait(lambda: c.get(b + "/readyz").json()["bundle"] == target))
        return {"case_found_by_other_replica": _stats(case_delays),
                "reload_followed_by_other_replica": _stats(reload_delays)}
    finally:
        for proc in (one, two):
            proc.terminate()
            proc.wait(30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.agreement", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("TRIAGE_TEST_DATABASE_URL") or PG_DEFAULT,
                        help="a PostgreSQL server to use (a schema is made and dropped)")
    parser.add_argument("--cases", type=int, default=30)
    parser.add_argument("--reloads", type=int, default=6)
    parser.add_argument("--bundle", type=Path, help="a bundle to serve (default: a small one trained here)")
    parser.add_argument("--encoder", default=None, help="the bundle's encoder (default: e5-small with --bundle)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    import psycopg
    from sqlalchemy.engine import make_url

    from triage.db import mask_url

    with tempfile.TemporaryDirectory(prefix="agreement-") as tmp:
        folder = Path(tmp)
        bundle = args.bundle or _tiny_bundle(folder)
        encoder = args.encoder or ("e5-small" if args.bundle else "hashing-test")
        models = _models(bundle, folder)
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        conninfo = make_url(args.database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        sep = "&" if "?" in args.database_url else "?"
        pg_url = f"{args.database_url}{sep}options=-csearch_path%3D{schema}"
        results = {}
        try:
            results["postgresql"] = measure(pg_url, models, encoder, args.cases, args.reloads, folder, "pg")
        finally:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        results["sqlite"] = measure(f"sqlite:///{folder / 'agreement.db'}", models, encoder, args.cases, args.reloads,
                                    folder, "sqlite")
    out = {"benchmark": "agreement", "command": "python -m benchmarks.agreement " + " ".join(argv or sys.argv[1:]),
           "database": mask_url(args.database_url), "encoder": encoder, "sync_seconds": 2.0,
           "machine": {"cpus": os.cpu_count()}, "results": results}
    print(f"{'database':<11} {'what':<36} {'n':>3} {'median s':>9} {'p95 s':>7} {'max s':>7}")
    for db, r in results.items():
        for what, s in r.items():
            print(f"{db:<11} {what:<36} {s['n']:>3} {s['median_s']:>9.3f} {s['p95_s']:>7.3f} {s['max_s']:>7.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
