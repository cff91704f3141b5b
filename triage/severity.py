"""Crisis-first, ordinal severity decision: the learned head combined with the cue layer.

Rule (thresholds in :class:`triage.config.SeverityRule`):

1. The model's grade: 危机 if P(危机) ≥ ``crisis_threshold``; else 重点 if P(重点)+P(危机) ≥
   ``major_threshold``; else 一般. (Ordinal: probability mass above a grade counts for it.)
2. The cues' grade: 危机 if the asserted 危机 cues' noisy-or strength ≥ ``cue_crisis``; else
   重点 if the 重点 cues (threats and hypothetical 危机 cues count here) reach ``cue_major``;
   else none.
3. The answer is the higher of the two. A strong 危机 signal is never down-graded; when the
   model and the cues disagree the answer says so (``disagreement``) and asks for review.

Cues are read clause by clause (negation, conditions, rumours, questions and settled cases are
scoped to their clause or sentence), so a long complaint is as severe as its most severe
credible clause; :func:`most_severe_sentence` names that sentence for the evidence.
"""
from __future__ import annotations

from dataclasses import dataclass

from triage.config import SeverityRule
from triage.doc import Doc
from triage.lexicon import Lexicons, Match
from triage.vocab import grade_rank


@dataclass
class SeverityDecision:
    label: str
    model_label: str
    cue_label: str | None
    cue_strength: dict[str, float]
    disagreement: bool


def decide(probs: dict[str, float], cues: list[Match], rule: SeverityRule) -> SeverityDecision:
    p_crisis = probs.get("危机", 0.0)
    p_major = probs.get("重点", 0.0)
    if p_crisis >= rule.crisis_threshold:
        model_label = "危机"
    elif p_major + p_crisis >= rule.major_threshold:
        model_label = "重点"
    else:
        model_label = "一般"
    strength = Lexicons.cue_strength(cues)
    cue_label = None
    if strength["危机"] >= rule.cue_crisis:
        cue_label = "危机"
    elif max(strength["重点"], strength["危机"]) >= rule.cue_major:
        cue_label = "重点"
    label = model_label
    if cue_label is not None and grade_rank(cue_label) > grade_rank(model_label):
        label = cue_label
    disagreement = cue_label is not None and cue_label != model_label
    return SeverityDecision(label, model_label, cue_label,
                            {k: round(v, 3) for k, v in strength.items()}, disagreement)


def most_severe_sentence(doc: Doc, rule: SeverityRule) -> dict | None:
    """The sentence whose own cues point highest (危机 above 重点, then the stronger), as
    ``{"text", "start", "end", "grade", "strength"}``; None when no sentence reaches 重点."""
    best: tuple[int, float, tuple[int, int]] | None = None
    for start, end in doc.sentences:
        strength = Lexicons.cue_strength([m for m in doc.cues if start <= m.start < end])
        if strength["危机"] >= rule.cue_crisis:
            key = (2, strength["危机"])
        elif max(strength.values()) >= rule.cue_major:
            key = (1, max(strength.values()))
        else:
            continue
        if best is None or key > best[:2]:
            best = (*key, (start, end))
    if best is None:
        return None
    rank, value, (start, end) = best
    return {"text": doc.text[start:end], "start": start, "end": end, "grade": "危机" if rank == 2 else "重点",
            "strength": round(value, 3)}
