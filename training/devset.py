"""The severity development set: real complaints from ``../shared/data``, annotated by us.

The repository keeps identifiers and labels only — ``corpora/devsets/severity_dev.jsonl``, one
line per complaint::

    {"source": "car_complaints/car_complaints_train.csv", "key": "2024…", "sha": "3f9a…",
     "severity": "危机", "emotion": "fear", "intensity": 1, "reason": "行驶中熄火"}

``key`` is the record id the built-in import config gives (黑猫: ``heimao-<row>``, 车质网:
``投诉编号``, government messages: ``留言编号``); ``sha`` is the first 12 hex digits of the
SHA-256 of the imported text, so a changed source file is noticed instead of silently joined to
the wrong labels. :func:`load_devset` joins the labels with the texts when the data is present.

:func:`select` is how the complaints to annotate were drawn (seeded, so it can be re-run): a
random part of each source, plus a part enriched for rarer grades by the *source's own*
labels — 车质网 complaints filed under braking, steering, airbag, battery and power-loss
categories, and the most up-voted government messages — so 危机 recall is measured on more
than a handful of cases. Nothing in the selection looks at our cues or model.
"""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

from triage.errors import DataError
from triage.vocab import EMOTIONS, GRADES
from training.importers import import_file, load_import_config
from triage.paths import CORPORA, shared_data_dir

DEVSET = CORPORA / "devsets" / "severity_dev.jsonl"
# Training annotations: same format, drawn with other seeds, disjoint from the development set.
ANNOTATIONS = CORPORA / "annotations" / "severity_train.jsonl"
# The two severity passes behind the settled labels (for the agreement report).
PASSES = CORPORA / "annotations" / "reannotation_passes.jsonl"
CONFIGS = {
    "heimao/train.csv": "heimao",
    "heimao/dev.csv": "heimao",
    "car_complaints/car_complaints_train.csv": "car_complaints",
    "gov_messages/messages_with_replies.xlsx": "gov_replies",
    "gov_messages/messages_with_votes.xlsx": "gov_votes",
    "gov_messages/messages_unlabelled.xlsx": "gov_unlabelled",
}
# The three kinds of complaint the annotations cover; evaluation reports each on its own and
# leaves each out in turn.
SOURCE_GROUPS = {"heimao/train.csv": "黑猫", "heimao/dev.csv": "黑猫",
                 "car_complaints/car_complaints_train.csv": "车质网",
                 "gov_messages/messages_with_replies.xlsx": "government",
                 "gov_messages/messages_with_votes.xlsx": "government",
                 "gov_messages/messages_unlabelled.xlsx": "government"}
# How a training annotation was drawn: only "random" rows represent their source, so only they
# set the calibration and the crisis threshold.
SAMPLINGS = ("random", "uncertain", "enriched")
SAFETY_COARSE = {"制动系", "转向系", "气囊和安全带", "动力电池及电源管理系统", "电力驱动系统"}
SAFETY_FINE = {"动力消失", "动力中断", "行驶中动力消失", "刹车失灵", "熄火", "自燃", "起火"}


def text_sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class DevItem:
    source: str
    key: str
    text: str
    severity: str
    emotion: str
    intensity: int
    sampling: str = "random"     # how the row was drawn (SAMPLINGS)

    @property
    def group(self) -> str:
        return SOURCE_GROUPS[self.source]


def _load_source(root: Path, rel: str) -> dict[str, dict]:
    records, _ = import_file(root / rel, load_import_config(CONFIGS[rel]))
    return {r["id"]: r for r in records}


def select(data_root: str | Path | None = None, seed: int = 20261122, max_chars: int = 2000,
           exclude: set[tuple[str, str]] = frozenset()) -> list[dict]:
    """The complaints drawn for annotation: ``{source, key, sha, text}``, shuffled across sources;
    ``exclude`` holds ``(source, key)`` pairs already annotated (the training annotations are
    drawn with another seed and exclude the development set)."""
    root = shared_data_dir(data_root)
    rng = random.Random(seed)
    picked: list[tuple[str, dict]] = []

    def draw(rel: str, pool: list[dict], n: int) -> None:
        taken = {r["id"] for s, r in picked if s == rel} | {k for s, k in exclude if s == rel}
        pool = [r for r in pool if r["id"] not in taken and len(r["text"]) <= max_chars]
        picked.extend((rel, r) for r in rng.sample(pool, min(n, len(pool))))

    for rel in ("heimao/dev.csv", "heimao/train.csv"):
        draw(rel, list(_load_source(root, rel).values()), 60)
    car_rel = "car_complaints/car_complaints_train.csv"
    car = list(_load_source(root, car_rel).values())
    draw(car_rel, car, 75)
    draw(car_rel, [r for r in car if r["metadata"].get("coarse_type") in SAFETY_COARSE
                   or r["metadata"].get("fine_type") in SAFETY_FINE], 75)
    votes_rel = "gov_messages/messages_with_votes.xlsx"
    votes = sorted(_load_source(root, votes_rel).values(), key=lambda r: -int(float(r.get("votes_up") or 0)))
    draw(votes_rel, votes[:200], 45)
    replies_rel = "gov_messages/messages_with_replies.xlsx"
    draw(replies_rel, list(_load_source(root, replies_rel).values()), 45)
    rng.shuffle(picked)
    return [{"source": rel, "key": r["id"], "sha": text_sha(r["text"]), "text": r["text"]} for rel, r in picked]


def select_uncertain(model, data_root: str | Path | None = None, seed: int = 7501, low: float = 0.25,
                     high: float = 0.85, per_source: dict[str, int] | None = None, max_chars: int = 2000,
                     exclude: set[tuple[str, str]] = frozenset()) -> list[dict]:
    """Training complaints for a round of active learning: rows whose 危机 probability under
    ``model``'s severity head lies in ``[low, high]`` — where a bundle is least sure whether to
    raise a crisis — drawn at random (seeded) per source. Only for *training* annotations: the
    development set is drawn by :func:`select`, never by a model. ``exclude`` holds
    ``(source, key)`` pairs already annotated (the development set included)."""
    from training.evaluate import predict_head

    root = shared_data_dir(data_root)
    per_source = per_source or {"car_complaints/car_complaints_train.csv": 200,
                                "gov_messages/messages_with_votes.xlsx": 80,
                                "gov_messages/messages_with_replies.xlsx": 80,
                                "heimao/train.csv": 80}
    rng = random.Random(seed)
    picked: list[dict] = []
    for rel, n in per_source.items():
        pool = [r for r in _load_source(root, rel).values()
                if (rel, r["id"]) not in exclude and 0 < len(r["text"]) <= max_chars]
        classes, proba = predict_head(model, [r["text"] for r in pool], "severity")
        crisis = proba[:, classes.index("危机")] if classes else []
        band = [r for r, p in zip(pool, crisis) if low <= p <= high]
        picked += [{"source": rel, "key": r["id"], "sha": text_sha(r["text"]), "text": r["text"]}
                   for r in rng.sample(band, min(n, len(band)))]
    rng.shuffle(picked)
    return picked


def read_labels(path: str | Path = DEVSET) -> list[dict]:
    """The annotation file, validated: every line names a known source and valid labels."""
    path = Path(path)
    if not path.is_file():
        raise DataError("DEVSET_NOT_FOUND", f"the development set {path} does not exist")
    from training.train import iter_json_lines

    out, seen = [], set()
    for n, row in iter_json_lines(path, "DEVSET_BAD_LINE"):
        if not isinstance(row, dict):
            raise DataError("DEVSET_BAD_LINE", f"{path.name} line {n}: expected an object")
        problems = []
        if row.get("source") not in CONFIGS:
            problems.append(f"source {row.get('source')!r} is not one of {sorted(CONFIGS)}")
        if row.get("severity") not in GRADES:
            problems.append(f"severity {row.get('severity')!r} is not one of {list(GRADES)}")
        if row.get("emotion") not in EMOTIONS:
            problems.append(f"emotion {row.get('emotion')!r} is not one of {list(EMOTIONS)}")
        if row.get("intensity") not in (0, 1, 2, 3, 4):
            problems.append(f"intensity {row.get('intensity')!r} is not a whole number 0–4")
        if not row.get("key") or not row.get("sha"):
            problems.append("key and sha are required")
        if "text" in row:
            problems.append("the development set stores no complaint text")
        if row.get("sampling", "random") not in SAMPLINGS:
            problems.append(f"sampling {row.get('sampling')!r} is not one of {list(SAMPLINGS)}")
        ident = (row.get("source"), row.get("key"))
        if ident in seen:
            problems.append(f"{ident} is listed twice")
        seen.add(ident)
        if problems:
            raise DataError("DEVSET_BAD_LINE", f"{path.name} line {n}: " + "; ".join(problems))
        out.append(row)
    return out


def load_devset(path: str | Path = DEVSET, data_root: str | Path | None = None,
                sources: dict[str, dict[str, dict]] | None = None) -> tuple[list[DevItem], list[str]]:
    """Join the labels with ``../shared/data``; returns the items and a list of join problems
    (a key no longer in the source, or a text whose hash changed). ``sources`` (source file →
    imported records by id) is filled as files are read, so a caller joining two label files
    reads each source once."""
    root = shared_data_dir(data_root)
    labels = read_labels(path)
    sources = {} if sources is None else sources
    for rel in sorted({r["source"] for r in labels} - set(sources)):
        sources[rel] = _load_source(root, rel)
    items, problems = [], []
    for row in labels:
        rec = sources[row["source"]].get(row["key"])
        if rec is None:
            problems.append(f"{row['source']} {row['key']}: not in the source")
        elif text_sha(rec["text"]) != row["sha"]:
            problems.append(f"{row['source']} {row['key']}: text changed (sha {text_sha(rec['text'])} != {row['sha']})")
        else:
            items.append(DevItem(row["source"], row["key"], rec["text"], row["severity"], row["emotion"],
                                 int(row["intensity"]), row.get("sampling", "random")))
    return items, problems


def annotated_records(path: str | Path = ANNOTATIONS, data_root: str | Path | None = None,
                      max_jaccard: float = 0.5) -> tuple[list[dict], str]:
    """The training annotations joined with ``../shared/data`` as training records (severity,
    emotion, intensity; no complaint type), and a line saying what was used. Texts that nearly
    duplicate a development-set text (character 5-gram Jaccard above ``max_jaccard``; the
    sources repeat some complaints under other ids) are left out, so the development set stays
    unseen. Without the data folder: no records, and the line says so."""
    root = shared_data_dir(data_root, required=False)
    if root is None:
        return [], f"annotated real complaints skipped: the data folder ({data_root or '../shared/data'}) is not there"
    from training.corpus_check import char_ngrams
    from triage.text import normalise

    sources: dict[str, dict[str, dict]] = {}
    items, problems = load_devset(path, root, sources)
    dev, _ = load_devset(DEVSET, root, sources)
    dev_grams = [char_ngrams(normalise(d.text)) for d in dev]
    records, near = [], 0
    for it in items:
        g = char_ngrams(normalise(it.text))
        if any(len(g & d) / max(1, len(g | d)) > max_jaccard for d in dev_grams):
            near += 1
            continue
        rec = {"id": f"ann:{it.source}:{it.key}", "text": it.text, "severity": it.severity,
               "emotion": it.emotion, "intensity": it.intensity}
        if it.sampling != "random":          # not a random sample of its source
            rec["sampling"] = it.sampling
        records.append(rec)
    return records, (f"{len(records)} annotated real complaints from {Path(path).name} ({len(problems)} no longer "
                     f"join, {near} near duplicates of the development set left out)")


def _grade_metrics(y_true: list[str], y_pred: list[str]) -> dict:
    from training.evaluate import classification_metrics, confusion

    m = classification_metrics(y_true, y_pred, list(GRADES))
    crisis = m["per_class"]["危机"]
    return {"crisis_recall": crisis["recall"], "crisis_precision": crisis["precision"],
            "macro_f1": m["macro_f1"], "accuracy": m["accuracy"], "per_class": m["per_class"],
            "confusion": confusion(y_true, y_pred, list(GRADES))}


def _ece(scores: list[dict], gold: list[str]) -> float:
    """Expected calibration error of the heads' probabilities on these held-out items."""
    import numpy as np
    from triage.heads import expected_calibration_error

    labels = sorted(scores[0]) if scores else []
    proba = np.array([[s[k] for k in labels] for s in scores])
    y = np.array([labels.index(g) if g in labels else -1 for g in gold])
    return round(expected_calibration_error(proba, y), 4) if len(y) else float("nan")


def evaluate_devset(model, items: list[DevItem], batch: int = 32) -> dict:
    """Severity (the served decision, and the model and cue parts alone), emotion and intensity
    of ``model`` on the annotated items."""
    from scipy.stats import spearmanr
    from training.evaluate import classification_metrics, triage_all

    answers = triage_all(model, [it.text for it in items], batch)
    gold = [it.severity for it in items]
    final = [a["severity"]["label"] for a in answers]
    model_only = [a["severity"]["model_label"] for a in answers]
    cues_only = [a["severity"]["cue_label"] or "一般" for a in answers]
    intensity_pred = [a["intensity"]["score"] for a in answers]
    rho = spearmanr([it.intensity for it in items], intensity_pred).statistic
    emo = classification_metrics([it.emotion for it in items], [a["emotion"]["label"] for a in answers],
                                 sorted({it.emotion for it in items}))
    by_source = {}
    for src in sorted({it.source for it in items}):
        idx = [k for k, it in enumerate(items) if it.source == src]
        by_source[src] = {"n": len(idx), **{k: v for k, v in _grade_metrics([gold[k] for k in idx],
                                                                          [final[k] for k in idx]).items()
                                            if k in ("crisis_recall", "crisis_precision", "macro_f1")}}
    sev_ece = _ece([a["severity"]["scores"] for a in answers], gold)
    emo_ece = _ece([a["emotion"]["scores"] for a in answers], [it.emotion for it in items])
    return {
        "n": len(items),
        "labels": {g: gold.count(g) for g in GRADES},
        "ece": {"severity": sev_ece, "emotion": emo_ece},
        "severity": _grade_metrics(gold, final),
        "severity_model_only": _grade_metrics(gold, model_only),
        "severity_cues_only": _grade_metrics(gold, cues_only),
        "needs_review_rate": round(sum(a["needs_review"] for a in answers) / max(1, len(answers)), 4),
        "by_source": by_source,
        "intensity_spearman": round(float(rho), 4),
        "emotion": {"macro_f1": emo["macro_f1"], "accuracy": emo["accuracy"], "per_class": emo["per_class"]},
    }


def render_devset(version: str, r: dict) -> str:
    s = r["severity"]
    lines = [f"# Severity development set — bundle `{version}`", "",
             f"{r['n']} real complaints annotated per LABELS.md ({', '.join(f'{k} {v}' for k, v in r['labels'].items())}).",
             "", "| decision | 危机 recall | 危机 precision | macro-F1 | accuracy |", "|---|---|---|---|---|"]
    for name, key in (("served (crisis-first rule)", "severity"), ("model alone", "severity_model_only"),
                      ("cues alone", "severity_cues_only")):
        m = r[key]
        lines.append(f"| {name} | {m['crisis_recall']:.3f} | {m['crisis_precision']:.3f} | {m['macro_f1']:.3f} | "
                     f"{m['accuracy']:.3f} |")
    lines += ["", f"Calibration on these held-out complaints (ECE of the head's probabilities): severity "
              f"{r['ece']['severity']:.3f}, emotion {r['ece']['emotion']:.3f}.",
              "", f"Intensity Spearman ρ: {r['intensity_spearman']:.3f}. Emotion macro-F1 "
              f"{r['emotion']['macro_f1']:.3f}, accuracy {r['emotion']['accuracy']:.3f}. "
              f"needs_review on {r['needs_review_rate']:.1%} of answers.", "",
              "| source | n | 危机 recall | 危机 precision | macro-F1 |", "|---|---|---|---|---|"]
    for src, m in r["by_source"].items():
        lines.append(f"| {src} | {m['n']} | {m['crisis_recall']:.3f} | {m['crisis_precision']:.3f} | {m['macro_f1']:.3f} |")
    c = s["confusion"]
    lines += ["", "Confusion of the served grade (rows annotated, columns predicted):", "",
              "| | " + " | ".join(c["pred"]) + " |", "|---" * (len(c["pred"]) + 1) + "|"]
    lines += [f"| {t} | " + " | ".join(map(str, row)) + " |" for t, row in zip(c["true"], c["matrix"])]
    return "\n".join(lines) + "\n"


def pass_agreement(path: str | Path = PASSES) -> dict:
    """Agreement between the two severity passes behind the settled labels: the project's
    earlier labels against a blind re-annotation (``earlier_vs_blind``), and two blind passes
    over the newly drawn development rows (``blind_vs_blind``), then in all. For each: Cohen's
    κ, raw agreement and the confusion of the first pass (rows) against the second (columns),
    plus emotion κ and intensity Spearman ρ."""
    import json

    from scipy.stats import spearmanr
    from sklearn.metrics import cohen_kappa_score

    from training.evaluate import confusion

    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    out: dict = {}
    for name in ("earlier_vs_blind", "blind_vs_blind", "all"):
        part = [r for r in rows if name == "all" or r["pair"] == name]
        if not part:
            continue
        first, second = [r["first"]["severity"] for r in part], [r["second"]["severity"] for r in part]
        crisis_either = sum(a == "危机" or b == "危机" for a, b in zip(first, second))
        out[name] = {
            "n": len(part),
            "severity_kappa": round(float(cohen_kappa_score(first, second)), 4),
            "severity_agreement": round(sum(a == b for a, b in zip(first, second)) / len(part), 4),
            "severity_confusion": confusion(first, second, list(GRADES)),
            "crisis_both_of_either": round(sum(a == b == "危机" for a, b in zip(first, second)) / max(1, crisis_either), 4),
            "emotion_kappa": round(float(cohen_kappa_score([r["first"]["emotion"] for r in part],
                                                           [r["second"]["emotion"] for r in part])), 4),
            "intensity_spearman": round(float(spearmanr([r["first"]["intensity"] for r in part],
                                                        [r["second"]["intensity"] for r in part]).statistic), 4),
            "settled": {g: sum(r["settled"] == g for r in part) for g in GRADES},
        }
    return out


def render_agreement(r: dict) -> str:
    lines = ["# Agreement between the two severity passes", "",
             "| passes | n | κ | agreement | 危机 in both / in either | emotion κ | intensity ρ |", "|---|---|---|---|---|---|---|"]
    for name, m in r.items():
        lines.append(f"| {name} | {m['n']} | {m['severity_kappa']:.3f} | {m['severity_agreement']:.3f} | "
                     f"{m['crisis_both_of_either']:.3f} | {m['emotion_kappa']:.3f} | {m['intensity_spearman']:.3f} |")
    for name, m in r.items():
        c = m["severity_confusion"]
        lines += ["", f"{name}: first pass (rows) against second pass (columns)", "",
                  "| | " + " | ".join(c["pred"]) + " |", "|---" * (len(c["pred"]) + 1) + "|"]
        lines += [f"| {t} | " + " | ".join(map(str, row)) + " |" for t, row in zip(c["true"], c["matrix"])]
    return "\n".join(lines) + "\n"
