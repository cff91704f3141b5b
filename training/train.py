"""Build a model bundle from labelled complaints and knowledge-base cases.

Each head trains on the records that carry its label; a head with no labels in the data is
taken, with the feature builder it was fitted on, from ``base`` (an existing bundle) — or the
run stops with a message saying which head lacks labels. A new taxonomy is just new labels.
Texts are encoded once, through the content-hash cache (a retrain encodes only texts it has not
seen), and the same matrix feeds every new head — except a few-shot head named in
``config.fine_tune``, which gets its own contrastively fine-tuned copy of the encoder
(``training/finetune.py``) and is fitted on that copy's embeddings; the bundle stores the copy.
Deterministic under ``config.seed``.

Every bundle carries an evaluation report: out-of-fold per-class precision/recall/F1,
confusion matrices and calibration for each head, and first the 危机 recall of the served
crisis-first decision (the severity head's out-of-fold probabilities combined with the cues).
"""
from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from sklearn.metrics import f1_score

from triage.bundle import (check_encoder, current_bundle, load_parts, read_cases, save_bundle, set_current,
                           verify_bundle)
from triage.cases import CaseIndex
from triage.config import SeverityRule, TrainConfig
from triage.encoder.base import Encoder
from triage.encoder.cache import EmbeddingCache
from triage.encoder.finetuned import FineTunedEncoder, fine_tunable
from triage.errors import DataError
from triage.doc import Reader
from triage.features import FeatureBuilder
from triage.heads import DenseBlock, Head
from triage.lexicon import Lexicons
from triage.paths import CORPORA, ROOT
from triage.vocab import GRADES, HEAD_NAMES, LABEL_DOMAINS
from triage.segment import Segmenter
from triage.severity import decide
from training.finetune import fine_tune_encoder

log = logging.getLogger(__name__)

DEFAULT_DATA = sorted((CORPORA / "complaints").glob("*.jsonl"))
DEFAULT_CASES = sorted((CORPORA / "kb").glob("*.jsonl"))


def iter_json_lines(path: Path, code: str) -> Iterable[tuple[int, object]]:
    """``(line number, parsed value)`` for every non-blank line; a bad line raises
    ``DataError(code)`` naming the file and line."""
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield n, json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(code, f"{path}:{n}: not valid JSON ({exc.msg})") from exc


def read_jsonl(paths: Iterable[Path]) -> list[dict]:
    out = []
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise DataError("DATA_NOT_FOUND", f"training file {path} does not exist")
        for n, rec in iter_json_lines(path, "DATA_BAD_JSON"):
            if not isinstance(rec, dict) or not isinstance(rec.get("text"), str) or not rec["text"].strip():
                raise DataError("DATA_BAD_RECORD", f"{path}:{n}: expected an object with a non-empty 'text'")
            out.append(rec)
    return out




def has_label(record: dict, name: str) -> bool:
    return record.get(name) is not None and str(record.get(name)).strip() != ""


def check_labels(records: Sequence[dict]) -> None:
    """Severity, emotion and intensity have fixed domains (LABELS.md); complaint types are the
    deployment's own. A bad value stops the run, naming the record."""
    for n, r in enumerate(records, 1):
        for name, domain in LABEL_DOMAINS.items():
            if has_label(r, name) and str(r[name]).strip() not in domain:
                raise DataError("DATA_BAD_LABEL", f"record {r.get('id', f'#{n}')!r}: {name} {r[name]!r} is not "
                                f"one of {list(domain)}")


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
    made_current: bool = False


@dataclass
class BaseBundle:
    """What a retrain can reuse from an existing bundle."""
    path: Path
    manifest: dict
    features: dict
    heads: dict
    cases: list[dict]
    case_embeddings: np.ndarray
    encoder_files: dict[str, Path]     # head → its fine-tuned encoder's weights, if it has one

    @classmethod
    def load(cls, path: str | Path, encoder: Encoder) -> "BaseBundle":
        path = Path(path)
        manifest = verify_bundle(path)
        check_encoder(manifest, encoder, path, user="this run")
        parts = load_parts(path)
        files = {n: path / e["file"] for n, e in manifest.get("head_encoders", {}).items()}
        return cls(path, manifest, parts["features"], parts["heads"], *read_cases(path), files)


def fine_tune_head(name: str, texts: list[str], y: list[str], encoder: Encoder, config: TrainConfig,
                   workdir: Path, prog: "Progress"):
    """For a few-shot head: fine-tune a copy of the encoder on its labelled texts when the config
    asks for it (``config.fine_tune``) and the encoder allows it. Returns ``(encoder behind an
    embedding cache in workdir, weights file, what the manifest records)``, or ``None`` to keep
    the shared, frozen encoder."""
    ft = config.fine_tune
    if name not in ft.heads:
        return None
    if len(texts) > ft.max_texts:
        prog.step(f"{name}: few-shot, but {len(texts)} texts > fine_tune.max_texts {ft.max_texts}: frozen encoder")
        return None
    model_dir = fine_tunable(encoder)
    if model_dir is None:
        prog.step(f"{name}: few-shot; the encoder {encoder.name} cannot be fine-tuned, so the head uses its "
                  "frozen embeddings")
        return None
    weights = workdir / f"{name}.safetensors"
    info = fine_tune_encoder(model_dir, texts, y, ft, config.seed, weights, prog.step)
    tuned = FineTunedEncoder(weights, model_dir)
    return EmbeddingCache(tuned, workdir / "embeddings"), weights, {**info, "encoder": tuned.name}


def read_and_fit(reader: Reader, features: FeatureBuilder, texts: list[str]):
    """Read every text once; fit the lexical vocabularies on them. Returns the lexical block,
    the cue-and-lexicon signal matrix and each text's cue matches."""
    docs = reader.read(texts)
    return features.fit_lexical(docs), reader.lexicons.signals(docs), [d.cues for d in docs]


# Fewer real 危机 rows than this and the operating point is set on every representative row.
MIN_REAL_CRISES = 30


def operating_rows(rows: Sequence[int], y: Sequence[str], representative: np.ndarray,
                   n_files: int) -> tuple[np.ndarray, str]:
    """The rows (indices into the head's rows) the crisis threshold is chosen on, and what they
    are. Real complaints drawn at random — the annotations and supervisors' decisions that came
    beside the data files — are what the service will see, so they set the operating point
    when they hold at least ``MIN_REAL_CRISES`` crises; otherwise every representative row
    does (the data files' records included)."""
    real = np.flatnonzero(np.asarray([r >= n_files for r in rows]) & representative)
    if sum(y[k] == "危机" for k in real) >= MIN_REAL_CRISES:
        return real, "real complaints drawn at random"
    return np.flatnonzero(representative), "representative records"


def record_weights(n_files: int, n_extra: int, real_weight: float) -> np.ndarray:
    """Loss weights for ``n_files`` records from the data files followed by ``n_extra`` records
    that came beside them (annotated real complaints, supervisors' corrections): 1 and
    ``real_weight``; all 1 when the run has only one kind. A head scales its rows' weights to
    average 1 (:func:`head_weights`). With the severity head on the default corpus and the 1,781
    annotated rows (seed 13), out-of-fold macro-F1 on the annotated rows was 0.643 at 1, 0.648 at
    2 and 0.641 at 3."""
    if not n_files or not n_extra:
        return np.ones(n_files + n_extra)
    return np.concatenate([np.ones(n_files), np.full(n_extra, float(real_weight))])


def head_weights(weights: np.ndarray, rows: Sequence[int]) -> np.ndarray | None:
    """The weights of a head's rows scaled to average 1 (so C keeps its meaning); ``None`` when
    they are all equal, which leaves the fit exactly unweighted."""
    w = weights[np.asarray(rows, dtype=np.int64)]
    if not len(w) or np.ptp(w) == 0:
        return None
    return w / w.mean()


def choose_crisis_threshold(y: Sequence[str], proba: np.ndarray, classes: Sequence[str], cues: Sequence[list],
                            rule: SeverityRule) -> float:
    """The largest crisis threshold (a 0.01 grid from 0.05 to 0.95) at which the served decision
    — 危机 when P(危机) reaches the threshold or an asserted cue forces it — recalls at least
    ``rule.target_recall`` of the 危机 records, on out-of-fold probabilities. Missing a crisis
    costs more than a false alarm, so the operating point is set by recall, from the training
    data, never from an evaluation set."""
    gold = np.asarray([t == "危机" for t in y])
    if rule.target_recall is None or not gold.any():
        return rule.crisis_threshold
    p = proba[:, list(classes).index("危机")]
    forced = np.asarray([decide({}, c, rule).cue_label == "危机" for c in cues], dtype=bool)   # the cues alone
    for t in np.round(np.arange(0.95, 0.049, -0.01), 2):
        if ((p >= t) | forced)[gold].mean() >= rule.target_recall:
            return float(t)
    return 0.05


def choose_major_threshold(y: Sequence[str], proba: np.ndarray, classes: Sequence[str], cues: Sequence[list],
                           rule: SeverityRule) -> float:
    """The threshold on P(重点) + P(危机) (a 0.05 grid from 0.2 to 0.8) at which the served
    decision, with ``rule``'s crisis threshold, has the best macro-F1 on these out-of-fold
    probabilities: once crises are found, the line between 一般 and 重点 is drawn where it
    separates them best."""
    if len(set(y)) < 3:
        return rule.major_threshold
    rows = [{str(k): float(v) for k, v in zip(classes, row)} for row in proba]
    best, best_f1 = rule.major_threshold, -1.0
    for t in np.round(np.arange(0.2, 0.801, 0.05), 2):
        r = rule.model_copy(update={"major_threshold": float(t)})
        pred = [decide(p, c, r).label for p, c in zip(rows, cues)]
        f1 = float(f1_score(list(y), pred, average="macro", labels=list(GRADES)))
        if f1 > best_f1 + 1e-9:
            best, best_f1 = float(t), f1
    return best


def crisis_metrics(y: Sequence[str], proba: np.ndarray, classes: Sequence[str], cues: Sequence[list],
                   config: TrainConfig) -> dict:
    """危机 recall and precision of the served decision (out-of-fold probabilities + cues) and of
    the model alone."""
    served, model_only = [], []
    for row, c in zip(proba, cues):
        d = decide({str(k): float(v) for k, v in zip(classes, row)}, c, config.severity_rule)
        served.append(d.label)
        model_only.append(d.model_label)

    def pr(pred: list[str]) -> dict:
        tp = sum(p == t == "危机" for p, t in zip(pred, y))
        return {"recall": round(tp / max(1, sum(t == "危机" for t in y)), 4),
                "precision": round(tp / max(1, sum(p == "危机" for p in pred)), 4)}
    return {"support": sum(t == "危机" for t in y), "served": pr(served), "model_only": pr(model_only),
            "crisis_threshold": config.severity_rule.crisis_threshold,
            "target_recall": config.severity_rule.target_recall}


def train_bundle(encoder: Encoder, data: Sequence[Path], cases: Sequence[Path] | None, out: Path,
                 config: TrainConfig | None = None, lexicon_dir: Path | None = None,
                 make_current: bool | None = None, progress: bool = True, cache_dir: Path | None = None,
                 base: str | Path | None = None, extra_records: Sequence[dict] = (),
                 extra_source: str = "feedback") -> TrainResult:
    """Train and save a bundle. ``cases=None`` reuses the base bundle's cases (or the project's
    knowledge base without a base). ``make_current=None`` points ``out/CURRENT`` at the new
    bundle only when there is no CURRENT yet; replacing a serving bundle is
    ``python -m training promote``'s job."""
    config = config or TrainConfig()
    prog = Progress(progress)
    t0 = time.perf_counter()
    records = (read_jsonl(data) if data else []) + list(extra_records)
    weights = record_weights(len(records) - len(extra_records), len(extra_records), config.real_weight)
    if not records:
        raise DataError("DATA_EMPTY", f"no training records: the files {[str(p) for p in data or []]} and the "
                        f"{extra_source} ({len(extra_records)} records) hold none")
    check_labels(records)
    cache = encoder if isinstance(encoder, EmbeddingCache) else EmbeddingCache(encoder, cache_dir)
    base_bundle = BaseBundle.load(base, cache) if base else None
    if lexicon_dir is None and base_bundle is not None:
        lexicon_dir = base_bundle.path / "lexicons"      # base heads were fitted on these signals
    lexicons = Lexicons(lexicon_dir) if lexicon_dir else Lexicons()
    if cases is None and base_bundle is not None:
        case_records, case_emb = base_bundle.cases, base_bundle.case_embeddings
    else:
        case_records = read_jsonl(cases if cases is not None else DEFAULT_CASES)
        case_emb = None

    trained = [n for n in HEAD_NAMES if any(has_label(r, n) for r in records)]
    missing = [n for n in HEAD_NAMES if n not in trained]
    if "severity" in missing and base_bundle is not None:
        # the base's severity head comes with the operating point chosen for it
        rule = base_bundle.manifest.get("config", {}).get("severity_rule")
        if rule:
            config = config.model_copy(update={"severity_rule": SeverityRule.model_validate(rule)})
    if missing and base_bundle is None:
        raise DataError("HEAD_NO_LABELS", f"no record carries a label for {missing}; every head needs labels, "
                        "or give --base BUNDLE to take those heads from an existing bundle")
    prog.step(f"{len(records)} labelled records ({len(extra_records)} from {extra_source}), "
              f"{len(case_records)} knowledge-base cases; training {trained}"
              + (f", taking {missing} from {base_bundle.path.name}" if missing else ""))
    texts = [r["text"] for r in records]
    features = FeatureBuilder(Segmenter(), config.features)
    # Segmentation, n-gram vocabularies and cue signals are single-threaded Python; the encoder
    # releases the GIL, so the lexical side runs beside the encoding instead of after it.
    with ThreadPoolExecutor(max_workers=1) as pool:
        lexical_side = pool.submit(read_and_fit, Reader(features.segmenter, lexicons), features, texts)
        emb = prog.encode(cache, texts, "query")
        if case_emb is None:
            case_emb = prog.encode(cache, [c["text"] for c in case_records], "passage")
        lexical, signals, cues = lexical_side.result()
    X = features.assemble(lexical, emb, signals)

    heads: dict[str, Head] = {}
    builders: dict[str, FeatureBuilder] = {}
    label_counts: dict[str, dict] = {}
    metrics: dict[str, dict] = {}
    crisis: dict = {}
    # few-shot heads with a fine-tuned encoder: head → (weights file, what the manifest records)
    head_encoders: dict[str, tuple[Path, dict]] = {}
    scratch = tempfile.TemporaryDirectory(prefix="triage-train-")     # fine-tuned weights until saved
    for name in HEAD_NAMES:
        if name in missing:
            heads[name], builders[name] = base_bundle.heads[name], base_bundle.features[name]
            if name in base_bundle.encoder_files:          # the head's fine-tuned encoder comes along
                head_encoders[name] = (base_bundle.encoder_files[name], {
                    **base_bundle.manifest["head_encoders"][name], "from_base": base_bundle.path.name})
            label_counts[name] = base_bundle.manifest["training_data"]["label_counts"].get(name, {})
            metrics[name] = {**base_bundle.manifest["metrics"]["cross_validated"].get(name, {}),
                             "from_base": base_bundle.path.name}
            continue
        rows = [i for i, r in enumerate(records) if has_label(r, name)]
        y = [str(records[i][name]).strip() for i in rows]
        sample_weight = head_weights(weights, rows)
        prog.step(f"fitting {name} on {len(rows)} records ({len(set(y))} classes)"
                  + (f"; {extra_source} weigh {config.real_weight:g}×" if sample_weight is not None else ""))
        calibration = [records[i].get("sampling", "random") == "random" for i in rows]
        params = config.heads.get(name)
        dense = None
        X_head, head_encoder = X[rows], cache
        if Head.few_shot(y, params):
            tuned = fine_tune_head(name, [texts[i] for i in rows], y, cache, config, Path(scratch.name), prog)
            if tuned is not None:
                # the head reads its own fine-tuned encoder's embeddings (the lexical part and
                # the signals are the shared ones)
                head_encoder, weights_file, info = tuned
                head_encoders[name] = (weights_file, info)
                emb_head = prog.encode(head_encoder, [texts[i] for i in rows], "query")
                X_head = features.assemble(lexical[rows], emb_head, signals[rows])
            # few labelled examples per class: the head may blend in class prototypes, which
            # also use the embeddings of the class names (a handful of texts, cached)
            names = sorted(set(y))
            dense = DenseBlock(features.n_lexical, features.n_lexical + emb.shape[1],
                               config.features.embedding_weight,
                               dict(zip(names, head_encoder.encode(names, "query"))))
        head = Head(name, params, seed=config.seed, n_jobs=config.n_jobs).fit(X_head, y, calibration, dense,
                                                                              sample_weight=sample_weight)
        if head.blend_:
            prog.step(f"{name}: few-shot, linear scores blended with class prototypes {head.cv_metrics_['prototype_blend']}")
        heads[name], builders[name] = head, features
        label_counts[name] = head.label_counts_
        metrics[name] = head.cv_metrics_
        if name == "severity" and getattr(head, "oof_proba_", None) is not None:
            row_cues = [cues[i] for i in rows]
            keep, kind = operating_rows(rows, y, head.oof_calibration_, len(records) - len(extra_records))
            t = choose_crisis_threshold([y[k] for k in keep], head.oof_proba_[keep], head.classes_,
                                        [row_cues[k] for k in keep], config.severity_rule)
            rule = config.severity_rule.model_copy(update={"crisis_threshold": t})
            if rule.target_recall is not None:
                rule = rule.model_copy(update={"major_threshold": choose_major_threshold(
                    [y[k] for k in keep], head.oof_proba_[keep], head.classes_, [row_cues[k] for k in keep], rule)})
            config = config.model_copy(update={"severity_rule": rule})
            prog.step(f"crisis threshold {t:.2f} (out-of-fold served 危机 recall ≥ {rule.target_recall} on "
                      f"{len(keep)} {kind}); 重点 threshold {rule.major_threshold:.2f} (best macro-F1 there)")
            crisis = crisis_metrics(y, head.oof_proba_, head.classes_, row_cues, config)
    if not crisis and base_bundle is not None:
        crisis = {**base_bundle.manifest["metrics"].get("crisis", {}), "from_base": base_bundle.path.name}
    index = CaseIndex.build(case_records, case_emb)
    fp = data_fingerprint(list(data or []) + list(cases or []))
    if extra_records:
        h = hashlib.sha256(fp["sha256"].encode())
        for r in extra_records:
            h.update(json.dumps(r, ensure_ascii=False, sort_keys=True).encode())
        fp["sha256"] = h.hexdigest()
        fp["files"].append({"path": extra_source, "records": len(extra_records)})
    fp.update(records=len(records), cases=len(case_records), label_counts=label_counts,
              base=base_bundle.path.name if base_bundle else None)
    if np.ptp(weights) > 0:
        fp["weighted"] = {"records": len(extra_records), "source": extra_source, "weight": config.real_weight}
    now = datetime.now(timezone.utc)
    version = f"tb-{now:%Y%m%d-%H%M%S}-{fp['sha256'][:8]}"
    metrics_all = {"crisis": crisis, "cross_validated": metrics}
    try:
        path = save_bundle(out, version, features=builders, heads=heads, lexicons=lexicons, cases=index,
                           config=config, encoder=encoder, training_data=fp, metrics=metrics_all,
                           report_md=render_report(version, fp, metrics_all,
                                                   {n: info for n, (_, info) in head_encoders.items()}),
                           created_at=now.isoformat(), head_encoders=head_encoders)
    finally:
        scratch.cleanup()
    made_current = False
    if make_current or (make_current is None and current_bundle(out) is None):
        set_current(out, version)
        made_current = True
    secs = time.perf_counter() - t0
    prog.step(f"bundle {path} written in {secs:.1f}s" + (" (now CURRENT)" if made_current else ""))
    return TrainResult(path, metrics_all, secs, made_current)


def _table(per_class: dict) -> list[str]:
    lines = ["| class | support | precision | recall | F1 |", "|---|---|---|---|---|"]
    lines += [f"| {c} | {m['support']} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} |"
              for c, m in per_class.items()]
    return lines


def render_report(version: str, data: dict, metrics: dict, fine_tuned: dict | None = None) -> str:
    lines = [f"# Bundle {version}", "", f"Trained on {data['records']} labelled records and "
             f"{data['cases']} knowledge-base cases (data sha256 `{data['sha256'][:16]}…`)"
             + (f", heads without new labels taken from `{data['base']}`" if data.get("base") else "") + "."]
    if data.get("weighted"):
        w = data["weighted"]
        lines.append(f"The {w['records']} records from {w['source']} weigh {w['weight']:g}× a record of the data "
                     "files in every head's loss.")
    lines.append("")
    c = metrics.get("crisis") or {}
    lines += ["## 危机 recall (out-of-fold, served crisis-first decision)", ""]
    if c.get("served"):
        lines += [f"- served decision: recall **{c['served']['recall']:.3f}**, precision {c['served']['precision']:.3f} "
                  f"({c['support']} 危机 records)",
                  f"- severity head alone: recall {c['model_only']['recall']:.3f}, precision {c['model_only']['precision']:.3f}"]
        if c.get("crisis_threshold") is not None:
            how = (f"the largest giving out-of-fold served recall ≥ {c['target_recall']} on the records not "
                   "chosen by active learning" if c.get("target_recall")
                   else "fixed in the configuration")
            lines.append(f"- crisis threshold P(危机) ≥ {c['crisis_threshold']:.2f} ({how})")
        if c.get("from_base"):
            lines.append(f"- (severity head taken from `{c['from_base']}`)")
    else:
        lines.append("- not measured (no severity labels)")
    lines += ["", "## Cross-validated metrics (out-of-fold, calibrated)", "",
              "| head | n | folds | macro-F1 | accuracy | ECE | ECE before calibration |",
              "|---|---|---|---|---|---|---|"]
    for head, m in metrics["cross_validated"].items():
        if m.get("macro_f1") is not None:
            src = f" (from `{m['from_base']}`)" if m.get("from_base") else ""
            lines.append(f"| {head}{src} | {m['n']} | {m['folds']} | {m['macro_f1']:.3f} | {m['accuracy']:.3f} | "
                         f"{m['ece']:.3f} | {m['ece_uncalibrated']:.3f} |")
    for head, m in metrics["cross_validated"].items():
        if m.get("prototype_blend"):
            b = m["prototype_blend"]
            lines.append(f"\n{head} is few-shot: its scores blend the linear head ({b['linear_share']:.0%}) with "
                         f"class prototypes ({1 - b['linear_share']:.0%}; class-name share {b['label_weight']:.0%}), "
                         "chosen on these out-of-fold predictions.")
    for head, f in (fine_tuned or {}).items():
        src = f" (taken from `{f['from_base']}`)" if f.get("from_base") else ""
        lines.append(f"\n{head} reads its own copy of the encoder{src}, fine-tuned contrastively on its "
                     f"{f['texts']} labelled texts ({f['classes']} classes, {f['steps']} steps, {f['seconds']:g}s; "
                     f"loss per epoch {f['epoch_losses']}); the service encodes a batch once more for it.")
    lines += ["", "## Confidence: share of answers at or above a top probability, and their accuracy", "",
              "Use it to set `ReviewThresholds`: below the threshold an answer asks for review.", "",
              "| head | " + " | ".join(f"≥ {t:.1f}" for t in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)) + " |",
              "|---" * 8 + "|"]
    for head, m in metrics["cross_validated"].items():
        if m.get("by_confidence"):
            lines.append(f"| {head} | " + " | ".join(
                f"{b['coverage']:.0%} @ {b['accuracy']:.2f}" if b["accuracy"] is not None else "—"
                for b in m["by_confidence"]) + " |")
    for head, m in metrics["cross_validated"].items():
        if not m.get("per_class"):
            continue
        lines += ["", f"## {head}", ""] + _table(m["per_class"])
        conf = m.get("confusion")
        if conf:
            lines += ["", "Confusion (rows true, columns predicted):", "",
                      "| | " + " | ".join(conf["labels"]) + " |", "|---" * (len(conf["labels"]) + 1) + "|"]
            lines += [f"| {t} | " + " | ".join(map(str, row)) + " |" for t, row in zip(conf["labels"], conf["matrix"])]
    lines += ["", "## Label counts", ""]
    for head, counts in data["label_counts"].items():
        lines.append(f"- **{head}**: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return "\n".join(lines) + "\n"
