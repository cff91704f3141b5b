"""Evaluation of a bundle on real complaints from ``../shared/data``.

``python -m training report [--bundle DIR]`` evaluates the complaint-type head on 黑猫
(train + dev) and 车质网 (train), each mapped to the default taxonomy with the mapping in
``../shared/guides/LABELS.md`` (the built-in import configs ``heimao`` and ``car_complaints``),
and writes a Markdown and a JSON report.

Two figures per source:

- **open**: the model's answer over its whole taxonomy — what a caller receives. A prediction
  of a type the source does not use (e.g. 退款退货 on 黑猫) counts as wrong.
- **within source labels**: the argmax restricted to the types the source uses, as a
  deployment that only uses those types would configure it.

Macro-F1 is averaged over the source's mapped classes.

With ``--in-domain`` the report adds a **reference** per source: the bundle's own recipe (its
feature settings, its complaint-type head's parameters, the same encoder and lexicons) trained
on the source itself with the same mapped labels, scored by stratified 5-fold cross-validation
(out-of-fold predictions; the n-gram vocabularies are learned from all of the source's texts, no
labels). It says how much of the gap to a target is the corpus (transfer from ``corpora/`` to a
source's conventions) and how much is the source itself: if a model trained on the source's own
labels stays below a target, no corpus will lift a transferred model above it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from training.importers import import_file, load_import_config
from triage.paths import shared_data_dir

TYPE_SOURCES: dict[str, tuple[tuple[str, str], ...]] = {
    "黑猫 (train+dev)": (("heimao/train.csv", "heimao"), ("heimao/dev.csv", "heimao")),
    "车质网 (train)": (("car_complaints/car_complaints_train.csv", "car_complaints"),),
}


def classification_metrics(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> dict:
    labels = list(labels)
    p, r, f, n = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    return {
        "n": len(y_true),
        "macro_f1": round(float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)), 4),
        "accuracy": round(float(accuracy_score(y_true, y_pred)), 4),
        "per_class": {lab: {"precision": round(float(p[i]), 4), "recall": round(float(r[i]), 4),
                            "f1": round(float(f[i]), 4), "support": int(n[i])} for i, lab in enumerate(labels)},
    }


def confusion(y_true: Sequence[str], y_pred: Sequence[str], true_labels: Sequence[str]) -> dict:
    pred_labels = list(true_labels) + sorted(set(y_pred) - set(true_labels))
    m = confusion_matrix(y_true, y_pred, labels=pred_labels)
    rows = [pred_labels.index(t) for t in true_labels]
    return {"true": list(true_labels), "pred": pred_labels, "matrix": m[rows].tolist()}


def triage_all(model, texts: list[str], batch: int = 32) -> list[dict]:
    """Served answers for many texts, in batches (one encode each), texts cut to the model's limit."""
    answers: list[dict] = []
    for i in range(0, len(texts), batch):
        answers += model.triage([t[:model.max_chars] for t in texts[i:i + batch]])
    return answers


def predict_head(model, texts: list[str], head: str = "complaint_type",
                 batch: int = 256) -> tuple[list[str], np.ndarray]:
    """One head's classes and calibrated probabilities for many texts, in batches (one encode each)."""
    classes: list[str] = []
    parts = []
    for i in range(0, len(texts), batch):
        classes, proba = model.predict_proba(texts[i:i + batch])[head]
        parts.append(proba)
    return classes, np.concatenate(parts) if parts else np.zeros((0, len(classes)))


def in_domain_reference(model, texts: list[str], y: list[str], labels: Sequence[str], folds: int = 5) -> dict:
    """Macro-F1 and accuracy of the bundle's recipe trained on ``texts``/``y`` themselves, by
    stratified ``folds``-fold cross-validation (see the module docstring)."""
    from triage.features import FeatureBuilder
    from triage.heads import Head

    if len(set(y)) < 2 or len(y) < 4:
        return {"skipped": f"{len(y)} records in {len(set(y))} classes are too few for cross-validation"}
    emb = model.encoder.encode(texts, "query")
    builder = FeatureBuilder(model.features["complaint_type"].segmenter, model.config.features)
    docs = model.read(texts)
    X = builder.assemble(builder.fit_lexical(docs), emb, model.lexicons.signals(docs))
    params = model.config.heads.get("complaint_type")
    head = Head("complaint_type", params, seed=model.config.seed, folds=folds, n_jobs=model.config.n_jobs)
    head.fit(X, y)
    if getattr(head, "oof_proba_", None) is None:        # a config with calibrate=false has no folds
        return {"skipped": "the head's parameters turn cross-validation off (calibrate=false)"}
    pred = [str(head.classes_[j]) for j in head.oof_proba_.argmax(axis=1)]
    return {"folds": head.cv_metrics_["folds"], **classification_metrics(y, pred, labels)}


def evaluate_types(model, data_root: str | Path | None = None, in_domain: bool = False) -> dict:
    root = shared_data_dir(data_root)
    results = {}
    for name, files in TYPE_SOURCES.items():
        records, drops = [], {}
        for rel, config in files:
            recs, report = import_file(root / rel, load_import_config(config))
            records += recs
            drops[rel] = {"read": report.read, "kept": report.kept, "dropped": dict(report.dropped)}
        texts = [r["text"][:model.max_chars] for r in records]
        y = [r["complaint_type"] for r in records]
        labels = sorted(set(y))
        classes, proba = predict_head(model, texts)
        open_pred = [classes[j] for j in proba.argmax(axis=1)]
        allowed = np.array([c in labels for c in classes])
        within = [classes[j] for j in np.where(allowed, proba, -1).argmax(axis=1)]
        results[name] = {"files": drops, "labels": labels,
                         "open": {**classification_metrics(y, open_pred, labels), "confusion": confusion(y, open_pred, labels)},
                         "within_source_labels": classification_metrics(y, within, labels)}
        if in_domain:
            results[name]["in_domain_reference"] = in_domain_reference(model, texts, y, labels)
    return results


def render_markdown(bundle: str, results: dict, target: float = 0.60) -> str:
    lines = [f"# Complaint-type evaluation of bundle `{bundle}`", "",
             "Real complaints from `../shared/data`, mapped to the default taxonomy (LABELS.md). "
             f"Target: macro-F1 ≥ {target:.2f} on each source.", "",
             "| source | n | macro-F1 (open) | accuracy (open) | macro-F1 (within source labels) | accuracy (within) |",
             "|---|---|---|---|---|---|"]
    for name, r in results.items():
        o, w = r["open"], r["within_source_labels"]
        lines.append(f"| {name} | {o['n']} | {o['macro_f1']:.3f} | {o['accuracy']:.3f} | {w['macro_f1']:.3f} | {w['accuracy']:.3f} |")
    refs = {name: r["in_domain_reference"] for name, r in results.items() if "in_domain_reference" in r}
    if refs:
        lines += ["", "Reference: the same recipe trained on the source itself (same mapped labels, "
                  "stratified k-fold cross-validation, out-of-fold predictions):", "",
                  "| source | folds | macro-F1 (in-domain) | accuracy (in-domain) |", "|---|---|---|---|"]
        for name, ref in refs.items():
            lines.append(f"| {name} | {ref['folds']} | {ref['macro_f1']:.3f} | {ref['accuracy']:.3f} |" if "folds" in ref
                         else f"| {name} | – | skipped: {ref['skipped']} | |")
    for name, r in results.items():
        ref = refs.get(name, {}).get("per_class", {})
        lines += ["", f"## {name}", "", "| class | support | precision | recall | F1 |"
                  + (" F1 in-domain |" if ref else ""), "|---|---|---|---|---|" + ("---|" if ref else "")]
        for lab, m in r["open"]["per_class"].items():
            lines.append(f"| {lab} | {m['support']} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} |"
                         + (f" {ref[lab]['f1']:.3f} |" if ref else ""))
        c = r["open"]["confusion"]
        lines += ["", "Confusion (rows true, columns predicted, open):", "",
                  "| true \\ pred | " + " | ".join(c["pred"]) + " |", "|---" * (len(c["pred"]) + 1) + "|"]
        for t, row in zip(c["true"], c["matrix"]):
            lines.append(f"| {t} | " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def write_report(bundle: str, results: dict, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_markdown(bundle, results), encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps({"bundle": bundle, "results": results}, ensure_ascii=False,
                                                   indent=2), encoding="utf-8")
    return out
