"""Build a model bundle from labelled complaints and knowledge-base cases.

Each head trains on the records that carry its label. Texts are encoded once (with a
progress bar); the same matrix feeds every head. Deterministic under ``config.seed``.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from triage.bundle import save_bundle, set_current
from triage.cases import CaseIndex
from triage.config import TrainConfig
from triage.encoder.base import Encoder
from triage.encoder.cache import EmbeddingCache
from triage.errors import DataError
from triage.features import FeatureBuilder
from triage.heads import Head
from triage.lexicon import Lexicons
from triage.pipeline import HEAD_NAMES
from triage.segment import Segmenter

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = sorted((ROOT / "corpora" / "complaints").glob("*.jsonl"))
DEFAULT_CASES = sorted((ROOT / "corpora" / "kb").glob("*.jsonl"))


def read_jsonl(paths: Iterable[Path]) -> list[dict]:
    out = []
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise DataError("DATA_NOT_FOUND", f"training file {path} does not exist")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError("DATA_BAD_JSON", f"{path}:{n}: not valid JSON ({exc.msg})") from exc
            if not isinstance(rec, dict) or not isinstance(rec.get("text"), str) or not rec["text"].strip():
                raise DataError("DATA_BAD_RECORD", f"{path}:{n}: expected an object with a non-empty 'text'")
            out.append(rec)
    return out


def data_fingerprint(paths: Sequence[Path]) -> dict:
    files = []
    h = hashlib.sha256()
    for p in paths:
        digest = hashlib.sha256(Path(p).read_bytes()).hexdigest()
        h.update(digest.encode())
        files.append({"path": str(Path(p).resolve().relative_to(ROOT)) if Path(p).resolve().is_relative_to(ROOT)
                      else str(p), "sha256": digest})
    return {"sha256": h.hexdigest(), "files": files}


class Progress:
    """A small progress display on stderr for encoding and fitting (tqdm when available)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def step(self, message: str) -> None:
        if self.enabled:
            import sys
            print(f"[train] {message}", file=sys.stderr, flush=True)

    def encode(self, cache: EmbeddingCache, texts: list[str], kind: str) -> np.ndarray:
        """Encode through the content-hash cache: only texts not seen before are encoded."""
        if not texts:
            return np.zeros((0, cache.dim), np.float32)
        before = cache.misses
        out = cache.encode(texts, kind, progress=self.enabled)
        self.step(f"{kind}: {len(texts)} texts, {cache.misses - before} newly encoded")
        return out


@dataclass
class TrainResult:
    path: Path
    metrics: dict
    seconds: float


def train_bundle(encoder: Encoder, data: Sequence[Path], cases: Sequence[Path], out: Path,
                 config: TrainConfig | None = None, lexicon_dir: Path | None = None,
                 make_current: bool = True, progress: bool = True, cache_dir: Path | None = None) -> TrainResult:
    config = config or TrainConfig()
    prog = Progress(progress)
    t0 = time.perf_counter()
    records = read_jsonl(data)
    if not records:
        raise DataError("DATA_EMPTY", f"no records in {[str(p) for p in data]}")
    case_records = read_jsonl(cases) if cases else []
    lexicons = Lexicons(lexicon_dir) if lexicon_dir else Lexicons()
    texts = [r["text"] for r in records]

    prog.step(f"{len(records)} labelled records, {len(case_records)} knowledge-base cases")
    cache = encoder if isinstance(encoder, EmbeddingCache) else EmbeddingCache(encoder, cache_dir)
    emb = prog.encode(cache, texts, "query")
    case_emb = prog.encode(cache, [c["text"] for c in case_records], "passage")

    features = FeatureBuilder(Segmenter(), config.features).fit(texts)
    signals, _, _ = lexicons.signals(texts)
    X = features.transform(texts, emb, signals)

    heads: dict[str, Head] = {}
    label_counts: dict[str, dict] = {}
    metrics: dict[str, dict] = {}
    for name in HEAD_NAMES:
        rows = [i for i, r in enumerate(records) if r.get(name) is not None and str(r.get(name)).strip() != ""]
        if not rows:
            raise DataError("HEAD_NO_LABELS", f"no record carries a {name!r} label; every head needs labels")
        y = [str(records[i][name]) for i in rows]
        prog.step(f"fitting {name} on {len(rows)} records ({len(set(y))} classes)")
        head = Head(name, config.heads.get(name), seed=config.seed, n_jobs=config.n_jobs).fit(X[rows], y)
        heads[name] = head
        label_counts[name] = head.label_counts_
        metrics[name] = head.cv_metrics_
    index = CaseIndex.build(case_records, case_emb)
    fp = data_fingerprint(list(data) + list(cases))
    fp["records"] = len(records)
    fp["cases"] = len(case_records)
    fp["label_counts"] = label_counts
    now = datetime.now(timezone.utc)
    version = f"tb-{now:%Y%m%d-%H%M%S}-{fp['sha256'][:8]}"
    metrics_all = {"cross_validated": metrics}
    path = save_bundle(out, version, features=features, heads=heads, lexicons=lexicons, cases=index,
                       config=config, encoder=encoder, training_data=fp, metrics=metrics_all,
                       report_md=render_report(version, fp, metrics_all), created_at=now.isoformat())
    if make_current:
        set_current(out, version)
    secs = time.perf_counter() - t0
    prog.step(f"bundle {path} written in {secs:.1f}s")
    return TrainResult(path, metrics_all, secs)


def render_report(version: str, data: dict, metrics: dict) -> str:
    lines = [f"# Bundle {version}", "", f"Trained on {data['records']} labelled records and "
             f"{data['cases']} knowledge-base cases (data sha256 `{data['sha256'][:16]}…`).", "",
             "## Cross-validated metrics (out-of-fold, calibrated)", "",
             "| head | n | folds | macro-F1 | accuracy | ECE | ECE before calibration |",
             "|---|---|---|---|---|---|---|"]
    for head, m in metrics["cross_validated"].items():
        if m:
            lines.append(f"| {head} | {m['n']} | {m['folds']} | {m['macro_f1']:.3f} | {m['accuracy']:.3f} | "
                         f"{m['ece']:.3f} | {m['ece_uncalibrated']:.3f} |")
    lines += ["", "## Label counts", ""]
    for head, counts in data["label_counts"].items():
        lines.append(f"- **{head}**: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return "\n".join(lines) + "\n"
