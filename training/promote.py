"""Safe promotion: ``python -m training promote BUNDLE`` and ``python -m training rollback``.

The candidate and the serving bundle (``models/CURRENT``) are evaluated side by side on one
fixed evaluation set — by default the annotated severity development set
(``corpora/devsets/severity_dev.jsonl`` joined with ``../shared/data``), or ``--eval FILE``
(JSONL records with ``text`` and any of the four labels). Promotion is refused, with the
reasons printed, when

- 危机 recall of the served decision drops (by any amount), or
- the macro-F1 of any head both bundles can be scored on drops by more than ``max_f1_drop``
  (1 point). A head whose labels differ between the bundles (a new taxonomy) is reported but
  not compared.

``models/HISTORY.jsonl`` records every promotion and rollback (time, from, to, figures);
``rollback`` points CURRENT back at the bundle the last promotion replaced. A running service
picks the change up with ``POST /v1/admin/reload`` (or by itself with
``TRIAGE_WATCH_CURRENT_SECONDS``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from triage.bundle import current_bundle, set_current
from triage.errors import DataError
from triage.vocab import GRADES
from training.evaluate import classification_metrics, triage_all

HISTORY = "HISTORY.jsonl"
HEADS = ("complaint_type", "severity", "emotion", "intensity")


def load_eval_records(path: str | Path | None = None, data_root: str | Path | None = None) -> tuple[list[dict], str]:
    """The evaluation records and a name for them."""
    if path is not None:
        from training.train import read_jsonl
        return read_jsonl([Path(path)]), str(path)
    from training.devset import DEVSET, load_devset
    try:
        items, problems = load_devset(DEVSET, data_root)
    except DataError as exc:
        raise DataError("EVAL_SET_MISSING", f"the default evaluation set needs ../shared/data ({exc.message}); "
                        "give --eval FILE with labelled JSONL records instead") from exc
    if problems:
        raise DataError("EVAL_SET_CHANGED", f"{len(problems)} development-set rows no longer join: {problems[:3]}")
    return ([{"text": it.text, "severity": it.severity, "emotion": it.emotion, "intensity": it.intensity}
             for it in items], f"{DEVSET.name} ({len(items)} annotated real complaints)")


def evaluate_model(model, records: list[dict], batch: int = 32) -> dict:
    """Served answers scored per head: macro-F1 (and 危机 recall/precision for severity)."""
    answers = triage_all(model, [r["text"] for r in records], batch)
    pred = {"complaint_type": [a["complaint_type"]["label"] for a in answers],
            "severity": [a["severity"]["label"] for a in answers],
            "emotion": [a["emotion"]["label"] for a in answers],
            "intensity": [str(a["intensity"]["level"]) for a in answers]}
    out: dict = {"n": len(records), "heads": {}}
    for head in HEADS:
        rows = [k for k, r in enumerate(records) if r.get(head) is not None and str(r[head]).strip() != ""]
        if not rows:
            continue
        y = [str(records[k][head]) for k in rows]
        p = [pred[head][k] for k in rows]
        m = classification_metrics(y, p, sorted(set(y)))
        out["heads"][head] = {"n": len(rows), "macro_f1": m["macro_f1"], "accuracy": m["accuracy"],
                              "labels": [str(c) for c in model.heads[head].classes_]}
        if head == "severity":
            g = classification_metrics(y, p, list(GRADES))["per_class"]["危机"]
            out["crisis"] = {"recall": g["recall"], "precision": g["precision"], "support": g["support"]}
    return out


@dataclass
class GateResult:
    promote: bool
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def gate(candidate: dict, serving: dict, max_f1_drop: float = 0.01) -> GateResult:
    result = GateResult(True)
    if "crisis" in candidate and "crisis" in serving:
        c, s = candidate["crisis"]["recall"], serving["crisis"]["recall"]
        if c < s:
            result.reasons.append(f"危机 recall drops from {s:.3f} to {c:.3f}")
    elif "crisis" in serving:
        result.reasons.append("the candidate cannot be scored on 危机 recall (no severity labels in the evaluation set?)")
    for head, s in serving["heads"].items():
        c = candidate["heads"].get(head)
        if c is None:
            continue
        if sorted(c["labels"]) != sorted(s["labels"]):
            result.notes.append(f"{head}: the bundles use different labels; not compared")
            continue
        if c["macro_f1"] < s["macro_f1"] - max_f1_drop:
            result.reasons.append(f"{head} macro-F1 drops by {100 * (s['macro_f1'] - c['macro_f1']):.1f} points "
                                  f"({s['macro_f1']:.3f} → {c['macro_f1']:.3f}; at most {100 * max_f1_drop:.0f} allowed)")
    result.promote = not result.reasons
    return result


def render_comparison(candidate_name: str, cand: dict, serving_name: str, serv: dict) -> str:
    lines = [f"{'':18s} {'serving':>12s} {'candidate':>12s}", f"{'':18s} {serving_name[-12:]:>12s} {candidate_name[-12:]:>12s}"]
    if "crisis" in serv or "crisis" in cand:
        lines.append(f"{'危机 recall':16s} {serv.get('crisis', {}).get('recall', float('nan')):12.3f} "
                     f"{cand.get('crisis', {}).get('recall', float('nan')):12.3f}")
        lines.append(f"{'危机 precision':15s} {serv.get('crisis', {}).get('precision', float('nan')):12.3f} "
                     f"{cand.get('crisis', {}).get('precision', float('nan')):12.3f}")
    for head in HEADS:
        if head in serv["heads"] or head in cand["heads"]:
            lines.append(f"{head + ' macro-F1':18s} {serv['heads'].get(head, {}).get('macro_f1', float('nan')):12.3f} "
                         f"{cand['heads'].get(head, {}).get('macro_f1', float('nan')):12.3f}")
    return "\n".join(lines)


def _append_history(models_dir: Path, entry: dict) -> None:
    with (models_dir / HISTORY).open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
        fh.flush()


def read_history(models_dir: Path) -> list[dict]:
    path = Path(models_dir) / HISTORY
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def promote(candidate: Path, models_dir: Path, load, records: list[dict], eval_name: str,
            max_f1_drop: float = 0.01, out=print) -> bool:
    """Gate and, if it passes, point CURRENT at ``candidate``. ``load(path)`` returns a model."""
    candidate = Path(candidate)
    if candidate.parent.resolve() != Path(models_dir).resolve():
        raise DataError("PROMOTE_OUTSIDE", f"{candidate} is not in the models folder {models_dir}; "
                        "train with --out pointing there")
    serving = current_bundle(models_dir)
    if serving is not None and serving.name == candidate.name:
        out(f"{candidate.name} is already CURRENT; nothing to do")
        return True
    cand_model = load(candidate)                     # verifies the candidate before anything else
    cand = evaluate_model(cand_model, records)
    entry = {"time": datetime.now(timezone.utc).isoformat(), "action": "promote", "to": candidate.name,
             "from": serving.name if serving else None, "eval_set": eval_name, "candidate": cand}
    if serving is None:
        out(f"no bundle is serving yet: {candidate.name} becomes CURRENT without comparison")
        result = GateResult(True)
    else:
        serv = evaluate_model(load(serving), records)
        entry["serving"] = serv
        out(f"evaluation set: {eval_name}")
        out(render_comparison(candidate.name, cand, serving.name, serv))
        result = gate(cand, serv, max_f1_drop)
        for note in result.notes:
            out(f"note: {note}")
    entry["gate"] = {"promote": result.promote, "reasons": result.reasons, "notes": result.notes}
    if not result.promote:
        entry["action"] = "refused"
        _append_history(Path(models_dir), entry)
        out("REFUSED: " + "; ".join(result.reasons))
        return False
    set_current(models_dir, candidate.name)
    _append_history(Path(models_dir), entry)
    out(f"promoted: CURRENT is now {candidate.name}"
        + (f" (was {serving.name}; `python -m training rollback` returns to it)" if serving else ""))
    return True


def rollback(models_dir: Path, out=print) -> str:
    """Point CURRENT back at the bundle the last promotion replaced; returns its name."""
    models_dir = Path(models_dir)
    serving = current_bundle(models_dir)
    if serving is None:
        raise DataError("ROLLBACK_NOTHING", f"{models_dir}/CURRENT is missing; nothing to roll back")
    for entry in reversed(read_history(models_dir)):
        if entry["action"] == "promote" and entry["to"] == serving.name and entry.get("from"):
            previous = entry["from"]
            set_current(models_dir, previous)
            _append_history(models_dir, {"time": datetime.now(timezone.utc).isoformat(), "action": "rollback",
                                         "from": serving.name, "to": previous})
            out(f"rolled back: CURRENT is now {previous} (was {serving.name})")
            return previous
    raise DataError("ROLLBACK_NO_HISTORY", f"{models_dir}/{HISTORY} has no promotion that led to "
                    f"{serving.name}; nothing to roll back to")
